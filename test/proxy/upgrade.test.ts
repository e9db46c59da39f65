// UPGRADE_MASTER through the bundled daemon: a new master takes every listening socket over while
// a request loop runs against the proxy, the query socket and the core API; not one request fails.
// A new master that cannot start answers Error and the old one keeps serving.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, request, type IncomingMessage } from "node:http";
import { connect } from "node:net";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { BUNDLE, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { waitFor } from "../helpers/docker.js";
import { CommandClient } from "../../src/proxy/command/client.js";
import type { Answer } from "../../src/proxy/command/messages.js";
import { UNDER_SYSTEMD } from "../../src/proxy/command/handler.js";

const run = promisify(execFile);

type Target = { port: number; host?: string } | { socketPath: string };

/** One request on a fresh connection: the status, or the error code. */
function get(target: Target, path: string, headers: Record<string, string> = {}): Promise<{ status?: number; body: string; error?: string }> {
  return new Promise((resolve) => {
    const req = request({ ...target, ...("port" in target && { host: "127.0.0.1" }), path, headers, agent: false, timeout: 20_000 }, (res: IncomingMessage) => {
      let body = "";
      res.setEncoding("utf8").on("data", (s: string) => (body += s));
      res.on("end", () => resolve({ status: res.statusCode, body }));
      res.on("error", (e: NodeJS.ErrnoException) => resolve({ body, error: e.code ?? e.message }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (e: NodeJS.ErrnoException) => resolve({ body: "", error: e.code ?? e.message }));
    req.end();
  });
}

/** One admin command (one line, one reply per connection). */
function admin(path: string, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let out = "";
    s.setEncoding("utf8").on("data", (d: string) => (out += d));
    s.on("end", () => resolve(out));
    s.on("error", reject);
    s.end(`${line}\n`);
  });
}

const spec = (id: string, type: string, data?: unknown) => ({ id, version: 0, data: data === undefined ? { type } : { type, data } });

async function order(d: TestDaemon, message: Record<string, unknown>): Promise<Answer[]> {
  const c = await CommandClient.connect(d.commandSocket);
  const seen: Answer[] = [];
  try {
    await c.request(message, { timeoutMs: 60_000, onAnswer: (a) => seen.push(a) });
  } finally {
    c.close();
  }
  return seen;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test("UPGRADE_MASTER: the new master takes every socket over, no request fails; a failing upgrade keeps the old one", async (t) => {
  const backend = createServer((req, res) => res.end(`backend ${req.url}`));
  await new Promise<void>((r) => backend.listen(0, "127.0.0.1", r));
  t.after(() => backend.close());
  const bport = (backend.address() as { port: number }).port;
  const site = `[[site]]\nhostname = "site.test"\nbackends = ["127.0.0.1:${bport}"]\n`;
  const d = await startDaemon({ config: site, disable: ["manager"] });
  let newPid = 0;
  t.after(async () => {
    if (newPid && alive(newPid)) {
      process.kill(newPid, "SIGTERM");
      await waitFor("new master gone", () => !alive(newPid), 10_000).catch(() => process.kill(newPid, "SIGKILL"));
    }
    await d.cleanup();
  });
  const oldPid = d.proc.pid!;

  // a run-time route on the command socket: the new master must serve it too
  for (const [type, data] of [
    ["ADD_APPLICATION", { app_id: "rt" }],
    ["ADD_HTTP_FRONT", { app_id: "rt", hostname: "runtime.test" }],
    ["ADD_BACKEND", { app_id: "rt", ip_address: "127.0.0.1", port: bport }],
  ] as const) assert.equal((await order(d, spec(type, type, data))).at(-1)?.status, "Ok", type);
  assert.equal((await get({ port: d.httpPort }, "/x", { Host: "runtime.test" })).body, "backend /x");

  // 1. a new master that cannot start (its config file is invalid): Error, the old one keeps serving
  await d.writeConfig(`${site}\nno_such_key = 1\n`);
  const failed = await order(d, spec("up1", "UPGRADE_MASTER"));
  assert.deepEqual(failed.map((a) => a.status), ["Processing", "Error"]);
  assert.match(failed[1]!.message, /^upgrade failed: the new master exited before it was ready \(code 1\); this master keeps serving$/);
  // the CLI: both answers, exit 1 (the config file is invalid now, so the socket is named)
  const cli = await run(process.execPath, [BUNDLE, "proxy", "--socket", d.commandSocket, "upgrade"]).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => e,
  );
  assert.deepEqual([cli.code, cli.stdout, cli.stderr], [1, "upgrade: starting a new master process\n", "stevedore: upgrade failed: the new master exited before it was ready (code 1); this master keeps serving\n"]);
  assert.equal(d.proc.exitCode, null);
  assert.equal((await get({ port: d.httpPort }, "/after-fail", { Host: "site.test" })).body, "backend /after-fail");
  assert.equal((await get({ socketPath: d.querySocket }, "/healthz")).status, 200);
  // the state is writable again once the upgrade is over
  assert.equal((await order(d, spec("a2", "ADD_APPLICATION", { app_id: "rt2" }))).at(-1)?.status, "Ok");
  await d.writeConfig(site);

  // 2. the real upgrade under load: fresh connections to the proxy (config and run-time routes),
  // the query socket and the core API, from before the order until after the old master exited
  const failures: string[] = [];
  let requests = 0;
  let running = true;
  // bounds for a loop gone wrong only: the loops run until the checks below stop them (a cap the
  // loops could reach before the handover would leave "more requests after the handover" waiting)
  const loopDeadline = Date.now() + 120_000;
  const probes: [Target, string, Record<string, string>, (r: { status?: number; body: string }) => boolean][] = [
    [{ port: d.httpPort }, "/loop", { Host: "site.test" }, (r) => r.body === "backend /loop"],
    [{ port: d.httpPort }, "/rt", { Host: "runtime.test" }, (r) => r.body === "backend /rt"],
    [{ socketPath: d.querySocket }, "/healthz", {}, (r) => r.status === 200],
    [{ port: d.corePort }, "/v1/services", {}, (r) => r.status === 401], // an answer (no key): the API is up
  ];
  const loop = async (worker: number) => {
    for (let i = worker; running && Date.now() < loopDeadline && requests < 1_000_000; i++) {
      const [target, path, headers, good] = probes[i % probes.length]!;
      const r = await get(target, path, headers);
      requests++;
      if (r.error || !good(r)) failures.push(`${path}: ${r.error ?? `${r.status} ${r.body.slice(0, 80)}`}`);
    }
  };
  const loops = [0, 1, 2, 3].map(loop);
  await waitFor("the loop runs", () => requests >= 40, 30_000);

  const answers = await order(d, spec("up2", "UPGRADE_MASTER"));
  assert.deepEqual(answers.map((a) => a.status), ["Processing", "Ok"], JSON.stringify(answers));
  const m = /^new master process launched with pid (\d+)$/.exec(answers[1]!.message);
  assert.ok(m, answers[1]!.message);
  newPid = Number(m[1]);
  assert.notEqual(newPid, oldPid);
  assert.ok(alive(newPid));
  await waitFor("the old master exited", () => d.proc.exitCode !== null, 30_000);
  assert.equal(d.proc.exitCode, 0);
  const atExit = requests;
  await waitFor("more requests after the handover", () => requests >= atExit + 40, 30_000);
  running = false;
  await Promise.all(loops);
  assert.deepEqual(failures, [], `${failures.length} of ${requests} requests failed`);

  // the new master serves every interface on the same addresses and paths
  const status = await order(d, spec("s", "STATUS"));
  assert.deepEqual(status.at(-1)?.data, [{ id: 0, pid: newPid, run_state: "RUNNING" }]);
  const dump = (await order(d, spec("dump", "DUMP_STATE"))).at(-1)?.data as { applications: { app_id: string }[] };
  assert.deepEqual(dump.applications.map((a) => a.app_id).sort(), ["rt", "rt2"]);
  assert.match(await admin(d.adminSocket, "status"), /listening/);
  assert.equal((await get({ port: d.httpPort }, "/new", { Host: "runtime.test" })).body, "backend /new");
  for (const name of ["command", "admin", "core", "query", "proxy-http", "proxy-https"])
    assert.ok(d.logs.some((l) => /listening on the socket handed over/.test(l) && l.includes(`listener=${name} `)), name);

  // and stops as any daemon does: its socket files go away with it
  process.kill(newPid, "SIGTERM");
  await waitFor("the new master stopped", () => !alive(newPid), 30_000);
  const { existsSync } = await import("node:fs");
  assert.equal(existsSync(d.commandSocket) || existsSync(d.querySocket) || existsSync(d.adminSocket), false);
});

test("UPGRADE_MASTER under systemd (INVOCATION_ID set) is refused and changes nothing", async (t) => {
  const d = await startDaemon({ env: { INVOCATION_ID: "0123456789abcdef" }, disable: ["core", "manager", "http", "https"] });
  t.after(() => d.cleanup());
  const answers = await order(d, { id: "up-sd", version: 0, type: "UPGRADE_MASTER" });
  assert.deepEqual(answers.map((a) => [a.id, a.status, a.message]), [["up-sd", "Error", UNDER_SYSTEMD]]);
  assert.ok(alive(d.proc.pid!), "the daemon keeps running");
  const status = await order(d, { id: "st", version: 0, type: "STATUS" });
  assert.equal(status.at(-1)?.status, "Ok");
});
