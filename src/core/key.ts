// The core key: <state_dir>/corekey.bin (or core_key_file), 32 random bytes made at first start.
import { readFile, stat } from "node:fs/promises";
import { log } from "../log.js";
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { join } from "node:path";
import { writeFileAtomic } from "../store/index.js";
import type { StaticConfig } from "../config/index.js";

export const KEY_BYTES = 32;
const MAX_KEY_FILE_BYTES = 4096;

export function keyPath(config: Pick<StaticConfig, "core_key_file" | "state_dir">): string {
  return config.core_key_file || join(config.state_dir, "corekey.bin");
}

/** Read the key file; null when it does not exist. */
export async function readKey(path: string): Promise<Buffer | null> {
  try {
    const key = await readFile(path);
    if (key.length === 0) throw new Error(`core key file ${path} is empty`);
    if (key.length > MAX_KEY_FILE_BYTES) throw new Error(`core key file ${path} is larger than ${MAX_KEY_FILE_BYTES} bytes`);
    return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
}

/** Read the key, creating it (mode 0600, atomically) when absent. */
export async function loadOrCreateKey(path: string): Promise<{ key: Buffer; created: boolean }> {
  const existing = await readKey(path);
  if (existing) {
    if (((await stat(path)).mode & 0o077) !== 0) log.warn("core key file is readable by others than its owner; chmod 600 it", { file: path });
    return { key: existing, created: false };
  }
  const key = randomBytes(KEY_BYTES);
  await writeFileAtomic(path, key, 0o600);
  return { key, created: true };
}

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Checks X-Duxcore-CoreKey values in constant time (SHA-256 digests, so lengths never leak). */
export class KeyChecker {
  private readonly digest: Buffer;
  constructor(key: Buffer) {
    this.digest = createHash("sha256").update(key).digest();
  }
  check(header: string | string[] | undefined): boolean {
    if (typeof header !== "string") return false;
    const value = header.trim();
    if (value === "" || value.length > 2 * MAX_KEY_FILE_BYTES || !B64.test(value) || value.length % 4 === 1) return false;
    const given = createHash("sha256").update(Buffer.from(value, "base64")).digest();
    return timingSafeEqual(given, this.digest);
  }
}
