// The proxy component: HTTP and HTTPS listeners over the merged routing table.
import { createServer as createNetServer, type Server, type Socket } from "node:net";
import { X509Certificate } from "node:crypto";
import { createServer as createTlsServer, type Server as TlsServer, type TlsOptions } from "node:tls";
import type { Duplex } from "node:stream";
import { EventEmitter } from "node:events";
import { parseHostPort } from "../base/index.js";
import type { DynamicConfig } from "../config/index.js";
import type { Component, DaemonContext, ListenerMap } from "../component/index.js";
import type { Revision } from "../catalog/index.js";
import { log } from "../log.js";
import { untilDeadline } from "../deadline.js";
import type { HttpFront, HttpsFront, ProxyApp, ProxyBackend, ProxyCertificate, ProxyStateView, RouteInfo } from "./types.js";
import { buildTables, describeTables, type Tables } from "./build.js";
import { UpstreamSet } from "./upstream.js";
import { HealthChecker, DEFAULT_HEALTH, type HealthOptions } from "./health.js";
import { ACME_TLS, loadConfigCerts, SniIndex, type ConfigCerts } from "./tls.js";
import { clientAddress, scanRequest } from "./headers.js";
import { normalizeHost, type Route, type RouteTable } from "./table.js";
import { forward, type Exchange } from "./forward.js";
import { AccessLog, checkAccessLogFile } from "./access-log.js";
import { duration, requests, statusClass, upstreamDuration } from "./proxy-metrics.js";
import { metrics } from "../metrics/index.js";
import { refuseRaw, sendStatus } from "./answers.js";
import { tunnel, type TunnelSettings } from "./websocket.js";
import { join } from "node:path";
import { AcmeManager, type AcmeSettings, type CertRow } from "./acme/manager.js";
import { ClientConnSet, describeBindError, guardTlsHandshakes, httpDate, listen, type Incoming, type RequestHead, type ServerSettings } from "../http/index.js";

export interface ProxyOptions {
  /** active health check timing (tests shorten the interval) */
  health?: Partial<HealthOptions>;
  /** the command socket's run-time state (filled in place when it loads); none: empty */
  commandState?: ProxyStateView;
}

/** The command state when no command socket runs: no apps, fronts, backends or certificates. */
class EmptyState extends EventEmitter<{ change: [] }> implements ProxyStateView {
  apps(): ReadonlyMap<string, ProxyApp> { return new Map(); }
  httpFronts(): readonly HttpFront[] { return []; }
  httpsFronts(): readonly HttpsFront[] { return []; }
  backends(): readonly ProxyBackend[] { return []; }
  certificates(): ReadonlyMap<string, ProxyCertificate> { return new Map(); }
}

type Proto = "http" | "https";

interface Listener {
  proto: Proto;
  address: string;
  server: Server | undefined;
  /** its client connections (our own HTTP/1.1 server side) */
  conns: ClientConnSet;
  state: "disabled" | "listening" | "unavailable" | "stopped";
  /** the errno code (EADDRINUSE) */
  error?: string;
  /** the cause for an operator: "0.0.0.0:80: address already in use" */
  reason?: string;
}

type Settings = TunnelSettings & ServerSettings;

function settingsOf(dyn: DynamicConfig): Settings {
  const idleMs = dyn.proxy_idle_timeout_secs * 1000;
  return {
    connectTimeoutMs: dyn.proxy_connect_timeout_secs * 1000,
    responseTimeoutMs: dyn.proxy_response_timeout_secs * 1000,
    idleMs,
    headMs: idleMs,
    answerHalfClosed: true,
    maxHeaderBytes: dyn.proxy_max_header_bytes,
    maxConnections: dyn.proxy_max_connections,
  };
}

export class ProxyComponent implements Component {
  readonly name = "proxy";
  private settings: Settings;
  private tables: Tables | undefined;
  private dirty = true;
  private rebuildScheduled = false;
  private state: ProxyStateView;
  private unsubscribe: (() => void)[] = [];
  private certs: ConfigCerts = { sites: [] };
  private prepared = new WeakMap<DynamicConfig, ConfigCerts>();
  private sni = new SniIndex();
  private upstreams: UpstreamSet;
  private health: HealthChecker;
  private endpoints: Record<Proto, Listener>;
  private httpsPort: number | undefined;
  private inflight = 0;
  private stopping = false;
  private drained: (() => void) | undefined;
  private tunnels = new Set<Duplex>();
  /** between start and stop: `proxy routes` answers this table */
  private routing = false;
  readonly accessLog = new AccessLog();
  /** automatic HTTPS (acme = true): certificates, challenges */
  private acme: AcmeManager;
  /** hosts whose HTTP requests answer 308 to HTTPS (an ACME host with a certificate, redirect on) */
  private redirects = new Set<string>();

  constructor(
    private ctx: DaemonContext,
    opts: ProxyOptions = {},
  ) {
    const dyn = ctx.dynamic();
    this.settings = settingsOf(dyn);
    this.upstreams = new UpstreamSet(() => this.settings.idleMs);
    this.health = new HealthChecker({ ...DEFAULT_HEALTH, ...opts.health });
    this.state = opts.commandState ?? new EmptyState();
    const st = ctx.config.static;
    const listener = (proto: Proto, address: string): Listener => ({
      proto,
      address,
      server: undefined,
      state: "disabled",
      conns: new ClientConnSet(() => this.settings, {
        request: (inc) => this.handle(inc, proto),
        upgrade: (head, socket, rest) => this.upgrade(head, socket, rest, proto),
        refuse: (inc, status) => this.refuse(inc, status),
      }),
    });
    this.endpoints = { http: listener("http", st.proxy_http_listen), https: listener("https", st.proxy_https_listen) };
    if (st.proxy_https_listen) this.httpsPort = parseHostPort(st.proxy_https_listen)?.port;
    this.accessLog.configure(dyn.access_log, dyn.access_log_query);
    metrics.gauge("stevedore_proxy_open_connections", "Open client connections of the proxy, by listener.", ["proto"], () =>
      Object.values(this.endpoints).filter((l) => l.server).map((l) => [[l.proto], l.conns.size]));
    metrics.gauge("stevedore_proxy_inflight_requests", "Requests of the proxy being answered.", [], () => [[[], this.inflight]]);
    this.acme = new AcmeManager(join(st.state_dir, "acme"), () => acmeSettings(this.ctx.dynamic()));
    this.sni.challenge = (name) => this.acme.alpnChallenge(name);
  }

  // ---- lifecycle -------------------------------------------------------------------------

  async start(): Promise<void> {
    const { certs, errors } = await loadConfigCerts(this.ctx.dynamic());
    for (const e of errors) log.error("proxy certificate not loaded", { error: e });
    this.certs = certs;
    // stored certificates are served from the first handshake, before any ACME traffic
    if (this.ctx.dynamic().acme) await this.acme.load();
    this.acme.on("change", this.onStateChange);
    this.unsubscribe.push(() => this.acme.off("change", this.onStateChange), () => this.acme.stop());
    this.state.on("change", this.onStateChange);
    const onRevision = () => this.markDirty();
    this.ctx.catalog.on("revision", onRevision);
    this.unsubscribe.push(() => this.ctx.catalog.off("revision", onRevision), () => this.state.off("change", this.onStateChange));
    this.rebuild();
    this.routing = true;
    await this.listen(this.endpoints.http);
    await this.listen(this.endpoints.https);
  }

  async stop(graceful: boolean, deadline: number): Promise<void> {
    this.stopping = true;
    const ls = Object.values(this.endpoints);
    for (const l of ls) {
      l.server?.close();
      l.conns.stop(); // idle connections close now, busy ones after their answer
    }
    if (graceful && this.inflight > 0) await untilDeadline(new Promise<void>((resolve) => (this.drained = resolve)), deadline);
    for (const l of ls) l.conns.closeAll();
    for (const t of this.tunnels) t.destroy();
    for (const l of Object.values(this.endpoints)) if (l.state === "listening") l.state = "stopped";
    for (const off of this.unsubscribe.splice(0)) off();
    this.health.stopAll();
    this.upstreams.closeAll();
    this.routing = false;
    this.accessLog.close();
  }

  /** SIGUSR1: reopen the access log file (logrotate renamed it) */
  reopenLogs(): void {
    this.accessLog.reopen();
  }

  listeners(): ListenerMap {
    const out: ListenerMap = new Map();
    for (const l of [this.endpoints.http, this.endpoints.https]) if (l.server && l.state === "listening") out.set(`proxy-${l.proto}`, { server: l.server, address: l.address });
    return out;
  }

  status(): Record<string, unknown> {
    const ls = Object.values(this.endpoints);
    const state = ls.some((l) => l.state === "listening") ? "listening" : ls.every((l) => l.state === "disabled") ? "disabled" : ls.some((l) => l.state === "unavailable") ? "unavailable" : "stopped";
    const describe = (l: Listener) => ({ state: l.state, address: l.address || undefined, error: l.error, reason: l.reason });
    const t = this.current();
    return { state, http: describe(this.endpoints.http), https: describe(this.endpoints.https), sites: new Set(this.routedHostnames()).size, routes: describeTables(t).length, inflight: this.inflight };
  }

  async prepareReload(next: DynamicConfig): Promise<string[]> {
    const { certs, errors } = await loadConfigCerts(next);
    const logError = await checkAccessLogFile(next.access_log);
    if (logError) errors.push(logError);
    if (errors.length === 0) this.prepared.set(next, certs);
    return errors;
  }

  reloaded(dyn: DynamicConfig): void {
    this.settings = settingsOf(dyn);
    this.accessLog.configure(dyn.access_log, dyn.access_log_query);
    // acme switched on by a reload: the stored certificates first, then the hosts' orders
    if (dyn.acme) void this.acme.load().then(() => this.markDirty(), (e: Error) => log.error("acme certificates not loaded", { error: e.message }));
    const certs = this.prepared.get(dyn);
    if (certs) this.certs = certs;
    for (const l of Object.values(this.endpoints)) if (l.server) l.server.maxConnections = dyn.proxy_max_connections;
    // the context for clients without SNI: the default certificate, or none (their handshake fails)
    const def = this.certs.default;
    (this.endpoints.https.server as TlsServer | undefined)?.setSecureContext(def ? { cert: def.cert, key: def.key } : {});
    this.markDirty();
  }

  *routedHostnames(): Iterable<string> {
    const t = this.current();
    const seen = new Set<string>();
    for (const table of [t.http, t.https])
      for (const h of table.hostnames())
        if (!seen.has(h)) {
          seen.add(h);
          yield h;
        }
  }

  /** the merged routing table with each route's source (for `stevedore proxy routes`) */
  routes(): RouteInfo[] {
    const t = this.current();
    const served = (h: string) => this.certs.default !== undefined || this.sni.hasNamed(h);
    return describeTables(t, served);
  }

  /** routes() while the data plane runs (started, not stopped); undefined otherwise */
  runningRoutes(): RouteInfo[] | undefined {
    return this.routing ? this.routes() : undefined;
  }

  // ---- routing table ---------------------------------------------------------------------

  private onStateChange = () => this.markDirty();

  /** Sources changed: rebuild soon (once per burst), or at the next lookup if that comes first. */
  private markDirty(): void {
    this.dirty = true;
    if (this.rebuildScheduled) return;
    this.rebuildScheduled = true;
    setImmediate(() => {
      this.rebuildScheduled = false;
      if (this.dirty && !this.stopping) this.rebuild();
    });
  }

  private rebuild(): void {
    const rev: Revision = this.ctx.catalog.current();
    this.tables = buildTables({
      state: this.state,
      dyn: this.ctx.dynamic(),
      revision: rev,
      upstreams: this.upstreams,
      health: this.health,
      previous: this.tables?.pools,
    });
    const dyn = this.ctx.dynamic();
    this.sni.rebuild(this.state.certificates(), this.certs, dyn.acme ? this.acme.certs() : []);
    this.dirty = false;
    this.redirects = new Set();
    if (!dyn.acme) return;
    const wanted: string[] = [];
    const ingress = dyn.acme_hosts.includes("ingress");
    for (const [host, c] of this.tables.acmeCandidates) {
      if (c.source === "ingress" && !ingress && !dyn.acme_hosts.includes(host)) continue;
      if (this.sni.handInstalled(host)) continue; // a hand-installed certificate wins
      wanted.push(host);
      if (c.redirect && this.acme.cert(host)) this.redirects.add(host);
    }
    if (this.routing || !this.stopping) this.acme.want(wanted);
  }

  /** the `stevedore certs` rows: ACME hosts, and the hand-installed names with their source */
  certificates(): (CertRow & { source: "acme" | "config" | "command" })[] {
    const rows: (CertRow & { source: "acme" | "config" | "command" })[] = [];
    const seen = new Set<string>();
    const hand = (names: readonly string[], source: "config" | "command", pem: string) => {
      let issuer: string | undefined, notAfter: string | undefined;
      try {
        const x = new X509Certificate(pem);
        issuer = /CN=([^\n]+)/.exec(x.issuer)?.[1] ?? x.issuer;
        notAfter = new Date(x.validTo).toISOString();
      } catch {
        /* listed without details */
      }
      for (const host of names) if (!seen.has(`${source}:${host}`)) {
        seen.add(`${source}:${host}`);
        rows.push({ host, issuer, notAfter, source, wanted: false });
      }
    };
    for (const c of this.state.certificates().values()) hand(c.names, "command", c.certificate);
    for (const s of this.certs.sites) hand(s.names, "config", s.pem);
    // an ACME certificate still on disk for a host that is now hand-installed is not served: not listed
    for (const r of this.acme.rows()) if ((r.issuer || r.wanted) && !this.sni.handInstalled(r.host)) rows.push({ ...r, source: "acme" });
    return rows;
  }

  private current(): Tables {
    if (this.dirty || !this.tables) this.rebuild();
    return this.tables!;
  }

  // ---- listeners -------------------------------------------------------------------------

  private async listen(l: Listener): Promise<void> {
    if (!l.address) return;
    const hp = parseHostPort(l.address);
    if (!hp) {
      l.state = "unavailable";
      l.error = "bad address";
      l.reason = `${l.address}: must be host:port`;
      return;
    }
    const proto = l.proto;
    // half-open: a client that shuts down its side after the request still gets the answer
    const server: Server =
      proto === "https"
        ? createTlsServer({ allowHalfOpen: true, ...this.tlsCallbacks(), ...(this.certs.default ? { cert: this.certs.default.cert, key: this.certs.default.key } : {}) }, this.acceptTls(l))
        : createNetServer({ allowHalfOpen: true, noDelay: true }, l.conns.accept);
    server.maxConnections = this.ctx.dynamic().proxy_max_connections;
    if (proto === "https") guardTlsHandshakes(server as TlsServer, { name: "proxy https", handshakeMs: () => this.ctx.dynamic().tls_handshake_timeout_secs * 1000 });
    const err = await this.ctx.inherit(server, `proxy-${proto}`, l.address)
      .then((inherited) => (inherited ? undefined : listen(server, { port: hp.port, host: hp.host })))
      .then(() => undefined, (e: Error) => e);
    if (err) {
      l.state = "unavailable";
      l.error = (err as NodeJS.ErrnoException).code ?? err.message;
      l.reason = `${l.address}: ${describeBindError(err)}`;
      log.error("proxy listener unavailable", { proto, address: l.address, error: l.error });
      return;
    }
    server.on("error", (e) => log.error("proxy listener error", { proto, error: e.message }));
    l.server = server;
    l.state = "listening";
    log.info("proxy listening", { proto, address: l.address });
  }

  /** SNI and ALPN callbacks; node:tls calls both with the TLSSocket as `this` (tested in test/proxy/tls-alpn.test.ts) */
  private tlsCallbacks(): Pick<TlsOptions, "SNICallback" | "ALPNCallback"> {
    const sni = this.sni;
    const acmeTls = () => {
      const dyn = this.ctx.dynamic();
      return dyn.acme && dyn.acme_challenges.includes("tls-alpn-01");
    };
    return {
      SNICallback(this: object, name, cb) {
        sni.sni(this, name, cb);
      },
      ALPNCallback(this: object, info) {
        return sni.alpn(this, info.protocols, acmeTls());
      },
    };
  }

  private acceptTls(l: Listener): (socket: Socket) => void {
    return (socket) => {
      if ((socket as Socket & { alpnProtocol?: string | false }).alpnProtocol === ACME_TLS) return void socket.end();
      l.conns.accept(socket);
    };
  }

  // ---- hot path --------------------------------------------------------------------------

  private table(proto: Proto): RouteTable {
    const t = this.current();
    return proto === "https" ? t.https : t.http;
  }

  private handle(inc: Incoming, proto: Proto): void {
    this.inflight++;
    const t0 = performance.now();
    const scan = scanRequest(inc.head.rawHeaders, clientAddress(inc.socket.remoteAddress), proto);
    let route: Route | undefined;
    let x: Exchange | undefined;
    // one closure per request: metrics and the access line once the answer is complete or cut
    inc.onClose((completed) => {
      this.observe(inc, t0, scan.host, route, x, completed);
      this.done();
    });
    const host = normalizeHost(scan.host);
    if (host === undefined) return sendStatus(inc, 400);
    const path = inc.head.url;
    if (proto === "http" && path.startsWith(CHALLENGE_PATH)) {
      // ACME HTTP-01, ahead of every route; unknown tokens go on to the routes (a backend may run its own ACME)
      const answer = this.acme.httpChallenge(path.slice(CHALLENGE_PATH.length));
      if (answer !== undefined) return void inc.answer(200, "OK", ["Date", httpDate(), "Content-Type", "application/octet-stream", "Content-Length", String(Buffer.byteLength(answer))], Buffer.from(answer));
    } else if (proto === "http" && this.redirects.has(host) && this.httpsPort !== undefined) return this.redirect(inc, host, path, 308);
    route = this.table(proto).lookup(host, path);
    if (proto === "http") {
      // an application with https_redirect answers HTTP with 301, also when only its HTTPS front names the host
      const redirect = route ?? this.table("https").lookup(host, path);
      if (redirect?.pool.options.httpsRedirect && this.httpsPort !== undefined) return this.redirect(inc, host, path);
    }
    if (!route) return sendStatus(inc, 404);
    if (route.pool.members.length === 0) return sendStatus(inc, 503);
    x = forward(inc, route, scan, this.settings);
  }

  /** a request our HTTP/1.1 server side refused (bad head, 408, 431...): counted and logged too */
  private refuse(inc: Incoming, status: number): void {
    const t0 = performance.now();
    inc.onClose((completed) => this.observe(inc, t0, undefined, undefined, undefined, completed));
    sendStatus(inc, status);
  }

  private observe(inc: Incoming, t0: number, host: string | undefined, route: Route | undefined, x: Exchange | undefined, completed: boolean): void {
    const totalMs = performance.now() - t0;
    // nginx's 499: the client went away before an answer
    const status = inc.status || (completed ? 0 : 499);
    const key = route ? route.hostname + route.pathBegin : "";
    const source = route ? route.source : "none";
    requests.labels(key, source, statusClass(status)).inc();
    duration.labels(key).observe(totalMs / 1000);
    const upstreamMs = x ? x.upstreamMs : -1;
    if (upstreamMs >= 0) upstreamDuration.labels(key).observe(upstreamMs / 1000);
    if (!this.accessLog.enabled) return;
    this.accessLog.record({
      client: clientAddress(inc.socket.remoteAddress),
      host: host ?? "",
      // a head that could not be read is a placeholder without headers: no method or path to show
      method: inc.head.rawHeaders.length || host ? inc.head.method : "-",
      url: inc.head.rawHeaders.length || host ? inc.head.url : "",
      status,
      bytes: inc.bytes,
      upstream: x?.member?.up.address ?? "",
      upstreamMs,
      totalMs,
      source,
    });
  }

  private redirect(inc: Incoming, host: string, path: string, status: 301 | 308 = 301): void {
    const port = this.httpsPort === 443 ? "" : `:${this.httpsPort}`;
    inc.answer(status, status === 301 ? "Moved Permanently" : "Permanent Redirect", ["Date", httpDate(), "Location", `https://${host}${port}${path}`, "Content-Length", "0"], Buffer.alloc(0));
  }

  private upgrade(head: RequestHead, socket: Socket, rest: Buffer, proto: Proto): void {
    const answer = (status: number) => refuseRaw(socket, status);
    if (this.stopping) return answer(503);
    const scan = scanRequest(head.rawHeaders, clientAddress(socket.remoteAddress), proto);
    const host = normalizeHost(scan.host);
    if (host === undefined || !scan.websocket) return answer(400);
    const route = this.table(proto).lookup(host, head.url);
    if (!route) return answer(404);
    if (!route.websocket) return answer(400);
    tunnel(head, socket, rest, route, scan, this.settings, this.tunnels);
  }

  private done(): void {
    this.inflight--;
    if (this.stopping && this.inflight === 0) this.drained?.();
  }
}

const CHALLENGE_PATH = "/.well-known/acme-challenge/";

function acmeSettings(dyn: DynamicConfig): AcmeSettings {
  return {
    enabled: dyn.acme,
    email: dyn.acme_email,
    directoryUrl: dyn.acme_directory_url,
    caFile: dyn.acme_ca_file,
    renewBeforeDays: dyn.acme_renew_before_days,
    challenges: dyn.acme_challenges,
  };
}

export function createProxy(ctx: DaemonContext, opts?: ProxyOptions): ProxyComponent {
  return new ProxyComponent(ctx, opts);
}
