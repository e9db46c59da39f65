// Ingress routes derived from a catalog revision: every running container with ingress enabled
// and a valid port is a backend of `<subdomain>.<ingress_domain>` (or `<subdomain>`), path "/".
import type { ContainerInfo, Revision } from "../catalog/index.js";

export const NETWORK_LABEL = "stevedore.ingress.network";

export interface IngressBackend {
  ip: string;
  port: number;
  /** active health check path (the `healthcheck` label) */
  healthcheck?: string;
}

export interface IngressRoute {
  hostname: string;
  websocket: boolean;
  /** false when a container of the route says `https_redirect=false` */
  httpsRedirect: boolean;
  backends: IngressBackend[];
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** The host name of a container's ingress route, undefined when it has none. */
export function ingressHostname(subdomain: string | undefined, domain: string): string | undefined {
  if (!subdomain) return undefined;
  const host = (domain ? `${subdomain}.${domain}` : subdomain).toLowerCase();
  return host.length <= 253 && LABEL.test(host) ? host : undefined;
}

/** The container's address for the proxy: the named network's, else the first network's. */
export function ingressAddress(c: ContainerInfo): string | undefined {
  const wanted = c.labels[NETWORK_LABEL];
  const net = wanted ? c.networks.find((n) => n.name === wanted) : c.networks[0];
  return net && net.ip ? net.ip : undefined;
}

/**
 * Routes sorted by host name; several containers of one service share a route. A route exists
 * while any container names it; only running, not-unhealthy containers with a valid port and an
 * address are its backends (so a stopped service answers 503, a removed one 404).
 */
export function deriveIngress(rev: Revision, domain: string): IngressRoute[] {
  const byHost = new Map<string, IngressRoute>();
  for (const c of rev.containers) {
    const ing = c.ingress;
    if (!ing || !ing.enabled) continue;
    const hostname = ingressHostname(ing.subdomain, domain);
    if (!hostname) continue;
    let route = byHost.get(hostname);
    if (!route) byHost.set(hostname, (route = { hostname, websocket: false, httpsRedirect: true, backends: [] }));
    if (ing.websocket) route.websocket = true;
    if (ing.httpsRedirect === false) route.httpsRedirect = false;
    if (!c.running || c.health === "unhealthy") continue; // out of rotation
    const port = ing.port;
    if (port === undefined || !Number.isInteger(port) || port < 1 || port > 65535) continue;
    const ip = ingressAddress(c);
    if (!ip) continue;
    const backend: IngressBackend = { ip, port };
    if (ing.healthcheck && ing.healthcheck.startsWith("/")) backend.healthcheck = ing.healthcheck;
    route.backends.push(backend);
  }
  return [...byHost.values()].sort((a, b) => (a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0));
}
