// The query socket's HTTP handling: auth before routing, bodies from the per-revision cache,
// long-polls through the catalog's waiter list. Never a Docker call per request.
import { createServer, type Server, type Socket } from "node:net";
import { ClientConnSet, errorBody, refuseJson, sendJsonBody as send, type Incoming } from "../http/index.js";
import type { CatalogView, Revision } from "../catalog/index.js";
import { log } from "../log.js";
import { isDeploymentName } from "../base/index.js";
import { RevisionBodies } from "./bodies.js";
import { BadRequest, parseAuthorization, parseIngressParam, parsePollParams, parseQuery } from "./request.js";

export interface QueryServerOptions {
  catalog: CatalogView;
  /** deployment of a presented token, or undefined */
  lookupToken(token: string): string | undefined;
  /** changes whenever the tokens change (voids per-connection auth caches); constant if absent */
  tokensGeneration?(): number;
  staleAfterSecs(): number;
  pollDefaultTimeoutSecs(): number;
  maxConnections: number;
}

/** Server limits from the design; long-polls are not cut (a request is only timed until its head
 *  is in: the socket reads no request bodies, and one sent anyway drains under the keep-alive timeout). */
export const LIMITS = {
  headersTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  maxHeaderSize: 16 * 1024,
};

const HEALTHZ = Buffer.from(`{"status":"ok"}`);
const NOT_FOUND = errorBody("not found");
const METHOD_NOT_ALLOWED = errorBody("method not allowed");
const BAD_AUTH = errorBody("missing or invalid Authorization header");
const INVALID_TOKEN = errorBody("invalid token");
const UNKNOWN_DEPLOYMENT = errorBody("deployment not found");
const INVALID_NAME = errorBody("invalid deployment name");
const DOCKER_DOWN = errorBody("docker unavailable");
const TOO_MANY = errorBody("too many waiting polls");
const INTERNAL = errorBody("internal error");

/** The first Authorization header in the raw header list. */
function authorizationHeader(raw: string[]): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 13 && name.toLowerCase() === "authorization") return raw[i + 1];
  }
  return undefined;
}

export class QueryServer {
  readonly server: Server;
  private bodies: RevisionBodies | undefined;
  private stopping = false;
  /** pending long-polls of this server (each cancels its catalog waiter) */
  private polls = new Set<Incoming>();
  private authCache = new WeakMap<Socket, { header: string; deployment: string; generation: number }>();
  /** our own HTTP/1.1 server side: a waiting poll costs a few KB, not node:http's ~10 */
  private conns: ClientConnSet;

  constructor(private opts: QueryServerOptions) {
    // a poll client that half-closes has gone: its waiter leaves at once (as with node:http)
    const settings = { maxHeaderBytes: LIMITS.maxHeaderSize, idleMs: LIMITS.keepAliveTimeoutMs, headMs: LIMITS.headersTimeoutMs, answerHalfClosed: false, maxConnections: opts.maxConnections };
    this.conns = new ClientConnSet(() => settings, {
      request: (inc) => this.request(inc),
      refuse: refuseJson,
    });
    this.server = createServer({ allowHalfOpen: true }, this.conns.accept);
    this.server.maxConnections = opts.maxConnections;
  }

  private request(inc: Incoming): void {
    try {
      this.handle(inc);
    } catch (err) {
      log.error("query request failed", { path: inc.head.url, error: (err as Error).message });
      if (!inc.headersSent) send(inc, 500, INTERNAL);
      else inc.destroy();
    }
  }

  /** close every client connection (after the listener stopped) */
  closeAllConnections(): void {
    this.conns.closeAll();
  }

  /** resolves when every client connection is closed */
  drained(): Promise<void> {
    return this.conns.empty();
  }

  get pendingPolls(): number {
    return this.polls.size;
  }


  private revisionBodies(): RevisionBodies {
    return this.bodiesFor(this.opts.catalog.current());
  }

  /** The cached bodies of a revision (the current one is kept; an older one is made for the occasion). */
  private bodiesFor(rev: Revision): RevisionBodies {
    if (this.bodies?.revision === rev) return this.bodies;
    const made = new RevisionBodies(rev);
    if (rev === this.opts.catalog.current()) this.bodies = made;
    return made;
  }

  private handle(res: Incoming): void {
    const url = res.head.url;
    const q = url.indexOf("?");
    const path = q < 0 ? url : url.slice(0, q);
    const method = res.head.method;
    const readOnly = method === "GET" || method === "HEAD";
    if (path === "/healthz") {
      if (!readOnly) return send(res, 405, METHOD_NOT_ALLOWED, ["Allow", "GET, HEAD"]);
      return send(res, 200, HEALTHZ);
    }
    // auth before routing: an unauthenticated caller learns nothing about the paths
    const deployment = this.authenticate(res);
    if (deployment === undefined) return send(res, 401, BAD_AUTH, ["WWW-Authenticate", "Bearer"]);
    if (deployment === null) {
      log.debug("query request with an invalid token", { method, path });
      return send(res, 401, INVALID_TOKEN, ["WWW-Authenticate", "Bearer"]);
    }
    log.debug("query request", { deployment, method, path });
    if (!readOnly) return send(res, 405, METHOD_NOT_ALLOWED, ["Allow", "GET, HEAD"]);
    try {
      const params = parseQuery(q < 0 ? "" : url.slice(q + 1));
      if (path === "/poll") return this.poll(res, params);
      if (path !== "/services" && path !== "/deployments" && !path.startsWith("/status/")) return send(res, 404, NOT_FOUND);
      const stale = this.staleness();
      if (stale === "down") return send(res, 503, DOCKER_DOWN);
      const extra = stale === undefined ? undefined : ["X-Stevedore-Stale", String(stale)];
      const bodies = this.revisionBodies();
      if (path === "/services") return send(res, 200, bodies.services(parseIngressParam(params)), extra);
      if (path === "/deployments") return send(res, 200, bodies.deployments(), extra);
      const name = path.slice("/status/".length);
      if (!isDeploymentName(name)) return send(res, 400, INVALID_NAME);
      const body = bodies.statusOf(name, Date.now());
      if (!body) return send(res, 404, UNKNOWN_DEPLOYMENT);
      return send(res, 200, body, extra);
    } catch (err) {
      if (err instanceof BadRequest) return send(res, 400, errorBody(err.message));
      throw err;
    }
  }

  /**
   * The deployment of the request's token; undefined for a bad header, null for an unknown token.
   * A keep-alive connection that repeats the header it authenticated with skips the hashing
   * until the tokens change (the comparison is against what this same client sent before).
   */
  private authenticate(req: Incoming): string | undefined | null {
    const header = authorizationHeader(req.head.rawHeaders);
    const generation = this.opts.tokensGeneration?.() ?? 0;
    const cached = this.authCache.get(req.socket);
    if (cached !== undefined && cached.header === header && cached.generation === generation) return cached.deployment;
    const auth = parseAuthorization(header);
    if ("error" in auth) return undefined;
    const deployment = this.opts.lookupToken(auth.token);
    if (deployment === undefined) return null;
    // the lookup may have reloaded the tokens: cache against the generation it used
    this.authCache.set(req.socket, { header: header!, deployment, generation: this.opts.tokensGeneration?.() ?? 0 });
    return deployment;
  }

  /** undefined: fresh; a number: seconds since Docker last confirmed the catalog; "down": too stale to answer. */
  private staleness(): number | "down" | undefined {
    const catalog = this.opts.catalog;
    if (catalog.dockerState() === "ok") return undefined;
    const age = Math.max(0, Math.floor((performance.now() - catalog.lastConfirmedAt()) / 1000));
    return age > this.opts.staleAfterSecs() ? "down" : age;
  }

  private poll(res: Incoming, params: Map<string, string>): void {
    const { since, timeoutSecs } = parsePollParams(params, this.opts.pollDefaultTimeoutSecs());
    if (this.stopping) return send(res, 200, this.revisionBodies().pollChanged);
    let answered = false;
    let gone = false;
    const outcome = this.opts.catalog.wait(since, timeoutSecs * 1000, (result) => {
      answered = true;
      this.polls.delete(res);
      if (gone) return;
      const bodies = this.bodiesFor(result.revision);
      send(res, 200, result.changed ? bodies.pollChanged : bodies.pollUnchanged);
    });
    if (outcome.kind === "now") return send(res, 200, this.bodiesFor(outcome.revision).pollChanged);
    if (outcome.kind === "full") return send(res, 503, TOO_MANY);
    if (answered) return;
    this.polls.add(res);
    // a client that goes away leaves the waiter list at once
    res.onClose((completed) => {
      if (answered || completed) return;
      gone = true;
      this.polls.delete(res);
      outcome.cancel();
    });
  }

  /** Stop: new polls are answered at once so clients come back to the next daemon, every answer
   *  closes its connection, idle connections close now. */
  markStopping(): void {
    this.stopping = true;
    this.conns.stop();
  }
}
