// Atomic file writes: temp file, fsync, rename, fsync of the directory.
import { lstat, open, readdir, readFile, rename, unlink } from "node:fs/promises";
import { ensureDir } from "./dirs.js";
import { dirname, basename, join } from "node:path";
import { randomBytes } from "node:crypto";

/** Every temp name we make: ".<name>.<pid>.<8 hex>.tmp" (removeStaleTemps knows only this one). */
export function tempName(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
}

const TEMP_RE = /^\.(.+)\.(\d{1,10})\.[0-9a-f]{8}\.tmp$/;

/** How far removeStaleTemps looks: directories below the top, and entries read in all (a state
 *  dir holding a big Shaman store is not read whole at every start; our temps sit near the top). */
export interface StaleTempBounds {
  maxDepth: number;
  maxEntries: number;
}

const DEFAULT_BOUNDS: StaleTempBounds = { maxDepth: 3, maxEntries: 20_000 };

/** When process `pid` started, in ms since the epoch (Linux /proc; undefined elsewhere or when gone). */
async function processStart(pid: number): Promise<number | undefined> {
  try {
    const [stat, procStat] = await Promise.all([readFile(`/proc/${pid}/stat`, "utf8"), readFile("/proc/stat", "utf8")]);
    // the command name (field 2) may hold spaces and parentheses: count fields after its last ")"
    const starttime = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]); // field 22, clock ticks since boot
    const btime = Number(/^btime (\d+)$/m.exec(procStat)?.[1]);
    // USER_HZ is 100 on every Linux architecture node runs on
    return Number.isFinite(starttime) && btime > 0 ? btime * 1000 + starttime * 10 : undefined;
  } catch {
    return undefined;
  }
}

/** Slack for comparing a process start (second-precise boot time) with a file's mtime. */
const START_SLACK_MS = 2000;

/**
 * Whether the writer of a temp named with `pid`, last modified at `mtimeMs`, can no longer finish it.
 * Our own pid: stale, since this runs before this process writes anything (a temp with our pid is
 * from an earlier process that had it: pid reuse, pid 1 in a container). Another pid: stale when no
 * such process lives, or when the one that lives started after the temp was last written (reused).
 */
async function writerGone(pid: number, mtimeMs: number): Promise<boolean> {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return true; // ESRCH: no such process
  }
  const started = await processStart(pid);
  return started !== undefined && started > mtimeMs + START_SLACK_MS;
}

/**
 * Remove what a crash (kill -9 between temp and rename) left of our atomic writes under `dir`:
 * only regular files named like tempName's whose writer is gone (a CLI may be writing right now).
 * Call it before this process writes under `dir` (the daemon does, at start). The walk is
 * breadth-first and bounded (`bounds`); symlinks are never followed or touched, nor is anything
 * not a regular file. Returns the paths removed (relative to `dir`) and whether the walk saw all.
 */
export async function removeStaleTemps(dir: string, bounds: StaleTempBounds = DEFAULT_BOUNDS): Promise<{ removed: string[]; complete: boolean }> {
  const removed: string[] = [];
  let seen = 0;
  let deeper = false; // a directory below maxDepth was left unread
  let level: string[] = [""];
  for (let depth = 0; level.length > 0; depth++) {
    const next: string[] = [];
    for (const rel of level) {
      // d_type from readdir: a symlink is a symlink here, never what it points to
      const entries = await readdir(join(dir, rel), { withFileTypes: true }).catch(() => []);
      for (const e of entries) {
        if (++seen > bounds.maxEntries) return { removed, complete: false };
        const path = join(rel, e.name);
        if (e.isDirectory()) {
          if (depth < bounds.maxDepth) next.push(path);
          else deeper = true;
          continue;
        }
        const m = TEMP_RE.exec(e.name);
        if (!e.isFile() || !m) continue;
        const st = await lstat(join(dir, path)).catch(() => undefined);
        if (!st?.isFile() || !(await writerGone(Number(m[2]), st.mtimeMs))) continue;
        if (await unlink(join(dir, path)).then(() => true, () => false)) removed.push(path);
      }
    }
    level = next;
  }
  return { removed, complete: !deeper };
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
