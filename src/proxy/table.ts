// The routing table of one listener: exact host names and one-label wildcards kept apart,
// each host's routes sorted by descending path-prefix length. Immutable once built.
import type { Pool } from "./pool.js";

export type RouteSource = "command" | "config" | "ingress";

export interface Route {
  hostname: string;
  pathBegin: string;
  source: RouteSource;
  pool: Pool;
  /** WebSocket upgrades allowed (ingress: the `websocket` label; others: always) */
  websocket: boolean;
}

export class RouteTable {
  private exact = new Map<string, Route[]>();
  /** key: the domain after "*." */
  private wildcard = new Map<string, Route[]>();

  /** Add unless the same host + path is already there (sources are added in priority order). */
  add(route: Route): boolean {
    const wild = route.hostname.startsWith("*.");
    const map = wild ? this.wildcard : this.exact;
    const key = wild ? route.hostname.slice(2) : route.hostname;
    let list = map.get(key);
    if (!list) map.set(key, (list = []));
    if (list.some((r) => r.pathBegin === route.pathBegin)) return false;
    list.push(route);
    list.sort((a, b) => b.pathBegin.length - a.pathBegin.length);
    return true;
  }

  /** host: lower-case, no port. path: the request target. */
  lookup(host: string, path: string): Route | undefined {
    const exact = this.exact.get(host);
    if (exact) for (const r of exact) if (path.startsWith(r.pathBegin)) return r;
    const dot = host.indexOf(".");
    if (dot <= 0) return undefined;
    const wild = this.wildcard.get(host.slice(dot + 1));
    if (wild) for (const r of wild) if (path.startsWith(r.pathBegin)) return r;
    return undefined;
  }

  *routes(): Iterable<Route> {
    for (const list of this.exact.values()) yield* list;
    for (const list of this.wildcard.values()) yield* list;
  }

  *hostnames(): Iterable<string> {
    yield* this.exact.keys();
    for (const d of this.wildcard.keys()) yield `*.${d}`;
  }
}

const HOST_CHAR = /^[a-z0-9._-]+$/;

/**
 * The routing key of a Host header: port dropped, lower-cased. undefined when the header is
 * missing or malformed (the caller answers 400). IPv6 literals keep their brackets.
 */
export function normalizeHost(header: string | undefined): string | undefined {
  if (!header || header.length > 260) return undefined;
  let host: string;
  if (header.charCodeAt(0) === 91 /* [ */) {
    const end = header.indexOf("]");
    if (end < 0) return undefined;
    const rest = header.slice(end + 1);
    if (rest !== "" && !/^:[0-9]{1,5}$/.test(rest)) return undefined;
    host = header.slice(0, end + 1).toLowerCase();
    return /^\[[0-9a-f:.]+\]$/.test(host) ? host : undefined;
  }
  const colon = header.indexOf(":");
  if (colon >= 0) {
    const port = header.slice(colon + 1);
    if (!/^[0-9]{0,5}$/.test(port)) return undefined;
    host = header.slice(0, colon);
  } else host = header;
  host = host.toLowerCase();
  if (host.length === 0 || host.length > 253 || !HOST_CHAR.test(host)) return undefined;
  if (host.endsWith(".")) host = host.slice(0, -1); // "example.com." is "example.com"
  return host.length > 0 ? host : undefined;
}
