// The proxy's run-time state as the command socket keeps it (src/proxy/command) and the data
// plane reads it (src/proxy). Names follow the command protocol (stevedore(8), PROXY, Command socket).
import type { EventEmitter } from "node:events";

export type LoadBalancing = "roundrobin" | "random" | "leastconnections";

export interface ProxyApp {
  appId: string;
  stickySession: boolean;
  httpsRedirect: boolean;
  loadBalancing: LoadBalancing;
}

export interface HttpFront {
  appId: string;
  /** lower-case; exact ("a.example.com") or one-label wildcard ("*.example.com") */
  hostname: string;
  /** path prefix; "" is a catch-all */
  pathBegin: string;
}

export interface HttpsFront extends HttpFront {
  /** lower-case hex SHA-256 of the leaf certificate's DER */
  fingerprint: string;
}

export interface ProxyBackend {
  appId: string;
  /** defaults to "ip:port" */
  backendId: string;
  ip: string;
  port: number;
}

export interface ProxyCertificate {
  fingerprint: string;
  /** PEM */
  certificate: string;
  chain: string[];
  /** PEM private key — never dumped, never logged */
  key: string;
  /** DNS names the certificate serves (from the request's `names`, else its SAN/CN) */
  names: string[];
}

/** Read side of the command-socket state; emits "change" after every applied change. */
export interface ProxyStateView extends EventEmitter<{ change: [] }> {
  apps(): ReadonlyMap<string, ProxyApp>;
  httpFronts(): readonly HttpFront[];
  httpsFronts(): readonly HttpsFront[];
  backends(): readonly ProxyBackend[];
  certificates(): ReadonlyMap<string, ProxyCertificate>;
}

/** One row of the merged routing table (`stevedore proxy routes`, the ROUTES message). */
export interface RouteInfo {
  hostname: string;
  pathBegin: string;
  /** which source won this hostname + path */
  source: "command" | "config" | "ingress";
  /** the listener(s) that serve it */
  protocols: ("http" | "https")[];
  /** command app id; config: "<host><path>"; ingress: "<host>" */
  app: string;
  /** "ip:port" of each backend, in rotation or not */
  backends: { address: string; up: boolean }[];
}
