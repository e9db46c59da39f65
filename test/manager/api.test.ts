// The manager over real sockets against the bundled daemon: worker protocol, auth, the job API,
// task logs, limits, durability through a restart and the admin status. Each test uses its own
// task types, so the jobs of one test are never handed to the workers of another.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, generateKeyPairSync } from "node:crypto";
import { request } from "node:http";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { runBundle } from "../helpers/daemon.js";
import { signEs256, signHs256 } from "../../src/tokens/index.js";
import { assertError, basic, bearer, ID_RE, Manager, UNKNOWN_ID, type Reply, type Worker } from "./client.js";

let m: Manager;
before(async () => {
  m = await Manager.start();
});
after(async () => {
  await m?.d.cleanup();
});

let typeSeq = 0;
/** a task type no other test uses */
const newType = () => `type-${++typeSeq}`;

/** a signed-on worker holding the (only) task of a fresh one-task job */
async function activeTask(type = newType()): Promise<{ w: Worker; jobId: string; taskId: string; type: string }> {
  const w = await m.worker([type]);
  const job = await m.job("one", type);
  const r = await w.task();
  assert.equal(r.status, 200, r.text);
  return { w, jobId: job._id, taskId: r.json._id as string, type };
}

const MAY_RUN_KEYS = new Set(["may_keep_running", "reason", "status_requested"]);
function assertMayRun(r: Reply, expected: boolean, reason?: RegExp): void {
  assert.equal(r.status, 200, r.text);
  for (const key of Object.keys(r.json as object)) assert.ok(MAY_RUN_KEYS.has(key), `unexpected key ${key} in ${r.text}`);
  assert.equal(typeof r.json.may_keep_running, "boolean");
  assert.equal(r.json.may_keep_running, expected, r.text);
  if (r.json.reason !== undefined) assert.equal(typeof r.json.reason, "string");
  if (reason) assert.match(r.json.reason as string, reason);
}

// ---------------------------------------------------------------- registration and worker auth

test("register-worker (open): 200 with a 24-hex _id and the worker document, never the secret", async () => {
  const secret = "a-very-secret-secret-1234";
  const r = await m.call("POST", "/register-worker", { body: { secret, platform: "linux", nickname: "reg", supported_task_types: ["echo", "sleep"] } });
  assert.equal(r.status, 200, r.text);
  assert.match(r.json._id, ID_RE);
  assert.ok(!r.text.includes(secret), "the secret is not echoed");
  assert.ok(!/secret/i.test(r.text), "no secret or secret hash field");
  assert.deepEqual(Object.keys(r.json).sort(), ["_id", "address", "current_task", "last_activity", "nickname", "platform", "software", "status", "supported_task_types"]);
  assert.equal(r.json.nickname, "reg");
  assert.deepEqual(r.json.supported_task_types, ["echo", "sleep"]);
  // the credentials work
  assert.equal((await m.call("POST", "/sign-on", { auth: basic(r.json._id, secret) })).status, 204);
  // a registration without a usable secret is refused
  assertError(await m.call("POST", "/register-worker", { body: { platform: "linux" } }), 400, /secret/);
  assertError(await m.call("POST", "/register-worker", { body: { secret: "" } }), 400, /secret/);
  assertError(await m.call("POST", "/register-worker", { body: { secret: "x", supported_task_types: "echo" } }), 400, /supported_task_types/);
});

test("register-worker with manager_registration_secret: missing/invalid/expired Bearer → 403, a valid HS256 JWT with float exp/iat → 200", async () => {
  const key = "registration-key-xyz";
  const s = await Manager.start(`manager_registration_secret = "${key}"`);
  try {
    const body = { secret: "worker-secret-1", platform: "linux", supported_task_types: ["echo"] };
    const now = Date.now() / 1000;
    const reg = (auth?: string) => s.call("POST", "/register-worker", { body, auth });
    assertError(await reg(), 403);
    assertError(await reg("Bearer"), 403);
    assertError(await reg("Bearer not.a.jwt"), 403);
    assertError(await reg(basic(UNKNOWN_ID, "x")), 403);
    assertError(await reg(bearer(signHs256({ iat: now, exp: now + 300 }, "another-key"))), 403, /signature/);
    assertError(await reg(bearer(signHs256({ iat: now - 7200.25, exp: now - 3600.5 }, key))), 403, /expir/);
    // real v2 clients send floats
    const ok = await reg(bearer(signHs256({ iat: now + 0.123, exp: now + 600.456 }, key)));
    assert.equal(ok.status, 200, ok.text);
    assert.match(ok.json._id, ID_RE);
    assert.ok(!ok.text.includes("worker-secret-1"));
    // the other worker endpoints take Basic auth as usual
    assert.equal((await s.call("POST", "/sign-on", { auth: basic(ok.json._id, "worker-secret-1") })).status, 204);
  } finally {
    await s.d.cleanup();
  }
});

test("Basic auth: unknown worker, wrong secret, malformed or missing header → 401 with WWW-Authenticate", async () => {
  const w = await m.register();
  const realm = 'Basic realm="stevedore manager"';
  const cases: (string | undefined)[] = [
    basic(UNKNOWN_ID, w.secret), // unknown worker
    basic(w.id, "wrong-secret"), // wrong secret
    basic(w.id, ""),
    undefined, // no header
    "Basic", // no credentials
    "Basic !!!notbase64!!!",
    `Basic ${Buffer.from(`${w.id}${w.secret}`).toString("base64")}`, // no colon
    `Basic ${Buffer.from(`not-an-id:${w.secret}`).toString("base64")}`,
    `Bearer ${m.token}`, // a user token is no worker credential
  ];
  for (const auth of cases) {
    for (const [method, path] of [["POST", "/sign-on"], ["GET", "/task"], ["GET", `/may-i-run/${UNKNOWN_ID}`]] as const) {
      const r = await m.call(method, path, { auth });
      assertError(r, 401);
      assert.equal(r.headers["www-authenticate"], realm, `${auth} ${path}`);
    }
  }
  // and the right pair works
  assert.equal((await w.signOn()).status, 204);
});

// ---------------------------------------------------------------- sign-on, sign-off, /task

test("sign-on: an empty body or a doc (also supported_job_types) → 204, fields applied, status starting", async () => {
  const w = await m.register({ supported_task_types: ["a"], nickname: "before" });
  assert.equal((await w.call("POST", "/sign-on")).status, 204); // no body at all
  assert.equal((await w.call("POST", "/sign-on", { body: "", contentType: "application/json" })).status, 204); // empty body
  let doc = await m.getWorker(w.id);
  assert.equal(doc.status, "starting");
  assert.equal(doc.nickname, "before");
  assert.deepEqual(doc.supported_task_types, ["a"]);
  assert.equal((await w.signOn({ nickname: "after", supported_task_types: ["b", "c"] })).status, 204);
  doc = await m.getWorker(w.id);
  assert.equal(doc.nickname, "after");
  assert.deepEqual(doc.supported_task_types, ["b", "c"]);
  // older v2 workers name them supported_job_types
  assert.equal((await w.signOn({ supported_job_types: ["d"] })).status, 204);
  assert.deepEqual((await m.getWorker(w.id)).supported_task_types, ["d"]);
  assertError(await w.call("POST", "/sign-on", { body: "{nope" }), 400, /JSON/);
  assertError(await w.signOn({ supported_task_types: [1] }), 400, /supported_task_types/);
});

test("GET and POST /task (empty body): 406 without task types, 204 nothing, 200 a task, the same task again on a repeated ask", async () => {
  const none = await m.worker([]);
  for (const method of ["GET", "POST"]) assertError(await none.task(method), 406);
  const type = newType();
  const w = await m.worker([type]);
  assert.equal((await w.task("GET")).status, 204);
  assert.equal((await w.task("POST")).status, 204);
  assert.equal((await w.call("POST", "/task", { body: "", contentType: null })).status, 204);
  assert.equal((await m.getWorker(w.id)).status, "awake");
  const job = await m.job("tasks", type, 2);
  const first = await w.task("POST");
  assert.equal(first.status, 200, first.text);
  assert.equal(first.json.job, job._id);
  assert.equal(first.json.status, "active");
  assert.equal(first.json.worker, w.id);
  assert.equal(first.json.task_type, type);
  assert.deepEqual(first.json.commands, [{ name: "echo", settings: { message: "hi 0" } }]);
  for (const method of ["GET", "POST", "GET"]) {
    const again = await w.task(method);
    assert.equal(again.status, 200);
    assert.equal(again.json._id, first.json._id, "the active task again, not the next one");
  }
  assert.equal(await m.taskStatus(job._id, job.tasks![1]!._id), "queued");
});

test("/task picks by job priority, then task priority, then the oldest", async () => {
  const type = newType();
  const w = await m.worker([type]);
  const cmd = [{ name: "echo", settings: {} }];
  const low = await m.submit({ name: "low", priority: 10, tasks: [{ name: "l", task_type: type, priority: 100, commands: cmd }] });
  const high = await m.submit({
    name: "high",
    priority: 90,
    tasks: [
      { name: "h1", task_type: type, priority: 5, commands: cmd },
      { name: "h2", task_type: type, priority: 80, commands: cmd },
      { name: "h3", task_type: type, priority: 80, commands: cmd },
    ],
  });
  const order: string[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await w.task();
    assert.equal(r.status, 200);
    order.push(r.json.name as string);
    assert.equal((await w.update(r.json._id, { task_status: "completed" })).status, 204);
  }
  assert.deepEqual(order, ["h2", "h3", "h1", "l"]);
  assert.equal((await m.getJob(high._id)).status, "completed");
  assert.equal((await m.getJob(low._id)).progress, 100);
});

test("a task waits for its parents", async () => {
  const type = newType();
  const w = await m.worker([type]);
  const cmd = [{ name: "echo", settings: {} }];
  await m.submit({ name: "dag", tasks: [{ name: "child", task_type: type, commands: cmd, parents: ["parent"] }, { name: "parent", task_type: type, commands: cmd }] });
  const p = await w.task();
  assert.equal(p.json.name, "parent");
  assert.equal((await w.update(p.json._id, { task_status: "completed" })).status, 204);
  assert.equal((await w.task()).json.name, "child");
});

test("/sign-off re-queues the active task and the worker is offline; another worker gets it", async () => {
  const { w, jobId, taskId, type } = await activeTask();
  assert.equal((await w.call("POST", "/sign-off")).status, 204);
  assert.equal(await m.taskStatus(jobId, taskId), "queued");
  const doc = await m.getWorker(w.id);
  assert.equal(doc.status, "offline");
  assert.equal(doc.current_task, "");
  const log = await m.call("GET", `/logfile/${jobId}/${taskId}`, { auth: bearer(m.token) });
  assert.match(log.text, /task re-queued: worker w \([0-9a-f]{24}\) signed off\n$/);
  const w2 = await m.worker([type]);
  assert.equal((await w2.task()).json._id, taskId);
});

test("sign-on again re-queues a task the worker still held", async () => {
  const { w, jobId, taskId } = await activeTask();
  assert.equal((await w.signOn()).status, 204);
  assert.equal(await m.taskStatus(jobId, taskId), "queued");
  assert.equal((await m.getWorker(w.id)).current_task, "");
});

// ---------------------------------------------------------------- task updates and returns

test("/tasks/{id}/update: 204 applied, 404 unknown, 409 another worker's task (nothing applied)", async () => {
  const { w, jobId, taskId, type } = await activeTask();
  assert.equal((await w.update(taskId, { activity: "rendering", task_progress_percentage: 42.4, current_command_idx: 0, command_progress_percentage: 10, metrics: { x: 1 } })).status, 204);
  let task = (await m.getJob(jobId)).tasks![0]!;
  assert.equal(task.activity, "rendering");
  assert.equal(task.progress, 42);
  assertError(await w.update(UNKNOWN_ID, { activity: "x" }), 404);
  const other = await m.worker([type]);
  const r = await other.update(taskId, { task_status: "completed", activity: "stolen", log: "stolen line" });
  assertError(r, 409);
  task = (await m.getJob(jobId)).tasks![0]!;
  assert.equal(task.status, "active");
  assert.equal(task.worker, w.id);
  assert.equal(task.activity, "rendering");
  const log = await m.call("GET", `/logfile/${jobId}/${taskId}`, { auth: bearer(m.token) });
  assert.ok(!log.text.includes("stolen"), "a refused update appends no log");
  // the owner's update still works, and a bad field is 400
  assertError(await w.update(taskId, { task_status: "exploded" }), 400, /task_status/);
  assertError(await w.update(taskId, { task_progress_percentage: "10" }), 400, /task_progress_percentage/);
  assert.equal((await w.update(taskId, { task_status: "completed" })).status, 204);
  assert.equal(await m.taskStatus(jobId, taskId), "completed");
});

test("after a reassignment the first worker's update is 409 and changes nothing", async () => {
  const { w, jobId, taskId, type } = await activeTask();
  assert.equal((await w.call("POST", "/sign-off")).status, 204);
  const w2 = await m.worker([type]);
  assert.equal((await w2.task()).json._id, taskId);
  assertError(await w.update(taskId, { task_status: "failed" }), 409);
  const task = (await m.getJob(jobId)).tasks![0]!;
  assert.deepEqual([task.status, task.worker], ["active", w2.id]);
});

test("/tasks/{id}/return: 204 and the task is queued again; 404 unknown, 409 not this worker's", async () => {
  const { w, jobId, taskId, type } = await activeTask();
  const other = await m.worker([type]);
  assertError(await other.call("POST", `/tasks/${taskId}/return`), 409);
  assertError(await w.call("POST", `/tasks/${UNKNOWN_ID}/return`), 404);
  assert.equal((await w.call("POST", `/tasks/${taskId}/return`)).status, 204);
  assert.equal(await m.taskStatus(jobId, taskId), "queued");
  assert.equal((await m.getWorker(w.id)).current_task, "");
});

test("a failed report on the only capable worker fails the task and (≥ 10 %) the job, canceling its queued tasks", async () => {
  const type = newType();
  const w = await m.worker([type]);
  const job = await m.job("fails", type, 3);
  const r = await w.task();
  assert.equal((await w.update(r.json._id, { task_status: "failed", log: "boom" })).status, 204);
  const doc = await m.getJob(job._id);
  assert.equal(doc.status, "failed");
  assert.deepEqual(doc.task_counts, { failed: 1, canceled: 2 });
});

// ---------------------------------------------------------------- may-i-run

test("/may-i-run: false for unknown, reassigned, not active; true while running; body keys within the spec", async () => {
  const { w, taskId, type } = await activeTask();
  assertMayRun(await w.mayIRun(taskId), true);
  assertMayRun(await w.mayIRun(UNKNOWN_ID), false, /unknown/);
  // reassigned
  assert.equal((await w.call("POST", "/sign-off")).status, 204);
  const w2 = await m.worker([type]);
  assert.equal((await w2.task()).json._id, taskId);
  assertMayRun(await w.mayIRun(taskId), false, /another worker/);
  assertMayRun(await w2.mayIRun(taskId), true);
  // no longer active
  assert.equal((await w2.update(taskId, { task_status: "completed" })).status, 204);
  assertMayRun(await w2.mayIRun(taskId), false, /completed/);
});

// ---------------------------------------------------------------- status requests and changes

test("status request asleep (immediate): 423 exactly {status_requested}, may-i-run false; status-change 200; ack 204 clears it", async () => {
  const { w, taskId } = await activeTask();
  assert.equal((await m.api("POST", `/api/workers/${w.id}/status-request`, { status: "asleep", lazy: false })).status, 204);
  for (const method of ["GET", "POST"]) {
    const r = await w.task(method);
    assert.equal(r.status, 423);
    assert.deepEqual(Object.keys(r.json), ["status_requested"]);
    assert.deepEqual(r.json, { status_requested: "asleep" });
  }
  const may = await w.mayIRun(taskId);
  assertMayRun(may, false);
  assert.equal(may.json.status_requested, "asleep");
  const sc = await w.call("GET", "/status-change");
  assert.equal(sc.status, 200);
  assert.deepEqual(sc.json, { status_requested: "asleep" });
  assert.equal((await w.call("POST", "/ack-status-change/asleep")).status, 204);
  assert.equal((await m.getWorker(w.id)).status, "asleep");
  assert.equal((await w.call("GET", "/status-change")).status, 204);
  assert.equal((await w.task()).status, 200, "no request pending: the task again");
});

test("status request asleep lazy: may-i-run stays true, /task answers 423", async () => {
  const { w, taskId } = await activeTask();
  assert.equal((await m.api("POST", `/api/workers/${w.id}/status-request`, { status: "asleep", lazy: true })).status, 204);
  assertMayRun(await w.mayIRun(taskId), true);
  const r = await w.task();
  assert.equal(r.status, 423);
  assert.deepEqual(r.json, { status_requested: "asleep" });
});

test("status request awake and shutdown; acking shutdown is ignored, signing off clears it", async () => {
  const { w, taskId } = await activeTask();
  assert.equal((await m.api("POST", `/api/workers/${w.id}/status-request`, { status: "awake", lazy: false })).status, 204);
  assertMayRun(await w.mayIRun(taskId), true); // awake is a running status
  assert.deepEqual((await w.task()).json, { status_requested: "awake" });
  assert.equal((await w.call("POST", "/ack-status-change/awake")).status, 204);
  assert.equal((await w.call("GET", "/status-change")).status, 204);

  assert.equal((await m.api("POST", `/api/workers/${w.id}/status-request`, { status: "shutdown" })).status, 204);
  const r = await w.task();
  assert.equal(r.status, 423);
  assert.deepEqual(r.json, { status_requested: "shutdown" });
  assertMayRun(await w.mayIRun(taskId), false);
  assert.equal((await w.call("POST", "/ack-status-change/shutdown")).status, 204);
  assert.deepEqual((await w.call("GET", "/status-change")).json, { status_requested: "shutdown" }, "acking shutdown is ignored");
  assert.equal((await w.call("POST", "/sign-off")).status, 204);
  assert.equal((await w.call("GET", "/status-change")).status, 204);
  assert.equal((await m.getWorker(w.id)).status, "offline");
});

test("status requests: bad status or lazy → 400, unknown worker → 404; a bad ack → 400", async () => {
  const w = await m.worker();
  const req = (id: string, body: unknown) => m.api("POST", `/api/workers/${id}/status-request`, body);
  assertError(await req(w.id, { status: "sleepy" }), 400);
  assertError(await req(w.id, { status: "asleep", lazy: "yes" }), 400, /lazy/);
  assertError(await req(w.id, []), 400);
  assertError(await req(UNKNOWN_ID, { status: "asleep" }), 404);
  assertError(await w.call("POST", "/ack-status-change/timeout"), 400);
  assert.equal((await w.call("GET", "/status-change")).status, 204);
});

// ---------------------------------------------------------------- outputs

test("/output-produced: 204 and the last 10 paths on the job; 422 empty; 400 bad JSON or paths", async () => {
  const { w, jobId } = await activeTask();
  for (let i = 0; i < 8; i++) assert.equal((await w.call("POST", "/output-produced", { body: { paths: [`/out/${i}.png`] } })).status, 204);
  assert.equal((await w.call("POST", "/output-produced", { body: { paths: ["/out/8.png", "/out/9.png", "/out/10.png", "/out/11.png"] } })).status, 204);
  const job = await m.getJob(jobId);
  assert.deepEqual(job.outputs, Array.from({ length: 10 }, (_, i) => `/out/${i + 2}.png`));
  assert.deepEqual((await m.api("GET", "/api/jobs")).json.jobs.find((j: { _id: string }) => j._id === jobId).outputs, job.outputs);
  assertError(await w.call("POST", "/output-produced", { body: { paths: [] } }), 422);
  assertError(await w.call("POST", "/output-produced", { body: {} }), 422);
  assertError(await w.call("POST", "/output-produced", { body: "{paths:" }), 400, /JSON/);
  assertError(await w.call("POST", "/output-produced", { body: { paths: [1] } }), 400, /paths/);
  assertError(await w.call("POST", "/output-produced", { body: [] }), 400);
  // a worker without a task: accepted and dropped
  const idle = await m.worker([newType()]);
  assert.equal((await idle.call("POST", "/output-produced", { body: { paths: ["/x"] } })).status, 204);
});

// ---------------------------------------------------------------- limits and error shapes

test("malformed ids in paths → 404", async () => {
  const w = await m.worker();
  const user = { auth: bearer(m.token) };
  const bad = ["not-an-id", UNKNOWN_ID.toUpperCase(), UNKNOWN_ID.slice(1), `${UNKNOWN_ID}0`, "%30123456789abcdef0123456"];
  for (const id of bad) {
    assertError(await w.call("POST", `/tasks/${id}/update`, { body: {} }), 404);
    assertError(await w.call("POST", `/tasks/${id}/return`), 404);
    assertError(await w.call("GET", `/may-i-run/${id}`), 404);
    assertError(await m.call("GET", `/api/jobs/${id}`, user), 404);
    assertError(await m.call("POST", `/api/jobs/${id}/cancel`, user), 404);
    assertError(await m.call("POST", `/api/workers/${id}/status-request`, { ...user, body: { status: "asleep" } }), 404);
    assertError(await m.call("GET", `/logfile/${id}/${UNKNOWN_ID}`, user), 404);
    assertError(await m.call("GET", `/logfile/${UNKNOWN_ID}/${id}`, user), 404);
  }
  assertError(await w.call("POST", "/ack-status-change/NOT_A_STATUS"), 404);
  assertError(await w.call("GET", "/no-such-endpoint"), 404);
});

test("bodies over 16 MiB → 413; bad JSON → 400 {error}; a wrong content type → 415", async () => {
  const w = await m.worker();
  const big = Buffer.alloc(16 * 1024 * 1024 + 1, 0x20);
  assertError(await w.call("POST", "/output-produced", { body: big }), 413);
  assertError(await m.call("POST", "/api/jobs", { auth: bearer(m.token), body: big }), 413);
  assertError(await w.call("POST", "/sign-on", { body: big }), 413);
  assertError(await w.update(UNKNOWN_ID, "{bad json"), 400, /JSON/);
  assertError(await m.call("POST", "/api/jobs", { auth: bearer(m.token), body: "[1,2" }), 400, /JSON/);
  assertError(await m.call("POST", "/api/jobs", { auth: bearer(m.token), body: { name: "x", tasks: [] }, contentType: "text/plain" }), 415);
  assertError(await w.call("POST", "/output-produced", { body: { paths: ["/a"] }, contentType: "application/x-www-form-urlencoded" }), 415);
  assertError(await w.call("POST", `/tasks/${UNKNOWN_ID}/update`, { body: {}, contentType: "text/plain" }), 415);
  // the connection and the daemon are fine afterwards
  assert.equal((await w.signOn()).status, 204);
});

// ---------------------------------------------------------------- user auth

/** the head of a streaming answer (the event stream never ends): status and headers, then closed */
function headOnly(port: number, path: string, auth: string): Promise<{ status: number; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, headers: { Authorization: auth }, agent: false }, (res) => {
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
      req.destroy();
    });
    req.on("error", reject);
    req.end();
  });
}

test("X-User-Id-From-Token on every user-JWT answer (job API, events, dashboard data, logs, Shaman; errors too); state changes log the subject", async () => {
  // a blacklist line to forget, a job with an active task, a stored empty file and a checkout
  const type = newType();
  const w = await m.worker([type]);
  await m.register({ supported_task_types: [type] });
  const bl = await m.job("header-blacklist", type, 4);
  for (let i = 0; i < 3; i++) {
    const t = await w.task();
    assert.equal(t.status, 200, t.text);
    assert.equal((await w.update(t.json._id, { task_status: "failed" })).status, 204);
  }
  const { jobId, taskId } = await activeTask();
  const emptySha = createHash("sha256").digest("hex");
  const cdf = `${emptySha} 0 a/empty.txt`;
  const spec = { name: "header-job", tasks: [{ name: "t", task_type: newType(), commands: [{ name: "echo", settings: {} }] }] };
  const checkout = `hdr_${Date.now()}`;
  type Row = { method: string; path: string; body?: unknown; contentType?: string; status: number; logged?: RegExp };
  const rows: Row[] = [
    { method: "GET", path: "/api/jobs", status: 200 },
    { method: "POST", path: "/api/jobs", body: spec, status: 201, logged: /msg="manager: job submitted" job=[0-9a-f]{24} name=header-job tasks=1/ },
    { method: "GET", path: `/api/jobs/${jobId}`, status: 200 },
    { method: "GET", path: `/api/jobs/${UNKNOWN_ID}`, status: 404 },
    { method: "POST", path: `/api/jobs/${jobId}/priority`, body: { priority: 60 }, status: 200, logged: new RegExp(`msg="manager: job priority changed" job=${jobId} priority=60`) },
    { method: "POST", path: `/api/jobs/${jobId}/pause`, status: 200, logged: new RegExp(`msg="manager: job paused" job=${jobId}`) },
    { method: "POST", path: `/api/jobs/${jobId}/resume`, status: 200, logged: new RegExp(`msg="manager: job resumed" job=${jobId}`) },
    { method: "POST", path: `/api/jobs/${jobId}/cancel`, status: 200, logged: new RegExp(`msg="manager: job canceled" job=${jobId}`) },
    { method: "POST", path: `/api/jobs/${jobId}/requeue`, body: { failed_only: true }, status: 200, logged: new RegExp(`msg="manager: job requeued" job=${jobId} failed_only=true`) },
    { method: "POST", path: `/api/jobs/${jobId}/requeue`, body: { failed_only: "yes" }, status: 400 },
    { method: "GET", path: `/api/tasks/${taskId}`, status: 200 },
    { method: "GET", path: "/api/stats", status: 200 },
    { method: "GET", path: "/api/blacklist", status: 200 },
    { method: "GET", path: "/api/workers", status: 200 },
    { method: "GET", path: `/api/workers/${w.id}`, status: 200 },
    { method: "POST", path: `/api/workers/${w.id}/status-request`, body: { status: "awake", lazy: true }, status: 204, logged: new RegExp(`msg="manager: worker status requested" worker=${w.id} status=awake lazy=true`) },
    { method: "DELETE", path: `/api/workers/${w.id}/blacklist`, body: { job: bl._id, task_type: type }, status: 204, logged: new RegExp(`msg="manager: blacklist line forgotten" worker=${w.id} job=${bl._id} task_type=${type}`) },
    { method: "GET", path: "/api/no-such-route", status: 404 },
    { method: "GET", path: "/api/dashboard/host", status: 200 },
    { method: "GET", path: `/logfile/${jobId}/${taskId}`, status: 200 },
    { method: "GET", path: `/logfile/${UNKNOWN_ID}/${UNKNOWN_ID}`, status: 404 },
    { method: "POST", path: `/files/${emptySha}/0`, body: Buffer.alloc(0), contentType: "application/octet-stream", status: 204 },
    { method: "POST", path: `/files/${emptySha}/0`, body: Buffer.alloc(0), contentType: "application/octet-stream", status: 208 },
    { method: "POST", path: "/files/not-a-checksum/1", body: "x", contentType: "application/octet-stream", status: 400 },
    { method: "OPTIONS", path: `/files/${emptySha}/0`, status: 200 },
    { method: "GET", path: `/files/${emptySha}/0`, status: 200 },
    { method: "POST", path: "/checkout/requirements", body: cdf, contentType: "text/plain", status: 200 },
    { method: "POST", path: `/checkout/create/${checkout}`, body: cdf, contentType: "text/plain", status: 200, logged: new RegExp(`msg="shaman: checkout created" checkout=${checkout} files=1`) },
    { method: "POST", path: `/checkout/create/${checkout}`, body: cdf, contentType: "text/plain", status: 409 },
    { method: "GET", path: `/checkout/files/${checkout}`, status: 200 },
    { method: "GET", path: "/shaman/status", status: 200 },
    { method: "POST", path: "/shaman/gc", body: { dry_run: true }, status: 200, logged: /msg="shaman: GC requested" dry_run=true/ },
  ];
  for (const [i, row] of rows.entries()) {
    const subject = `hdr-${i}`;
    const r = await m.call(row.method, row.path, { auth: bearer(await m.mint(subject)), body: row.body, contentType: row.contentType });
    const what = `${row.method} ${row.path}`;
    assert.equal(r.status, row.status, `${what}: ${r.text}`);
    assert.equal(r.headers["x-user-id-from-token"], subject, what);
    if (row.logged) await m.d.waitForLog(new RegExp(`${row.logged.source}.* user=${subject}(\\s|$)`));
  }
  // the event stream answers through its own head
  const events = await headOnly(m.port, "/api/events", bearer(await m.mint("hdr-events")));
  assert.equal(events.status, 200);
  assert.equal(events.headers["x-user-id-from-token"], "hdr-events");
  // via the cookie too; and never on an answer to a caller that is not a user
  const viaCookie = await m.call("GET", "/shaman/status", { headers: { Cookie: `jwtToken=${await m.mint("hdr-cookie")}` } });
  assert.equal(viaCookie.headers["x-user-id-from-token"], "hdr-cookie");
  assert.equal((await w.call("GET", `/files/${emptySha}/0`)).headers["x-user-id-from-token"], undefined, "a worker's Basic read");
  assert.equal((await w.task()).headers["x-user-id-from-token"], undefined);
  assert.equal((await m.call("GET", "/api/jobs")).headers["x-user-id-from-token"], undefined, "401");
});


test("user JWT: missing or bad → 401, expired → 498; Bearer and cookie jwtToken work; X-User-Id-From-Token carries the subject", async () => {
  const paths = ["/api/jobs", "/api/workers", `/logfile/${UNKNOWN_ID}/${UNKNOWN_ID}`];
  const stranger = signEs256({ sub: "mallory", iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 600 }, generateKeyPairSync("ec", { namedCurve: "prime256v1" }).privateKey);
  const expired = await m.mint("late", 60, Date.now() - 3 * 3600_000);
  for (const path of paths) {
    assertError(await m.call("GET", path), 401);
    assertError(await m.call("GET", path, { auth: "Bearer" }), 401);
    assertError(await m.call("GET", path, { auth: "Bearer abc.def.ghi" }), 401);
    assertError(await m.call("GET", path, { auth: bearer(stranger) }), 401);
    assertError(await m.call("GET", path, { headers: { Cookie: "jwtToken=garbage" } }), 401);
    assertError(await m.call("GET", path, { auth: basic(UNKNOWN_ID, "secret") }), 401);
    assertError(await m.call("GET", path, { auth: bearer(expired) }), 498);
    assertError(await m.call("GET", path, { headers: { Cookie: `jwtToken=${expired}` } }), 498);
  }
  const viaBearer = await m.call("GET", "/api/jobs", { auth: bearer(await m.mint("alice")) });
  assert.equal(viaBearer.status, 200);
  assert.equal(viaBearer.headers["x-user-id-from-token"], "alice");
  const viaCookie = await m.call("GET", "/api/workers", { headers: { Cookie: `theme=dark; jwtToken=${await m.mint("bob")}; x=1` } });
  assert.equal(viaCookie.status, 200);
  assert.equal(viaCookie.headers["x-user-id-from-token"], "bob");
  // a bad Bearer does not fall back to a good cookie
  assertError(await m.call("GET", "/api/jobs", { auth: "Bearer abc.def.ghi", headers: { Cookie: `jwtToken=${m.token}` } }), 401);
  // the log file answers carry the subject too
  const { jobId, taskId } = await activeTask();
  const log = await m.call("GET", `/logfile/${jobId}/${taskId}`, { auth: bearer(await m.mint("carol")) });
  assert.equal(log.status, 200);
  assert.equal(log.headers["x-user-id-from-token"], "carol");
  // a token from `stevedore manager token` works as well
  const cli = await run(["manager", "token", "--config", m.d.configPath]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.equal((await m.call("GET", "/api/jobs", { auth: bearer(cli.stdout.trim()) })).status, 200);
});

// ---------------------------------------------------------------- job API

test("POST /api/jobs → 201 with the job and its tasks; bad specs → 400 naming the task and the field", async () => {
  const type = newType();
  const cmd = [{ name: "echo", settings: { message: "hi" } }];
  const job = await m.submit({ name: "render", type: "blender", priority: 70, tasks: [{ name: "a", task_type: type, commands: cmd }, { name: "b", task_type: type, commands: cmd, parents: ["a"] }] });
  assert.match(job._id, ID_RE);
  assert.deepEqual([job.name, job.priority, job.status, job.progress], ["render", 70, "queued", 0]);
  assert.deepEqual(job.task_counts, { queued: 2 });
  assert.deepEqual(job.outputs, []);
  assert.equal(job.tasks!.length, 2);
  for (const t of job.tasks!) assert.match(t._id, ID_RE);
  assert.deepEqual(job.tasks![1]!.parents, [job.tasks![0]!._id]);
  const dflt = await m.submit({ name: "defaults", tasks: [{ name: "a", task_type: type, commands: cmd }] });
  assert.equal(dflt.priority, 50);

  const bad = async (spec: unknown, re: RegExp) => assertError(await m.api("POST", "/api/jobs", spec), 400, re);
  await bad({ name: "cycle", tasks: [{ name: "x", task_type: type, commands: cmd, parents: ["y"] }, { name: "y", task_type: type, commands: cmd, parents: ["x"] }] }, /task "[xy]": field "parents": dependency cycle/);
  await bad({ name: "self", tasks: [{ name: "x", task_type: type, commands: cmd, parents: ["x"] }] }, /task "x": field "parents": dependency cycle/);
  await bad({ name: "orphan", tasks: [{ name: "x", task_type: type, commands: cmd, parents: ["ghost"] }] }, /task "x": field "parents": "ghost" is not a task of this job/);
  await bad({ name: "unknown", tasks: [{ name: "x", task_type: type, commands: cmd, colour: "red" }] }, /task "x": field "colour": unknown field/);
  await bad({ name: "unknown", extra: 1, tasks: [{ name: "x", task_type: type, commands: cmd }] }, /field "extra": unknown field/);
  await bad({ name: "types", tasks: [{ name: "x", task_type: 5, commands: cmd }] }, /task "x": field "task_type"/);
  await bad({ name: "types", tasks: [{ name: "x", task_type: type, commands: cmd, priority: "high" }] }, /task "x": field "priority"/);
  await bad({ name: "types", tasks: [{ name: "x", task_type: type, commands: "echo" }] }, /task "x": field "commands"/);
  await bad({ name: "prio", priority: 101, tasks: [{ name: "x", task_type: type, commands: cmd }] }, /field "priority"/);
  await bad({ name: "empty", tasks: [] }, /field "tasks"/);
  await bad([], /object/);
  assert.equal((await m.api("GET", "/api/jobs")).json.jobs.filter((j: { name: string }) => ["cycle", "orphan", "self"].includes(j.name)).length, 0, "nothing of a refused job is kept");
});

test("GET /api/jobs[?status=] and /api/jobs/{id} (200, 404 unknown)", async () => {
  const type = newType();
  const w = await m.worker([type]);
  const a = await m.job("list-a", type);
  const b = await m.job("list-b", type);
  assert.equal((await w.task()).json.job, a._id);
  const all = (await m.api("GET", "/api/jobs")).json.jobs as { _id: string; status: string; tasks?: unknown }[];
  assert.ok(all.some((j) => j._id === a._id) && all.some((j) => j._id === b._id));
  assert.ok(all.every((j) => j.tasks === undefined), "the list has no task lists");
  const active = (await m.api("GET", "/api/jobs?status=active")).json.jobs as { _id: string; status: string }[];
  assert.ok(active.some((j) => j._id === a._id) && !active.some((j) => j._id === b._id));
  assert.ok(active.every((j) => j.status === "active"));
  const queued = (await m.api("GET", "/api/jobs?status=queued")).json.jobs as { _id: string }[];
  assert.ok(queued.some((j) => j._id === b._id) && !queued.some((j) => j._id === a._id));
  assert.deepEqual((await m.api("GET", "/api/jobs?status=nonsense")).json, { jobs: [] });
  const one = await m.getJob(a._id);
  assert.equal(one.status, "active");
  assert.equal(one.tasks![0]!.worker, w.id);
  assertError(await m.api("GET", `/api/jobs/${UNKNOWN_ID}`), 404);
});

test("cancel: queued → canceled; active → cancel-requested, may-i-run false, the worker's canceled update makes the job canceled", async () => {
  const type = newType();
  const queued = await m.job("cancel-queued", type, 2);
  const r1 = await m.api("POST", `/api/jobs/${queued._id}/cancel`);
  assert.equal(r1.status, 200);
  assert.equal(r1.json.status, "canceled");
  assert.deepEqual((await m.getJob(queued._id)).task_counts, { canceled: 2 });

  const w = await m.worker([type]);
  const running = await m.job("cancel-active", type, 2);
  const t = await w.task();
  assert.equal(t.json.job, running._id);
  const r2 = await m.api("POST", `/api/jobs/${running._id}/cancel`);
  assert.equal(r2.status, 200);
  assert.equal(r2.json.status, "cancel-requested");
  assert.deepEqual((await m.getJob(running._id)).task_counts, { "cancel-requested": 1, canceled: 1 });
  assertMayRun(await w.mayIRun(t.json._id), false, /cancel-requested/);
  assert.equal((await w.update(t.json._id, { task_status: "canceled" })).status, 204);
  const done = await m.getJob(running._id);
  assert.equal(done.status, "canceled");
  assert.deepEqual(done.task_counts, { canceled: 2 });
  assert.equal((await w.task()).status, 204, "nothing left to run");
  assertError(await m.api("POST", `/api/jobs/${UNKNOWN_ID}/cancel`), 404);
});

test("requeue: failed_only brings back failed and canceled tasks; a whole requeue also the completed ones", async () => {
  const type = newType();
  const w = await m.worker([type]);
  const job = await m.job("requeue", type, 3);
  const t0 = await w.task();
  assert.equal((await w.update(t0.json._id, { task_status: "completed" })).status, 204);
  const t1 = await w.task();
  assert.equal((await w.update(t1.json._id, { task_status: "failed" })).status, 204);
  let doc = await m.getJob(job._id);
  assert.equal(doc.status, "failed");
  assert.deepEqual(doc.task_counts, { completed: 1, failed: 1, canceled: 1 });
  const r = await m.api("POST", `/api/jobs/${job._id}/requeue`, { failed_only: true });
  assert.equal(r.status, 200, r.text);
  doc = await m.getJob(job._id);
  assert.deepEqual(doc.task_counts, { completed: 1, queued: 2 });
  assert.notEqual(doc.status, "failed");
  assert.equal((await w.task()).status, 200, "the worker may try its failed task again");
  assert.equal((await w.call("POST", "/sign-off")).status, 204);
  assert.equal((await m.api("POST", `/api/jobs/${job._id}/requeue`)).status, 200);
  doc = await m.getJob(job._id);
  assert.deepEqual(doc.task_counts, { queued: 3 });
  assert.equal(doc.status, "queued");
  assertError(await m.api("POST", `/api/jobs/${job._id}/requeue`, { failed_only: "yes" }), 400, /failed_only/);
});

test("pause and resume: a paused job's tasks are not handed out", async () => {
  const type = newType();
  const w = await m.worker([type]);
  const job = await m.job("pause", type);
  const p = await m.api("POST", `/api/jobs/${job._id}/pause`);
  assert.equal(p.status, 200);
  assert.equal(p.json.status, "paused");
  assert.equal((await w.task()).status, 204);
  const r = await m.api("POST", `/api/jobs/${job._id}/resume`);
  assert.equal(r.status, 200);
  assert.equal(r.json.status, "queued");
  assert.equal((await w.task()).json.job, job._id);
  // a canceled job cannot be paused
  const c = await m.job("pause-canceled", type);
  await m.api("POST", `/api/jobs/${c._id}/cancel`);
  assertError(await m.api("POST", `/api/jobs/${c._id}/pause`), 409);
});

test("priority: 200 with the new priority, and it changes what is handed out first", async () => {
  const type = newType();
  const w = await m.worker([type]);
  const a = await m.job("prio-a", type, 1, 10);
  const b = await m.job("prio-b", type, 1, 20);
  const r = await m.api("POST", `/api/jobs/${a._id}/priority`, { priority: 90 });
  assert.equal(r.status, 200);
  assert.equal(r.json.priority, 90);
  assert.equal((await m.getJob(a._id)).priority, 90);
  assert.equal((await w.task()).json.job, a._id);
  for (const priority of [0, 101, 5.5, "9", null]) assertError(await m.api("POST", `/api/jobs/${b._id}/priority`, { priority }), 400, /priority/);
  assertError(await m.api("POST", `/api/jobs/${b._id}/priority`), 400, /priority/);
  assertError(await m.api("POST", `/api/jobs/${UNKNOWN_ID}/priority`, { priority: 5 }), 404);
});

test("GET /api/workers lists workers without secrets", async () => {
  const w = await m.worker(["echo"], "listed");
  const r = await m.api("GET", "/api/workers");
  assert.equal(r.status, 200);
  const doc = (r.json.workers as { _id: string }[]).find((x) => x._id === w.id) as Record<string, unknown>;
  assert.deepEqual(Object.keys(doc).sort(), ["_id", "address", "current_task", "last_activity", "nickname", "platform", "software", "status", "supported_task_types"]);
  assert.equal(doc.nickname, "listed");
  assert.equal(doc.address, "127.0.0.1");
  assert.ok(!r.text.includes(w.secret) && !r.text.includes("scrypt"));
});

test("a worker that failed a task type 3 times is blacklisted for it; DELETE blacklist forgets it", async () => {
  const type = newType();
  const w = await m.worker([type]);
  await m.register({ supported_task_types: [type] }); // another capable worker: failures stay soft
  const job = await m.job("blacklist", type, 4);
  for (let i = 0; i < 3; i++) {
    const t = await w.task();
    assert.equal(t.status, 200);
    assert.equal((await w.update(t.json._id, { task_status: "failed" })).status, 204);
  }
  assert.deepEqual((await m.getJob(job._id)).task_counts, { "soft-failed": 3, queued: 1 });
  assert.equal((await w.task()).status, 204, "blacklisted for this job and task type");
  const del = (body: unknown) => m.api("DELETE", `/api/workers/${w.id}/blacklist`, body);
  assertError(await del({ job: job._id }), 400);
  assertError(await del({ job: UNKNOWN_ID, task_type: type }), 404);
  assert.equal((await del({ job: job._id, task_type: type })).status, 204);
  assert.equal((await w.task()).status, 200, "may run the job's tasks again");
  assertError(await del({ job: job._id, task_type: type }), 404);
});

// ---------------------------------------------------------------- task logs

test("/logfile: text/plain with the worker's lines (newline added), rotation on a new activation, late lines kept, 404 when none", async () => {
  const type = newType();
  const w = await m.worker([type]);
  const job = await m.job("logs", type, 2);
  const logfile = (taskId: string) => m.call("GET", `/logfile/${job._id}/${taskId}`, { auth: bearer(m.token) });
  assertError(await logfile(job.tasks![1]!._id), 404); // never ran
  assertError(await m.call("GET", `/logfile/${UNKNOWN_ID}/${job.tasks![0]!._id}`, { auth: bearer(m.token) }), 404);

  const t = (await w.task()).json._id as string;
  assert.equal((await w.update(t, { log: "2024-01-01T00:00:00.000Z: first line\n2024-01-01T00:00:01.000Z: second line" })).status, 204);
  let r = await logfile(t);
  assert.equal(r.status, 200);
  assert.match(String(r.headers["content-type"]), /^text\/plain/);
  assert.match(r.text, /^\S+Z manager: task assigned to worker w \([0-9a-f]{24}\)\n/);
  assert.ok(r.text.endsWith("2024-01-01T00:00:00.000Z: first line\n2024-01-01T00:00:01.000Z: second line\n"), JSON.stringify(r.text));

  // a new activation rotates the old log to .1
  assert.equal((await w.call("POST", `/tasks/${t}/return`)).status, 204);
  assert.equal((await w.task()).json._id, t);
  const file = join(m.d.stateDir, "task-logs", `job-${job._id.slice(0, 4)}`, job._id, `task-${t}.txt`);
  // the rotation does not hold the /task answer; a read of the log waits for it
  r = await logfile(t);
  const rotated = await readFile(`${file}.1`, "utf8");
  assert.match(rotated, /first line\n.*second line\n.*task re-queued: worker w .* returned it\n$/s);
  assert.ok(!r.text.includes("first line"), "the current log starts afresh");
  assert.match(r.text, /task assigned to worker/);
  assert.equal(r.text, await readFile(file, "utf8"));

  // late lines of a canceled task are kept
  await m.api("POST", `/api/jobs/${job._id}/cancel`);
  assert.equal((await w.update(t, { task_status: "canceled", log: "2024-01-01T00:00:02.000Z: stopping" })).status, 204);
  assert.equal(await m.taskStatus(job._id, t), "canceled");
  assert.equal((await w.update(t, { log: "2024-01-01T00:00:03.000Z: late line" })).status, 204);
  r = await logfile(t);
  assert.ok(r.text.endsWith("stopping\n2024-01-01T00:00:03.000Z: late line\n"), JSON.stringify(r.text));
});

// ---------------------------------------------------------------- durability and status

test("durability: registrations, jobs, assignments, updates, status requests and their acknowledgements, job priority and pause survive kill -9", async () => {
  const s = await Manager.start();
  try {
    const w = await s.worker(["render"], "durable");
    const idle = await s.register({ supported_task_types: ["other"], nickname: "idle" });
    const job = await s.job("keep", "render", 2, 77);
    const t = await w.task();
    assert.equal((await w.update(t.json._id, { activity: "frame 1", task_progress_percentage: 30, log: "line before restart" })).status, 204);
    assert.equal((await w.call("POST", "/output-produced", { body: { paths: ["/out/1.png"] } })).status, 204);
    assert.equal((await s.api("POST", `/api/workers/${idle.id}/status-request`, { status: "asleep", lazy: true })).status, 204);
    // a status request acknowledged by its worker: asleep, nothing pending
    const sleeper = await s.worker(["other"], "sleeper");
    assert.equal((await s.api("POST", `/api/workers/${sleeper.id}/status-request`, { status: "asleep" })).status, 204);
    assert.deepEqual((await sleeper.task()).json, { status_requested: "asleep" });
    assert.equal((await sleeper.call("POST", "/ack-status-change/asleep")).status, 204);
    assert.equal((await s.api("POST", `/api/jobs/${job._id}/priority`, { priority: 90 })).status, 200);
    const paused = await s.job("paused", "render", 1);
    assert.equal((await s.api("POST", `/api/jobs/${paused._id}/pause`)).status, 200);
    const before = await s.getJob(job._id);

    // no graceful stop: only what was fsynced before each answer is there
    await s.d.stop("SIGKILL");
    await s.d.restart();

    const after = await s.getJob(job._id);
    assert.deepEqual(after, before);
    assert.equal(after.tasks![0]!.activity, "frame 1");
    assert.equal(after.tasks![0]!.progress, 30);
    assert.deepEqual(after.outputs, ["/out/1.png"]);
    assert.equal(after.priority, 90);
    assert.equal((await s.getJob(paused._id)).status, "paused");
    assert.equal((await s.getWorker(sleeper.id)).status, "asleep");
    assert.equal((await sleeper.call("GET", "/status-change")).status, 204);
    const doc = await s.getWorker(w.id);
    assert.equal(doc.current_task, t.json._id);
    assert.equal(doc.nickname, "durable");
    // the credentials still work and the same task is handed back
    const again = await w.task();
    assert.equal(again.status, 200);
    assert.equal(again.json._id, t.json._id);
    assert.deepEqual((await idle.task()).json, { status_requested: "asleep" });
    const log = await s.call("GET", `/logfile/${job._id}/${t.json._id}`, { auth: bearer(s.token) });
    assert.match(log.text, /line before restart\n/);
    assert.equal((await w.update(t.json._id, { task_status: "completed" })).status, 204);
    assert.equal((await w.task()).json._id, job.tasks![1]!._id);
  } finally {
    await s.d.cleanup();
  }
});

const run = (args: string[]) => runBundle(args);

test("stevedore status: the manager listener with worker and job counts (JSON and human)", async () => {
  const workers = (await m.api("GET", "/api/workers")).json.workers as { status: string }[];
  const jobs = (await m.api("GET", "/api/jobs")).json.jobs as { status: string }[];
  const byStatus = (items: { status: string }[]) => items.reduce<Record<string, number>>((acc, x) => ((acc[x.status] = (acc[x.status] ?? 0) + 1), acc), {});
  const json = await run(["status", "--json", "--config", m.d.configPath]);
  assert.equal(json.code, 0, json.stderr);
  const manager = JSON.parse(json.stdout).listeners.manager;
  assert.equal(manager.state, "listening");
  assert.equal(manager.address, `127.0.0.1:${m.port}`);
  assert.deepEqual(manager.workers, byStatus(workers));
  assert.deepEqual(manager.jobs, byStatus(jobs));
  const human = await run(["status", "--config", m.d.configPath]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, new RegExp(`^workers: +${workers.length} \\(`, "m"));
  assert.match(human.stdout, new RegExp(`^jobs: +${jobs.length} \\(`, "m"));
});
