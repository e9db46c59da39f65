// Failed binds fail (stevedore(8), EXIT STATUS): a listener that cannot bind stops the start with
// exit 1 and one line; a reload that moves a listener where it cannot bind fails and keeps the
// old one; a reload that changes static keys names them (admin restart_required, CLI exit 3).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:net";
import { request } from "node:http";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUNDLE, freePort, startDaemon } from "../helpers/daemon.js";
import { NO_DOCKER, parseReply, viaSocat } from "../helpers/admin.js";

function cli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BUNDLE, ...args], { env: { ...process.env, STEVEDORE_CONFIG: "" } });
    let stdout = "";
    let stderr = "";
    p.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    p.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    p.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

/** a TCP port held by this test process (another process's listener, for the daemon) */
async function holdPort(): Promise<{ port: number; server: Server }> {
  const server = createServer((s) => s.destroy());
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { port: (server.address() as { port: number }).port, server };
}

/** the status code of GET / on a local port (any HTTP answer means the listener serves) */
function httpStatus(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    request({ host: "127.0.0.1", port, path: "/", agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on("error", reject).end();
  });
}

const CORE_AND_ADMIN = ["query", "command", "manager", "http", "https"] as const;

/** Run `stevedore daemon` on this config until it exits (a daemon that starts is stopped). */
async function runOnce(dir: string, lines: string[]): Promise<{ code: number | null; stderr: string }> {
  const path = join(dir, "stevedore.conf");
  await writeFile(path, [`state_dir = "${join(dir, "state")}"`, ...lines, ""].join("\n"));
  const p = spawn(process.execPath, [BUNDLE, "daemon", "--config", path], { env: { ...process.env, ...NO_DOCKER, STEVEDORE_CONFIG: "", STEVEDORE_QUERY_SOCKET: "", STEVEDORE_STATE_DIR: "" } });
  let stderr = "";
  p.stderr.setEncoding("utf8").on("data", (c: string) => {
    stderr += c;
    if (/msg="ready"/.test(c)) p.kill("SIGTERM"); // it should not have started
  });
  const code = await new Promise<number | null>((r) => p.once("exit", (c) => r(c)));
  return { code, stderr };
}

const ALL_OFF = ["query_socket_path", "admin_socket_path", "command_socket_path", "core_listen", "manager_listen", "proxy_http_listen", "proxy_https_listen"];
const only = (on: Record<string, string>) => ALL_OFF.map((k) => `${k} = "${on[k] ?? ""}"`);

test("a port in use (core, proxy, metrics): the daemon exits 1 with the cause on one line, never ready", async (t) => {
  const held = await holdPort();
  const dir = await mkdtemp(join(tmpdir(), "stevedore-binds-"));
  t.after(async () => {
    held.server.close();
    await rm(dir, { recursive: true, force: true });
  });
  const core = await runOnce(dir, only({ core_listen: `127.0.0.1:${held.port}` }));
  assert.equal(core.code, 1, core.stderr);
  assert.deepEqual(core.stderr.split("\n").filter((l) => /cannot start/.test(l)).map((l) => l.replace(/^time=\S+ /, "")), [`level=error msg="cannot start" cause="core: 127.0.0.1:${held.port}: address already in use"`]);
  assert.doesNotMatch(core.stderr, /msg="ready"/);

  const proxy = await runOnce(dir, only({ proxy_http_listen: `127.0.0.1:${held.port}`, admin_socket_path: join(dir, "admin.sock") }));
  assert.equal(proxy.code, 1, proxy.stderr);
  assert.match(proxy.stderr, new RegExp(`level=error msg="cannot start" cause="proxy http: 127\\.0\\.0\\.1:${held.port}: address already in use"`));
  assert.doesNotMatch(proxy.stderr, /msg="ready"/);

  const metrics = await runOnce(dir, only({ admin_socket_path: join(dir, "admin.sock") }).concat(`metrics_listen = "127.0.0.1:${held.port}"`));
  assert.equal(metrics.code, 1, metrics.stderr);
  assert.deepEqual(metrics.stderr.split("\n").filter((l) => /cannot start/.test(l)).map((l) => l.replace(/^time=\S+ /, "")), [`level=error msg="cannot start" cause="metrics: 127.0.0.1:${held.port}: address already in use"`]);
  assert.doesNotMatch(metrics.stderr, /EADDRINUSE|msg="ready"/);
});

test("Unix sockets: a live socket of another process, a path that is a file: exit 1 with the cause; the other process keeps its socket", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-binds-"));
  const foreign = createServer((s) => {
    s.on("error", () => {});
    s.end("foreign\n");
  });
  await new Promise<void>((r) => foreign.listen(join(dir, "admin.sock"), r));
  t.after(async () => {
    foreign.close();
    await rm(dir, { recursive: true, force: true });
  });
  const live = await runOnce(dir, only({ admin_socket_path: join(dir, "admin.sock") }));
  assert.equal(live.code, 1, live.stderr);
  assert.match(live.stderr, /level=error msg="cannot start" cause="admin: admin socket \S+admin\.sock is in use by another process"/);
  assert.equal(await viaSocat(join(dir, "admin.sock"), "status\n"), "foreign\n");

  await writeFile(join(dir, "query.sock"), "precious\n");
  const file = await runOnce(dir, only({ query_socket_path: join(dir, "query.sock") }));
  assert.equal(file.code, 1, file.stderr);
  assert.match(file.stderr, /msg="cannot start" cause="query: query path \S+query\.sock exists and is not a socket; refusing to replace it"/);
});

test("reload: a core_listen moved to a port in use fails (admin error, CLI exit 1), the old listener still answers; a free port answers restart_required (CLI exit 3)", async () => {
  const held = await holdPort();
  const d = await startDaemon({ env: NO_DOCKER, disable: [...CORE_AND_ADMIN] });
  try {
    assert.equal(await httpStatus(d.corePort), 401);
    const text = (await import("node:fs")).readFileSync(d.configPath, "utf8");
    const moveTo = (port: number) => writeFile(d.configPath, text.replace(/core_listen = .*/, `core_listen = "127.0.0.1:${port}"`) + 'log_level = "debug"\n');

    await moveTo(held.port);
    const bad = parseReply(await viaSocat(d.adminSocket, "reload\n"));
    assert.deepEqual(bad, { status: "error", message: `core_listen = 127.0.0.1:${held.port}: cannot bind: address already in use` });
    const badCli = await cli(["reload", "--config", d.configPath]);
    assert.equal(badCli.status, 1);
    assert.match(badCli.stderr, /^stevedore: reload failed: core_listen = \S+: cannot bind: address already in use\n$/);
    assert.ok(!d.logs.some((l) => /level=debug/.test(l)), "the dynamic keys of the failed file were not applied");
    assert.equal(await httpStatus(d.corePort), 401, "the old listener still answers");

    const free = await freePort();
    await moveTo(free);
    assert.deepEqual(parseReply(await viaSocat(d.adminSocket, "reload\n")), { status: "ok", restart_required: ["core_listen"] });
    await d.waitForLog(/level=warn msg="restart required" key=core_listen/);
    const okCli = await cli(["reload", "--config", d.configPath]);
    assert.deepEqual([okCli.status, okCli.stdout, okCli.stderr], [3, "reloaded; restart required for: core_listen\n", ""]);
    assert.equal(await httpStatus(d.corePort), 401, "static: still served on the running address");

    // back to the running value: nothing waits for a restart
    await writeFile(d.configPath, text);
    assert.deepEqual(parseReply(await viaSocat(d.adminSocket, "reload\n")), { status: "ok" });
    const clean = await cli(["reload", "--config", d.configPath]);
    assert.deepEqual([clean.status, clean.stdout], [0, "reloaded\n"]);
  } finally {
    await d.cleanup();
    held.server.close();
  }
});

test("status exits 1 when a listener is unavailable, each row with its address and cause (table and --json); 0 when all are up", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-binds-"));
  const path = join(dir, "admin.sock");
  const reply = {
    status: "ok", uptime_secs: 5, sites: 0, version: "0", deployments: 0, services: 0, docker: "ok", pending_polls: 0,
    listeners: {
      admin: { state: "listening", address: path },
      core: { state: "unavailable", address: "127.0.0.1:8000", reason: "127.0.0.1:8000: address already in use" },
      proxy: { state: "listening", http: { state: "listening", address: "0.0.0.0:80" }, https: { state: "unavailable", address: "0.0.0.0:443", error: "EACCES", reason: "0.0.0.0:443: permission denied" } },
    },
  };
  let answer: object = reply;
  const fake = createServer((s) => {
    s.on("error", () => {});
    s.once("data", () => s.end(JSON.stringify(answer) + "\n"));
  });
  await new Promise<void>((r) => fake.listen(path, r));
  t.after(async () => {
    fake.close();
    await rm(dir, { recursive: true, force: true });
  });
  const table = await cli(["status", "--socket", path]);
  assert.equal(table.status, 1, table.stderr);
  assert.match(table.stdout, /^core\s+unavailable\s+127\.0\.0\.1:8000\s+127\.0\.0\.1:8000: address already in use$/m);
  assert.match(table.stdout, /^proxy https\s+unavailable\s+0\.0\.0\.0:443\s+0\.0\.0\.0:443: permission denied$/m);
  const json = await cli(["status", "--json", "--socket", path]);
  assert.equal(json.status, 1);
  assert.deepEqual(JSON.parse(json.stdout), reply);
  answer = { ...reply, listeners: { admin: reply.listeners.admin, core: { state: "disabled" } } };
  assert.equal((await cli(["status", "--socket", path])).status, 0);
});
