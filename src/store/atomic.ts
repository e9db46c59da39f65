// Atomic file writes: temp file, fsync, rename, fsync of the directory.
import { lstat, open, readdir, rename, unlink } from "node:fs/promises";
import { ensureDir } from "./dirs.js";
import { dirname, basename, join } from "node:path";
import { randomBytes } from "node:crypto";

/** Every temp name we make: ".<name>.<pid>.<8 hex>.tmp" (removeStaleTemps knows only this one). */
export function tempName(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
}

const TEMP_RE = /^\.(.+)\.(\d{1,10})\.[0-9a-f]{8}\.tmp$/;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM"; // someone else's live process
  }
}

/**
 * Remove what a crash (kill -9 between temp and rename) left of our atomic writes in `dir` and its
 * direct subdirectories: only regular files named like tempName's, whose writer process is gone
 * (a CLI may be writing right now); symlinks and anything else are never touched or followed.
 * Returns the names removed.
 */
export async function removeStaleTemps(dir: string, depth = 1): Promise<string[]> {
  const removed: string[] = [];
  // d_type from readdir: a symlink is a symlink here, never what it points to
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (e.isDirectory() && depth > 0) removed.push(...(await removeStaleTemps(join(dir, e.name), depth - 1)).map((n) => join(e.name, n)));
    const m = TEMP_RE.exec(e.name);
    if (!e.isFile() || !m) continue;
    const pid = Number(m[2]);
    if (pid === process.pid || processAlive(pid)) continue;
    const path = join(dir, e.name);
    if (!(await lstat(path).catch(() => undefined))?.isFile()) continue;
    if (await unlink(path).then(() => true, () => false)) removed.push(e.name);
  }
  return removed;
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
