// The query socket in the bundled daemon: socket mode, tokens applied while running, curl as a
// real client, stop answering pending polls, stale-socket rules.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, execFile } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile, lstat } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { BUNDLE, startDaemon, waitFor, type TestDaemon } from "../helpers/daemon.js";
import { get } from "./http.js";

/** A token change is in force within 1 s (design/query.md) on a quiet machine; the bound leaves
 *  room for a loaded CI machine. Without the watch and the periodic check it would never apply. */
const APPLY_MS = 3000;

const exec = promisify(execFile);

function cli(d: TestDaemon, ...args: string[]) {
  return spawnSync(process.execPath, [BUNDLE, ...args], {
    encoding: "utf8",
    env: { ...process.env, STEVEDORE_CONFIG: d.configPath, STEVEDORE_STATE_DIR: "", STEVEDORE_QUERY_SOCKET: "", STEVEDORE_QUERY_TOKEN: "" },
  });
}

async function curl(d: TestDaemon, path: string, token?: string): Promise<{ status: number; body: string }> {
  const args = ["-s", "-w", "\n%{http_code}", "--unix-socket", d.querySocket];
  if (token) args.push("-H", `Authorization: Bearer ${token}`);
  const { stdout } = await exec("curl", [...args, `http://localhost${path}`]);
  const nl = stdout.lastIndexOf("\n");
  return { status: Number(stdout.slice(nl + 1)), body: stdout.slice(0, nl) };
}

const only = { disable: ["admin", "command", "core", "manager", "http", "https"] as ("admin" | "command" | "core" | "manager" | "http" | "https")[] };

test("the socket is 0666, the tokens file 0600; curl drives the happy paths", async (t) => {
  const d = await startDaemon(only);
  t.after(() => d.cleanup());
  assert.equal((await stat(d.querySocket)).mode & 0o777, 0o666);
  const g = cli(d, "token", "get", "q-web");
  assert.equal(g.status, 0, g.stderr);
  const token = g.stdout.trim();
  assert.equal((await stat(join(d.stateDir, "tokens.json"))).mode & 0o777, 0o600);

  assert.deepEqual(await curl(d, "/healthz"), { status: 200, body: `{"status":"ok"}` });
  await waitFor("token in force", async () => (await curl(d, "/services", token)).status === 200);
  const services = await curl(d, "/services", token);
  assert.ok(Array.isArray(JSON.parse(services.body)));
  const deployments = await curl(d, "/deployments", token);
  assert.equal(deployments.status, 200);
  assert.ok(Array.isArray(JSON.parse(deployments.body)));
  const poll = await curl(d, "/poll?since=0", token);
  assert.equal(poll.status, 200);
  assert.equal(JSON.parse(poll.body).changed, true);
  const timeout = await curl(d, `/poll?since=${JSON.parse(poll.body).timestamp}&timeout=1`, token);
  assert.deepEqual(Object.keys(JSON.parse(timeout.body)), ["changed", "timestamp"]);
  assert.equal((await curl(d, "/services")).status, 401);
});

test("regenerate and revoke with the CLI while the daemon runs: applied within 1 s", async (t) => {
  const d = await startDaemon(only);
  t.after(() => d.cleanup());
  const first = cli(d, "token", "get", "q-regen").stdout.trim();
  await waitFor("first token works", async () => (await get(d.querySocket, "/deployments", { token: first })).status === 200);
  const second = cli(d, "token", "regenerate", "q-regen").stdout.trim();
  assert.match(second, /^[0-9a-f]{64}$/);
  const t0 = performance.now();
  await waitFor("new token works", async () => (await get(d.querySocket, "/deployments", { token: second })).status === 200, APPLY_MS);
  await waitFor("old token refused", async () => (await get(d.querySocket, "/deployments", { token: first })).status === 401, APPLY_MS);
  assert.ok(performance.now() - t0 < APPLY_MS);
  assert.equal(cli(d, "token", "revoke", "q-regen").status, 0);
  const t1 = performance.now();
  await waitFor("revoked token refused", async () => (await get(d.querySocket, "/deployments", { token: second })).status === 401, APPLY_MS);
  assert.ok(performance.now() - t1 < APPLY_MS);
  assert.ok(!d.logs.some((l) => l.includes(first) || l.includes(second)), "a token in the log");
});

test("daemon stop answers every pending poll changed:true before the socket closes", async (t) => {
  const d = await startDaemon({ ...only, config: `log_level = "debug"` });
  t.after(() => d.cleanup());
  const token = cli(d, "token", "get", "q-stop").stdout.trim();
  await waitFor("token works", async () => (await get(d.querySocket, "/deployments", { token })).status === 200);
  const ts = (await get(d.querySocket, "/poll?since=0", { token })).json.timestamp as number;
  const polls = Array.from({ length: 5 }, () => get(d.querySocket, `/poll?since=${ts}&timeout=120`, { token }));
  // the request is logged in the same synchronous step that registers its waiter
  await waitFor("5 polls registered", () => d.logs.filter((l) => /msg="query request" .*path=\/poll/.test(l)).length === 6);
  const code = await d.stop();
  assert.equal(code, 0);
  for (const p of polls) {
    const r = await p;
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { changed: true, timestamp: ts });
  }
  await assert.rejects(lstat(d.querySocket), { code: "ENOENT" });
});

test("stale socket: a dead socket is replaced", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-q-stale-"));
  const path = join(dir, "query.sock");
  const child = spawn(process.execPath, ["-e", `require("net").createServer().listen(${JSON.stringify(path)}, () => console.log("up"))`], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise((r) => child.stdout!.once("data", r));
  child.kill("SIGKILL");
  await new Promise((r) => child.once("exit", r));
  assert.ok((await lstat(path)).isSocket());
  const d = await startDaemon({ ...only, dir });
  t.after(async () => {
    await d.stop(); // before removing the dir the daemon writes its state into
    await rm(dir, { recursive: true, force: true });
  });
  assert.equal((await get(path, "/healthz")).status, 200);
  assert.ok(d.logs.some((l) => /removing stale socket/.test(l)));
});

test("stale socket: a live socket of another process is kept, an error logged, the daemon does not start (exit 1)", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-q-live-"));
  const path = join(dir, "query.sock");
  let accepted = 0;
  const other = createServer((s) => {
    accepted++;
    s.on("error", () => {}); // the daemon's liveness probe hangs up at once
    s.end("other\n");
  });
  await new Promise<void>((r) => other.listen(path, r));
  t.after(() => new Promise<void>((r) => other.close(() => r())));
  const d = await startDaemon({ ...only, dir, readyLog: /msg="cannot start"/ });
  t.after(async () => {
    await d.stop(); // before removing the dir the daemon writes its state into
    await rm(dir, { recursive: true, force: true });
  });
  const warn = await d.waitForLog(/level=error .*in use by another process/);
  assert.match(warn, /query/);
  assert.match(d.logs.find((l) => /msg="cannot start"/.test(l))!, /cause="query: query socket \S+ is in use by another process"/);
  const before = accepted;
  await new Promise<void>((resolve, reject) => {
    const s = connect(path);
    s.once("data", () => (s.destroy(), resolve()));
    s.once("error", reject);
  });
  assert.ok(accepted > before, "the other process still owns the socket");
  assert.equal(d.proc.exitCode ?? (await new Promise((r) => d.proc.once("exit", r))), 1);
});

test("stale socket: a regular file at the path is kept and reported; the daemon does not start", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-q-file-"));
  const path = join(dir, "query.sock");
  await writeFile(path, "precious\n");
  const d = await startDaemon({ ...only, dir, readyLog: /msg="cannot start"/ });
  t.after(async () => {
    await d.stop(); // before removing the dir the daemon writes its state into
    await rm(dir, { recursive: true, force: true });
  });
  await d.waitForLog(/level=error .*query path .* exists and is not a socket; refusing to replace it/);
  assert.equal(await readFile(path, "utf8"), "precious\n");
  assert.equal(d.proc.exitCode ?? (await new Promise((r) => d.proc.once("exit", r))), 1, "the daemon does not start");
});
