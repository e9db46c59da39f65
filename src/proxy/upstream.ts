// One upstream address (host:port) with its keep-alive connection pool. Shared by every pool
// (application) that names the address, and kept across routing-table rebuilds so that pooled
// connections and connection counts survive reconfiguration.
//
// The pool holds plain TCP sockets speaking HTTP/1.1 (our own minimal client, see forward.ts and
// response-parser.ts) instead of node:http's ClientRequest + Agent, which cost most of the
// proxy's time. A connection is reused only after a response that was read completely, that
// both sides allowed to keep alive, with nothing left over; anything odd destroys it.
import { connect, type Socket } from "node:net";
import { ResponseParser, type ResponseHead, type ResponseSink } from "./response-parser.js";
import { formatHostPort } from "../base/index.js";

/** Bounds of one upstream's connection pool. */
export const MAX_SOCKETS_PER_UPSTREAM = 512;
export const MAX_IDLE_SOCKETS_PER_UPSTREAM = 64;
/** requests waiting for a connection when all MAX_SOCKETS_PER_UPSTREAM are busy */
export const MAX_WAITERS_PER_UPSTREAM = 4096;

export class ConnectTimeout extends Error {
  readonly code = "ETIMEDOUT";
}

/** The exchange currently using a connection. */
export interface ConnUser extends ResponseSink {
  /** the TCP connection is established (immediately for a reused one) */
  onConnected(): void;
  /** the connection failed or closed before the response was complete; the connection is gone */
  onFail(err: Error, conn: UpstreamConn): void;
}

export class UpstreamConn implements ResponseSink {
  readonly parser = new ResponseParser(this);
  user: ConnUser | undefined;
  connected = false;
  /** carried an earlier exchange (a failure before any response byte may be the server's idle close) */
  reused = false;
  private complete = false;
  private closed = false;
  private lastError: Error | undefined;
  private connectTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly up: Upstream,
    readonly socket: Socket,
  ) {
    socket.setNoDelay(true);
    socket.on("connect", () => this.onConnect());
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("end", () => this.onEof());
    socket.on("error", (err) => (this.lastError ??= err));
    socket.on("close", () => this.onClose());
    socket.on("timeout", () => socket.destroy());
  }

  /** Start an exchange on this connection (the caller writes the request). */
  start(user: ConnUser, headRequest: boolean, maxHeaderBytes: number, connectTimeoutMs: number): void {
    this.user = user;
    this.complete = false;
    this.parser.begin(headRequest, maxHeaderBytes);
    if (this.connected) return user.onConnected();
    this.connectTimer ??= setTimeout(() => this.destroy(new ConnectTimeout("connect timeout")), connectTimeoutMs);
  }

  /** The exchange is over (its response complete): pool the connection or close it. */
  finish(requestComplete: boolean): void {
    this.user = undefined;
    if (this.socket.isPaused()) this.socket.resume();
    const reusable = requestComplete && this.complete && this.parser.keepAlive && !this.parser.extra && !this.closed;
    if (reusable) this.up.release(this);
    else this.destroy();
  }

  /** the exchange gives the connection up (client gone, response refused): close it, report nothing */
  detach(): void {
    this.user = undefined;
    this.socket.destroy();
  }

  destroy(err?: Error): void {
    if (err) this.lastError ??= err;
    this.socket.destroy();
  }

  // ---- ResponseSink: forwarded to the current exchange ----
  onHead(head: ResponseHead): void {
    this.user?.onHead(head);
  }
  onBody(chunk: Buffer): void {
    this.user?.onBody(chunk);
  }
  onEnd(): void {
    this.complete = true; // reported after the parser returns, never from inside it
  }

  private onConnect(): void {
    this.connected = true;
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    this.socket.setTimeout(this.up.idleMs);
    this.user?.onConnected();
  }

  private onData(chunk: Buffer): void {
    if (!this.user) return this.destroy(); // bytes on an idle connection: never reuse it
    try {
      this.parser.execute(chunk);
    } catch (e) {
      return this.destroy(e as Error);
    }
    if (this.complete && this.user) this.user.onEnd();
  }

  private onEof(): void {
    if (!this.user || this.complete) return;
    try {
      this.parser.eof();
    } catch {
      return; // reported on close
    }
    if (this.complete) this.user.onEnd();
  }

  private onClose(): void {
    this.closed = true;
    clearTimeout(this.connectTimer);
    this.up.closed(this);
    const user = this.user;
    this.user = undefined;
    if (user && !this.complete) {
      const err = this.lastError ?? Object.assign(new Error("upstream closed the connection"), { code: "ECONNRESET" });
      user.onFail(err, this);
    }
  }
}

type Waiter = (conn: UpstreamConn) => void;

export class Upstream {
  /** requests in flight (leastconnections) */
  active = 0;
  private idle: UpstreamConn[] = [];
  private all = new Set<UpstreamConn>();
  private waiters: Waiter[] = [];
  private retired = false;

  constructor(
    readonly host: string,
    readonly port: number,
    public idleMs: number,
  ) {}

  get address(): string {
    return formatHostPort(this.host, this.port);
  }

  /** A connection for one exchange: the most recently idle one, a new one, or (at the bound) the next one freed. */
  acquire(cb: Waiter): boolean {
    const conn = this.idle.pop();
    if (conn) {
      conn.reused = true;
      cb(conn);
      return true;
    }
    if (this.all.size < MAX_SOCKETS_PER_UPSTREAM) {
      cb(this.open());
      return true;
    }
    if (this.waiters.length >= MAX_WAITERS_PER_UPSTREAM) return false;
    this.waiters.push(cb);
    return true;
  }

  /** withdraw a waiter whose client went away */
  cancel(cb: Waiter): void {
    const i = this.waiters.indexOf(cb);
    if (i >= 0) this.waiters.splice(i, 1);
  }

  release(conn: UpstreamConn): void {
    const next = this.waiters.shift();
    if (next) {
      conn.reused = true;
      return next(conn);
    }
    if (this.retired || this.idle.length >= MAX_IDLE_SOCKETS_PER_UPSTREAM) return conn.destroy();
    this.idle.push(conn);
  }

  /** a connection closed (from any state) */
  closed(conn: UpstreamConn): void {
    this.all.delete(conn);
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    const next = this.waiters.shift();
    if (next) next(this.open());
  }

  private open(): UpstreamConn {
    const conn = new UpstreamConn(this, connect({ host: this.host, port: this.port }));
    this.all.add(conn);
    return conn;
  }

  /** close the idle pooled connections */
  dropIdle(): void {
    for (const c of this.idle.splice(0)) c.destroy();
  }

  /** close the idle pooled connections; in-flight ones close when their exchange ends */
  retire(): void {
    this.retired = true;
    this.dropIdle();
  }

  /** close every connection (stop) */
  destroyAll(): void {
    this.retire();
    this.waiters.length = 0;
    for (const c of [...this.all]) c.destroy();
  }
}

export class UpstreamSet {
  private map = new Map<string, Upstream>();
  private used = new Set<string>();

  constructor(private idleMs: () => number) {}

  /** the upstream for host:port, marked as used by the table being built */
  get(host: string, port: number): Upstream {
    const key = `${host}|${port}`;
    this.used.add(key);
    let up = this.map.get(key);
    if (!up) {
      up = new Upstream(host, port, this.idleMs());
      this.map.set(key, up);
    } else {
      up.idleMs = this.idleMs();
    }
    return up;
  }

  /** start a table build */
  begin(): void {
    this.used.clear();
  }

  /** end a table build: retire every upstream the new table does not use */
  sweep(): void {
    for (const [key, up] of this.map) {
      if (this.used.has(key)) continue;
      this.map.delete(key);
      up.retire();
    }
  }

  closeAll(): void {
    for (const up of this.map.values()) up.destroyAll();
    this.map.clear();
  }
}
