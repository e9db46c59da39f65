// Build the two routing tables (HTTP and HTTPS listeners) from the three sources, in priority
// order: command-socket state, then config [[site]] entries, then catalog ingress routes.
import { parseHostPort } from "../base/index.js";
import { type DynamicConfig } from "../config/index.js";
import type { Revision } from "../catalog/index.js";
import type { ProxyStateView } from "./types.js";
import { Pool, usable, type Member, type PoolOptions } from "./pool.js";
import { RouteTable } from "./table.js";
import { deriveIngress } from "./ingress.js";
import type { UpstreamSet } from "./upstream.js";
import type { HealthChecker } from "./health.js";
import type { RouteInfo } from "./types.js";

export interface Tables {
  http: RouteTable;
  https: RouteTable;
  pools: Map<string, Pool>;
  /** ingress and site host names that may get ACME certificates, with their redirect switch */
  acmeCandidates: Map<string, { source: "ingress" | "site"; redirect: boolean }>;
}

export interface BuildInput {
  state: ProxyStateView;
  dyn: DynamicConfig;
  revision: Revision;
  upstreams: UpstreamSet;
  health: HealthChecker;
  /** the previous table's pools, to carry round-robin cursors over */
  previous?: Map<string, Pool>;
}

const PLAIN: PoolOptions = { policy: "roundrobin", sticky: false, httpsRedirect: false };

export function buildTables(input: BuildInput): Tables {
  const { state, dyn, revision, upstreams, health, previous } = input;
  upstreams.begin();
  health.begin();
  const http = new RouteTable();
  const https = new RouteTable();
  const pools = new Map<string, Pool>();
  const acmeCandidates: Tables["acmeCandidates"] = new Map();
  const makePool = (key: string, options: PoolOptions, members: Member[]): Pool => {
    const pool = new Pool(key, options, members);
    const old = previous?.get(key);
    if (old) pool.rr = old.rr;
    pools.set(key, pool);
    return pool;
  };

  // 1. command socket
  const members = new Map<string, Member[]>();
  for (const b of state.backends()) {
    let list = members.get(b.appId);
    if (!list) members.set(b.appId, (list = []));
    list.push({ id: b.backendId, up: upstreams.get(b.ip, b.port) });
  }
  const apps = state.apps();
  const appPool = (appId: string): Pool => {
    const key = `command:${appId}`;
    const existing = pools.get(key);
    if (existing) return existing;
    const app = apps.get(appId);
    const options: PoolOptions = app ? { policy: app.loadBalancing, sticky: app.stickySession, httpsRedirect: app.httpsRedirect } : PLAIN;
    return makePool(key, options, members.get(appId) ?? []);
  };
  for (const f of state.httpFronts())
    http.add({ hostname: f.hostname.toLowerCase(), pathBegin: f.pathBegin, source: "command", pool: appPool(f.appId), websocket: true });
  for (const f of state.httpsFronts())
    https.add({ hostname: f.hostname.toLowerCase(), pathBegin: f.pathBegin, source: "command", pool: appPool(f.appId), websocket: true });

  // 2. config sites (both listeners)
  for (const site of dyn.sites) {
    const hostname = site.hostname.toLowerCase();
    const siteMembers: Member[] = [];
    for (const b of site.backends) {
      const hp = parseHostPort(b);
      if (hp) siteMembers.push({ id: b, up: upstreams.get(hp.host, hp.port) });
    }
    const pool = makePool(`config:${hostname}${site.path}`, PLAIN, siteMembers);
    if (site.tls === "auto") acmeCandidates.set(hostname, { source: "site", redirect: site.https_redirect });
    http.add({ hostname, pathBegin: site.path, source: "config", pool, websocket: true });
    https.add({ hostname, pathBegin: site.path, source: "config", pool, websocket: true });
  }

  // 3. ingress routes (both listeners)
  for (const route of deriveIngress(revision, dyn.ingress_domain)) {
    const ingressMembers: Member[] = route.backends.map((b) => {
      const m: Member = { id: `${b.ip}:${b.port}`, up: upstreams.get(b.ip, b.port) };
      if (b.healthcheck) m.check = health.track(b.ip, b.port, b.healthcheck);
      return m;
    });
    if (!acmeCandidates.has(route.hostname)) acmeCandidates.set(route.hostname, { source: "ingress", redirect: route.httpsRedirect });
    const pool = makePool(`ingress:${route.hostname}`, PLAIN, ingressMembers);
    http.add({ hostname: route.hostname, pathBegin: "/", source: "ingress", pool, websocket: route.websocket });
    https.add({ hostname: route.hostname, pathBegin: "/", source: "ingress", pool, websocket: route.websocket });
  }

  upstreams.sweep();
  health.sweep();
  return { http, https, pools, acmeCandidates };
}

/** The merged table for `stevedore proxy routes` and admin status. */
export function describeTables(t: Tables, served: (hostname: string) => boolean = () => true): RouteInfo[] {
  const rows = new Map<string, RouteInfo>();
  for (const [proto, table] of [["http", t.http], ["https", t.https]] as const) {
    for (const r of table.routes()) {
      if (proto === "https" && !served(r.hostname)) continue; // the handshake would fail: not listed
      const key = `${r.hostname}\0${r.pathBegin}\0${r.source}\0${r.pool.key}`;
      const row = rows.get(key);
      if (row) {
        row.protocols.push(proto);
        continue;
      }
      rows.set(key, {
        hostname: r.hostname,
        pathBegin: r.pathBegin,
        source: r.source,
        protocols: [proto],
        app: r.pool.key.slice(r.pool.key.indexOf(":") + 1),
        backends: r.pool.members.map((m) => ({ address: m.up.address, up: usable(m) })),
      });
    }
  }
  // by source (command, config, ingress), then in table order (HTTP rows before HTTPS-only rows)
  return [...rows.values()].sort((a, b) => SOURCE_RANK[a.source] - SOURCE_RANK[b.source]);
}

const SOURCE_RANK = { command: 0, config: 1, ingress: 2 } as const;
