// `stevedore proxy routes` / the ROUTES extension message: the merged routing table with each
// route's source. The data plane owns the merge (command socket > config sites > ingress); until it
// is connected with setProvider, the table is the command socket's own routes.
import type { ProxyStateView } from "../types.js";

export type RouteSource = "command" | "config" | "ingress";

export interface RouteRow {
  source: RouteSource;
  scheme: "http" | "https";
  hostname: string;
  path_begin: string;
  app_id: string;
  /** "ip:port" of every backend (healthy or not) */
  backends: string[];
}

export type RoutesProvider = () => RouteRow[];

/** The command socket's own routes, in the merged table's shape. */
export function commandRoutes(state: ProxyStateView): RouteRow[] {
  const backends = new Map<string, string[]>();
  for (const b of state.backends()) {
    const list = backends.get(b.appId) ?? [];
    list.push(b.ip.includes(":") ? `[${b.ip}]:${b.port}` : `${b.ip}:${b.port}`);
    backends.set(b.appId, list);
  }
  const row = (scheme: "http" | "https") => (f: { appId: string; hostname: string; pathBegin: string }): RouteRow => ({
    source: "command", scheme, hostname: f.hostname, path_begin: f.pathBegin, app_id: f.appId, backends: backends.get(f.appId) ?? [],
  });
  return [...state.httpFronts().map(row("http")), ...state.httpsFronts().map(row("https"))];
}
