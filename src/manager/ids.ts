// Manager object ids in MongoDB's ObjectId layout (existing worker clients parse them): 4-byte
// seconds, 5 random bytes fixed per process, 3-byte counter starting at a random value; 24 hex.
import { randomBytes } from "node:crypto";

export const OBJECT_ID_RE = /^[0-9a-f]{24}$/;

const processRandom = randomBytes(5).toString("hex");
let counter = randomBytes(3).readUIntBE(0, 3);

/** A new id; ids made by one process within one second sort in creation order (until the counter wraps). */
export function newObjectId(nowMs: number = Date.now()): string {
  counter = (counter + 1) & 0xffffff;
  const seconds = Math.floor(nowMs / 1000) >>> 0;
  return seconds.toString(16).padStart(8, "0") + processRandom + counter.toString(16).padStart(6, "0");
}

/** The creation time (ms) an id carries. */
export function objectIdTime(id: string): number {
  return parseInt(id.slice(0, 8), 16) * 1000;
}
