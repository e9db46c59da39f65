// In-process proxy tests: a fake command state, a fake catalog, the real ProxyComponent.
import { EventEmitter } from "node:events";
import { createServer, request, type IncomingMessage, type RequestListener, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { parseConfig, type Config, type DynamicConfig } from "../../src/config/index.js";
import type { CatalogEvents, CatalogView, ContainerInfo, Revision } from "../../src/catalog/types.js";
import type { DaemonContext } from "../../src/component/index.js";
import { DockerClient } from "../../src/docker/index.js";
import { ProxyComponent, type ProxyOptions } from "../../src/proxy/proxy.js";
import type { HttpFront, HttpsFront, ProxyApp, ProxyBackend, ProxyCertificate, ProxyStateView } from "../../src/proxy/types.js";
import { closedPort, freePort } from "../helpers/daemon.js";

export class FakeState extends EventEmitter<{ change: [] }> implements ProxyStateView {
  appMap = new Map<string, ProxyApp>();
  http: HttpFront[] = [];
  https: HttpsFront[] = [];
  bes: ProxyBackend[] = [];
  certs = new Map<string, ProxyCertificate>();
  apps() { return this.appMap; }
  httpFronts() { return this.http; }
  httpsFronts() { return this.https; }
  backends() { return this.bes; }
  certificates() { return this.certs; }
  app(appId: string, opts: Partial<ProxyApp> = {}): this {
    this.appMap.set(appId, { appId, stickySession: false, httpsRedirect: false, loadBalancing: "roundrobin", ...opts });
    return this;
  }
  front(appId: string, hostname: string, pathBegin = ""): this {
    this.http.push({ appId, hostname, pathBegin });
    return this;
  }
  backend(appId: string, port: number, backendId = `127.0.0.1:${port}`): this {
    this.bes.push({ appId, backendId, ip: "127.0.0.1", port });
    return this;
  }
  changed(): void {
    this.emit("change");
  }
}

export class FakeCatalog extends EventEmitter<CatalogEvents> {
  rev: Revision = { seq: 1, ts: 1, containers: [], deployments: [] };
  current() { return this.rev; }
  set(containers: ContainerInfo[]): void {
    this.rev = { seq: this.rev.seq + 1, ts: this.rev.ts + 1, containers, deployments: [] };
    this.emit("revision", this.rev);
  }
  dockerState() { return "ok" as const; }
  lastConfirmedAt() { return performance.now(); }
  addRegisteredSource() {}
  refreshRegistered() {}
  wait(): never { throw new Error("not in tests"); }
  waiterCount() { return 0; }
  releaseWaiters() {}
}

export function container(name: string, ingress: ContainerInfo["ingress"], extra: Partial<ContainerInfo> = {}): ContainerInfo {
  return {
    id: name.padEnd(64, "0"), name, deployment: "d", service: "web", image: "x", state: "running", running: true,
    health: "none", hasHealthcheck: false, exitCode: 0, startedAt: null, restartPolicy: "no",
    ingress, networks: [{ name: "bridge", ip: "127.0.0.1" }], labels: {}, ...extra,
  };
}

export interface TestProxy {
  proxy: ProxyComponent;
  httpPort: number;
  httpsPort: number;
  state: FakeState;
  catalog: FakeCatalog;
  config: Config;
  /** swap the dynamic config as a reload does (prepare, then swap); returns the errors */
  reload(extra: string): Promise<string[]>;
  stop(): Promise<void>;
}

export async function startProxy(opts: { config?: string; state?: FakeState; catalog?: FakeCatalog; proxy?: ProxyOptions; https?: boolean } = {}): Promise<TestProxy> {
  const httpPort = await freePort();
  const httpsPort = await freePort();
  const state = opts.state ?? new FakeState();
  const catalog = opts.catalog ?? new FakeCatalog();
  const base = `proxy_http_listen = "127.0.0.1:${httpPort}"\nproxy_https_listen = "${opts.https ? `127.0.0.1:${httpsPort}` : ""}"\n`;
  const config = parseConfig(base + (opts.config ?? ""), "test.conf", {});
  let dyn: DynamicConfig = config.dynamic;
  const ctx: DaemonContext = {
    config,
    dynamic: () => dyn,
    docker: new DockerClient("/nonexistent.sock"),
    catalog: catalog as unknown as CatalogView,
    startedAt: performance.now(),
    components: [],
    requestStop: async () => {},
    reload: async () => ({ errors: [], restartRequired: [] }),
    inherit: async () => false,
    handedOver: () => false,
    launchSuccessor: async () => ({ ok: false, reason: "test" }),
    stopAccepting: async () => {},
  };
  const proxy = new ProxyComponent(ctx, { ...opts.proxy, commandState: state });
  await proxy.start();
  return {
    proxy, httpPort, httpsPort, state, catalog, config,
    async reload(extra) {
      const next = parseConfig(base + extra, "test.conf", {}).dynamic;
      const errors = await proxy.prepareReload(next);
      if (errors.length) return errors;
      dyn = next;
      proxy.reloaded(next);
      return [];
    },
    stop: () => proxy.stop(false, performance.now()),
  };
}

export interface Backend {
  port: number;
  server: Server;
  hits: number;
  close(): Promise<void>;
}

/** A node:http backend answering its name (or a custom handler). */
export async function backend(name: string, handler?: RequestListener): Promise<Backend> {
  const b = { hits: 0 } as Backend;
  const server = createServer((req, res) => {
    b.hits++;
    if (handler) return handler(req, res);
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "text/plain", "x-backend": name });
      res.end(name);
    });
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  b.port = (server.address() as AddressInfo).port;
  b.server = server;
  b.close = () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); });
  return b;
}

export interface Answer {
  status: number;
  headers: IncomingMessage["headers"];
  body: string;
}

/** One request through the proxy. */
export function get(port: number, host: string | undefined, path = "/", headers: Record<string, string> = {}, method = "GET", body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const h: Record<string, string> = { ...headers };
    if (host !== undefined) h.host = host;
    const req = request({ host: "127.0.0.1", port, path, method, headers: h, setHost: host === undefined ? false : undefined, agent: false }, (res) => {
      let data = "";
      res.setEncoding("utf8").on("data", (c) => (data += c)).on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: data }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** A port where nothing listens (connection refused). */
export async function refusedPort(): Promise<number> {
  return closedPort();
}
