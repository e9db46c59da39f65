// The admin socket component: a Unix socket (mode 0600) answering one command per connection.
import { createServer, type Server, type Socket } from "node:net";
import type { Component, DaemonContext } from "../component/index.js";
import type { ListenerMap } from "../component/index.js";
import { listenUnix, type UnixHandover } from "../http/index.js";
import { log } from "../log.js";
import { untilDeadline } from "../deadline.js";
import { adminHandlers } from "./commands.js";
import { dispatch, encodeReply, INVALID_INPUT, LINE_TIMEOUT_MS, LineReader, type Handler, type Reply } from "./protocol.js";

/** Most admin connections open at once; more are answered `too many connections` and closed. */
export const MAX_ADMIN_CONNECTIONS = 64;
/** After the reply, a client that neither reads it nor closes is cut off after this long. */
const LINGER_MS = 2000;

type State = "starting" | "listening" | "disabled" | "unavailable" | "stopped";

export class AdminSocket implements Component {
  readonly name = "admin";
  private state: State = "starting";
  private reason: string | undefined;
  private server: Server | undefined;
  private readonly open = new Set<Socket>();
  /** connections whose command is being answered (a reload may wait for the lock) */
  private readonly busy = new Set<Socket>();
  /** a graceful stop waiting for the busy connections to be answered */
  private onIdle: (() => void) | undefined;
  private readonly handlers: Record<string, Handler>;

  constructor(
    private readonly path: string,
    handlers: Record<string, Handler>,
    /** the daemon's listener hand-over (UPGRADE_MASTER); none in tests */
    private readonly handover: UnixHandover = {},
  ) {
    this.handlers = handlers;
  }

  async start(): Promise<void> {
    if (this.path === "") {
      this.state = "disabled";
      log.info("admin socket disabled (admin_socket_path is empty)");
      return;
    }
    const server = createServer({ allowHalfOpen: true }, (sock) => this.onConnection(sock));
    // hard cap: beyond it node drops connections without a reply (the soft cap answers them)
    server.maxConnections = 2 * MAX_ADMIN_CONNECTIONS;
    server.on("error", (err) => log.error("admin socket error", { error: err.message }));
    let result;
    try {
      result = await listenUnix(server, this.path, 0o600, "admin", this.handover);
    } catch (err) {
      result = { ok: false as const, message: `admin socket ${this.path}: ${(err as Error).message}` };
      log.error("admin socket unavailable", { path: this.path, error: (err as Error).message });
    }
    if (!result.ok) {
      this.state = "unavailable";
      this.reason = result.message;
      server.close();
      return;
    }
    this.server = server;
    this.state = "listening";
    log.info("admin socket listening", { path: this.path });
  }

  async stop(graceful: boolean, deadline: number): Promise<void> {
    if (this.state === "listening") this.state = "stopped";
    const server = this.server;
    this.server = undefined;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    // Connections still sending their line are dropped; commands being answered (a reload
    // waiting for the lock) finish until the deadline when the stop is graceful.
    for (const sock of this.open) if (!this.busy.has(sock)) sock.destroy();
    if (graceful && this.busy.size) await untilDeadline(new Promise<void>((resolve) => (this.onIdle = resolve)), deadline);
    this.onIdle = undefined;
    for (const sock of this.open) sock.destroy();
    await closed;
  }

  listeners(): ListenerMap {
    return new Map(this.server && this.state === "listening" ? [["admin", { server: this.server, address: this.path }]] : []);
  }

  status(): Record<string, unknown> {
    const s: Record<string, unknown> = { state: this.state };
    if (this.path) s.address = this.path;
    if (this.reason) s.reason = this.reason;
    if (this.state === "listening") s.connections = this.open.size;
    return s;
  }

  private onConnection(sock: Socket): void {
    this.open.add(sock);
    sock.once("close", () => this.open.delete(sock));
    sock.on("error", () => sock.destroy());
    if (this.open.size > MAX_ADMIN_CONNECTIONS) {
      this.reply(sock, { status: "error", message: "too many connections" });
      return;
    }
    const reader = new LineReader();
    let answered = false;
    const finish = (line: Buffer | "too-long") => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      sock.off("data", onData);
      sock.off("end", onEnd);
      sock.pause(); // one command per connection: whatever follows the first line is ignored
      if (line === "too-long") return this.reply(sock, INVALID_INPUT);
      this.busy.add(sock);
      void dispatch(line, this.handlers, (err) => log.error("admin command failed", { error: (err as Error)?.message ?? String(err) })).then((r) => {
        this.busy.delete(sock);
        this.reply(sock, r);
        if (this.busy.size === 0) this.onIdle?.();
      });
    };
    const onData = (chunk: Buffer) => {
      const line = reader.feed(chunk);
      if (line !== undefined) finish(line);
    };
    const onEnd = () => finish(reader.end()); // EOF ends the line too (`printf status | nc -UN`)
    // silent (or too slow) for 5 s: the same answer as a line over the limit
    const timer = setTimeout(() => finish("too-long"), LINE_TIMEOUT_MS);
    sock.once("close", () => clearTimeout(timer));
    sock.on("data", onData);
    sock.on("end", onEnd);
  }

  private reply(sock: Socket, reply: Reply): void {
    if (sock.destroyed) return;
    // Half-close with the reply, then read and discard until the client closes: closing a Unix
    // socket with unread input resets the peer, which can lose the reply it has not read yet.
    const cutoff = setTimeout(() => sock.destroy(), LINGER_MS);
    sock.once("close", () => clearTimeout(cutoff));
    sock.end(encodeReply(reply));
    sock.resume();
  }
}

export function adminComponent(ctx: DaemonContext): Component {
  return new AdminSocket(ctx.config.static.admin_socket_path, adminHandlers(ctx), ctx);
}
