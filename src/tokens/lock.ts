// An exclusive lock between processes that edit one file, safe when a holder is SIGKILLed.
//
// The lock is a file `<target>.lock` holding "<pid> <process start time>". It is created
// complete in one step: the content goes to a private temp file that is then hard-linked to the
// lock name (link fails with EEXIST while someone holds it), so nobody ever sees a half-written
// lock. A holder that no longer exists (pid gone, or the pid now belongs to a process that
// started at another time) is stale: the lock is renamed aside, and removed only if it is still
// the very file (same inode) that was judged stale; otherwise it is put back.
import { link, open, readdir, rename, stat, unlink } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import { tempName } from "../store/index.js";

export class LockTimeout extends Error {}

const POLL_MIN_MS = 2;
const POLL_MAX_MS = 50;

/** Start time of a process (clock ticks since boot, from /proc), "" where /proc is unavailable. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[19] ?? ""; // field 22 of the whole line; fields[0] is field 3
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ESRCH") return undefined; // no such process
    return "";
  }
}

function processAlive(pid: number, start: string): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ESRCH") return false;
  }
  const now = processStartTime(pid);
  if (now === undefined) return false;
  return start === "" || now === "" || now === start; // a reused pid is a different process
}

interface Holder {
  pid: number;
  start: string;
  ino: number;
}

async function readHolder(lockPath: string): Promise<Holder | undefined> {
  try {
    const fh = await open(lockPath, "r");
    try {
      const [st, text] = await Promise.all([fh.stat(), fh.readFile("utf8")]);
      const [pid, start] = text.trim().split(" ");
      return { pid: Number(pid), start: start ?? "", ino: st.ino };
    } finally {
      await fh.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

async function breakStale(lockPath: string, holder: Holder): Promise<void> {
  const aside = `${lockPath}.${process.pid}.${randomBytes(4).toString("hex")}.stale`;
  try {
    await rename(lockPath, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return; // someone else broke it
    throw err;
  }
  const st = await stat(aside);
  if (st.ino !== holder.ino) await link(aside, lockPath).catch(() => {}); // a fresh lock: put it back
  await unlink(aside).catch(() => {});
}

/** Remove leftovers (temp lock files, stale asides) of processes that are gone. */
async function sweep(lockPath: string): Promise<void> {
  const dir = dirname(lockPath);
  const prefix = basename(lockPath) + ".";
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.startsWith(prefix) && !name.startsWith("." + prefix)) continue;
    const pid = Number(name.slice(name.indexOf(prefix) + prefix.length).split(".")[0]);
    if (pid !== process.pid && processStartTime(pid) === undefined) await unlink(join(dir, name)).catch(() => {});
  }
}

/** Take the lock, waiting up to `timeoutMs`; resolves with the release function. */
export async function acquireLock(lockPath: string, timeoutMs = 10_000): Promise<() => Promise<void>> {
  const me = `${process.pid} ${processStartTime(process.pid) ?? ""}\n`;
  const tmp = tempName(lockPath);
  const fh = await open(tmp, "wx", 0o600);
  try {
    await fh.writeFile(me);
  } finally {
    await fh.close();
  }
  const deadline = performance.now() + timeoutMs;
  let wait = POLL_MIN_MS;
  let swept = false;
  try {
    for (;;) {
      try {
        await link(tmp, lockPath);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      const holder = await readHolder(lockPath);
      if (!holder) continue;
      if (!processAlive(holder.pid, holder.start)) {
        await breakStale(lockPath, holder);
        if (!swept) await sweep(lockPath);
        swept = true;
        continue;
      }
      if (performance.now() > deadline) throw new LockTimeout(`${lockPath} is held by process ${holder.pid}`);
      await new Promise((r) => setTimeout(r, wait));
      wait = Math.min(POLL_MAX_MS, wait * 2);
    }
  } finally {
    await unlink(tmp).catch(() => {});
  }
  const ino = (await stat(lockPath)).ino;
  return async () => {
    // only remove the lock if it is still ours
    const holder = await readHolder(lockPath);
    if (holder && holder.ino === ino) await unlink(lockPath).catch(() => {});
  };
}

export async function withLock<T>(lockPath: string, fn: () => Promise<T>, timeoutMs?: number): Promise<T> {
  const release = await acquireLock(lockPath, timeoutMs);
  try {
    return await fn();
  } finally {
    await release();
  }
}

