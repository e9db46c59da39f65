// Unix-socket listeners: the stale-socket rules, the mode set without a window, hand-over of the path.
import { lstat, unlink, chmod, rename } from "node:fs/promises";
import { ensureDir } from "../store/index.js";
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

export type UnixListenResult = { ok: true } | { ok: false; reason: "in-use" | "not-a-socket" | "error"; message: string };

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
 * The socket gets `mode` with no window of other permissions: it is bound under a temporary
 * name in the same directory, chmod-ed, then renamed into place.
 */
export async function listenUnix(server: Server, path: string, mode: number, what: string, handover: UnixHandover = {}): Promise<UnixListenResult> {
  try {
    return await bindUnix(server, path, mode, what, handover);
  } catch (err) {
    // a directory we may not create or write, a full disk...: one readable cause, never thrown
    const message = `${what} socket ${path}: ${describeBindError(err, "unix")}`;
    log.error(message, { path });
    return { ok: false, reason: "error", message };
  }
}

async function bindUnix(server: Server, path: string, mode: number, what: string, handover: UnixHandover): Promise<UnixListenResult> {
  // a new master takes the old one's socket as is: same file, same inode, no window without it
  if (await handover.inherit?.(server, what, path)) {
    await chmod(path, mode).catch(() => {});
    unlinkOnClose(server, path, handover);
    return { ok: true };
  }
  await ensureDir(dirname(path), 0o755);
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
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  await unlink(tmp).catch(() => {});
  const oldMask = process.umask(0o077); // the temp socket is born 0600 at most
  try {
    await listen(server, { path: tmp });
  } finally {
    process.umask(oldMask);
  }
  await chmod(tmp, mode);
  await rename(tmp, path);
  // node unlinks the bound name on close; remember the real one so stop removes it
  unlinkOnClose(server, path, handover);
  return { ok: true };
}
