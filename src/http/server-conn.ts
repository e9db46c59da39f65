// Our own HTTP/1.1 server side, used by the proxy's listeners, the query socket and the JSON API
// server (api-server.ts): one ClientConn per accepted connection (TCP, TLS or Unix), one Incoming
// per request. node:http's server cost about half of the proxy's time (an IncomingMessage stream,
// a ServerResponse with its header objects, several writes per answer) and about 10 KB per waiting
// long-poll; here a request is parsed by RequestParser and its answer goes out as one corked write
// of head + first body bytes.
//
// A connection handles one request at a time; pipelined requests wait, held by the parser. When
// an answer is complete the connection goes on with the next request, or closes when either side
// asked for it, the answer's length was delimited by the close, or the server is stopping. A
// request body not consumed when its answer ends is read and dropped after the answer (bounded by
// the idle timeout, or by the `linger` bounds) so that the connection stays usable; a connection
// that closes with body bytes still coming closes "lingering" (nginx's lingering_close): our side
// is shut down after the answer and what the client still sends is read and dropped until it
// closes or a bound is hit, so that it reads the answer rather than a reset.
import type { Socket } from "node:net";
import { RequestParser, RequestParseError, type RequestHead, type RequestSink } from "./request-parser.js";
import { LAST_CHUNK, writeChunk, type BodySink } from "./http1.js";

/** pipelined bytes held while an answer is in progress before the connection stops reading */
const MAX_HELD_BYTES = 64 * 1024;

export interface ServerSettings {
  maxHeaderBytes: number;
  /** waiting for the first byte of a request (keep-alive idle), and draining an unread body */
  idleMs: number;
  /** from the first byte of a request head to its end (slow heads get 408) */
  headMs: number;
  /** a client that shuts down its sending side after a request still gets the answer; else its
   *  end is taken as going away (a long-poll server must notice clients leaving) */
  answerHalfClosed: boolean;
  /** connections not yet admitted (see ClientConn.admit) kept at most; past it the oldest idle one
   *  is closed for a new one, so silent clients cannot hold the slots of real ones. Unset: no
   *  admission (every connection counts the same, the listener's own cap applies). */
  maxPending?: number;
  /** admitted connections at most (admit() is false past it) */
  maxAdmitted?: number;
  /** the listener's connection limit (its maxConnections): at it, accepting a connection closes the
   *  oldest one that is idle (no request byte yet, or keep-alive between requests), so idle clients
   *  cannot keep new ones out; unset: no eviction */
  maxConnections?: number;
  /** an answer sent before the end of its request body ("answer first, then linger"): the rest is
   *  read and dropped within `bytes` and `ms`, both counted from the answer. A body that ends
   *  within them keeps the connection for the next request; a Content-Length body with more than
   *  `bytes` still to come is answered with Connection: close at once (clients then stop sending).
   *  Past a bound, or when the answer closes the connection, the close lingers: our side is shut
   *  down after the answer, reads are dropped until the client closes or `ms` is up (no byte
   *  bound there: a client still sending after our FIN writes its whole body before it reads, as
   *  Python's http.client does, and cutting it early only makes sure it fails; dropping costs
   *  nothing but the bandwidth it spends anyway). Unset: the rest drains within idleMs, and a
   *  close follows the answer at once. */
  linger?: { bytes: number; ms: number };
  /** Expect: 100-continue is answered 100 when the handler starts reading the body, not at once:
   *  a request answered without its body (a stored Shaman file) then costs the client no upload;
   *  that answer closes the connection (the client may or may not send the body after it) */
  continueOnRead?: boolean;
}

export interface ClientHandlers {
  request(inc: Incoming): void;
  /** an upgrade request: the handler owns the socket from here on (`rest` = bytes after the head);
   *  without a handler it is answered 400 */
  upgrade?(head: RequestHead, socket: Socket, rest: Buffer): void;
  /** answer a request the server refuses itself (400, 408, 417, 431, 501) in the protocol's shape */
  refuse(inc: Incoming, status: number): void;
}

/** One request and its answer. */
export class Incoming {
  headersSent = false;
  /** the answer is complete (end called) */
  ended = false;
  /** the request body has been read to its end */
  requestComplete = false;
  /** the answer's status, once writeHead was called (for request logs) */
  status = 0;
  /** body bytes of the answer handed to the socket (for access logs) */
  bytes = 0;
  private sink: BodySink | undefined;
  private queued: Buffer[] | undefined;
  private pendingHead: string | undefined;
  private chunked = false;
  private bodiless = false;
  keepAlive: boolean;
  /** headers (name, value, ...) every answer to this request carries besides its own, whoever
   *  writes it: set once by the server's checks (the manager's X-User-Id-From-Token) */
  extraHeaders: string[] | undefined;
  private closeCallbacks: ((completed: boolean) => void)[] = [];
  /** the client waits for 100 Continue before sending the body (see continueOnRead) */
  continuePending = false;

  constructor(
    readonly head: RequestHead,
    readonly conn: ClientConn,
  ) {
    this.keepAlive = head.keepAlive;
  }

  get socket(): Socket {
    return this.conn.socket;
  }

  // ---- the request body ----

  /** Receive the body (chunks queued so far first). */
  readBody(sink: BodySink): void {
    this.sink = sink;
    if (this.continuePending && !this.ended) {
      this.continuePending = false;
      if (!this.headersSent) this.conn.socket.write("HTTP/1.1 100 Continue\r\n\r\n", "latin1");
    }
    const queued = this.queued;
    this.queued = undefined;
    if (queued) for (const c of queued) sink.onBody(c);
    if (this.requestComplete) sink.onEnd();
    else this.conn.socket.resume();
  }

  pauseBody(): void {
    this.conn.socket.pause();
  }

  resumeBody(): void {
    this.conn.socket.resume();
  }

  /** the answer is complete before the body: what is left of it is dropped */
  discardBody(): void {
    this.sink = undefined;
    this.queued = undefined;
  }

  /** from the parser */
  body(chunk: Buffer): void {
    if (this.sink) this.sink.onBody(chunk);
    else if (!this.ended) (this.queued ??= []).push(chunk);
  }

  /** from the parser */
  bodyEnd(): void {
    this.requestComplete = true;
    this.sink?.onEnd();
  }

  // ---- the answer ----

  /** called once: with true when the answer is complete, false when the connection closed before */
  onClose(cb: (completed: boolean) => void): void {
    this.closeCallbacks.push(cb);
  }

  closed(completed: boolean): void {
    const cbs = this.closeCallbacks;
    this.closeCallbacks = [];
    for (const cb of cbs) cb(completed);
  }

  /**
   * The status line and headers (name, value, ...; hop-by-hop ones already removed), sent with the
   * first body bytes. The body is framed by the headers' Content-Length, else chunked (HTTP/1.1
   * clients), else (HTTP/1.0) by closing the connection.
   */
  writeHead(status: number, reason: string, headers: string[]): void {
    if (this.ended) return;
    this.headersSent = true;
    this.status = status;
    const { head } = this;
    this.bodiless = head.method === "HEAD" || status === 204 || status === 304;
    let hasLength = false;
    let s = `HTTP/1.1 ${status} ${reason}\r\n`;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      if (name.length === 14 && name.toLowerCase() === "content-length") hasLength = true;
      s += `${name}: ${headers[i + 1]}\r\n`;
    }
    const extra = this.extraHeaders;
    if (extra) for (let i = 0; i < extra.length; i += 2) s += `${extra[i]}: ${extra[i + 1]}\r\n`;
    if (this.conn.closing || this.conn.set.stopping) this.keepAlive = false;
    // more body to come than we would read and drop: the client is told to stop (see linger); a
    // client never told to continue may send its body or not: the connection cannot go on
    if (!this.requestComplete && head.hasBody && this.keepAlive && (this.continuePending || this.conn.tooMuchLeft())) this.keepAlive = false;
    if (!this.bodiless && !hasLength) {
      // chunked also when the connection closes after: a cut answer is then visible as cut
      if (!head.http10) {
        this.chunked = true;
        s += "Transfer-Encoding: chunked\r\n";
      } else this.keepAlive = false;
    }
    if (!this.keepAlive) s += "Connection: close\r\n";
    else if (head.http10) s += "Connection: keep-alive\r\n";
    this.pendingHead = s + "\r\n";
  }

  /** Body bytes; false = wait for `onDrain`. */
  write(chunk: Buffer): boolean {
    if (this.ended || this.bodiless || chunk.length === 0) return true;
    this.bytes += chunk.length;
    const sock = this.conn.socket;
    const head = this.pendingHead;
    if (head === undefined && !this.chunked) return sock.write(chunk);
    sock.cork();
    if (head !== undefined) {
      this.pendingHead = undefined;
      sock.write(head, "latin1");
    }
    const ok = this.chunked ? writeChunk(sock, chunk) : sock.write(chunk);
    sock.uncork();
    return ok;
  }

  onDrain(cb: () => void): void {
    this.conn.socket.once("drain", cb);
  }

  /** The answer is complete. */
  end(): void {
    if (this.ended) return;
    const tail = this.chunked ? LAST_CHUNK : "";
    const head = this.pendingHead;
    this.pendingHead = undefined;
    if (head !== undefined || tail) this.conn.socket.write(head === undefined ? tail : head + tail, "latin1");
    this.ended = true;
    this.conn.answered(this);
  }

  /** A complete small answer. */
  answer(status: number, reason: string, headers: string[], body: Buffer): void {
    this.writeHead(status, reason, headers);
    this.write(body);
    this.end();
  }

  /** cut the connection (an answer that cannot be completed) */
  destroy(): void {
    this.conn.socket.destroy();
  }
}

export class ClientConn implements RequestSink {
  private readonly parser = new RequestParser(this);
  private current: Incoming | undefined;
  private upgrading: Incoming | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** no further request is read: the connection closes after the current answer */
  closing = false;
  /** counted against maxAdmitted (an authenticated request came), no longer pending */
  admitted = false;
  /** with admission (maxPending set): no request head completed yet, and the first one must be in
   *  within headMs of the accept (a silent client is gone by then) */
  private fresh: boolean;
  /** answered before the end of the body, keep-alive: body bytes still dropped at most */
  private drainLeft: number | undefined;
  /** closing lingering (see ServerSettings.linger): our side is shut down, reads are dropped */
  private lingering = false;

  constructor(
    readonly socket: Socket,
    readonly set: ClientConnSet,
    private readonly handlers: ClientHandlers,
  ) {
    socket.setNoDelay(true);
    socket.on("data", this.onData);
    socket.on("end", this.onPeerEnd);
    socket.on("error", noop);
    socket.on("close", this.onClose);
    const settings = set.settings();
    this.parser.begin(settings.maxHeaderBytes);
    this.fresh = settings.maxPending !== undefined;
    this.arm(this.fresh ? Math.min(settings.idleMs, settings.headMs) : settings.idleMs);
  }

  /** The connection sent a request that passed the server's checks (auth): it moves from the
   *  pending connections to the admitted ones; false when those are full. */
  admit(): boolean {
    return this.admitted || this.set.admit(this);
  }

  /** no request in progress and no byte of the next one: closing it loses nothing */
  get idle(): boolean {
    return this.current === undefined && this.upgrading === undefined && this.parser.idle;
  }

  /** a request is being answered */
  get busy(): boolean {
    return this.current !== undefined;
  }

  /** the current request's body has more still to come than the linger bound (a chunked one:
   *  unknown, not more) */
  tooMuchLeft(): boolean {
    const linger = this.set.settings().linger;
    const left = this.parser.bodyLeft;
    return linger !== undefined && left !== undefined && left > linger.bytes;
  }

  // ---- socket events ----

  private onData = (chunk: Buffer): void => {
    if (this.lingering) return; // dropped, not parsed
    if (this.current === undefined) {
      if (this.closing) return; // closing: nothing more is read
      // the first byte of a request head: it now has headMs to complete (a fresh connection's
      // first head already runs against its deadline from the accept)
      if (this.parser.idle && !this.fresh) this.arm(this.set.settings().headMs);
    }
    try {
      this.parser.execute(chunk);
    } catch (e) {
      return this.fail(e as Error);
    }
    if (this.upgrading) return this.upgrade(this.upgrading);
    if (this.lingering) return; // a drain ran over: the close lingers, reading on
    if (this.parser.heldBytes > MAX_HELD_BYTES) this.socket.pause();
  };

  private onPeerEnd = (): void => {
    // closing lingering: the client has read what it wanted and closed too
    if (this.lingering) return void this.socket.destroy();
    const cur = this.current;
    if (cur === undefined) return this.close();
    // the body was cut short, or the client counts as gone: the request cannot complete
    if (!cur.requestComplete || !this.set.settings().answerHalfClosed) return void this.socket.destroy();
    this.closing = true; // the answer still goes out, then the connection closes
  };

  private onClose = (): void => {
    clearTimeout(this.timer);
    this.set.delete(this);
    const cur = this.current;
    this.current = undefined;
    if (cur && !cur.ended) cur.closed(false);
  };

  // ---- RequestSink ----

  onRequest(head: RequestHead): void {
    clearTimeout(this.timer);
    this.fresh = false;
    const inc = new Incoming(head, this);
    this.current = inc;
    if (head.method === "CONNECT") return this.refuse(400);
    if (head.expect !== undefined) {
      if (head.expect !== "100-continue") return this.refuse(417);
      if (head.http10) {
        // no interim answers in HTTP/1.0
      } else if (head.hasBody && this.set.settings().continueOnRead) inc.continuePending = true;
      else this.socket.write("HTTP/1.1 100 Continue\r\n\r\n", "latin1");
    }
    if (head.upgrade && this.handlers.upgrade) {
      this.upgrading = inc; // after the parser returns: the bytes after the head belong to the new protocol
      return;
    }
    if (head.upgrade) return this.refuse(400);
    if (head.hasBody) this.socket.pause(); // until the handler reads the body
    this.handlers.request(inc);
  }

  onBody(chunk: Buffer): void {
    if (this.drainLeft !== undefined) {
      // after the answer: dropped, within the linger bound (else the close lingers)
      this.drainLeft -= chunk.length;
      if (this.drainLeft < 0 && !this.lingering) this.lingerClose(false);
      return;
    }
    this.current?.body(chunk);
  }

  onEnd(): void {
    const cur = this.current;
    if (!cur || this.lingering) return;
    cur.bodyEnd();
    // an answer that came before the end of the body: the body is now drained
    if (cur.ended) this.next();
  }

  // ---- request lifecycle ----

  /** the current request's answer is complete */
  answered(inc: Incoming): void {
    if (inc !== this.current) return;
    if (!inc.keepAlive) this.closing = true;
    inc.closed(true);
    const { linger } = this.set.settings();
    // body bytes may still come (a refused head's placeholder has none; a parser that failed
    // reads no more of them)
    const unread = !inc.requestComplete && inc.head.hasBody;
    if (this.closing) {
      if (linger && unread && !this.socket.destroyed) {
        inc.discardBody();
        return this.lingerClose(true);
      }
      this.current = undefined;
      return this.close();
    }
    if (!inc.requestComplete) {
      // read and drop the rest of the body, then go on; bounded by the linger bounds (else the
      // idle timeout); the connection stays busy meanwhile
      inc.discardBody();
      this.socket.resume();
      if (!linger) return this.arm(this.set.settings().idleMs);
      this.drainLeft = linger.bytes;
      return this.arm(linger.ms);
    }
    // a pipelined request waiting: parse it once the caller's stack has unwound (end() may run
    // inside an upstream connection's handlers); answers made during parsing go on in its loop
    if (this.parser.heldBytes > 0) setImmediate(() => this.next());
    else this.next();
  }

  /**
   * Close without a reset while the client may still be sending: shut down our side after the
   * answer (it is queued before the FIN), then drop what comes until the client closes or the time
   * bound (from the answer: a drain that ran over keeps its timer).
   */
  private lingerClose(fromAnswer: boolean): void {
    this.closing = true;
    this.lingering = true;
    if (fromAnswer) this.arm(this.set.settings().linger!.ms);
    this.socket.resume();
    this.socket.end();
  }

  /** send what is queued, then close */
  private close(): void {
    clearTimeout(this.timer);
    this.socket.end(() => this.socket.destroy());
  }

  private next(): void {
    this.current = undefined;
    this.drainLeft = undefined;
    if (this.closing) return this.close();
    if (this.socket.destroyed) return;
    this.socket.resume();
    this.arm(this.set.settings().idleMs);
    try {
      this.parser.next(this.set.settings().maxHeaderBytes);
    } catch (e) {
      return this.fail(e as Error);
    }
    if (this.upgrading) this.upgrade(this.upgrading);
  }

  /** A request the server refuses itself (or one whose head could not be read): answer and close. */
  private refuse(status: number): void {
    this.closing = true;
    // a head that could not be read still tells its method when it starts with one: a refused
    // HEAD is answered without a body
    const method = this.parser.failedMethod();
    const placeholder = method === undefined || method === PLACEHOLDER.method ? PLACEHOLDER : { ...PLACEHOLDER, method };
    this.handlers.refuse((this.current ??= new Incoming(placeholder, this)), status);
  }

  private fail(err: Error): void {
    this.closing = true;
    const cur = this.current;
    if (!(err instanceof RequestParseError)) return void this.socket.destroy();
    if (cur) {
      // bad framing inside a request body (a chunk size of -1): when no answer has started, the
      // request's handler is told the client went (it stops, a forwarded exchange is abandoned)
      // and the client gets the 400 instead; else all that is left is to cut
      if (cur.headersSent) return void this.socket.destroy();
      cur.ended = true; // whatever the handler still answers is dropped
      cur.discardBody();
      this.current = new Incoming(cur.head, this);
      cur.closed(false);
      if (this.socket.destroyed) return;
    }
    this.refuse(err.status);
  }

  private upgrade(inc: Incoming): void {
    this.upgrading = undefined;
    this.current = undefined;
    clearTimeout(this.timer);
    const s = this.socket;
    s.off("data", this.onData);
    s.off("end", this.onPeerEnd);
    s.off("close", this.onClose);
    s.pause(); // until the new owner reads (pipe resumes): nothing the client sends is lost
    this.set.delete(this);
    this.handlers.upgrade!(inc.head, s, this.parser.rest());
  }

  /** (re)start the timer: a request head must arrive (or an unread body drain) in time */
  private arm(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(this.onIdle, ms);
  }

  private onIdle = (): void => {
    this.fresh = false;
    // a request head started but did not finish in time
    if (this.current === undefined && !this.parser.idle) return this.refuse(408);
    this.socket.destroy();
  };
}

const noop = () => {};

/** stands for a request whose head could not be read (its error answer needs one) */
const PLACEHOLDER: RequestHead = { method: "GET", url: "/", http10: false, rawHeaders: [], keepAlive: false, upgrade: false, hasBody: false, chunked: false, expect: undefined };

let dateSecond = -1;
let dateValue = "";

/** the value of a Date header (RFC 9110 §6.6.1), formatted once a second */
export function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateValue = new Date(now).toUTCString();
  }
  return dateValue;
}

/** The connections of one or more listeners: settings, and closing them at stop. */
export class ClientConnSet {
  private conns = new Set<ClientConn>();
  /** connections not admitted yet, oldest first (only with settings().maxPending) */
  private pending = new Set<ClientConn>();
  private admittedCount = 0;
  private emptied: (() => void)[] = [];
  /** answers end with Connection: close */
  stopping = false;

  constructor(
    readonly settings: () => ServerSettings,
    private readonly handlers: ClientHandlers,
  ) {}

  /** open client connections (metrics) */
  get size(): number {
    return this.conns.size;
  }

  accept = (socket: Socket): void => {
    const max = this.settings().maxPending;
    // all pending ones busy with a request (their handlers hold them): the new one waits its turn
    if (max !== undefined && this.pending.size >= max && !this.evictPending()) return void socket.destroy();
    const conn = new ClientConn(socket, this, this.handlers);
    this.conns.add(conn);
    if (max !== undefined) this.pending.add(conn);
    const cap = this.settings().maxConnections;
    if (cap !== undefined && cap > 0 && this.conns.size >= cap) this.evictIdle(conn);
  };

  /** close the oldest pending connection with no request in progress (it sent nothing useful yet) */
  private evictPending(): boolean {
    for (const c of this.pending) {
      if (c.busy) continue;
      this.pending.delete(c);
      c.socket.destroy();
      return true;
    }
    return false;
  }

  /** see ClientConn.admit */
  admit(conn: ClientConn): boolean {
    const max = this.settings().maxAdmitted;
    if (max !== undefined && this.admittedCount >= max) return false;
    if (!this.conns.has(conn)) return false; // closed meanwhile
    conn.admitted = true;
    this.admittedCount++;
    this.pending.delete(conn);
    return true;
  }

  /** connections admitted and pending now (tests, status) */
  counts(): { admitted: number; pending: number; total: number } {
    return { admitted: this.admittedCount, pending: this.pending.size, total: this.conns.size };
  }

  /** close the oldest idle connection but `except` (Set order is accept order) */
  private evictIdle(except: ClientConn): void {
    for (const c of this.conns) {
      if (c === except || !c.idle) continue;
      c.socket.destroy();
      return;
    }
  }

  delete(conn: ClientConn): void {
    if (!this.conns.delete(conn)) return;
    if (conn.admitted) this.admittedCount--;
    this.pending.delete(conn);
    if (this.conns.size === 0) for (const cb of this.emptied.splice(0)) cb();
  }

  /** resolves when no connection is left */
  empty(): Promise<void> {
    if (this.conns.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.emptied.push(resolve));
  }

  /** Stop: answers in progress end with Connection: close; idle connections close now. */
  stop(): void {
    this.stopping = true;
    for (const c of this.conns) {
      c.closing = true;
      if (!c.busy) c.socket.destroy();
    }
  }

  closeAll(): void {
    for (const c of this.conns) c.socket.destroy();
  }
}
