// Forward one HTTP exchange to a backend of its route: pick, connect (pooled), stream both
// bodies with backpressure, retry the next backend when the connection failed before any byte
// of the request was sent, map failures to small 502/503/504 answers.
import type { Member } from "./pool.js";
import type { Incoming } from "../http/index.js";
import { sendStatus } from "./answers.js";
import { LAST_CHUNK, headBlock, writeChunk } from "../http/index.js";
import type { Route } from "./table.js";
import { ConnectTimeout, type ConnUser, type Upstream, type UpstreamConn } from "./upstream.js";
import type { ResponseHead } from "./response-parser.js";
import { cookieValue, filterResponse, type ScannedRequest } from "./headers.js";
import { upstreamErrors } from "./proxy-metrics.js";

export const MAX_ATTEMPTS = 3;
export const STICKY_COOKIE = "SOZUBALANCEID";

export interface ForwardSettings {
  connectTimeoutMs: number;
  /** from the end of the request to the response headers */
  responseTimeoutMs: number;
  /** limit of the upstream response header block */
  maxHeaderBytes: number;
}

/**
 * One client request across its attempts; the user of the upstream connection of the current
 * attempt (our own HTTP/1.1 client: one head write, body streamed with backpressure, response
 * parsed by ResponseParser and relayed to the client's Incoming with backpressure).
 */
export class Exchange implements ConnUser {
  attempts = 0;
  /** performance.now() at the first attempt; 0 before */
  upstreamStart = 0;
  /** ms from the first attempt to the upstream's end or failure; -1 while none */
  upstreamMs = -1;
  tried: Upstream[] | undefined;
  member: Member | undefined;
  conn: UpstreamConn | undefined;
  /** waiting for a connection of a saturated upstream */
  waiting = false;
  /** up.active is held for the current attempt */
  counted = false;
  bodyStarted = false;
  requestDone = false;
  responded = false;
  clientGone = false;
  /** the response timeout fired (504, no retry) */
  timedOut = false;
  /** the last failed attempt was a connect timeout (504 when no attempt is left) */
  connectTimedOut = false;
  /** the upstream socket is paused until the client drains */
  paused = false;
  timer: NodeJS.Timeout | undefined;
  readonly head: string;

  constructor(
    readonly inc: Incoming,
    readonly route: Route,
    readonly scan: ScannedRequest,
    readonly settings: ForwardSettings,
    readonly stickyId: string | undefined,
  ) {
    // the whole request head as one string: one write, one packet
    this.head = headBlock(`${inc.head.method} ${inc.head.url} HTTP/1.1`, scan.out);
  }

  attempt(): void {
    const member = this.route.pool.pick(this.tried, this.stickyId);
    if (!member) {
      sendStatus(this.inc, this.attempts === 0 ? 503 : this.connectTimedOut ? 504 : 502);
      return;
    }
    if (this.attempts++ === 0) this.upstreamStart = performance.now();
    this.member = member;
    member.up.active++;
    this.counted = true;
    this.waiting = true;
    if (!member.up.acquire(this.onConn)) {
      this.waiting = false;
      this.uncount();
      sendStatus(this.inc, 503);
    }
  }

  private uncount(): void {
    if (!this.counted) return;
    this.counted = false;
    this.member!.up.active--;
  }

  readonly onConn = (conn: UpstreamConn): void => {
    this.waiting = false;
    if (this.clientGone) {
      if (conn.connected) conn.up.release(conn);
      else conn.destroy();
      return;
    }
    this.conn = conn;
    conn.socket.write(this.head, "latin1");
    conn.start(this, this.inc.head.method === "HEAD", this.settings.maxHeaderBytes, this.settings.connectTimeoutMs);
  };

  onConnected(): void {
    if (!this.inc.head.hasBody) return this.endRequest();
    if (this.bodyStarted) return;
    this.bodyStarted = true;
    this.streamBody(this.conn!);
  }

  /** client body → upstream, re-framed as the client framed it, with backpressure */
  private streamBody(conn: UpstreamConn): void {
    const { inc } = this;
    const sock = conn.socket;
    const chunked = inc.head.chunked;
    const resume = () => inc.resumeBody();
    inc.readBody({ onBody: (c: Buffer) => {
      if (sock.destroyed || c.length === 0) return;
      if (!(chunked ? writeChunk(sock, c) : sock.write(c))) {
        inc.pauseBody();
        sock.once("drain", resume);
      }
    }, onEnd: () => {
      if (sock.destroyed) return;
      if (chunked) sock.write(LAST_CHUNK, "latin1");
      this.endRequest();
    } });
  }

  private endRequest(): void {
    this.requestDone = true;
    if (this.responded || this.clientGone) return;
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.conn?.destroy();
    }, this.settings.responseTimeoutMs);
  }

  onHead(head: ResponseHead): void {
    this.responded = true;
    clearTimeout(this.timer);
    if (this.clientGone) return this.abandon();
    const headers = filterResponse(head.rawHeaders);
    const member = this.member!;
    if (this.route.pool.options.sticky && this.stickyId !== member.id)
      headers.push("Set-Cookie", `${STICKY_COOKIE}=${encodeURIComponent(member.id)}; Path=/`);
    // the response parser admitted only valid status lines, names and values
    this.inc.writeHead(head.status, head.reason, headers);
  }

  onBody(chunk: Buffer): void {
    if (this.clientGone || this.inc.ended) return;
    if (this.inc.write(chunk) || this.paused) return;
    const conn = this.conn;
    if (!conn) return;
    this.paused = true;
    conn.socket.pause();
    this.inc.onDrain(() => {
      this.paused = false;
      if (this.conn === conn) conn.socket.resume();
    });
  }

  onEnd(): void {
    const conn = this.conn;
    if (!conn) return;
    this.conn = undefined;
    this.uncount();
    this.upstreamMs = performance.now() - this.upstreamStart;
    conn.finish(this.requestDone);
    this.inc.end(); // answered before the whole body was sent: the client connection drops the rest
  }

  onFail(err: Error, conn: UpstreamConn): void {
    if (this.conn !== conn) return;
    this.conn = undefined;
    this.uncount();
    clearTimeout(this.timer);
    this.upstreamMs = performance.now() - this.upstreamStart;
    const r = this.route;
    upstreamErrors.labels(r.hostname + r.pathBegin, this.timedOut || err instanceof ConnectTimeout ? "timeout" : conn.connected ? "reset" : "connect").inc();
    if (this.clientGone) return;
    if (this.responded) {
      this.inc.destroy(); // the response was cut: the client must see it cut too
      return;
    }
    if (this.timedOut) return sendStatus(this.inc, 504);
    // nothing of the request reached the backend: a failed connect, or a pooled connection the
    // backend had already closed (no response byte came back)
    const stale = conn.connected && conn.reused && !conn.parser.started;
    const beforeAnyByte = !this.bodyStarted && (!conn.connected || stale);
    if (beforeAnyByte && this.attempts < MAX_ATTEMPTS) {
      // a stale pooled connection says nothing about the backend: its other idle connections
      // are likely stale too (restart, idle timeout); retry it on a fresh connection
      if (stale) conn.up.dropIdle();
      else (this.tried ??= []).push(conn.up);
      this.connectTimedOut = err instanceof ConnectTimeout;
      return this.attempt();
    }
    sendStatus(this.inc, err instanceof ConnectTimeout ? 504 : 502);
  }

  onClientClose(): void {
    this.clientGone = true;
    clearTimeout(this.timer);
    if (this.waiting) {
      this.waiting = false;
      this.member!.up.cancel(this.onConn);
      this.uncount();
    }
    this.abandon();
  }

  /** give the current connection up without a report */
  private abandon(): void {
    const conn = this.conn;
    if (!conn) return;
    this.conn = undefined;
    this.uncount();
    conn.detach();
  }
}

export function forward(inc: Incoming, route: Route, scan: ScannedRequest, settings: ForwardSettings): Exchange {
  const sticky = route.pool.options.sticky ? cookieValue(scan.cookie, STICKY_COOKIE) : undefined;
  const x = new Exchange(inc, route, scan, settings, sticky);
  inc.onClose((completed) => completed || x.onClientClose());
  x.attempt();
  return x;
}
