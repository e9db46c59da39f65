// `stevedore proxy routes` / the ROUTES extension message: the merged routing table with each
// route's source. The data plane owns the merge (command socket > config sites > ingress) and the
// backends' health; until it is connected with setRoutesProvider, the table is the command
// socket's own routes. RouteInfo is defined in src/proxy/types.ts.
import type { ProxyStateView, RouteInfo } from "../types.js";
import { formatHostPort } from "../../base/index.js";

export type { RouteInfo };

export type RoutesProvider = () => RouteInfo[];

/** The command socket's own routes (backends shown as up: health is the data plane's). */
export function commandRoutes(state: ProxyStateView): RouteInfo[] {
  const backends = new Map<string, { address: string; up: boolean }[]>();
  for (const b of state.backends()) {
    const list = backends.get(b.appId) ?? [];
    list.push({ address: formatHostPort(b.ip, b.port), up: true });
    backends.set(b.appId, list);
  }
  const rows = new Map<string, RouteInfo>();
  const add = (scheme: "http" | "https", f: { appId: string; hostname: string; pathBegin: string }) => {
    const key = `${f.hostname}\0${f.pathBegin}\0${f.appId}`;
    const row = rows.get(key);
    if (row) row.protocols.push(scheme);
    else rows.set(key, { hostname: f.hostname, pathBegin: f.pathBegin, source: "command", protocols: [scheme], app: f.appId, backends: backends.get(f.appId) ?? [] });
  };
  for (const f of state.httpFronts()) add("http", f);
  for (const f of state.httpsFronts()) add("https", f);
  return [...rows.values()];
}
