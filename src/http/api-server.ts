// The one JSON API server (the core API, the manager): a TCP, TLS or Unix-socket listener on our own HTTP/1.1
// server side (server-conn.ts), routing by method and path pattern, bounded bodies, one error
// shape {"error": "..."}, request logs, hand-over of the listener and a graceful stop.
import { readFile } from "node:fs/promises";
import { STATUS_CODES } from "node:http";
import { createServer as createNetServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer, type Server as TlsServer } from "node:tls";
import { guardTlsHandshakes } from "./tls-guard.js";

const DEFAULT_HANDSHAKE_MS = 5000;
import { Readable } from "node:stream";
import { formatHostPort, parseHostPort } from "../base/index.js";
import { untilDeadline } from "../deadline.js";
import { log } from "../log.js";
import { HttpError, errorBody, refuseJson } from "./json.js";
import { describeBindError, listen } from "./listen.js";
import { listenUnix } from "./unix-listener.js";
import { Router } from "./router.js";
import { ClientConnSet, httpDate, type Incoming } from "./server-conn.js";
import { metrics } from "../metrics/index.js";

const apiRequests = metrics.counter("stevedore_api_requests_total", "Requests of the JSON APIs (core, manager) by API, method and status class.", ["api", "method", "code"]);
const statusClass = (status: number) => (status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : "0xx");

export interface ApiRequest {
  readonly method: string;
  /** the pathname as sent (not decoded), without the query */
  readonly path: string;
  readonly query: URLSearchParams;
  /** the route's ":name" captures, percent-decoded and checked against `params` */
  readonly params: Record<string, string>;
  readonly remoteAddress: string;
  /** first value of a header (case-insensitive name) */
  header(name: string): string | undefined;
  /** escape hatch: streaming answers (SSE), the raw body */
  readonly inc: Incoming;
  /** the whole body, at most `limit` bytes (default maxBodyBytes): HttpError 413 past it */
  body(limit?: number): Promise<Buffer>;
  /** the body as JSON: 415 for another content type, 400 for bad JSON, 413 past the limit */
  json(limit?: number): Promise<unknown>;
  /** the body as a stream with backpressure (big uploads); destroyed with HttpError 413 past
   *  `limit` (a larger Content-Length throws it at once), with an error if the client goes away */
  stream(limit: number): Readable;
  /** set by the `before` hook (auth) */
  user?: unknown;
  /** a header every answer to this request carries: errors, streams (req.inc) too */
  answerHeader(name: string, value: string): void;
}

export interface ApiResponse {
  status: number;
  /** JSON unless a Buffer (application/octet-stream) or a string (text/plain); none for 204/304 */
  body?: unknown;
  /** extra headers (Content-Type replaces ours; Content-Length is always ours) */
  headers?: Record<string, string>;
}

/** void: the handler answered (or answers later) through req.inc */
export type ApiHandler = (req: ApiRequest) => Promise<ApiResponse | void> | ApiResponse | void;

export interface ApiRoute {
  method: string;
  /** "/tasks/:id/update": a ":name" segment captures one non-empty path segment */
  path: string;
  handler: ApiHandler;
}

export interface ApiLimits {
  maxBodyBytes: number;
  /** connections that sent an accepted request (past the `before` hook) at most; past it 503 */
  maxConnections: number;
  /** connections with no accepted request yet (silent, unauthenticated) kept besides those; a new
   *  one closes the oldest idle of them (default: maxConnections) */
  maxPendingConnections?: number;
  /** from the first byte of a request head to its end (slower: 408) */
  headMs: number;
  /** keep-alive idle time between requests */
  idleMs: number;
  maxHeaderBytes: number;
  /** an answer sent before the end of its request body (401, 413, Shaman's 208): the rest of the
   *  body is read and dropped after it within these bounds (defaults LINGER_BYTES, LINGER_MS; see
   *  ServerSettings.linger) */
  lingerBytes?: number;
  lingerMs?: number;
}

export interface ApiErrorStatus {
  status: number;
  message: string;
  headers?: Record<string, string>;
}

export interface ApiServerOptions {
  /** log and hand-over name ("core", "manager") */
  name: string;
  /** "host:port", or an absolute path: a Unix socket (made with the Unix listener's rules, see
   *  listenUnix; mode `socketMode`); "" = disabled */
  listen: string;
  /** a Unix socket's permission bits (default 0o660: the owner and its group) */
  socketMode?: number;
  /** handshakeMs: a TLS handshake must finish within it (default 5 s), read per connection */
  tls?: { certFile: string; keyFile: string; handshakeMs?(): number };
  routes: ApiRoute[];
  /** a ":name" capture failing its RegExp → 404 */
  params?: Record<string, RegExp>;
  /** runs before routing (auth); a response ends the request there, a thrown error too */
  before?(req: ApiRequest): Promise<ApiResponse | void> | ApiResponse | void;
  /** domain errors → status and message; undefined → 500 "internal error" (logged) */
  errorStatus?(err: unknown): ApiErrorStatus | undefined;
  /** read per connection and request, so they may follow a reload */
  limits(): ApiLimits;
  /** UPGRADE_MASTER: listen on the socket handed over under `name`; false when there is none */
  inherit?(server: Server, name: string, address: string): Promise<boolean>;
  /** true once the listeners went to a new master: a Unix socket's path is then left in place */
  handedOver?(): boolean;
}

export type ApiServerState = "listening" | "disabled" | "unavailable" | "stopped";

export interface ApiServer {
  /** bind (or take over) the listener; a failure is logged and shown in status(), not thrown */
  start(): Promise<void>;
  /** stop accepting; idle connections close now; when graceful, requests in flight finish until
   *  `deadline` (performance.now() ms); then every connection is closed */
  stop(graceful: boolean, deadline: number): Promise<void>;
  /** address: the bound one, else the configured one; reason: why it is unavailable */
  status(): { state: ApiServerState; address?: string; reason?: string };
  /** for the hand-over: the listening socket under `name` */
  listeners(): Map<string, { server: Server; address: string }>;
  /** the bound "host:port", or the socket path ("" when not listening) */
  readonly address: string;
}

/** a body sent with a request answered before its end is read and dropped up to these bounds
 *  after the answer (the connection then serves the next request), else the connection closes
 *  lingering: 16 MiB is a fraction of a second on a LAN, far more than the JSON bodies we refuse,
 *  and tells a large upload (a stored Shaman file) to stop at once; 5 s lets a slow client read
 *  the answer before the close */
const LINGER_BYTES = 16 * 1024 * 1024;
const LINGER_MS = 5_000;
const EMPTY = Buffer.alloc(0);
const INTERNAL: ApiErrorStatus = { status: 500, message: "internal error" };

export function createApiServer(opts: ApiServerOptions): ApiServer {
  return new JsonApiServer(opts);
}

class JsonApiServer implements ApiServer {
  address = "";
  private state: ApiServerState = "stopped";
  private reason = "";
  private server: Server | undefined;
  private readonly router: Router<ApiRoute>;
  private readonly conns: ClientConnSet;

  constructor(private readonly opts: ApiServerOptions) {
    this.router = new Router(opts.routes, opts.params);
    this.conns = new ClientConnSet(
      () => {
        const l = opts.limits();
        return {
          maxHeaderBytes: l.maxHeaderBytes,
          idleMs: l.idleMs,
          headMs: l.headMs,
          answerHalfClosed: true,
          maxAdmitted: l.maxConnections,
          maxPending: l.maxPendingConnections ?? l.maxConnections,
          linger: { bytes: l.lingerBytes ?? LINGER_BYTES, ms: l.lingerMs ?? LINGER_MS },
          continueOnRead: true,
        };
      },
      {
        request: (inc) => void this.handle(inc),
        refuse: (inc, status) => {
          refuseJson(inc, status);
          log.debug(`${opts.name} API request refused`, { status });
        },
      },
    );
  }

  async start(): Promise<void> {
    const { name, listen: address, tls } = this.opts;
    if (address === "") {
      this.state = "disabled";
      return;
    }
    try {
      const unix = address.startsWith("/");
      const hp = unix ? undefined : parseHostPort(address);
      if (!unix && !hp) throw new Error(`${address} must be host:port or an absolute socket path`);
      // no listener cap: the connection set bounds pending and admitted connections itself, so
      // that silent clients cannot keep real ones out (see ClientConnSet)
      const accept = (socket: Socket) => this.conns.accept(socket);
      const server = tls ? await tlsServer(name, tls, accept) : createNetServer({ allowHalfOpen: true, noDelay: true }, accept);
      if (hp) {
        if (!(await this.opts.inherit?.(server, name, address))) await listen(server, { host: hp.host, port: hp.port });
      } else if (!(await this.listenUnix(server, address))) return;
      server.on("error", (err) => log.error(`${name} API server error`, { error: err.message }));
      const bound = server.address();
      this.address = typeof bound === "object" && bound ? formatHostPort(bound.address, bound.port) : address;
      this.server = server;
      this.state = "listening";
      log.info(`${name} API listening`, { address: this.address, tls: tls !== undefined });
    } catch (err) {
      this.state = "unavailable";
      this.reason = `${address}: ${describeBindError(err)}`;
      log.error(`${name} API unavailable`, { listen: address, error: describeBindError(err) });
    }
  }

  /** The socket at `path` with the floor's rules (stale sockets, safe directory, mode without a
   *  window, hand-over); false: unavailable, the reason logged and kept for status(). */
  private async listenUnix(server: Server, path: string): Promise<boolean> {
    const { name, inherit, handedOver } = this.opts;
    const r = await listenUnix(server, path, this.opts.socketMode ?? 0o660, name, { inherit, handedOver });
    if (r.ok) return true;
    this.state = "unavailable";
    this.reason = r.message;
    return false;
  }

  async stop(graceful: boolean, deadline: number): Promise<void> {
    const server = this.server;
    if (!server) {
      if (this.state !== "disabled") this.state = "stopped";
      return;
    }
    this.server = undefined;
    // net's close callback runs once the connections are gone too (also after a hand-over closed it)
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    this.conns.stop(); // idle connections close now, busy ones after their answer
    if (graceful) await untilDeadline(this.conns.empty(), deadline);
    this.conns.closeAll();
    await closed;
    this.state = "stopped";
    this.address = "";
  }

  status(): { state: ApiServerState; address?: string; reason?: string } {
    if (this.state === "unavailable") return { state: this.state, address: this.opts.listen, reason: this.reason };
    return { state: this.state, address: this.address || undefined };
  }

  listeners(): Map<string, { server: Server; address: string }> {
    const server = this.server;
    return new Map(server && this.state === "listening" ? [[this.opts.name, { server, address: this.opts.listen }]] : []);
  }

  // ---- requests ----

  private async handle(inc: Incoming): Promise<void> {
    const started = performance.now();
    const { method } = inc.head;
    let path = "";
    inc.onClose(() => {
      apiRequests.labels(this.opts.name, method, statusClass(inc.status)).inc();
      log.debug(`${this.opts.name} API request`, { method, path, status: inc.status || undefined, ms: Math.round(performance.now() - started) });
    });
    try {
      const target = splitTarget(inc.head.url);
      path = target.path;
      const req = new Request(inc, target.path, target.query, this.opts.limits().maxBodyBytes);
      let res = (await this.opts.before?.(req)) ?? undefined;
      // past the checks: the connection counts as a client's (no longer a pending one)
      if (!res && !inc.conn.admit()) {
        inc.keepAlive = false;
        res = { status: 503, body: { error: "too many connections" }, headers: { "Retry-After": "1" } };
      }
      if (!res) {
        const { route, params } = this.router.match(method, req.path);
        req.params = params;
        res = (await route.handler(req)) ?? undefined;
      }
      if (res) await this.respond(inc, res);
    } catch (err) {
      await this.fail(inc, err, path);
    }
  }

  private async fail(inc: Incoming, err: unknown, path: string): Promise<void> {
    const mapped = err instanceof HttpError ? err : (this.opts.errorStatus?.(err) ?? INTERNAL);
    if (mapped.status === 500) log.error(`${this.opts.name} API request failed`, { method: inc.head.method, path, error: (err as Error)?.message ?? String(err) });
    if (inc.headersSent) {
      // an answer under way cannot turn into an error any more: cut it
      if (!inc.ended) inc.destroy();
      return;
    }
    const body = errorBody(mapped.message);
    await this.send(inc, mapped.status, "application/json", body, mapped.headers);
  }

  private respond(inc: Incoming, res: ApiResponse): Promise<void> {
    const { body } = res;
    if (body === undefined) return this.send(inc, res.status, undefined, undefined, res.headers);
    if (Buffer.isBuffer(body)) return this.send(inc, res.status, "application/octet-stream", body, res.headers);
    if (typeof body === "string") return this.send(inc, res.status, "text/plain; charset=utf-8", Buffer.from(body), res.headers);
    return this.send(inc, res.status, "application/json", Buffer.from(JSON.stringify(body)), res.headers);
  }

  /** The answer, at once: a request body not read yet is read and dropped after it, within the
   *  linger bounds (server-conn.ts), so that the client sees it and not a reset. */
  private async send(inc: Incoming, status: number, type: string | undefined, body: Buffer | undefined, extra?: Record<string, string>): Promise<void> {
    if (inc.ended || inc.socket.destroyed) return;
    const headers = ["Date", httpDate()];
    const bodiless = status === 204 || status === 304;
    let hasType = false;
    for (const [name, value] of Object.entries(extra ?? {})) {
      const lower = name.toLowerCase();
      if (lower === "content-length") continue;
      if (lower === "content-type") hasType = true;
      headers.push(name, value);
    }
    if (!bodiless) {
      if (type !== undefined && !hasType) headers.push("Content-Type", type);
      headers.push("Content-Length", String(body?.length ?? 0));
    }
    inc.answer(status, STATUS_CODES[status] ?? "", headers, bodiless || !body ? EMPTY : body); // HEAD: the body is not sent
  }
}

/** The TLS listener (certificate files read now); handshakes bounded in time, failures logged. */
async function tlsServer(name: string, tls: NonNullable<ApiServerOptions["tls"]>, accept: (socket: Socket) => void): Promise<Server> {
  const server = createTlsServer({ allowHalfOpen: true, ALPNProtocols: ["http/1.1"], cert: await readFile(tls.certFile), key: await readFile(tls.keyFile) }, accept);
  guardTlsHandshakes(server, { name: `${name} API`, handshakeMs: () => tls.handshakeMs?.() ?? DEFAULT_HANDSHAKE_MS });
  return server;
}

/** The path and query of a request target (origin-form, or absolute-form through URL). */
function splitTarget(url: string): { path: string; query: string } {
  if (url.startsWith("/")) {
    const q = url.indexOf("?");
    return q < 0 ? { path: url, query: "" } : { path: url.slice(0, q), query: url.slice(q + 1) };
  }
  if (/^https?:\/\//i.test(url)) {
    try {
      const u = new URL(url);
      return { path: u.pathname, query: u.search.slice(1) };
    } catch {
      // a bad target, below
    }
  }
  throw new HttpError(400, "bad request target");
}

const tooLarge = (limit: number) => new HttpError(413, `request body larger than ${limit} bytes`);
/** the body could not complete: nobody will see the answer, but the handler must stop waiting */
const gone = () => new HttpError(400, "the connection closed before the end of the request body");

class Request implements ApiRequest {
  params: Record<string, string> = {};
  user?: unknown;
  private bodyTaken = false;
  private parsedQuery: URLSearchParams | undefined;

  constructor(
    readonly inc: Incoming,
    readonly path: string,
    private readonly rawQuery: string,
    private readonly maxBodyBytes: number,
  ) {}

  get method(): string {
    return this.inc.head.method;
  }

  get query(): URLSearchParams {
    return (this.parsedQuery ??= new URLSearchParams(this.rawQuery));
  }

  get remoteAddress(): string {
    return this.inc.socket.remoteAddress ?? "";
  }

  answerHeader(name: string, value: string): void {
    if (/[\r\n\0]/.test(name + value)) throw new Error(`header ${name} with a line break`);
    (this.inc.extraHeaders ??= []).push(name, value);
  }

  header(name: string): string | undefined {
    const raw = this.inc.head.rawHeaders;
    const lower = name.toLowerCase();
    for (let i = 0; i < raw.length; i += 2) {
      const n = raw[i]!;
      if (n.length === lower.length && n.toLowerCase() === lower) return raw[i + 1];
    }
    return undefined;
  }

  body(limit = this.maxBodyBytes): Promise<Buffer> {
    const { inc } = this;
    try {
      this.take(limit);
    } catch (err) {
      return Promise.reject(err);
    }
    if (!inc.head.hasBody) return Promise.resolve(EMPTY);
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        reject(err);
      };
      inc.onClose((completed) => completed || fail(gone()));
      inc.readBody({
        onBody(chunk) {
          if (settled) return; // past the limit: the rest is dropped (after the answer, see send)
          size += chunk.length;
          if (size > limit) return fail(tooLarge(limit));
          chunks.push(chunk);
        },
        onEnd() {
          if (settled) return;
          settled = true;
          resolve(Buffer.concat(chunks, size));
        },
      });
    });
  }

  async json(limit = this.maxBodyBytes): Promise<unknown> {
    const type = this.header("content-type");
    if (type !== undefined && !/^application\/json\b/i.test(type)) throw new HttpError(415, "content type must be application/json");
    const body = await this.body(limit);
    try {
      return JSON.parse(body.toString("utf8"));
    } catch (err) {
      throw new HttpError(400, `invalid JSON: ${(err as Error).message}`);
    }
  }

  stream(limit: number): Readable {
    const { inc } = this;
    this.take(limit);
    const stream = new Readable({ read: () => inc.resumeBody() });
    if (!inc.head.hasBody) {
      stream.push(null);
      return stream;
    }
    let size = 0;
    inc.onClose((completed) => completed || stream.readableEnded || stream.destroy(gone()));
    inc.readBody({
      onBody(chunk) {
        if (stream.destroyed) return; // dropped (after the answer, see send)
        size += chunk.length;
        if (size > limit) return void stream.destroy(tooLarge(limit));
        if (!stream.push(chunk)) inc.pauseBody();
      },
      onEnd() {
        if (!stream.destroyed) stream.push(null);
      },
    });
    return stream;
  }

  /** the body is read once; a declared length past the limit fails before reading */
  private take(limit: number): void {
    if (this.bodyTaken) throw new Error("the request body was already taken");
    this.bodyTaken = true;
    const declared = Number(this.header("content-length"));
    if (declared > limit) throw tooLarge(limit);
    // closed before the body was in: no more bytes (nor close event) will come
    if (this.inc.socket.destroyed && !this.inc.requestComplete) throw gone();
  }
}

/** A JSON object body that may be empty (an action without options): {} when empty, 400 otherwise
 *  when it is not a JSON object. */
export async function optionalJsonObject(req: ApiRequest, limit?: number): Promise<Record<string, unknown>> {
  const raw = await req.body(limit);
  if (raw.length === 0) return {};
  let body: unknown;
  try {
    body = JSON.parse(raw.toString("utf8"));
  } catch (err) {
    throw new HttpError(400, `invalid JSON: ${(err as Error).message}`);
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new HttpError(400, "body must be a JSON object");
  return body as Record<string, unknown>;
}
