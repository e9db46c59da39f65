// Signed-out user tokens: a deny list kept until each token's own expiry (a JWT cannot be withdrawn
// otherwise), in memory and in <state_dir>/jwt/revoked.json (0600, atomic) so a restart keeps it.
import { createHash } from "node:crypto";
import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { Serializer } from "../base/index.js";
import { writeFileAtomic } from "../store/index.js";
import { log } from "../log.js";

/** more than the sign-outs of any real farm between two expiries; past it the oldest go first */
export const MAX_REVOKED = 100_000;
/** its name in <state_dir>/jwt/ */
export const REVOKED_FILE = "revoked.json";
/** an id (43) and an expiry in ms (13) with JSON punctuation: 70 bytes is ample */
const MAX_FILE_BYTES = MAX_REVOKED * 70 + 1024;
const ID_RE = /^[A-Za-z0-9_-]{43}$/;

/** a token's id in the list and on its event streams (no token is kept, only its hash) */
export function tokenId(token: string): string {
  return createHash("sha256").update(token).digest("base64url");
}

export class RevokedTokens {
  /** token id → expiry (ms); insertion order, so the first entry is the oldest */
  private readonly until = new Map<string, number>();
  private adds = 0;
  private readonly writes = new Serializer();

  /** `file`: where the list is kept ("" = memory only) */
  constructor(private readonly file = "") {}

  /** The list in `file`; a missing one is empty, a corrupt one is logged and starts empty. */
  static async load(file: string, now = Date.now()): Promise<RevokedTokens> {
    const list = new RevokedTokens(file);
    const text = await readSmall(file).catch((err: Error) => {
      log.error("cannot read the signed-out token list; starting without it", { file, error: err.message });
      return undefined;
    });
    if (text === undefined) return list;
    const entries = parseRevoked(text);
    if (!entries) log.error("the signed-out token list is corrupt; starting without it", { file });
    for (const [id, exp] of entries ?? []) list.add(id, exp, now);
    return list;
  }

  get size(): number {
    return this.until.size;
  }

  /** deny `id` until `expMs` (after which the token is refused as expired anyway) */
  add(id: string, expMs: number, now = Date.now()): void {
    if (expMs <= now) return;
    // expired entries only cost memory (has() checks the time): sweep now and then, and when full
    if (++this.adds % 1024 === 0 || this.until.size >= MAX_REVOKED) this.prune(now);
    this.until.delete(id);
    if (this.until.size >= MAX_REVOKED) this.until.delete(this.until.keys().next().value!);
    this.until.set(id, expMs);
  }

  /** add, then keep the list on disk; resolves when it is there (the memory one holds at once) */
  async revoke(id: string, expMs: number, now = Date.now()): Promise<void> {
    this.add(id, expMs, now);
    if (this.file) await this.writes.run(() => this.save());
  }

  has(id: string, now = Date.now()): boolean {
    const exp = this.until.get(id);
    return exp !== undefined && exp > now;
  }

  private async save(): Promise<void> {
    this.prune(Date.now());
    await writeFileAtomic(this.file, JSON.stringify({ revoked: Object.fromEntries(this.until) }) + "\n", 0o600);
  }

  private prune(now: number): void {
    for (const [id, exp] of this.until) if (exp <= now) this.until.delete(id);
  }
}

/** The well-formed [id, expiry ms] entries of revoked.json's text; undefined when it is not that file. */
export function parseRevoked(text: string): [string, number][] | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return undefined;
  }
  const entries = (doc as { revoked?: unknown } | null)?.revoked;
  if (typeof entries !== "object" || entries === null || Array.isArray(entries)) return undefined;
  return Object.entries(entries).filter((e): e is [string, number] => ID_RE.test(e[0]) && Number.isFinite(e[1]));
}

/** the file's text; undefined when missing; an error past MAX_FILE_BYTES or for a non-file */
async function readSmall(file: string): Promise<string | undefined> {
  const fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw err;
  });
  if (!fh) return undefined;
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size > MAX_FILE_BYTES) throw new Error(`not a regular file of at most ${MAX_FILE_BYTES} bytes`);
    return await fh.readFile("utf8");
  } finally {
    await fh.close();
  }
}
