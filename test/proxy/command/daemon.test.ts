// The command socket in the real daemon (the bundle): a real client (socat), the CLI, SAVE/LOAD
// across daemons, restart keeps run-time routes, SOFT_STOP / HARD_STOP end the process with 0.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import { join } from "node:path";
import { startDaemon, BUNDLE, type TestDaemon } from "../../helpers/daemon.js";
import { makeCert } from "./helpers.js";

const run = promisify(execFile);
const ONLY_COMMAND = { disable: ["query", "admin", "core", "manager", "http", "https"] as ("query" | "admin" | "core" | "manager" | "http" | "https")[] };

/** printf '%s\0' FRAMES... | socat -t 2 - UNIX-CONNECT:SOCK → the answers */
async function socat(sock: string, ...frames: string[]): Promise<Record<string, unknown>[]> {
  const script = `printf '%s\\0' "$@" | socat -t 2 - UNIX-CONNECT:${sock}`;
  const { stdout } = await run("sh", ["-c", script, "sh", ...frames], { timeout: 10_000 });
  return stdout.split("\0").filter(Boolean).map((s) => JSON.parse(s) as Record<string, unknown>);
}

function cli(d: TestDaemon, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BUNDLE, "proxy", "--config", d.configPath, ...args], { env: { ...process.env, STEVEDORE_CONFIG: "" } });
    let stdout = "";
    let stderr = "";
    p.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
    p.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    p.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

test("happy path with a real client: printf | socat", async (t) => {
  const d = await startDaemon(ONLY_COMMAND);
  t.after(() => d.cleanup());
  const answers = await socat(d.commandSocket,
    '{"id":"f","version":0,"data":{"type":"ADD_HTTP_FRONT","data":{"app_id":"web","hostname":"web.example.com","path_begin":"/"}}}',
    '{"id":"b","version":0,"type":"PROXY","data":{"type":"ADD_BACKEND","data":{"app_id":"web","backend_id":"web-1","address":"127.0.0.1:8080"}}}',
    '{"id":"s","version":0,"type":"STATUS"}');
  const byId = Object.fromEntries(answers.map((a) => [a.id, a]));
  assert.deepEqual(byId.f, { id: "f", version: 0, status: "Ok", message: "http frontend web.example.com/ (application web) added" });
  assert.deepEqual(byId.b, { id: "b", version: 0, status: "Ok", message: "backend web-1 (127.0.0.1:8080) added to application web" });
  assert.deepEqual(byId.s, { id: "s", version: 0, status: "Ok", message: "workers", data: [{ id: 0, pid: d.proc.pid, run_state: "RUNNING" }] });
});

test("CLI: app/front/backend/cert add+remove, dump, routes, status, send, errors", async (t) => {
  const d = await startDaemon(ONLY_COMMAND);
  t.after(() => d.cleanup());
  const cert = await makeCert(d.dir, ["secure.example.com"], "s");
  await (await import("node:fs/promises")).writeFile(join(d.dir, "s.crt"), cert.cert);
  const ok = async (args: string[], stdout: string | RegExp) => {
    const r = await cli(d, ...args);
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    if (typeof stdout === "string") assert.equal(r.stdout, stdout, args.join(" "));
    else assert.match(r.stdout, stdout, args.join(" "));
    return r;
  };
  await ok(["app", "add", "web", "--sticky", "--lb", "random"], "application web added\n");
  await ok(["front", "add", "--app", "web", "--host", "Web.Example.com", "--path", "/api"], "http frontend web.example.com/api (application web) added\n");
  await ok(["backend", "add", "--app", "web", "--address", "127.0.0.1:9001", "--id", "w1"], "backend w1 (127.0.0.1:9001) added to application web\n");
  await ok(["backend", "add", "--app", "web", "--address", "127.0.0.1:9002"], "backend 127.0.0.1:9002 (127.0.0.1:9002) added to application web\n");
  // scriptable: the fingerprint alone on stdout; adding it again says so on stderr only
  await ok(["cert", "add", "--cert", join(d.dir, "s.crt"), "--key", join(d.dir, "s.key")], `${cert.fingerprint}\n`);
  const again = await ok(["cert", "add", "--cert", join(d.dir, "s.crt"), "--key", join(d.dir, "s.key")], `${cert.fingerprint}\n`);
  assert.match(again.stderr, /^stevedore: certificate \S+ was already present\n$/);
  await ok(["front", "add", "--app", "web", "--host", "secure.example.com", "--https", "--cert", cert.fingerprint], "https frontend secure.example.com (application web) added\n");
  const dump = JSON.parse((await ok(["dump", "--json"], /"applications"/)).stdout);
  assert.deepEqual(dump.certificates, { [cert.fingerprint]: ["secure.example.com"] });
  assert.equal(dump.backends.length, 2);
  await ok(["dump"], /APPLICATION\s+STICKY[\s\S]*web\s+true\s+false\s+random[\s\S]*127\.0\.0\.1:9002/);
  // other test files run ingress containers on the same Docker engine: their routes appear too
  const routes = (JSON.parse((await ok(["routes", "--json"], /command/)).stdout) as { source: string }[]).filter((r) => r.source === "command");
  const bs = [{ address: "127.0.0.1:9001", up: true }, { address: "127.0.0.1:9002", up: true }];
  assert.deepEqual(routes, [
    { source: "command", protocols: ["http"], hostname: "web.example.com", path_begin: "/api", app_id: "web", backends: bs },
    { source: "command", protocols: ["https"], hostname: "secure.example.com", path_begin: "", app_id: "web", backends: bs },
  ]);
  // routes --json and dump --json name the same things the same way
  const front = dump.http_fronts.find((f: { hostname: string }) => f.hostname === "web.example.com");
  for (const field of ["hostname", "path_begin", "app_id"]) assert.equal((routes[0] as Record<string, unknown>)[field], front[field], field);
  // -q: ids only
  assert.match((await ok(["routes", "-q"], /^web$/m)).stdout, /^[^\s]+(\n[^\s]+)*\n$/);
  await ok(["status", "-q"], /^0\n$/);
  await ok(["routes"], /^SOURCE\s+PROTOCOLS\s+HOST\s+PATH\s+APPLICATION\s+BACKENDS\n(?:.*\n)*command\s+http\s+web\.example\.com\s+\/api\s+web\s+127\.0\.0\.1:9001,127\.0\.0\.1:9002\n/);
  await ok(["status"], new RegExp(`^WORKER\\s+PID\\s+STATE\\n0\\s+${d.proc.pid}\\s+RUNNING\\n$`));
  await ok(["status", "--json"], new RegExp(`"pid": ${d.proc.pid}`));

  // errors: the daemon's message on stderr, exit 1
  const inUse = await cli(d, "cert", "remove", cert.fingerprint);
  assert.equal(inUse.code, 1);
  assert.equal(inUse.stderr, `stevedore: certificate ${cert.fingerprint} is used by https frontends: secure.example.com (application web)\n`);
  const absent = await cli(d, "backend", "remove", "--app", "web", "--address", "127.0.0.1:1");
  assert.deepEqual([absent.code, absent.stderr], [1, "stevedore: No such backend 127.0.0.1:1 in application web\n"]);
  await ok(["front", "remove", "--app", "web", "--host", "secure.example.com", "--https"], "https frontend secure.example.com (application web) removed\n");
  await ok(["cert", "remove", cert.fingerprint], `certificate ${cert.fingerprint} removed\n`);
  await ok(["backend", "remove", "--app", "web", "--address", "127.0.0.1:9001", "--id", "w1"], "backend w1 (127.0.0.1:9001) of application web removed\n");
  await ok(["app", "remove", "web"], "application web removed with 1 frontends and 1 backends\n");

  // send: raw JSON, every answer printed; an Error exits 1
  const sent = await ok(["send", '{"id":"raw","version":0,"type":"DUMP_STATE"}'], /^\{"id":"raw","version":0,"status":"Ok","message":"state"/);
  assert.equal(sent.stdout.trim().split("\n").length, 1);
  const bad = await cli(d, "send", "{nope");
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, /"status":"Error","message":"invalid JSON/);
  // upgrade: test/proxy/upgrade.test.ts

  // usage errors exit 2
  for (const args of [[], ["frob"], ["front", "add", "--app", "x"], ["backend", "add", "--app", "x", "--address", "1.2.3.4:5", "extra"], ["app", "add", "x", "--lb", "fastest"], ["status", "--bogus"]]) {
    const r = await cli(d, ...args);
    assert.equal(r.code, 2, args.join(" "));
    assert.match(r.stderr, /^stevedore: /);
  }
  // no daemon there: one line, exit 1
  const gone = await cli(d, "--socket", join(d.dir, "nothing.sock"), "status");
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /^stevedore: the daemon is not running \(nothing listens on the command socket .*nothing\.sock\): is the daemon running\? start it, or pass --socket\n$/);
  assert.doesNotMatch(gone.stderr, /ENOENT/);
});

test("SAVE in one daemon, LOAD into a fresh one: identical DUMP; restart keeps run-time routes", async (t) => {
  const a = await startDaemon(ONLY_COMMAND);
  t.after(() => a.cleanup());
  const b = await startDaemon(ONLY_COMMAND);
  t.after(() => b.cleanup());
  const cert = await makeCert(a.dir, ["*.example.net"], "w");
  await (await import("node:fs/promises")).writeFile(join(a.dir, "w.crt"), cert.cert);
  for (const args of [
    ["app", "add", "api", "--https-redirect", "--lb", "leastconnections"],
    ["front", "add", "--app", "api", "--host", "api.example.net"],
    ["backend", "add", "--app", "api", "--address", "[::1]:7000"],
    ["cert", "add", "--cert", join(a.dir, "w.crt"), "--key", join(a.dir, "w.key"), "--chain", join(a.dir, "w.crt")],
    ["front", "add", "--app", "api", "--host", "*.example.net", "--path", "/v1", "--https", "--cert", cert.fingerprint],
  ]) assert.equal((await cli(a, ...args)).code, 0, args.join(" "));
  const dumpA = (await cli(a, "dump", "--json")).stdout;
  const file = join(a.dir, "saved.state");
  assert.equal((await cli(a, "save", file)).stdout, `saved 5 messages to ${file}\n`);
  assert.equal((await cli(b, "load", file)).stdout, "loaded 5 messages, 5 changes\n");
  assert.equal((await cli(b, "dump", "--json")).stdout, dumpA);

  await b.restart();
  assert.equal((await cli(b, "dump", "--json")).stdout, dumpA, "a restart keeps the routes added at run time");
});

test("SOFT_STOP: Processing, then Ok, and the daemon exits 0", async (t) => {
  const d = await startDaemon(ONLY_COMMAND);
  t.after(() => d.cleanup());
  const exited = new Promise<number | null>((r) => d.proc.once("exit", (code) => r(code)));
  const answers = await socat(d.commandSocket, '{"id":"soft","version":0,"data":{"type":"SOFT_STOP"}}');
  assert.deepEqual(answers, [
    { id: "soft", version: 0, status: "Processing", message: "soft stop: draining in-flight requests" },
    { id: "soft", version: 0, status: "Ok", message: "soft stop done" },
  ]);
  assert.equal(await exited, 0);
});

test("stevedore proxy stop --hard: Ok, and the daemon exits 0", async (t) => {
  const d = await startDaemon(ONLY_COMMAND);
  t.after(() => d.cleanup());
  const exited = new Promise<number | null>((r) => d.proc.once("exit", (code) => r(code)));
  const r = await cli(d, "stop", "--hard");
  assert.deepEqual([r.code, r.stdout], [0, "hard stop\n"]);
  assert.equal(await exited, 0);
});

test("stevedore proxy stop: prints Processing then Ok; the daemon exits 0", async (t) => {
  const d = await startDaemon(ONLY_COMMAND);
  t.after(() => d.cleanup());
  const exited = new Promise<number | null>((r) => d.proc.once("exit", (code) => r(code)));
  const r = await cli(d, "stop");
  assert.deepEqual([r.code, r.stdout], [0, "soft stop: draining in-flight requests\nsoft stop done\n"]);
  assert.equal(await exited, 0);
});
