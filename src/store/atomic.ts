import { open, rename, unlink } from "node:fs/promises";
import { openSync, writeSync, fsyncSync, closeSync, renameSync, unlinkSync } from "node:fs";
import { ensureDir, ensureDirSync } from "./dirs.js";
import { dirname, basename, join } from "node:path";
import { randomBytes } from "node:crypto";

function tempName(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
}

/** Write a file so that readers see either the old or the new content, never a mix,
 *  and the new content survives a crash once this resolves: temp file, fsync, rename, fsync dir. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  await ensureDir(dirname(path), 0o755);
  const tmp = tempName(path);
  const fh = await open(tmp, "wx", mode);
  try {
    await fh.writeFile(data);
    await fh.chmod(mode); // umask may have narrowed the create mode
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fsyncDir(dirname(path));
}

export function writeFileAtomicSync(path: string, data: string | Uint8Array, mode = 0o600): void {
  ensureDirSync(dirname(path), 0o755);
  const tmp = tempName(path);
  const fd = openSync(tmp, "wx", mode);
  try {
    writeSync(fd, typeof data === "string" ? Buffer.from(data) : data);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    try { unlinkSync(tmp); } catch { /* already gone */ }
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, path);
  const dfd = openSync(dirname(path), "r");
  try { fsyncSync(dfd); } finally { closeSync(dfd); }
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
