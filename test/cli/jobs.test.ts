// `stevedore jobs`, `workers` and `manager token` as the bundled binary against a fake job API on
// node:http that checks the ES256 user token with the public half of the key in the state dir.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { generateKeyPairSync, verify, type KeyObject } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUNDLE, CONTROL_CHARS, closedPort, freePort, runBundleOnTty } from "../helpers/daemon.js";
import { listen } from "../../src/http/index.js";
import { SseParser, parseDuration, type SseEvent } from "../../src/cli/manager-client.js";
import { countsText } from "../../src/cli/jobs.js";
import { intRng, mutate } from "../helpers/random.js";

let dir: string;
let config: string;
let server: Server;
let publicKey: KeyObject;
let port: number;
const requests: { method: string; path: string; body: unknown; sub: string }[] = [];
/** per test: what /api/events sends, called with the response once the stream is open */
let events: (res: ServerResponse, url: URL) => void = () => {};
let jobStatus = "active";

const JOB_A = "65f0a0b0c0d0e0f001020304";
const JOB_B = "65f0a0b0c0d0e0f001020305";
const TASK_1 = "65f0a0b0c0d0e0f0010203aa";
const TASK_2 = "65f0a0b0c0d0e0f0010203bb";

function job(id: string, name: string, status: string, withTasks = false): Record<string, unknown> {
  const j: Record<string, unknown> = {
    _id: id, name, type: "render", priority: 50, status, created: "2026-01-01T00:00:00Z", updated: id === JOB_A ? "2026-01-02T00:00:00Z" : "2026-01-01T00:00:00Z",
    task_counts: { completed: 1, queued: 2, failed: 1 }, progress: 25, outputs: ["/out/a.png"],
  };
  if (withTasks)
    j.tasks = id === JOB_B
      ? [{ _id: TASK_2, name: "frame-2", status: "active", priority: 50, task_type: "sleep", parents: [], worker: "w1", activity: "sleeping", progress: 40 }]
      : [{ _id: TASK_1, name: "frame-1", status: "completed", priority: 50, task_type: "echo", parents: [], worker: "", activity: "", progress: 100 }];
  return j;
}

/** the subject of a valid ES256 token, else undefined */
function checkToken(auth: string | undefined): string | undefined {
  try {
    return checkTokenOrThrow(auth);
  } catch {
    return undefined;
  }
}

function checkTokenOrThrow(auth: string | undefined): string | undefined {
  const m = /^Bearer ([\w-]+)\.([\w-]+)\.([\w-]+)$/.exec(auth ?? "");
  if (!m) return undefined;
  const header = JSON.parse(Buffer.from(m[1]!, "base64url").toString()) as { alg: string };
  if (header.alg !== "ES256") return undefined;
  const ok = verify("sha256", Buffer.from(`${m[1]}.${m[2]}`), { key: publicKey, dsaEncoding: "ieee-p1363" }, Buffer.from(m[3]!, "base64url"));
  const claims = JSON.parse(Buffer.from(m[2]!, "base64url").toString()) as { sub: string; exp: number; iat: number };
  return ok && claims.exp > Date.now() / 1000 && claims.exp - claims.iat <= 300 ? claims.sub : undefined;
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const url = new URL(req.url ?? "/", "http://x");
  const text = Buffer.concat(chunks).toString();
  const sub = checkToken(req.headers.authorization);
  requests.push({ method: req.method ?? "", path: url.pathname + url.search, body: text ? JSON.parse(text) : undefined, sub: sub ?? "" });
  const json = (status: number, body?: unknown): void => void res.writeHead(status, { "Content-Type": "application/json" }).end(body === undefined ? undefined : JSON.stringify(body));
  if (!sub) return json(401, { error: "bad token" });
  const p = url.pathname;
  let m: RegExpExecArray | null;
  if (p === "/api/jobs" && req.method === "GET") {
    const all = [job(JOB_B, "older", "active"), job(JOB_A, "newest", jobStatus)];
    const status = url.searchParams.get("status");
    return json(200, { jobs: status ? all.filter((j) => j.status === status) : all });
  }
  if (p === "/api/jobs" && req.method === "POST") return json(201, { ...job(JOB_A, (JSON.parse(text) as { name: string }).name, "queued", true) });
  if ((m = /^\/api\/jobs\/([^/]+)$/.exec(p))) {
    if (m[1] === JOB_A) return json(200, job(JOB_A, "newest", jobStatus, true));
    if (m[1] === JOB_B) return json(200, job(JOB_B, "older", "active", true));
    return json(404, { error: "no such job" });
  }
  if ((m = /^\/api\/jobs\/([^/]+)\/(cancel|requeue|pause|resume)$/.exec(p))) {
    if (m[1] !== JOB_A) return json(404, { error: "no such job" });
    return json(200, job(JOB_A, "newest", { cancel: "canceled", requeue: "queued", pause: "paused", resume: "queued" }[m[2]!]!));
  }
  if (p === "/api/workers")
    return json(200, { workers: [{ _id: "w1", nickname: "box-1", address: "10.0.0.5", status: "awake", platform: "linux", current_task: TASK_2, last_activity: "2026-01-01T00:00:00Z", supported_task_types: ["sleep", "echo"], software: "" }] });
  if ((m = /^\/api\/workers\/([^/]+)\/status-request$/.exec(p))) return m[1] === "w1" ? json(204) : json(404, { error: "no such worker" });
  if ((m = /^\/logfile\/([^/]+)\/([^/]+)$/.exec(p))) {
    if (m[2] === TASK_2 && m[1] === JOB_B) return void res.writeHead(200, { "Content-Type": "text/plain" }).end("2026-01-01T00:00:00.000Z: first\n");
    return json(404, { error: "no log" });
  }
  if (p === "/api/events") {
    res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
    res.write(": hello\n\n");
    return events(res, url);
  }
  json(404, { error: "not found" });
}

function cli(args: string[], opts: { env?: Record<string, string>; stdin?: string } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BUNDLE, ...args], { env: { ...process.env, STEVEDORE_CONFIG: config, STEVEDORE_STATE_DIR: "", STEVEDORE_MANAGER_TOKEN: "", ...opts.env } });
    let stdout = "";
    let stderr = "";
    p.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    p.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    p.stdin.end(opts.stdin ?? "");
    p.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "stevedore-jobs-cli-"));
  const stateDir = join(dir, "state");
  await mkdir(join(stateDir, "jwt"), { recursive: true });
  const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
  publicKey = pair.publicKey;
  await writeFile(join(stateDir, "jwt", "es256-private.pem"), pair.privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  server = createServer((req, res) => void handle(req, res));
  port = await freePort();
  await listen(server, { port, host: "127.0.0.1" });
  config = join(dir, "stevedore.conf");
  await writeFile(config, `state_dir = "${stateDir}"\nmanager_listen = "0.0.0.0:${port}"\n`);
});

after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

test("jobs list: a table by default (manager_listen from the config, a minted ES256 token), JSON with --json, --status", async () => {
  const r = await cli(["jobs", "list"]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split("\n");
  assert.match(lines[0]!, /^ID\s+NAME\s+TYPE\s+PRIO\s+STATUS\s+PROGRESS\s+TASKS\s+UPDATED$/);
  assert.match(lines[2]!, new RegExp(`^${JOB_A}\\s+newest\\s+render\\s+50\\s+active\\s+25%\\s+1/4 completed, 1 failed, 2 queued\\s+2026-01-02T00:00:00Z$`));
  assert.ok(requests.at(-1)!.sub, "signed");
  const j = await cli(["jobs", "list", "--json", "--status", "active"]);
  assert.equal(j.code, 0);
  assert.equal((JSON.parse(j.stdout) as { jobs: unknown[] }).jobs.length, 2);
  assert.equal(requests.at(-1)!.path, "/api/jobs?status=active");
  // -q: the job ids only, one a line
  const q = await cli(["jobs", "list", "-q"]);
  assert.equal(q.stdout, (JSON.parse((await cli(["jobs", "list", "--json"])).stdout) as { jobs: { _id: string }[] }).jobs.map((x) => x._id + "\n").join(""));
  assert.ok(q.stdout.includes(`${JOB_A}\n`));
});

test("jobs show: job fields and a task table; an unknown job exits 1", async () => {
  const r = await cli(["jobs", "show", JOB_A]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^job: {6}65f0a0b0c0d0e0f001020304\nname: {5}newest\n/);
  assert.match(r.stdout, /outputs: {2}\/out\/a\.png/);
  assert.match(r.stdout, new RegExp(`^TASK\\s+NAME\\s+TYPE\\s+STATUS\\s+WORKER\\s+PROGRESS\\s+ACTIVITY\\n${TASK_1}\\s+frame-1\\s+echo\\s+completed\\s+-\\s+100%\\s+-$`, "m"));
  const json = await cli(["jobs", "show", JOB_A, "--json"]);
  assert.equal((JSON.parse(json.stdout) as { tasks: unknown[] }).tasks.length, 1);
  const missing = await cli(["jobs", "show", "65f0a0b0c0d0e0f00102ffff"]);
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, "stevedore: no job 65f0a0b0c0d0e0f00102ffff\n");
});

test("jobs submit from a file and from standard input", async () => {
  const file = join(dir, "job.json");
  await writeFile(file, JSON.stringify({ name: "render", tasks: [{ name: "t", task_type: "echo", commands: [{ name: "echo", settings: { message: "hi" } }] }] }));
  const r = await cli(["jobs", "submit", file]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `job ${JOB_A} submitted: render (1 tasks)\n`);
  assert.equal((requests.at(-1)!.body as { name: string }).name, "render");
  const s = await cli(["jobs", "submit", "-", "--json"], { stdin: '{"name": "piped", "tasks": []}' });
  assert.equal(s.code, 0, s.stderr);
  assert.equal((JSON.parse(s.stdout) as { name: string }).name, "piped");
  const bad = await cli(["jobs", "submit", "-"], { stdin: "[1, 2" });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^stevedore: standard input: not a job document/);
});

test("jobs submit --wait follows /api/events and exits by the job's outcome", async () => {
  const file = join(dir, "job.json");
  await writeFile(file, JSON.stringify({ name: "render", tasks: [] }));
  for (const [outcome, code] of [["completed", 0], ["failed", 1], ["canceled", 1]] as const) {
    jobStatus = "queued";
    events = (res) => {
      const send = (id: number, j: Record<string, unknown>) => res.write(`id: ${id}\nevent: job\ndata: ${JSON.stringify(j)}\n\n`);
      setTimeout(() => {
        send(1, { ...job(JOB_B, "other", "completed") });
        send(2, { ...job(JOB_A, "render", "active"), progress: 50 });
        jobStatus = outcome;
        send(3, { ...job(JOB_A, "render", outcome), progress: 100 });
      }, 50);
    };
    const r = await cli(["jobs", "submit", file, "--wait"]);
    assert.equal(r.code, code, `${outcome}: ${r.stderr}`);
    const lines = r.stdout.trimEnd().split("\n");
    assert.match(lines[1]!, /^job newest \(65f0a0b0c0d0e0f001020304\): queued 25%, tasks 1\/4 completed/);
    assert.ok(lines.some((l) => / active 50%/.test(l)), "progress lines (not a TTY: one per change)");
    assert.doesNotMatch(r.stdout, CONTROL_CHARS, "not a TTY: plain lines");
    assert.equal(lines.at(-1), `job ${JOB_A} ${outcome}`);
    assert.ok(!lines.some((l) => l.includes("other")), "other jobs' events are ignored");
  }
  // the job ended before the stream opened: the first GET already says so
  jobStatus = "completed";
  events = () => {};
  const r = await cli(["jobs", "submit", file, "--wait"]);
  assert.equal(r.code, 0);
  jobStatus = "active";
});

/** On a terminal (script(1)): a progress line is rewritten in place as `\r ESC[K line`, with no newline between updates. */
function progressUpdates(out: string): string[] {
  return out.split("\r\x1b[K").slice(1);
}

test("jobs submit --wait on a terminal: one progress line rewritten in place, then the outcome", async () => {
  const file = join(dir, "job.json");
  await writeFile(file, JSON.stringify({ name: "render", tasks: [] }));
  jobStatus = "queued";
  events = (res) => {
    const send = (id: number, j: Record<string, unknown>) => res.write(`id: ${id}\nevent: job\ndata: ${JSON.stringify(j)}\n\n`);
    setTimeout(() => {
      send(1, { ...job(JOB_A, "render", "active"), progress: 50 });
      send(2, { ...job(JOB_A, "render", "active"), progress: 75 });
      jobStatus = "completed";
      send(3, { ...job(JOB_A, "render", "completed"), progress: 100 });
    }, 50);
  };
  const r = await runBundleOnTty(["jobs", "submit", file, "--wait"], { STEVEDORE_CONFIG: config, STEVEDORE_STATE_DIR: "", STEVEDORE_MANAGER_TOKEN: "" });
  jobStatus = "active";
  assert.equal(r.code, 0, r.out);
  assert.ok(r.out.startsWith(`job ${JOB_A} submitted: render (1 tasks)\n`), r.out);
  const updates = progressUpdates(r.out);
  assert.deepEqual(
    updates.map((u) => / (\w+) (\d+)%/.exec(u)?.slice(1).join(" ")),
    ["queued 25", "active 50", "active 75", "completed 100"],
    JSON.stringify(r.out),
  );
  // updates overwrite each other: no line end until the job is over
  for (const u of updates.slice(0, -1)) assert.ok(!u.includes("\n"), JSON.stringify(u));
  assert.match(updates.at(-1)!, /^job render \(65f0a0b0c0d0e0f001020304\): completed 100%, tasks [^\n]*\njob 65f0a0b0c0d0e0f001020304 completed\n$/);
});

test("jobs log --follow on a terminal: the task's state on one line under the log, rewritten in place; piped: only the log lines", async () => {
  const task = (status: string, progress: number, activity: string) => ({ _id: TASK_2, name: "frame-2", status, priority: 50, task_type: "sleep", parents: [], worker: "w1", activity, progress });
  events = (res) => {
    setTimeout(() => {
      res.write(`event: log\ndata: ${JSON.stringify({ task: TASK_2, log: "2026-01-01T00:00:01.000Z: second\n" })}\n\n`);
      res.write(`event: task\ndata: ${JSON.stringify(task("active", 60, "frame 2"))}\n\n`);
      res.write(`event: log\ndata: ${JSON.stringify({ task: TASK_2, log: "2026-01-01T00:00:02.000Z: third" })}\n\n`);
      res.write(`event: task\ndata: ${JSON.stringify(task("completed", 100, "done"))}\n\n`);
    }, 50);
  };
  const env = { STEVEDORE_CONFIG: config, STEVEDORE_STATE_DIR: "", STEVEDORE_MANAGER_TOKEN: "" };
  const r = await runBundleOnTty(["jobs", "log", `${JOB_B}/${TASK_2}`, "--follow"], env);
  assert.equal(r.code, 0, r.out);
  const status = (s: string, p: number, a: string) => `task frame-2 (${TASK_2}): ${s} ${p}%, ${a}`;
  assert.equal(
    r.out,
    "2026-01-01T00:00:00.000Z: first\n" +
      `\r\x1b[K${status("active", 40, "sleeping")}` +
      `\r\x1b[K2026-01-01T00:00:01.000Z: second\n${status("active", 40, "sleeping")}` +
      `\r\x1b[K${status("active", 60, "frame 2")}` +
      `\r\x1b[K2026-01-01T00:00:02.000Z: third\n${status("active", 60, "frame 2")}` +
      `\r\x1b[K${status("completed", 100, "done")}` +
      `\r\x1b[Ktask ${TASK_2} completed\n`,
  );
  const piped = await cli(["jobs", "log", `${JOB_B}/${TASK_2}`, "--follow"]);
  assert.equal(piped.code, 0, piped.stderr);
  assert.equal(piped.stdout, "2026-01-01T00:00:00.000Z: first\n2026-01-01T00:00:01.000Z: second\n2026-01-01T00:00:02.000Z: third\n");
  assert.equal(piped.stderr, `task ${TASK_2} completed\n`);
});

test("jobs cancel, requeue --failed-only, pause, resume", async () => {
  for (const [action, status] of [["cancel", "canceled"], ["pause", "paused"], ["resume", "queued"]]) {
    const r = await cli(["jobs", action!, JOB_A]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `job ${JOB_A}: ${status}\n`);
    assert.equal(requests.at(-1)!.path, `/api/jobs/${JOB_A}/${action}`);
    assert.equal(requests.at(-1)!.method, "POST");
  }
  const r = await cli(["jobs", "requeue", JOB_A, "--failed-only"]);
  assert.equal(r.code, 0);
  assert.deepEqual(requests.at(-1)!.body, { failed_only: true });
  const missing = await cli(["jobs", "cancel", JOB_B]);
  assert.equal(missing.code, 1);
});

test("jobs log: JOB/TASK directly, TASK found through the jobs; --follow prints new lines and exits by the task's outcome", async () => {
  const direct = await cli(["jobs", "log", `${JOB_B}/${TASK_2}`]);
  assert.equal(direct.code, 0, direct.stderr);
  assert.equal(direct.stdout, "2026-01-01T00:00:00.000Z: first\n");
  const found = await cli(["jobs", "log", TASK_2]);
  assert.equal(found.code, 0, found.stderr);
  assert.equal(found.stdout, "2026-01-01T00:00:00.000Z: first\n");
  const none = await cli(["jobs", "log", TASK_1]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /has no log yet/);
  const unknown = await cli(["jobs", "log", "65f0a0b0c0d0e0f00102eeee"]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no task 65f0a0b0c0d0e0f00102eeee in any job/);

  events = (res, url) => {
    assert.equal(url.searchParams.get("task"), TASK_2);
    setTimeout(() => {
      res.write(`event: log\ndata: ${JSON.stringify({ task: TASK_2, log: "2026-01-01T00:00:01.000Z: second\n" })}\n\n`);
      res.write(`event: log\ndata: ${JSON.stringify({ task: "someone-else", log: "not mine\n" })}\n\n`);
      res.write(`event: task\ndata: ${JSON.stringify({ _id: TASK_2, status: "failed" })}\n\n`);
    }, 50);
  };
  const f = await cli(["jobs", "log", `${JOB_B}/${TASK_2}`, "--follow"]);
  assert.equal(f.code, 1, f.stderr);
  assert.equal(f.stdout, "2026-01-01T00:00:00.000Z: first\n2026-01-01T00:00:01.000Z: second\n");
  assert.match(f.stderr, /failed/);
});

test("workers: a table, --json, and status requests", async () => {
  const r = await cli(["workers"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ID\s+NICKNAME\s+STATUS\s+ADDRESS\s+TASK\s+TYPES\s+LAST ACTIVITY\nw1\s+box-1\s+awake\s+10\.0\.0\.5\s+65f0a0b0c0d0e0f0010203bb\s+sleep,echo\s+2026-01-01T00:00:00Z\n$/);
  const j = await cli(["workers", "--json"]);
  assert.equal((JSON.parse(j.stdout) as { workers: unknown[] }).workers.length, 1);
  assert.equal((await cli(["workers", "-q"])).stdout, "w1\n");
  for (const [action, status] of [["sleep", "asleep"], ["wake", "awake"], ["shutdown", "shutdown"]]) {
    const s = await cli(["workers", action!, "w1", "--lazy"]);
    assert.equal(s.code, 0, s.stderr);
    assert.deepEqual(requests.at(-1)!.body, { status, lazy: true });
    assert.equal(requests.at(-1)!.path, "/api/workers/w1/status-request");
  }
  const missing = await cli(["workers", "sleep", "w9"]);
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, "stevedore: no worker w9\n");
});

test("manager token prints an ES256 JWT with the subject and TTL asked for", async () => {
  const r = await cli(["manager", "token", "--ttl", "2h", "--subject", "ci"]);
  assert.equal(r.code, 0, r.stderr);
  const [h, p, s] = r.stdout.trim().split(".");
  assert.ok(verify("sha256", Buffer.from(`${h}.${p}`), { key: publicKey, dsaEncoding: "ieee-p1363" }, Buffer.from(s!, "base64url")));
  const claims = JSON.parse(Buffer.from(p!, "base64url").toString()) as { sub: string; iat: number; exp: number };
  assert.equal(claims.sub, "ci");
  assert.equal(claims.exp - claims.iat, 7200);
  assert.ok(Math.abs(claims.iat - Date.now() / 1000) < 60);
  for (const bad of [["--ttl", "soon"], ["--ttl", "0"], ["--ttl", "400d"], ["extra"]]) assert.equal((await cli(["manager", "token", ...bad])).code, 2, bad.join(" "));
  const noKey = await cli(["manager", "token"], { env: { STEVEDORE_STATE_DIR: join(dir, "empty") } });
  assert.equal(noKey.code, 1);
  assert.match(noKey.stderr, /^stevedore: no manager key at /);
});

test("errors: a refused token, an unreachable manager, usage errors", async () => {
  const refused = await cli(["jobs", "list"], { env: { STEVEDORE_MANAGER_TOKEN: "not.a.token" } });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /^stevedore: the manager refused the token \(401/);
  const down = await cli(["jobs", "list", "--manager", `http://127.0.0.1:${await closedPort()}`]);
  assert.equal(down.code, 1);
  assert.match(down.stderr, /^stevedore: cannot reach the manager at http:\/\/127\.0\.0\.1:\d+: nothing listens there: is the daemon running with it enabled\? \(check it, or pass --manager URL\)\n$/);
  for (const args of [["jobs"], ["jobs", "fly"], ["jobs", "show"], ["jobs", "list", "--wait"], ["jobs", "show", "a/b"], ["workers", "dance", "w1"], ["workers", "sleep"], ["jobs", "list", "--manager", "ftp://x"]]) {
    const r = await cli(args);
    assert.equal(r.code, 2, args.join(" "));
    assert.match(r.stderr, /^stevedore: /);
  }
});

test("SseParser: events across any chunking, comments, CRLF, ids; mutated streams never throw", () => {
  const stream = ": c\r\nid: 1\nevent: job\ndata: {\"a\":1}\n\ndata: x\ndata: y\r\n\r\nid: 7\ndata:z\r\r\n";
  const want: SseEvent[] = [{ id: "1", event: "job", data: '{"a":1}' }, { id: "1", event: "message", data: "x\ny" }, { id: "7", event: "message", data: "z" }];
  const rand = intRng(5);
  for (let i = 0; i < 2000; i++) {
    const got: SseEvent[] = [];
    const p = new SseParser((e) => got.push(e));
    let at = 0;
    while (at < stream.length) {
      const n = 1 + rand(6);
      p.push(stream.slice(at, at + n));
      at += n;
    }
    assert.deepEqual(got, want);
  }
  const pieces = ["\n", "\r", "\r\n", "data: ", "event: ", "id: ", ":", "\n\n"];
  for (let i = 0; i < 10_000; i++) {
    let buf: Buffer = Buffer.from(stream, "latin1");
    for (let m = 1 + rand(3); m > 0; m--) buf = mutate(buf, rand, pieces);
    const got: SseEvent[] = [];
    const p = new SseParser((e) => got.push(e), 64);
    p.push(buf.toString("latin1"));
    for (const e of got) assert.ok(e.data.length <= 64 + 8);
  }
});

test("parseDuration and countsText", () => {
  assert.equal(parseDuration("90"), 90);
  assert.equal(parseDuration("15m"), 900);
  assert.equal(parseDuration("2h"), 7200);
  assert.equal(parseDuration("7d"), 604800);
  for (const bad of ["", "0", "1w", "-1", "1.5h", "h"]) assert.equal(parseDuration(bad), undefined, bad);
  assert.equal(countsText({ queued: 2, completed: 3, active: 1 }), "3/6 completed, 1 active, 2 queued");
  assert.equal(countsText(undefined), "0/0 completed");
});
