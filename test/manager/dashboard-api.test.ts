// The user routes the dashboard added to the manager: a task with its status history
// (GET /api/tasks/{id}), the blacklist lines (GET /api/blacklist), and the same-origin check on
// changes that ride on the jwtToken cookie (CSRF), over real sockets against the bundled daemon.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { assertError, UNKNOWN_ID, Manager } from "./client.js";
import { CompletionRate, TaskHistory } from "../../src/manager/task-history.js";
import { checkSameOrigin } from "../../src/manager/access.js";
import { HttpError, type ApiRequest } from "../../src/http/index.js";

let m: Manager;
before(async () => {
  m = await Manager.start();
});
after(async () => {
  await m?.d.cleanup();
});

test("TaskHistory: repeats are not changes; bounded per task and in tasks (oldest first out)", () => {
  const h = new TaskHistory(2);
  h.record("a", "queued", "", 0);
  h.record("a", "queued", "", 1);
  h.record("a", "active", "w", 2);
  assert.deepEqual(h.get("a").map((c) => [c.status, c.worker, c.at]), [["queued", "", "1970-01-01T00:00:00.000Z"], ["active", "w", "1970-01-01T00:00:00.002Z"]]);
  for (let i = 0; i < 60; i++) h.record("a", i % 2 ? "active" : "queued", "", i);
  assert.equal(h.get("a").length, 50);
  h.record("b", "queued", "", 0);
  h.record("c", "queued", "", 0);
  assert.deepEqual(h.get("a"), [], "the least recently changed task went");
  assert.equal(h.get("c").length, 1);
});

test("checkSameOrigin fuzz: 20,000 header sets; passes only for Sec-Fetch-Site same-origin or an Origin whose host is Host; else HttpError 403", () => {
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed % n);
  const parts = ["http://", "https://", "127.0.0.1", ":8083", "evil.example", "null", "", " ", "%", "@", "[::1]", ":", "/", "\\", "\u0000", "same-origin", "cross-site", "same-site", "none", "xn--", "."];
  const junk = () => Array.from({ length: rnd(5) }, () => parts[rnd(parts.length)]).join("");
  for (let i = 0; i < 20_000; i++) {
    const host = rnd(4) === 0 ? undefined : rnd(2) ? "127.0.0.1:8083" : junk();
    const origin = rnd(3) === 0 ? undefined : rnd(3) === 0 ? `http://${host ?? ""}` : junk();
    const site = rnd(3) === 0 ? undefined : rnd(3) === 0 ? "same-origin" : junk();
    const headers: Record<string, string | undefined> = { host, origin, "sec-fetch-site": site };
    const req = { header: (n: string) => headers[n] } as unknown as ApiRequest;
    let ok: boolean;
    try {
      checkSameOrigin(req);
      ok = true;
    } catch (err) {
      assert.ok(err instanceof HttpError && err.status === 403, String(err));
      ok = false;
    }
    let originOk: boolean | undefined;
    if (origin !== undefined) {
      try {
        originOk = origin !== "null" && host !== undefined && new URL(origin).host === host;
      } catch {
        originOk = false;
      }
    }
    const expected = (site === undefined || site === "same-origin") && (originOk ?? site === "same-origin");
    assert.equal(ok, expected, JSON.stringify(headers));
    if (ok && origin !== undefined) assert.equal(new URL(origin).host, host);
  }
});

test("CompletionRate: per wall-clock minute, the last 60, minutes without completions are 0", () => {
  const r = new CompletionRate();
  const t0 = 1_000 * 60_000;
  r.record(t0);
  r.record(t0 + 59_999);
  r.record(t0 + 60_000);
  let m = r.perMinute(t0 + 60_000);
  assert.equal(m.length, 60);
  assert.deepEqual(m.slice(-2), [2, 1]);
  m = r.perMinute(t0 + 5 * 60_000);
  assert.deepEqual(m.slice(-6), [2, 1, 0, 0, 0, 0]);
  r.record(t0 + 200 * 60_000);
  assert.deepEqual(r.perMinute(t0 + 200 * 60_000), [...new Array(59).fill(0), 1], "an hour later the old counts are gone");
});

test("GET /api/tasks/{id}: the task with its status history (queued, active, completed, the worker); 404 unknown", async () => {
  const w = await m.worker(["hist"]);
  const job = await m.job("history", "hist");
  const taskId = job.tasks![0]!._id;
  const t = await w.task();
  assert.equal(t.status, 200);
  assert.equal((await w.update(taskId, { task_status: "completed" })).status, 204);
  const r = await m.api("GET", `/api/tasks/${taskId}`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.job, job._id);
  assert.equal(r.json.status, "completed");
  const history = r.json.history as { status: string; at: string; worker: string }[];
  assert.deepEqual(history.map((c) => c.status), ["queued", "active", "completed"]);
  assert.equal(history[1]!.worker, w.id);
  for (const c of history) assert.ok(!Number.isNaN(Date.parse(c.at)));
  assertError(await m.api("GET", `/api/tasks/${UNKNOWN_ID}`), 404);
  const stats = await m.api("GET", "/api/stats");
  assert.equal(stats.status, 200);
  assert.equal(stats.json.completed_per_minute.length, 60);
  assert.ok(stats.json.completed_per_minute.slice(-2).reduce((a: number, b: number) => a + b, 0) >= 1, stats.text);
  assert.equal(typeof stats.json.workers, "object");
  assert.equal((await m.call("GET", `/api/tasks/${taskId}`)).status, 401);
});

test("GET /api/blacklist[?worker=]: the lines a worker earned; gone once forgotten", async () => {
  const w = await m.worker(["bl"]);
  await m.register({ supported_task_types: ["bl"] }); // another capable worker: failures stay soft
  const job = await m.job("blacklist", "bl", 4);
  for (let i = 0; i < 3; i++) {
    const t = await w.task();
    assert.equal((await w.update(t.json._id, { task_status: "failed" })).status, 204);
  }
  const line = { worker: w.id, job: job._id, task_type: "bl" };
  assert.deepEqual((await m.api("GET", "/api/blacklist")).json.lines, [line]);
  assert.deepEqual((await m.api("GET", `/api/blacklist?worker=${w.id}`)).json.lines, [line]);
  assert.deepEqual((await m.api("GET", `/api/blacklist?worker=${UNKNOWN_ID}`)).json.lines, []);
  assert.equal((await m.api("DELETE", `/api/workers/${w.id}/blacklist`, { job: job._id, task_type: "bl" })).status, 204);
  assert.deepEqual((await m.api("GET", "/api/blacklist")).json.lines, []);
});

test("cookie callers: reads need nothing more; changes need a same-origin Origin or Sec-Fetch-Site (else 403); Bearer callers are not checked", async () => {
  const job = await m.job("csrf", "csrf-type");
  const cookie = `jwtToken=${m.token}`;
  const host = `127.0.0.1:${m.port}`;
  const post = (headers: Record<string, string>) => m.call("POST", `/api/jobs/${job._id}/pause`, { headers: { Cookie: cookie, ...headers }, body: {} });
  assert.equal((await m.call("GET", `/api/jobs/${job._id}`, { headers: { Cookie: cookie } })).status, 200);
  assertError(await post({}), 403, /cross-origin/);
  assertError(await post({ Origin: "http://evil.example" }), 403);
  assertError(await post({ Origin: `http://${host}.evil.example` }), 403);
  assertError(await post({ Origin: "null" }), 403);
  assertError(await post({ Origin: `http://${host}`, "Sec-Fetch-Site": "cross-site" }), 403);
  assertError(await post({ "Sec-Fetch-Site": "same-site" }), 403);
  assert.equal((await m.getJob(job._id)).status, "queued", "nothing applied");
  assert.equal((await post({ "Sec-Fetch-Site": "same-origin" })).status, 200);
  assert.equal((await m.call("POST", `/api/jobs/${job._id}/resume`, { headers: { Cookie: cookie, Origin: `http://${host}` }, body: {} })).status, 200);
  assert.equal((await m.api("POST", `/api/jobs/${job._id}/pause`, {})).status, 200, "a Bearer token is not sent by other sites");
});
