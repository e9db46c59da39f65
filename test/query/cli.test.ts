// The CLI clients (services, deployments, deployment) and `token` as the bundled binary,
// against a query server on a fake catalog.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QueryServer } from "../../src/query/index.js";
import { TokenRegistry, getToken, tokensPath } from "../../src/tokens/index.js";
import { listenUnix } from "../../src/http/index.js";
import { BUNDLE } from "../helpers/daemon.js";
import { FakeCatalog, container } from "./fake-catalog.js";

let dir: string;
let stateDir: string;
let config: string;
let catalog: FakeCatalog;
let registry: TokenRegistry;
let qs: QueryServer;
let token: string;

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BUNDLE, ...args], {
      env: { ...process.env, STEVEDORE_CONFIG: config, STEVEDORE_STATE_DIR: "", STEVEDORE_QUERY_SOCKET: "", STEVEDORE_QUERY_TOKEN: "", ...env },
    });
    let stdout = "";
    let stderr = "";
    p.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    p.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    p.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "stevedore-q-cli-"));
  stateDir = join(dir, "state");
  config = join(dir, "stevedore.conf");
  await writeFile(config, `state_dir = "${stateDir}"\nquery_socket_path = "${join(dir, "query.sock")}"\n`);
  token = await getToken(stateDir, "web");
  catalog = new FakeCatalog();
  registry = new TokenRegistry(tokensPath(stateDir), () => catalog.refreshRegistered());
  catalog.addRegisteredSource("tokens", () => registry.deployments());
  registry.start();
  qs = new QueryServer({ catalog, lookupToken: (t) => registry.lookup(t), tokensGeneration: () => registry.generation, staleAfterSecs: () => 30, pollDefaultTimeoutSecs: () => 60, maxConnections: 100 });
  assert.ok((await listenUnix(qs.server, join(dir, "query.sock"), 0o666, "query")).ok);
  catalog.publish([
    container({ deployment: "shop", service: "web", name: "stevedore-shop-web-1", ingress: { enabled: true, subdomain: "www", port: 8080, websocket: true, healthcheck: "/health" } }),
    container({ deployment: "shop", service: "db", name: "stevedore-shop-db-1", state: "exited", running: false, exitCode: 1 }),
  ]);
});

after(async () => {
  registry.stop();
  qs.closeAllConnections();
  await new Promise((r) => qs.server.close(r));
  await rm(dir, { recursive: true, force: true });
});

test("services: a human table by default, JSON with --json, --ingress filters; the token comes from the tokens file", async () => {
  const h = await cli(["services"]);
  assert.equal(h.code, 0, h.stderr);
  const lines = h.stdout.trim().split("\n");
  assert.match(lines[0]!, /^DEPLOYMENT\s+SERVICE\s+CONTAINER\s+ID\s+RUNNING\s+INGRESS$/);
  assert.match(lines[1]!, /^shop\s+db\s+stevedore-shop-db-1\s+[0-9a-f]{12}\s+no\s+-$/);
  assert.match(lines[2]!, /^shop\s+web\s+stevedore-shop-web-1\s+[0-9a-f]{12}\s+yes\s+www:8080 websocket health=\/health$/);
  const j = await cli(["services", "--json"]);
  assert.deepEqual(JSON.parse(j.stdout).map((s: { service: string }) => s.service), ["db", "web"]);
  const i = await cli(["services", "--ingress", "--json"]);
  assert.deepEqual(JSON.parse(i.stdout).map((s: { service: string }) => s.service), ["web"]);
});

test("deployments and deployment NAME: tables and JSON", async () => {
  const d = await cli(["deployments"]);
  assert.equal(d.code, 0, d.stderr);
  assert.equal(d.stdout, "NAME\nshop\nweb\n");
  assert.deepEqual(JSON.parse((await cli(["deployments", "--json"])).stdout), [{ name: "shop" }, { name: "web" }]);
  const s = await cli(["deployment", "shop"]);
  assert.equal(s.code, 0, s.stderr);
  assert.match(s.stdout, /^deployment: shop\nproject: +stevedore-shop\nhealthy: +no \(1\/2 containers running\)\n\nNAME +SERVICE +IMAGE +STATE +HEALTH +STATUS +STARTED\n/);
  assert.match(s.stdout, /stevedore-shop-web-1 +web +stevedore-test\/busybox:latest +running +none +Up 2h +\d{4}-/);
  const sj = JSON.parse((await cli(["deployment", "shop", "--json"])).stdout);
  assert.equal(sj.project_name, "stevedore-shop");
  // -q: ids only, one a line, on every listing that has --json
  assert.equal((await cli(["deployments", "-q"])).stdout, "shop\nweb\n");
  assert.deepEqual((await cli(["deployment", "shop", "-q"])).stdout.trim().split("\n"), sj.containers.map((c: { id: string }) => c.id));
  const ids = (await cli(["services", "--quiet"])).stdout.trim().split("\n");
  assert.deepEqual(ids, JSON.parse((await cli(["services", "--json"])).stdout).map((x: { container_id: string }) => x.container_id));
  assert.equal((await cli(["token", "list", "-q"], { STEVEDORE_STATE_DIR: stateDir })).stdout, "web\n");
});

test("--token and STEVEDORE_QUERY_TOKEN are used; a bad one is a clear error (exit 1)", async () => {
  assert.equal((await cli(["deployments", "--token", token])).code, 0);
  assert.equal((await cli(["deployments"], { STEVEDORE_QUERY_TOKEN: token })).code, 0);
  const bad = await cli(["deployments", "--token", "f".repeat(64)]);
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr, "stevedore: invalid token\n");
  const env = await cli(["deployments"], { STEVEDORE_QUERY_TOKEN: "nope" });
  assert.equal(env.stderr, "stevedore: invalid token\n");
});

test("errors: unknown deployment exit 1, invalid name exit 2, daemon not running exit 1, no token exit 1", async () => {
  const unknown = await cli(["deployment", "nothere"]);
  assert.equal(unknown.code, 1);
  assert.equal(unknown.stderr, "stevedore: unknown deployment nothere\n");
  const invalid = await cli(["deployment", "Not-Valid"]);
  assert.equal(invalid.code, 2);
  assert.match(invalid.stderr, /^stevedore: invalid deployment name "Not-Valid"/);
  assert.equal((await cli(["deployment"])).code, 2);
  assert.equal((await cli(["services", "extra"])).code, 2);
  const down = await cli(["services"], { STEVEDORE_QUERY_SOCKET: join(dir, "nothing.sock") });
  assert.equal(down.code, 1);
  assert.match(down.stderr, /^stevedore: the daemon is not running \(nothing listens on the query socket .*nothing\.sock\): is the daemon running\? start it, or pass --socket\n$/);
  // --socket names the socket the same way as for status, reload and proxy
  const flag = await cli(["services", "--socket", join(dir, "other.sock")]);
  assert.equal(flag.code, 1);
  assert.match(flag.stderr, /query socket \S+other\.sock\)/);
  const noToken = await cli(["services"], { STEVEDORE_STATE_DIR: join(dir, "empty") });
  assert.equal(noToken.code, 1);
  assert.match(noToken.stderr, /^stevedore: no query token: .*STEVEDORE_QUERY_TOKEN/);
});

test("token: get/regenerate/revoke/list through the binary, with exit codes and clear errors", async () => {
  const sd = join(dir, "tok");
  const env = { STEVEDORE_STATE_DIR: sd };
  const g = await cli(["token", "get", "api"], env);
  assert.equal(g.code, 0);
  assert.match(g.stdout, /^[0-9a-f]{64}\n$/);
  assert.equal((await cli(["token", "get", "api"], env)).stdout, g.stdout);
  const r = await cli(["token", "regenerate", "api"], env);
  assert.notEqual(r.stdout, g.stdout);
  const l = await cli(["token", "list", "--json"], env);
  assert.deepEqual(JSON.parse(l.stdout).map((x: { deployment: string }) => x.deployment), ["api"]);
  assert.ok(!l.stdout.includes(r.stdout.trim()));
  assert.match((await cli(["token", "list"], env)).stdout, /^DEPLOYMENT +CREATED\napi +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n$/);
  assert.equal((await cli(["token", "revoke", "api"], env)).code, 0);
  const again = await cli(["token", "revoke", "api"], env);
  assert.equal(again.code, 1);
  assert.equal(again.stderr, "stevedore: deployment api has no token\n");
  const bad = await cli(["token", "get", "BAD"], env);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^stevedore: invalid deployment name "BAD": use 1-63 characters/);
  for (const args of [["token"], ["token", "frob", "x"], ["token", "get"], ["token", "list", "x"], ["token", "get", "a", "b"]])
    assert.equal((await cli(args, env)).code, 2, args.join(" "));
  assert.equal((await cli(["token", "list", "--json"], env)).stdout.trim(), "[]");
});
