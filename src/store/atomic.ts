// Atomic file writes: temp file, fsync, rename, fsync of the directory.
import { open, rename, unlink } from "node:fs/promises";
import { ensureDir } from "./dirs.js";
import { dirname, basename, join } from "node:path";
import { randomBytes } from "node:crypto";

export function tempName(path: string): string {
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

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
