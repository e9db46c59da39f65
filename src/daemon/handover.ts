// UPGRADE_MASTER: hand the listening sockets to a new daemon process started from the binary on
// disk. The old process passes each listening socket's descriptor to the child as an inherited
// file descriptor (fd 4, 5, ... after stdin/stdout/stderr and the IPC channel); both processes
// then hold the same kernel socket, so no connection is refused while they overlap: what the old
// one does not accept any more stays in the shared accept queue for the new one. The child listens
// on the inherited descriptors, loads the state from disk as any start does, reports "ready" over
// IPC and disconnects; the old one then closes its copies (never unlinking a Unix socket path)
// and drains. Names: "query", "admin", "command", "core", "proxy-http", "proxy-https".
// Components see this through DaemonContext (inherit, handedOver, launchSuccessor, stopAccepting).
import { spawn } from "node:child_process";
import { closeSync } from "node:fs";
import { Server } from "node:net";
import { listen } from "../http/index.js";
import { log } from "../log.js";
import type { Component, InheritFn, LaunchResult } from "../component/index.js";

/** The env variable that tells a new master which descriptors it inherits: {name: {fd, address}}. */
export const HANDOVER_ENV = "STEVEDORE_HANDOVER";
/** How long the new master has to start and report ready. */
export const HANDOVER_TIMEOUT_MS = 10_000;
/** After the handover, how long the old master keeps connections it accepted last before the
 *  usual stop closes idle ones: a client may have connected an instant before the listener closed
 *  and not sent its request yet (http's close() would reset it as idle). */
export const HANDOVER_GRACE_MS = 1000;
/** Most listeners handed over (bounds the descriptor list). */
const MAX_LISTENERS = 16;
const FIRST_FD = 4; // 0-2 stdio, 3 the IPC channel

interface Inherited {
  fd: number;
  address: string;
}

type Proc = Pick<NodeJS.Process, "env" | "send" | "disconnect">;

/**
 * One daemon's hand-over state. The new master's side: the descriptors it inherits (read once
 * from the environment), which listeners took theirs, what failed. The old master's side: whether
 * its sockets are the new master's now.
 */
export class Handover {
  private readonly inherited = new Map<string, Inherited>();
  private readonly used = new Set<string>();
  private readonly failures: string[] = [];
  private handed = false;

  constructor(private readonly proc: Proc = process) {
    const text = proc.env[HANDOVER_ENV];
    delete proc.env[HANDOVER_ENV]; // not for processes this one starts
    if (!text || !proc.send) return;
    try {
      const parsed = JSON.parse(text) as Record<string, Inherited>;
      for (const [name, v] of Object.entries(parsed).slice(0, MAX_LISTENERS)) {
        if (Number.isInteger(v?.fd) && v.fd >= FIRST_FD && typeof v.address === "string") this.inherited.set(name, { fd: v.fd, address: v.address });
      }
    } catch {
      this.failures.push(`${HANDOVER_ENV} is not valid JSON`);
    }
  }

  /** Is this process a new master taking over from an old one? */
  isSuccessor(): boolean {
    return this.inherited.size > 0 || this.failures.length > 0;
  }

  /**
   * Listen on the socket inherited under `name`, when this process is a new master and the old one
   * listened on the same `address`. False when nothing was inherited (bind as usual). A failure is
   * remembered: the new master then reports it instead of "ready", and the old one keeps serving.
   */
  readonly inherit: InheritFn = async (server, name, address) => {
    const h = this.inherited.get(name);
    if (!h || h.address !== address || this.used.has(name)) return false;
    this.used.add(name);
    const err = await listen(server, { fd: h.fd }).then(() => undefined, (e: Error) => e);
    if (err) {
      this.failures.push(`${name}: cannot listen on the inherited socket: ${err.message}`);
      throw err;
    }
    log.info("listening on the socket handed over", { listener: name, address });
    return true;
  };

  /** After start: tell the old master we are ready (or why not: then exit). No-op on a normal start. */
  async reportReady(startFailures: readonly string[] = []): Promise<boolean> {
    if (!this.isSuccessor()) return true;
    for (const f of startFailures) if (!this.failures.some((g) => f.includes(g) || g.includes(f))) this.failures.push(f);
    // descriptors whose listener the new config moved or disabled are not ours to keep open
    for (const [name, h] of this.inherited) if (!this.used.has(name)) closeSafely(h.fd);
    const message = this.failures.length ? { type: "failed", reason: this.failures.join("; ") } : { type: "ready" };
    await new Promise<void>((resolve) => this.proc.send!(message, undefined, {}, () => resolve()));
    this.proc.disconnect?.();
    return this.failures.length === 0;
  }

  /** The old master: true once a new master took the listening sockets. */
  readonly handedOver = (): boolean => this.handed;

  /** The old master: start the new master and hand it the listening sockets (launchSuccessor). */
  async launchSuccessor(components: readonly Component[], timeoutMs = HANDOVER_TIMEOUT_MS): Promise<LaunchResult> {
    const r = await launchSuccessor(components, timeoutMs);
    if (r.ok) this.handed = true; // the new master serves on the same socket files
    return r;
  }
}

function closeSafely(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    /* already closed */
  }
}

// ---- the old master's side -------------------------------------------------------------------

function listeningSockets(components: readonly Component[]): Map<string, { fd: number; address: string }> {
  const out = new Map<string, { fd: number; address: string }>();
  for (const c of components) {
    for (const [name, l] of c.listeners?.() ?? []) {
      // node keeps the descriptor on the handle; a server without one is not listening
      const fd = (l.server as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
      if (!l.server.listening || typeof fd !== "number" || fd < 0) continue;
      if (out.size < MAX_LISTENERS) out.set(name, { fd, address: l.address });
    }
  }
  return out;
}

/**
 * Start the new master (same node binary, same flags, the script and arguments as on disk now),
 * hand it the listening sockets and wait until it reports ready. On any failure the child is
 * killed and the caller keeps serving.
 */
export function launchSuccessor(components: readonly Component[], timeoutMs = HANDOVER_TIMEOUT_MS): Promise<LaunchResult> {
  const sockets = listeningSockets(components);
  const table: Record<string, Inherited> = {};
  const fds: number[] = [];
  for (const [name, s] of sockets) {
    table[name] = { fd: FIRST_FD + fds.length, address: s.address };
    fds.push(s.fd);
  }
  const args = [...process.execArgv, ...process.argv.slice(1)];
  return new Promise((resolve) => {
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(process.execPath, args, {
        stdio: ["ignore", "inherit", "inherit", "ipc", ...fds],
        env: { ...process.env, [HANDOVER_ENV]: JSON.stringify(table) },
      });
    } catch (err) {
      return resolve({ ok: false, reason: `cannot start the new master: ${(err as Error).message}` });
    }
    let settled = false;
    const finish = (r: LaunchResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.off("message", onMessage);
      child.off("exit", onExit);
      child.off("error", onError);
      if (!r.ok) {
        child.kill("SIGKILL");
        log.error("upgrade failed, the old master keeps serving", { reason: r.reason });
      } else {
        if (child.connected) child.disconnect();
        child.unref();
      }
      resolve(r);
    };
    const onMessage = (m: unknown) => {
      const msg = m as { type?: string; reason?: string };
      if (msg?.type === "ready") finish({ ok: true, pid: child.pid! });
      else if (msg?.type === "failed") finish({ ok: false, reason: `the new master failed: ${String(msg.reason).slice(0, 500)}` });
    };
    const onExit = (code: number | null, signal: string | null) =>
      finish({ ok: false, reason: `the new master exited before it was ready (${signal ? `signal ${signal}` : `code ${code}`})` });
    const onError = (err: Error) => finish({ ok: false, reason: `cannot start the new master: ${err.message}` });
    const timer = setTimeout(() => finish({ ok: false, reason: `the new master was not ready within ${timeoutMs} ms` }), timeoutMs);
    child.on("message", onMessage);
    child.once("exit", onExit);
    child.once("error", onError);
    log.info("upgrade: new master starting", { pid: child.pid, listeners: [...sockets.keys()].join(",") });
  });
}

/**
 * The old master after the handover: stop accepting on every listener (the new master accepts on
 * the same sockets) without touching the connections, then give the connections accepted last
 * the grace to send their request. The components' usual graceful stop follows.
 */
export async function stopAccepting(components: readonly Component[], graceMs = HANDOVER_GRACE_MS): Promise<void> {
  for (const c of components) {
    // net's close, not http's: that one also closes connections with no request yet
    for (const l of c.listeners?.().values() ?? []) if (l.server.listening) Server.prototype.close.call(l.server);
  }
  await new Promise((resolve) => setTimeout(resolve, graceMs));
}
