// The command socket's state store: applications, fronts, backends, certificates, with the
// design's semantics (implicit applications, idempotent adds, errors for unknown removes,
// fingerprint-keyed certificates that cannot be removed while in use). Collections are replaced,
// never mutated, so what apps()/httpFronts()/... returned stays a consistent snapshot.
import { EventEmitter } from "node:events";
import type { HttpFront, HttpsFront, ProxyApp, ProxyBackend, ProxyCertificate, ProxyStateView } from "../types.js";
import { parseCertificate } from "./certs.js";
import type { BackendSpec, StateOrder } from "./messages.js";
import { formatHostPort } from "../../base/index.js";

export const LIMITS = { apps: 10_000, fronts: 50_000, backends: 50_000, certificates: 10_000 };

export interface Outcome {
  ok: boolean;
  message: string;
  changed: boolean;
  data?: unknown;
}
const ok = (message: string, data?: unknown): Outcome => ({ ok: true, message, changed: true, data });
const same = (data?: unknown): Outcome => ({ ok: true, message: "already present", changed: false, data });
const error = (message: string): Outcome => ({ ok: false, message, changed: false });

const frontName = (f: HttpFront) => `${f.hostname}${f.pathBegin || ""} (application ${f.appId})`;
const sameRoute = (a: HttpFront, b: HttpFront) => a.hostname === b.hostname && a.pathBegin === b.pathBegin;

export interface StateDump {
  applications: { app_id: string; sticky_session: boolean; https_redirect: boolean; load_balancing_policy: string }[];
  http_fronts: { app_id: string; hostname: string; path_begin: string }[];
  https_fronts: { app_id: string; hostname: string; path_begin: string; fingerprint: string }[];
  backends: { app_id: string; backend_id: string; address: string }[];
  certificates: Record<string, string[]>;
}

export class ProxyState extends EventEmitter<{ change: [] }> implements ProxyStateView {
  private appMap = new Map<string, ProxyApp>();
  private http: HttpFront[] = [];
  private https: HttpsFront[] = [];
  private backendList: ProxyBackend[] = [];
  private certMap = new Map<string, ProxyCertificate>();

  apps(): ReadonlyMap<string, ProxyApp> { return this.appMap; }
  httpFronts(): readonly HttpFront[] { return this.http; }
  httpsFronts(): readonly HttpsFront[] { return this.https; }
  backends(): readonly ProxyBackend[] { return this.backendList; }
  certificates(): ReadonlyMap<string, ProxyCertificate> { return this.certMap; }

  /** Apply one order; emits "change" when something changed. */
  apply(order: StateOrder): Outcome {
    const out = this.applyQuiet(order);
    if (out.changed) this.emit("change");
    return out;
  }

  /** An independent copy (LOAD_STATE validates a whole file against one before applying). */
  clone(): ProxyState {
    const c = new ProxyState();
    c.copyFrom(this);
    return c;
  }

  /** Take over another state's content (after a validated load); emits "change". */
  replaceWith(other: ProxyState): void {
    this.copyFrom(other);
    this.emit("change");
  }

  private copyFrom(o: ProxyState): void {
    this.appMap = new Map(o.appMap);
    this.http = o.http;
    this.https = o.https;
    this.backendList = o.backendList;
    this.certMap = new Map(o.certMap);
  }

  /** The orders that rebuild this state from empty (SAVE_STATE and the state file). */
  toOrders(): StateOrder[] {
    const out: StateOrder[] = [];
    for (const c of this.certMap.values())
      out.push({ type: "ADD_CERTIFICATE", cert: { certificate: c.certificate, chain: c.chain, key: c.key, names: c.names } });
    for (const a of this.appMap.values()) out.push({ type: "ADD_APPLICATION", app: { ...a } });
    for (const b of this.backendList) out.push({ type: "ADD_BACKEND", backend: { appId: b.appId, backendId: b.backendId, ip: b.ip, port: b.port } });
    for (const f of this.http) out.push({ type: "ADD_HTTP_FRONT", front: { ...f } });
    for (const f of this.https) out.push({ type: "ADD_HTTPS_FRONT", front: { ...f } });
    return out;
  }

  /** DUMP_STATE's data: never private keys. */
  dump(): StateDump {
    const byFront = (a: HttpFront, b: HttpFront) => cmp(a.hostname, b.hostname) || cmp(a.pathBegin, b.pathBegin) || cmp(a.appId, b.appId);
    return {
      applications: [...this.appMap.values()]
        .sort((a, b) => cmp(a.appId, b.appId))
        .map((a) => ({ app_id: a.appId, sticky_session: a.stickySession, https_redirect: a.httpsRedirect, load_balancing_policy: a.loadBalancing })),
      http_fronts: [...this.http].sort(byFront).map((f) => ({ app_id: f.appId, hostname: f.hostname, path_begin: f.pathBegin })),
      https_fronts: [...this.https].sort(byFront).map((f) => ({ app_id: f.appId, hostname: f.hostname, path_begin: f.pathBegin, fingerprint: f.fingerprint })),
      backends: [...this.backendList]
        .sort((a, b) => cmp(a.appId, b.appId) || cmp(a.backendId, b.backendId))
        .map((b) => ({ app_id: b.appId, backend_id: b.backendId, address: formatHostPort(b.ip, b.port) })),
      certificates: Object.fromEntries([...this.certMap.values()].sort((a, b) => cmp(a.fingerprint, b.fingerprint)).map((c) => [c.fingerprint, c.names])),
    };
  }

  private applyQuiet(o: StateOrder): Outcome {
    switch (o.type) {
      case "ADD_APPLICATION": {
        const old = this.appMap.get(o.app.appId);
        if (old && old.stickySession === o.app.stickySession && old.httpsRedirect === o.app.httpsRedirect && old.loadBalancing === o.app.loadBalancing)
          return same();
        if (!old && this.appMap.size >= LIMITS.apps) return error(`too many applications (limit ${LIMITS.apps})`);
        this.appMap = new Map(this.appMap).set(o.app.appId, { ...o.app });
        return ok(`application ${o.app.appId} ${old ? "updated" : "added"}`);
      }
      case "REMOVE_APPLICATION": {
        if (!this.appMap.has(o.appId)) return error(`No such application ${o.appId}`);
        const other = <T extends { appId: string }>(x: T) => x.appId !== o.appId;
        const removed = this.http.length + this.https.length - this.http.filter(other).length - this.https.filter(other).length;
        const removedBackends = this.backendList.length - this.backendList.filter(other).length;
        this.appMap = new Map(this.appMap);
        this.appMap.delete(o.appId);
        this.http = this.http.filter(other);
        this.https = this.https.filter(other);
        this.backendList = this.backendList.filter(other);
        return ok(`application ${o.appId} removed with ${removed} frontends and ${removedBackends} backends`);
      }
      case "ADD_HTTP_FRONT": {
        const f = o.front;
        const clash = this.http.find((x) => sameRoute(x, f));
        if (clash) return clash.appId === f.appId ? same() : error(`frontend http ${f.hostname}${f.pathBegin} is already used by application ${clash.appId}`);
        if (this.http.length + this.https.length >= LIMITS.fronts) return error(`too many frontends (limit ${LIMITS.fronts})`);
        if (this.noRoomFor(f.appId)) return error(`too many applications (limit ${LIMITS.apps})`);
        this.ensureApp(f.appId);
        this.http = [...this.http, { ...f }];
        return ok(`http frontend ${frontName(f)} added`);
      }
      case "REMOVE_HTTP_FRONT": {
        const f = o.front;
        const i = this.http.findIndex((x) => sameRoute(x, f) && x.appId === f.appId);
        if (i < 0) return error(`No such frontend: http ${frontName(f)}`);
        this.http = this.http.filter((_, j) => j !== i);
        return ok(`http frontend ${frontName(f)} removed`);
      }
      case "ADD_HTTPS_FRONT": {
        const f = o.front;
        if (!this.certMap.has(f.fingerprint)) return error(`No such certificate ${f.fingerprint}: add it with ADD_CERTIFICATE first`);
        const clash = this.https.find((x) => sameRoute(x, f));
        if (clash) {
          if (clash.appId !== f.appId) return error(`frontend https ${f.hostname}${f.pathBegin} is already used by application ${clash.appId}`);
          if (clash.fingerprint !== f.fingerprint) return error(`frontend https ${frontName(f)} already uses certificate ${clash.fingerprint}`);
          return same();
        }
        if (this.http.length + this.https.length >= LIMITS.fronts) return error(`too many frontends (limit ${LIMITS.fronts})`);
        if (this.noRoomFor(f.appId)) return error(`too many applications (limit ${LIMITS.apps})`);
        this.ensureApp(f.appId);
        this.https = [...this.https, { ...f }];
        return ok(`https frontend ${frontName(f)} added`);
      }
      case "REMOVE_HTTPS_FRONT": {
        const f = o.front;
        const i = this.https.findIndex((x) => sameRoute(x, f) && x.appId === f.appId && (f.fingerprint === undefined || x.fingerprint === f.fingerprint));
        if (i < 0) return error(`No such frontend: https ${frontName(f)}${f.fingerprint ? ` with certificate ${f.fingerprint}` : ""}`);
        this.https = this.https.filter((_, j) => j !== i);
        return ok(`https frontend ${frontName(f)} removed`);
      }
      case "ADD_BACKEND":
        return this.addBackend(o.backend);
      case "REMOVE_BACKEND": {
        const b = o.backend;
        const address = formatHostPort(b.ip, b.port);
        const i = this.backendList.findIndex((x) =>
          x.appId === b.appId && (b.backendId !== undefined ? x.backendId === b.backendId : x.ip === b.ip && x.port === b.port));
        if (i < 0) return error(`No such backend ${b.backendId ?? address} in application ${b.appId}`);
        const gone = this.backendList[i]!;
        this.backendList = this.backendList.filter((_, j) => j !== i);
        return ok(`backend ${gone.backendId} (${formatHostPort(gone.ip, gone.port)}) of application ${b.appId} removed`);
      }
      case "ADD_CERTIFICATE": {
        const cert = parseCertificate(o.cert);
        if (typeof cert === "string") return error(cert);
        const data = { fingerprint: cert.fingerprint, names: cert.names };
        if (this.certMap.has(cert.fingerprint)) return same(data);
        if (this.certMap.size >= LIMITS.certificates) return error(`too many certificates (limit ${LIMITS.certificates})`);
        this.certMap = new Map(this.certMap).set(cert.fingerprint, cert);
        return ok(`certificate ${cert.fingerprint} added`, data);
      }
      case "REMOVE_CERTIFICATE": {
        if (!this.certMap.has(o.fingerprint)) return error(`No such certificate ${o.fingerprint}`);
        const users = this.https.filter((f) => f.fingerprint === o.fingerprint);
        if (users.length) return error(`certificate ${o.fingerprint} is used by https frontends: ${users.map(frontName).join(", ")}`);
        this.certMap = new Map(this.certMap);
        this.certMap.delete(o.fingerprint);
        return ok(`certificate ${o.fingerprint} removed`);
      }
    }
  }

  private addBackend(b: BackendSpec): Outcome {
    const address = formatHostPort(b.ip, b.port);
    const backendId = b.backendId ?? address;
    const byId = this.backendList.find((x) => x.appId === b.appId && x.backendId === backendId);
    if (byId) {
      if (byId.ip === b.ip && byId.port === b.port) return same();
      return error(`backend ${backendId} of application ${b.appId} already exists with address ${formatHostPort(byId.ip, byId.port)}`);
    }
    const byAddress = this.backendList.find((x) => x.appId === b.appId && x.ip === b.ip && x.port === b.port);
    if (byAddress) return error(`address ${address} is already backend ${byAddress.backendId} of application ${b.appId}`);
    if (this.backendList.length >= LIMITS.backends) return error(`too many backends (limit ${LIMITS.backends})`);
    if (this.noRoomFor(b.appId)) return error(`too many applications (limit ${LIMITS.apps})`);
    this.ensureApp(b.appId);
    this.backendList = [...this.backendList, { appId: b.appId, backendId, ip: b.ip, port: b.port }];
    return ok(`backend ${backendId} (${address}) added to application ${b.appId}`);
  }

  private noRoomFor(appId: string): boolean {
    return !this.appMap.has(appId) && this.appMap.size >= LIMITS.apps;
  }

  /** Applications are created by the first front or backend naming them. */
  private ensureApp(appId: string): void {
    if (this.appMap.has(appId)) return;
    this.appMap = new Map(this.appMap).set(appId, { appId, stickySession: false, httpsRedirect: false, loadBalancing: "roundrobin" });
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
