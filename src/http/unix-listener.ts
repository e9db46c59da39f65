// Unix-socket listeners: the stale-socket rules, the mode set without a window, hand-over of the path.
import { lstat, unlink, rename } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { ensureDir } from "../store/index.js";
import { Serializer } from "../base/index.js";
import { connect, type Server } from "node:net";
import { dirname, basename, join } from "node:path";
import { log } from "../log.js";
import { describeBindError, listen } from "./listen.js";

/** The daemon's listener hand-over (UPGRADE_MASTER), as a Unix listener needs it; a
 *  DaemonContext is one. Without it: no socket is inherited, the path is unlinked on close. */
export interface UnixHandover {
  /** listen on the socket the old master handed over under `name` at `path`; false: bind as usual */
  inherit?(server: Server, name: string, path: string): Promise<boolean>;
  /** true once this process handed its sockets to a new master: the socket paths are its now */
  handedOver?(): boolean;
}

function unlinkOnClose(server: Server, path: string, handover: UnixHandover): void {
  server.once("close", () => void (handover.handedOver?.() ? undefined : unlink(path).catch(() => {})));
}

/** Points between the steps of a bind, where a test plays the other user who swaps names in the
 *  directory (the checks are otherwise unreachable without a race). */
export interface UnixBindHooks {
  /** after the bind under the temporary name, before it is checked */
  afterBind?(tmp: string): Promise<void>;
  /** after the rename into place, before the placed name is checked */
  afterRename?(path: string): Promise<void>;
}

export type UnixListenResult = { ok: true } | { ok: false; reason: "in-use" | "not-a-socket" | "unsafe-dir" | "swapped" | "error"; message: string };

/** A directory others may write to lets them swap names in it, unless it is sticky and owned by
 *  root or us (then only the owner of a name may rename or remove it): the message, or undefined. */
export async function unsafeSocketDir(dir: string): Promise<string | undefined> {
  const st = await lstat(dir);
  if (!st.isDirectory()) return `${dir} is not a directory`;
  if ((st.mode & 0o022) === 0) return undefined;
  const sticky = (st.mode & 0o1000) !== 0;
  const owner = st.uid === 0 || st.uid === process.getuid?.();
  if (sticky && owner) return undefined;
  const mode = (st.mode & 0o7777).toString(8).padStart(4, "0");
  return `socket directory ${dir} (mode ${mode}, owner uid ${st.uid}) is writable by group or others without the sticky bit and a root-owned (or our own) directory; refusing to create a socket in it`;
}

// umask is process state, so the lock over changing it is too (a listed exception to "no
// module-level state", test/architecture.test.ts): one socket creation at a time in the process,
// so no other bind sees our umask
const umaskLock = new Serializer();

/** Does something accept connections on this socket path? */
export function socketIsLive(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(path);
    const done = (live: boolean) => {
      sock.destroy();
      clearTimeout(timer);
      resolve(live);
    };
    const timer = setTimeout(() => done(true), timeoutMs); // a socket that accepts but is slow is still someone's
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
  });
}

/**
 * Bind `server` on a Unix socket path with the stale-socket rules:
 * nothing there → bind; a dead socket → unlink and bind; a live socket → leave it, report "in-use";
 * anything that is not a socket (file, dir, symlink) → never touched, report "not-a-socket".
 * The socket gets `mode` with no window of other permissions and no chmod by path: it is bound
 * under an unpredictable temporary name in the same directory with the umask that yields `mode`,
 * checked (a socket, ours), renamed into place, and checked again (the same inode).
 * A directory others can write to (see unsafeSocketDir) is refused: "unsafe-dir".
 */
export async function listenUnix(server: Server, path: string, mode: number, what: string, handover: UnixHandover = {}, hooks: UnixBindHooks = {}): Promise<UnixListenResult> {
  try {
    return await bindUnix(server, path, mode, what, handover, hooks);
  } catch (err) {
    // a directory we may not create or write, a full disk...: one readable cause, never thrown
    const message = `${what} socket ${path}: ${describeBindError(err, "unix")}`;
    log.error(message, { path });
    return { ok: false, reason: "error", message };
  }
}

async function bindUnix(server: Server, path: string, mode: number, what: string, handover: UnixHandover, hooks: UnixBindHooks): Promise<UnixListenResult> {
  // a new master takes the old one's socket as is: same file, same inode, no window without it
  if (await handover.inherit?.(server, what, path)) {
    unlinkOnClose(server, path, handover);
    return { ok: true };
  }
  await ensureDir(dirname(path), 0o755);
  const unsafe = await unsafeSocketDir(dirname(path));
  if (unsafe) {
    const message = `${what} disabled: ${unsafe}`;
    log.error(message, { path });
    return { ok: false, reason: "unsafe-dir", message };
  }
  const st = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw err;
  });
  if (st) {
    if (!st.isSocket()) {
      const kind = st.isSymbolicLink() ? "a symlink" : st.isDirectory() ? "a directory" : "not a socket";
      const message = `${what} path ${path} exists and is ${kind}; refusing to replace it`;
      log.error(message, { path });
      return { ok: false, reason: "not-a-socket", message };
    }
    if (await socketIsLive(path)) {
      const message = `${what} socket ${path} is in use by another process`;
      log.error(message, { path });
      return { ok: false, reason: "in-use", message };
    }
    log.info("removing stale socket", { path });
    await unlink(path);
  }
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(12).toString("hex")}.tmp`);
  await umaskLock.run(async () => {
    const oldMask = process.umask(0o777 & ~mode); // the socket is born with `mode`: no chmod afterwards
    try {
      await listen(server, { path: tmp });
    } finally {
      process.umask(oldMask);
    }
  });
  await hooks.afterBind?.(tmp);
  const bound = await lstat(tmp).catch(() => undefined);
  if (!bound?.isSocket() || bound.uid !== process.getuid?.()) return swapped(server, what, path);
  await rename(tmp, path);
  await hooks.afterRename?.(path);
  const placed = await lstat(path).catch(() => undefined);
  if (!placed || placed.ino !== bound.ino || placed.dev !== bound.dev) return swapped(server, what, path);
  // node unlinks the bound name on close; remember the real one so stop removes it
  unlinkOnClose(server, path, handover);
  return { ok: true };
}

function swapped(server: Server, what: string, path: string): UnixListenResult {
  server.close();
  const message = `${what} socket ${path}: the bound socket was replaced before it was in place; ${what} disabled`;
  log.error(message, { path });
  return { ok: false, reason: "swapped", message };
}
