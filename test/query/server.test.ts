import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QueryServer } from "../../src/query/index.js";
import { TokenRegistry, getToken, regenerateToken, revokeToken, tokensPath } from "../../src/tokens/index.js";
import { listenUnix } from "../../src/http/index.js";
import { setLogLevel, setLogSink } from "../../src/log.js";
import { waitFor } from "../helpers/docker.js";
import { FakeCatalog, container } from "./fake-catalog.js";
import { get } from "./http.js";

/** A token change is in force within 1 s (design/query.md) on a quiet machine; the bound leaves
 *  room for a loaded CI machine. Without the watch and the periodic check it would never apply. */
const APPLY_MS = 3000;

let dir: string;
let sock: string;
let catalog: FakeCatalog;
let registry: TokenRegistry;
let qs: QueryServer;
let token: string;
const dyn = { stale: 30, pollDefault: 60 };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "stevedore-q-server-"));
  sock = join(dir, "query.sock");
  catalog = new FakeCatalog();
  token = await getToken(dir, "web");
  registry = new TokenRegistry(tokensPath(dir), () => catalog.refreshRegistered());
  catalog.addRegisteredSource("tokens", () => registry.deployments());
  registry.start();
  qs = new QueryServer({
    catalog,
    lookupToken: (t) => registry.lookup(t),
    tokensGeneration: () => registry.generation,
    staleAfterSecs: () => dyn.stale,
    pollDefaultTimeoutSecs: () => dyn.pollDefault,
    maxConnections: 1000,
  });
  const r = await listenUnix(qs.server, sock, 0o666, "query");
  assert.ok(r.ok);
});

after(async () => {
  registry.stop();
  catalog.releaseWaiters();
  qs.closeAllConnections();
  await new Promise((r) => qs.server.close(r));
  await rm(dir, { recursive: true, force: true });
});

const authed = (path: string, method = "GET") => get(sock, path, { token, method });

test("/healthz answers without a token; other methods get 405 with Allow", async () => {
  const r = await get(sock, "/healthz");
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { status: "ok" });
  assert.equal(r.headers["content-type"], "application/json");
  const p = await get(sock, "/healthz", { method: "POST" });
  assert.equal(p.status, 405);
  assert.equal(p.headers.allow, "GET, HEAD");
});

test("auth: missing header, wrong scheme, empty token → bad header; unknown token → invalid token; all 401 with WWW-Authenticate", async () => {
  const cases: [Record<string, string>, string][] = [
    [{}, "missing or invalid Authorization header"],
    [{ Authorization: `Basic ${token}` }, "missing or invalid Authorization header"],
    [{ Authorization: "Bearer" }, "missing or invalid Authorization header"],
    [{ Authorization: "Bearer    " }, "missing or invalid Authorization header"],
    [{ Authorization: `Token ${token}` }, "missing or invalid Authorization header"],
    [{ Authorization: "Bearer 0000000000000000000000000000000000000000000000000000000000000000" }, "invalid token"],
    [{ Authorization: `Bearer ${token.slice(0, 63)}` }, "invalid token"],
    [{ Authorization: `Bearer ${token}x` }, "invalid token"],
  ];
  for (const [headers, error] of cases) {
    for (const path of ["/services", "/deployments", "/status/web", "/poll?since=0", "/no-such-path"]) {
      const r = await get(sock, path, { headers });
      assert.equal(r.status, 401, `${JSON.stringify(headers)} ${path}`);
      assert.deepEqual(r.json, { error });
      assert.equal(r.headers["www-authenticate"], "Bearer");
    }
  }
});

test("auth: scheme is case-insensitive and surrounding spaces are trimmed", async () => {
  for (const h of [`bearer ${token}`, `BEARER ${token}`, `  Bearer   ${token}  `]) {
    const r = await get(sock, "/deployments", { headers: { Authorization: h } });
    assert.equal(r.status, 200, h);
  }
});

test("auth: regenerate and revoke while serving — old token fails, new works within 1 s", async () => {
  const name = "regen";
  const first = await getToken(dir, name);
  await waitFor("first token works", async () => (await get(sock, "/deployments", { token: first })).status === 200);
  const second = await regenerateToken(dir, name);
  const t0 = performance.now();
  await waitFor("new token works", async () => (await get(sock, "/deployments", { token: second })).status === 200, APPLY_MS);
  await waitFor("old token fails", async () => (await get(sock, "/deployments", { token: first })).status === 401, APPLY_MS);
  assert.ok(performance.now() - t0 < APPLY_MS);
  assert.ok(await revokeToken(dir, name));
  const t1 = performance.now();
  await waitFor("revoked token fails", async () => (await get(sock, "/deployments", { token: second })).status === 401, APPLY_MS);
  assert.ok(performance.now() - t1 < APPLY_MS);
  const r = await get(sock, "/deployments", { token: second });
  assert.deepEqual(r.json, { error: "invalid token" });
});

test("methods other than GET and HEAD → 405 with Allow on every path (after auth)", async () => {
  for (const method of ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]) {
    for (const path of ["/services", "/deployments", "/status/web", "/poll"]) {
      const r = await authed(path, method);
      assert.equal(r.status, 405, `${method} ${path}`);
      assert.equal(r.headers.allow, "GET, HEAD");
      assert.deepEqual(r.json, { error: "method not allowed" });
    }
  }
});

test("unknown paths → 404 JSON; a trailing slash is not a redirect", async () => {
  for (const path of ["/", "/services/", "/deployments/", "/status", "/nope", "/healthz/x"]) {
    const r = await authed(path);
    assert.equal(r.status, 404, path);
    assert.deepEqual(r.json, { error: "not found" });
  }
});

test("/services: one sorted element per container, short ids, ingress only when labelled, [] when empty", async () => {
  catalog.publish([]);
  let r = await authed("/services");
  assert.equal(r.status, 200);
  assert.equal(r.text, "[]");
  const b = container({ deployment: "b", service: "web", name: "/stevedore-b-web-1", ingress: { enabled: true, subdomain: "www", port: 8080, websocket: false, healthcheck: "/health" } });
  const a2 = container({ deployment: "a", service: "worker", running: false, state: "exited", exitCode: 1 });
  const a1 = container({ deployment: "a", service: "api", ingress: { enabled: false, subdomain: "api" } });
  catalog.publish([b, a2, a1]);
  r = await authed("/services");
  assert.deepEqual(r.json, [
    { deployment: "a", service: "api", container_id: a1.id.slice(0, 12), container_name: a1.name, running: true, ingress: { enabled: false, subdomain: "api" } },
    { deployment: "a", service: "worker", container_id: a2.id.slice(0, 12), container_name: a2.name, running: false },
    { deployment: "b", service: "web", container_id: b.id.slice(0, 12), container_name: "stevedore-b-web-1", running: true, ingress: { enabled: true, subdomain: "www", port: 8080, websocket: false, healthcheck: "/health" } },
  ]);
  for (const v of ["true", "1", "yes", "TRUE"]) {
    const f = await authed(`/services?ingress=${v}`);
    assert.equal(f.status, 200);
    assert.deepEqual(f.json.map((s: { deployment: string }) => s.deployment), ["b"], v);
  }
  for (const v of ["false", "0", "", "no", "2"]) {
    const f = await authed(`/services?ingress=${v}`);
    assert.equal(f.status, 400, v);
    assert.match(f.json.error, /ingress/);
  }
  assert.equal((await authed("/services?ingress=true&ingress=1")).status, 400);
  catalog.publish([a2]);
  assert.equal((await authed("/services?ingress=true")).text, "[]");
});

test("/deployments: sorted names of deployments with containers and with a token", async () => {
  catalog.publish([container({ deployment: "zeta", service: "s" }), container({ deployment: "alpha", service: "s" })]);
  const r = await authed("/deployments");
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, [{ name: "alpha" }, { name: "web" }, { name: "zeta" }]);
  catalog.publish([]);
  assert.deepEqual((await authed("/deployments")).json, [{ name: "web" }]);
});

test("/status: 400 invalid name, 404 unknown, registered without containers", async () => {
  catalog.publish([]);
  for (const bad of ["/status/", "/status/UPPER", "/status/-x", "/status/a%2Fb", "/status/a/b", `/status/${"a".repeat(64)}`]) {
    const r = await authed(bad);
    assert.equal(r.status, 400, bad);
    assert.deepEqual(r.json, { error: "invalid deployment name" });
  }
  const unknown = await authed("/status/nothere");
  assert.equal(unknown.status, 404);
  assert.deepEqual(unknown.json, { error: "deployment not found" });
  const reg = await authed("/status/web");
  assert.equal(reg.status, 200);
  assert.deepEqual(reg.json, { deployment: "web", project_name: "stevedore-web", healthy: false, message: "No containers", containers: [] });
});

test("/status: fields, status strings, healthy rule with a finished one-shot job, messages", async () => {
  const started = new Date(Date.now() - 3 * 3600_000 - 5000).toISOString();
  const web = container({ deployment: "shop", service: "web", hasHealthcheck: true, health: "healthy", startedAt: started });
  const migrate = container({ deployment: "shop", service: "migrate", state: "exited", running: false, exitCode: 0, restartPolicy: "no" });
  catalog.publish([web, migrate]);
  let r = await authed("/status/shop");
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, {
    deployment: "shop",
    project_name: "stevedore-shop",
    healthy: true,
    message: "All 2 containers healthy",
    containers: [
      { id: migrate.id.slice(0, 12), name: migrate.name, service: "migrate", image: migrate.image, state: "exited", health: "none", status: "Exited (0)", exit_code: 0, started_at: migrate.startedAt },
      { id: web.id.slice(0, 12), name: web.name, service: "web", image: web.image, state: "running", health: "healthy", status: "Up 3h (healthy)", exit_code: 0, started_at: started },
    ],
  });
  // the same job with a restart policy is not "finished": the deployment is not healthy
  catalog.publish([web, { ...migrate, restartPolicy: "on-failure" }]);
  r = await authed("/status/shop");
  assert.equal(r.json.healthy, false);
  assert.equal(r.json.message, "1/2 containers running");
  // a failed job
  catalog.publish([web, { ...migrate, exitCode: 3 }]);
  r = await authed("/status/shop");
  assert.equal(r.json.healthy, false);
  assert.equal(r.json.containers[0].status, "Exited (3)");
  // unhealthy and starting
  catalog.publish([{ ...web, health: "unhealthy" }, container({ deployment: "shop", service: "x", hasHealthcheck: true, health: "starting", startedAt: new Date(Date.now() - 30_000).toISOString() })]);
  r = await authed("/status/shop");
  assert.equal(r.json.healthy, false);
  assert.equal(r.json.message, "1 of 2 containers unhealthy");
  assert.equal(r.json.containers[0].status, "Up 3h (unhealthy)");
  assert.match(r.json.containers[1].status, /^Up (29|30|31)s \(starting\)$/);
  // starting is not unhealthy
  catalog.publish([container({ deployment: "shop", service: "x", hasHealthcheck: true, health: "starting" })]);
  assert.equal((await authed("/status/shop")).json.healthy, true);
  // other states
  const other = [
    container({ deployment: "shop", service: "a", state: "created", running: false, startedAt: null }),
    container({ deployment: "shop", service: "b", state: "paused", startedAt: new Date(Date.now() - 2 * 86400_000).toISOString() }),
    container({ deployment: "shop", service: "c", state: "restarting", exitCode: 137 }),
    container({ deployment: "shop", service: "d", state: "dead", running: false, exitCode: 2 }),
    container({ deployment: "shop", service: "e", startedAt: new Date(Date.now() - 5 * 60_000 - 1000).toISOString() }),
  ];
  catalog.publish(other);
  r = await authed("/status/shop");
  assert.deepEqual(r.json.containers.map((c: { status: string }) => c.status), ["Created", "Up 2d (paused)", "Restarting (137)", "Exited (2)", "Up 5m"]);
  assert.equal(r.json.containers[0].started_at, null);
  assert.equal(r.json.healthy, false);
  assert.equal(r.json.message, "1/5 containers running");
});

test("HEAD answers the headers of GET without a body", async () => {
  catalog.publish([container({ deployment: "h", service: "s" })]);
  const g = await authed("/services");
  const h = await authed("/services", "HEAD");
  assert.equal(h.status, 200);
  assert.equal(h.text, "");
  assert.equal(h.headers["content-length"], String(Buffer.byteLength(g.text)));
});

test("bodies are serialized once per revision and reused", async () => {
  const rev = catalog.publish([container({ deployment: "c", service: "s" }), container({ deployment: "c", service: "t" })]);
  let reads = 0;
  const containers = rev.containers;
  Object.defineProperty(rev, "containers", { get: () => (reads++, containers) });
  for (let i = 0; i < 5; i++) {
    assert.equal((await authed("/services")).status, 200);
    assert.equal((await authed("/services?ingress=1")).status, 200);
    assert.equal((await authed("/status/c")).status, 200);
    assert.equal((await authed("/deployments")).status, 200);
  }
  assert.ok(reads <= 4, `containers read ${reads} times for 20 requests`);
});

test("Docker down: stale header while fresh enough, then 503; /healthz still answers", async () => {
  catalog.publish([container({ deployment: "d", service: "s" })]);
  try {
    catalog.state = "unavailable";
    catalog.confirmedAt = performance.now() - 5_500;
    for (const path of ["/services", "/deployments", "/status/d"]) {
      const r = await authed(path);
      assert.equal(r.status, 200, path);
      assert.equal(r.headers["x-stevedore-stale"], "5", path);
    }
    catalog.confirmedAt = performance.now() - 31_000;
    for (const path of ["/services", "/deployments", "/status/d"]) {
      const r = await authed(path);
      assert.equal(r.status, 503, path);
      assert.deepEqual(r.json, { error: "docker unavailable" });
    }
    assert.equal((await get(sock, "/healthz")).status, 200);
    catalog.state = "ok";
    const r = await authed("/services");
    assert.equal(r.status, 200);
    assert.equal(r.headers["x-stevedore-stale"], undefined);
  } finally {
    catalog.state = "ok";
  }
});

test("poll: older since answers at once; since=0 at once; current since waits for the next revision", async () => {
  const rev = catalog.publish([]);
  let r = await authed(`/poll?since=${rev.ts - 1}`);
  assert.deepEqual(r.json, { changed: true, timestamp: rev.ts });
  r = await authed("/poll?since=0");
  assert.deepEqual(r.json, { changed: true, timestamp: rev.ts });
  const waiting = authed(`/poll?since=${rev.ts}`);
  await waitFor("waiter registered", () => catalog.waiterCount() === 1);
  const next = catalog.publish([container({ deployment: "p", service: "s" })]);
  r = await waiting;
  assert.deepEqual(r.json, { changed: true, timestamp: next.ts });
  // no since: the next change
  const w2 = authed("/poll");
  await waitFor("waiter registered", () => catalog.waiterCount() === 1);
  const third = catalog.publish([]);
  assert.deepEqual((await w2).json, { changed: true, timestamp: third.ts });
});

test("poll: the timeout answer carries the timestamp; the default timeout comes from the config", async () => {
  const rev = catalog.publish([]);
  const t0 = performance.now();
  let r = await authed(`/poll?since=${rev.ts}&timeout=1`);
  assert.deepEqual(r.json, { changed: false, timestamp: rev.ts });
  assert.ok(performance.now() - t0 >= 950);
  dyn.pollDefault = 1;
  try {
    r = await authed(`/poll?since=${rev.ts}`);
    assert.deepEqual(r.json, { changed: false, timestamp: rev.ts });
  } finally {
    dyn.pollDefault = 60;
  }
});

test("poll: bad since/timeout → 400", async () => {
  for (const q of ["since=-1", "since=abc", "since=1.5", "since=", "since=1e3", "since=0x10", "since=1&since=2", "since=99999999999999999",
    "timeout=0", "timeout=291", "timeout=-5", "timeout=abc", "timeout=", "timeout=1.5", "timeout=60&timeout=60"]) {
    const r = await authed(`/poll?${q}`);
    assert.equal(r.status, 400, q);
    assert.equal(typeof r.json.error, "string");
  }
  assert.equal(catalog.waiterCount(), 0);
});

test("poll: a client that disconnects leaves the waiter list at once", async () => {
  const rev = catalog.publish([]);
  const ac = new AbortController();
  const p = authed(`/poll?since=${rev.ts}&timeout=200`).catch(() => undefined);
  void p;
  const pending = get(sock, `/poll?since=${rev.ts}&timeout=200`, { token, signal: ac.signal }).catch(() => "aborted");
  await waitFor("two waiters", () => catalog.waiterCount() === 2);
  ac.abort();
  assert.equal(await pending, "aborted");
  await waitFor("waiter removed", () => catalog.waiterCount() === 1, 5000); // not the poll's 200 s
  assert.equal(qs.pendingPolls, 1);
  catalog.publish([]);
  await p;
  assert.equal(catalog.waiterCount(), 0);
  assert.equal(qs.pendingPolls, 0);
});

test("poll: poll_max_waiters is enforced with 503", async () => {
  const rev = catalog.publish([]);
  catalog.maxWaiters = 2;
  try {
    const a = authed(`/poll?since=${rev.ts}&timeout=10`);
    const b = authed(`/poll?since=${rev.ts}&timeout=10`);
    await waitFor("two waiters", () => catalog.waiterCount() === 2);
    const c = await authed(`/poll?since=${rev.ts}&timeout=10`);
    assert.equal(c.status, 503);
    assert.deepEqual(c.json, { error: "too many waiting polls" });
    catalog.publish([]);
    assert.equal((await a).status, 200);
    assert.equal((await b).status, 200);
  } finally {
    catalog.maxWaiters = 10_000;
  }
});

test("poll: a client echoing timestamps sees every one of 20 changes and never gets an answer without a change", async () => {
  let since = catalog.publish([]).ts;
  const seen: number[] = [];
  const published: number[] = [];
  let stop = false;
  const client = (async () => {
    while (!stop && seen.length < 20) {
      const r = await authed(`/poll?since=${since}&timeout=5`);
      assert.equal(r.status, 200);
      assert.equal(r.json.changed, true, "an answer without a change");
      assert.ok(r.json.timestamp > since, "a timestamp that is not newer");
      seen.push(r.json.timestamp);
      since = r.json.timestamp;
    }
  })();
  for (let i = 0; i < 20; i++) {
    await waitFor("client waiting", () => catalog.waiterCount() === 1);
    published.push(catalog.publish([container({ deployment: "echo", service: `s${i}` })]).ts);
  }
  await client;
  stop = true;
  assert.deepEqual(seen, published);
});

test("requests are logged at debug with the deployment, never the token", async () => {
  const lines: string[] = [];
  const restore = setLogSink((l) => lines.push(l));
  setLogLevel("debug");
  try {
    await authed("/deployments");
  } finally {
    setLogLevel("info");
    restore();
  }
  const line = lines.find((l) => l.includes("query request"));
  assert.ok(line);
  assert.match(line, /deployment=web/);
  assert.ok(!lines.some((l) => l.includes(token)));
});

test("auth on a keep-alive connection: a revoked token stops working on the same connection within 1 s", async () => {
  const { Agent, request } = await import("node:http");
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const tok = await getToken(dir, "keepalive");
  const sockets = new Set<unknown>();
  const once = () =>
    new Promise<number>((resolve, reject) => {
      const req = request({ socketPath: sock, path: "/deployments", agent, headers: { Authorization: `Bearer ${tok}` } }, (res) => {
        sockets.add(req.socket);
        res.resume().on("end", () => resolve(res.statusCode ?? 0));
      });
      req.on("error", reject).end();
    });
  try {
    await waitFor("token works", async () => (await once()) === 200);
    assert.equal(await once(), 200);
    await revokeToken(dir, "keepalive");
    const t0 = performance.now();
    await waitFor("revoked on the same connection", async () => (await once()) === 401, APPLY_MS);
    assert.ok(performance.now() - t0 < APPLY_MS);
    assert.equal(sockets.size, 1, "all requests went over one connection");
  } finally {
    agent.destroy();
  }
});
