// Ingress routes derived from a (fake) catalog: the derivation rules and the live table.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { backend, container, get, startProxy, FakeCatalog, type Backend } from "./helpers.js";
import { deriveIngress, ingressHostname } from "../../src/proxy/ingress.js";
import { waitFor } from "../helpers/docker.js";

const backends: Backend[] = [];
after(async () => {
  for (const b of backends) await b.close();
});

test("derivation: domain, network label, stopped/unhealthy/invalid containers, shared routes", () => {
  const cs = [
    container("a1", { enabled: true, subdomain: "App", port: 80 }, { networks: [{ name: "n1", ip: "10.0.0.1" }, { name: "n2", ip: "10.1.0.1" }] }),
    container("a2", { enabled: true, subdomain: "app", port: 80 }, { networks: [{ name: "n1", ip: "10.0.0.2" }, { name: "n2", ip: "10.1.0.2" }], labels: { "stevedore.ingress.network": "n2" } }),
    container("stopped", { enabled: true, subdomain: "down", port: 80 }, { running: false, state: "exited" }),
    container("sick", { enabled: true, subdomain: "app", port: 80 }, { health: "unhealthy", networks: [{ name: "n1", ip: "10.0.0.3" }] }),
    container("noport", { enabled: true, subdomain: "noport" }),
    container("off", { enabled: false, subdomain: "off", port: 80 }),
    container("nosub", { enabled: true, port: 80 }),
    container("ws", { enabled: true, subdomain: "ws", port: 81, websocket: true, healthcheck: "/health" }),
  ];
  const routes = deriveIngress({ seq: 1, ts: 1, containers: cs, deployments: [] }, "example.com");
  assert.deepEqual(routes.map((r) => r.hostname), ["app.example.com", "down.example.com", "noport.example.com", "ws.example.com"]);
  const app = routes[0]!;
  assert.deepEqual(app.backends.map((b) => `${b.ip}:${b.port}`), ["10.0.0.1:80", "10.1.0.2:80"], "first network, or the named one; unhealthy left out");
  assert.equal(app.websocket, false);
  assert.deepEqual(routes[1]!.backends, [], "a stopped service keeps its route (503), without backends");
  assert.equal(routes[3]!.websocket, true);
  assert.equal(routes[3]!.backends[0]!.healthcheck, "/health");
  assert.equal(ingressHostname("web", ""), "web", "no domain: the subdomain is the host name");
  assert.equal(ingressHostname("bad name", "x.com"), undefined);
});

test("ingress routes follow catalog revisions: routed, 503 when stopped, 404 when gone, replicas share", async () => {
  const [r1, r2] = [await backend("r1"), await backend("r2")];
  backends.push(r1, r2);
  const catalog = new FakeCatalog();
  const p = await startProxy({ catalog, config: 'ingress_domain = "apps.test"\n' });
  try {
    assert.equal((await get(p.httpPort, "web.apps.test")).status, 404);
    catalog.set([container("c1", { enabled: true, subdomain: "web", port: r1.port })]);
    assert.equal((await get(p.httpPort, "web.apps.test")).body, "r1");
    catalog.set([container("c1", { enabled: true, subdomain: "web", port: r1.port }), container("c2", { enabled: true, subdomain: "web", port: r2.port })]);
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add((await get(p.httpPort, "web.apps.test")).body);
    assert.deepEqual([...seen].sort(), ["r1", "r2"]);
    catalog.set([container("c2", { enabled: true, subdomain: "web", port: r2.port }, { health: "unhealthy" }), container("c1", { enabled: true, subdomain: "web", port: r1.port })]);
    for (let i = 0; i < 4; i++) assert.equal((await get(p.httpPort, "web.apps.test")).body, "r1", "unhealthy replica out of rotation");
    catalog.set([container("c1", { enabled: true, subdomain: "web", port: r1.port }, { running: false, state: "exited" })]);
    assert.equal((await get(p.httpPort, "web.apps.test")).status, 503);
    catalog.set([]);
    assert.equal((await get(p.httpPort, "web.apps.test")).status, 404);
    assert.deepEqual([...p.proxy.routedHostnames()], []);
  } finally {
    await p.stop();
  }
});

test("ingress WebSocket upgrades only when the websocket label is true", async () => {
  const ws = await backend("ws");
  backends.push(ws);
  ws.server.on("upgrade", (_req, socket) => socket.end("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"));
  const catalog = new FakeCatalog();
  catalog.set([
    container("plain", { enabled: true, subdomain: "plain", port: ws.port }),
    container("sock", { enabled: true, subdomain: "sock", port: ws.port, websocket: true }),
  ]);
  const p = await startProxy({ catalog });
  try {
    const up = { connection: "Upgrade", upgrade: "websocket" };
    const { request } = await import("node:http");
    const status = (host: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request({ host: "127.0.0.1", port: p.httpPort, headers: { host, ...up }, agent: false });
        req.on("upgrade", (res, socket) => {
          socket.destroy();
          resolve(res.statusCode!);
        });
        req.on("response", (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        req.on("error", reject);
        req.end();
      });
    assert.equal(await status("plain"), 400);
    assert.equal(await status("sock"), 101);
  } finally {
    await p.stop();
  }
});

test("active health check: 2 failures take a backend out, 1 success puts it back", async () => {
  let healthy = true;
  const mk = (name: string, checked: boolean) =>
    backend(name, (req, res) => {
      req.resume();
      if (req.url === "/health") {
        res.writeHead(checked && !healthy ? 500 : 200);
        return res.end();
      }
      res.end(name);
    });
  const [good, flaky] = [await mk("good", false), await mk("flaky", true)];
  backends.push(good, flaky);
  const catalog = new FakeCatalog();
  catalog.set([
    container("g", { enabled: true, subdomain: "hc", port: good.port, healthcheck: "/health" }),
    container("f", { enabled: true, subdomain: "hc", port: flaky.port, healthcheck: "/health" }),
  ]);
  // a check slower than its timeout counts as a failure: a generous timeout, so load is not one
  const p = await startProxy({ catalog, proxy: { health: { intervalMs: 50, timeoutMs: 2000 } } });
  const spread = async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add((await get(p.httpPort, "hc")).body);
    return [...seen].sort().join(",");
  };
  try {
    assert.equal(await spread(), "flaky,good");
    healthy = false;
    await waitFor("flaky out of rotation", async () => (await spread()) === "good");
    const out = p.proxy.routes().find((r) => r.hostname === "hc")!;
    assert.deepEqual(out.backends.map((b) => b.up).sort(), [false, true]);
    healthy = true;
    await waitFor("flaky back in rotation", async () => (await spread()) === "flaky,good");
  } finally {
    await p.stop();
  }
});
