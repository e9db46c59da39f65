// Farm time-outs: silent workers → timeout (task re-queued), unpinged tasks → failed, via one
// deadline heap (nextDeadline/expire); pings refresh without journaling; a restart gives grace.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Farm } from "../../src/manager/farm.js";
import { addJob, addWorker, newFarm, T0, taskOf } from "./fixtures.js";

const S = 1000;

test("a silent worker times out and its task is re-queued; a touch postpones it", () => {
  const { farm, records } = newFarm({ manager_worker_timeout_secs: 60, manager_task_timeout_secs: 600 });
  const quiet = addWorker(farm, ["a"], "quiet");
  const chatty = addWorker(farm, ["a"], "chatty");
  addJob(farm, "j", 50, [["t", "a"]]);
  const t = taskOf(farm.nextTask(quiet, T0));
  assert.equal(farm.nextDeadline(), T0 + 60 * S);
  farm.touchWorker(chatty, T0 + 30 * S);
  assert.deepEqual(farm.expire(T0 + 59 * S), []);
  const count = records.length;
  const logs = farm.expire(T0 + 60 * S);
  assert.equal(farm.getWorker(quiet)!.status, "timeout");
  assert.equal(farm.getWorker(chatty)!.status, "starting", "touched at +30 s: not due yet");
  assert.equal(farm.getTask(t._id)!.status, "queued");
  assert.equal(logs.length, 1);
  assert.match(logs[0]!.text, /re-queued: worker quiet .* timed out/);
  assert.deepEqual(records.slice(count).map((r) => r.t), ["worker-timeout"]);
  assert.equal(farm.nextDeadline(), T0 + 90 * S, "the chatty worker's real deadline");
  farm.expire(T0 + 90 * S);
  assert.equal(farm.getWorker(chatty)!.status, "timeout");
  // the re-queued task's deadline entry is stale: it may wake expire() once, which does nothing
  assert.deepEqual(farm.expire(farm.nextDeadline()!), []);
  assert.equal(farm.nextDeadline(), undefined);
  // coming back: asking for work makes it awake and gives it a deadline again
  assert.equal(taskOf(farm.nextTask(chatty, T0 + 100 * S))._id, t._id);
  assert.equal(farm.getWorker(chatty)!.status, "awake");
  assert.equal(farm.nextDeadline(), T0 + 160 * S);
});

test("an active task without a ping fails ('task timed out on worker X'); may-i-run and updates ping it", () => {
  const { farm } = newFarm({ manager_worker_timeout_secs: 86400, manager_task_timeout_secs: 600, manager_job_fail_percentage: 100 });
  const w = addWorker(farm, ["a"], "slow");
  addJob(farm, "j", 50, [["t", "a"], ["u", "a"]]);
  const t = taskOf(farm.nextTask(w, T0));
  assert.equal(farm.mayIRun(w, t._id, T0 + 300 * S).may_keep_running, true);
  farm.expire(T0 + 600 * S);
  assert.equal(farm.getTask(t._id)!.status, "active", "pinged at +300 s");
  farm.updateTask(w, t._id, { activity: "still here" }, T0 + 800 * S);
  farm.expire(T0 + 1000 * S);
  assert.equal(farm.getTask(t._id)!.status, "active", "the update pinged it at +800 s");
  const logs = farm.expire(T0 + 1400 * S);
  const task = farm.getTask(t._id)!;
  assert.equal(task.status, "failed");
  assert.match(task.activity, /^task timed out on worker slow/);
  assert.match(logs[0]!.text, /timed out on worker slow/);
  assert.equal(farm.getWorker(w)!.current_task, "");
  assert.equal(taskOf(farm.nextTask(w, T0 + 1400 * S)).name, "u");
});

test("a reloaded time-out applies to deadlines already set", () => {
  const { farm, settings } = newFarm({ manager_worker_timeout_secs: 60 });
  const w = addWorker(farm, ["a"]);
  settings.manager_worker_timeout_secs = 10;
  assert.equal(farm.nextDeadline(), T0 + 10 * S);
  farm.expire(T0 + 10 * S);
  assert.equal(farm.getWorker(w)!.status, "timeout");
});

test("after a restart every live worker and active task gets a fresh deadline (grace)", () => {
  const { farm, records } = newFarm({ manager_worker_timeout_secs: 60, manager_task_timeout_secs: 600 });
  const w = addWorker(farm, ["a"]);
  const off = addWorker(farm, ["a"]);
  farm.signOff(off, T0);
  addJob(farm, "j", 50, [["t", "a"]]);
  const t = taskOf(farm.nextTask(w, T0));
  const restartAt = T0 + 3600 * S;
  const settings = () => ({ manager_blacklist_threshold: 3, manager_task_fail_after_softfail_count: 3, manager_job_fail_percentage: 10, manager_worker_timeout_secs: 60, manager_task_timeout_secs: 600 });
  const again = Farm.restore(undefined, records, { now: restartAt, settings });
  assert.equal(again.nextDeadline(), restartAt + 60 * S);
  again.expire(restartAt + 59 * S);
  assert.equal(again.getWorker(w)!.status, "awake");
  assert.equal(again.getTask(t._id)!.status, "active");
  again.expire(restartAt + 60 * S);
  assert.equal(again.getWorker(w)!.status, "timeout");
  assert.equal(again.getWorker(off)!.status, "offline");
  assert.equal(again.getTask(t._id)!.status, "queued");
});

test("many workers: expire handles only the due ones (lazy deletion keeps one entry per worker)", () => {
  const { farm } = newFarm({ manager_worker_timeout_secs: 60 });
  const ids = Array.from({ length: 1000 }, (_, i) => addWorker(farm, ["a"], `w${i}`));
  for (let round = 1; round <= 50; round++) for (const id of ids) farm.touchWorker(id, T0 + round * S);
  farm.touchWorker(ids[0]!, T0 + 100 * S);
  farm.expire(T0 + 110 * S);
  assert.equal(farm.listWorkers().filter((w) => w.status === "timeout").length, 999);
  assert.equal(farm.getWorker(ids[0]!)!.status, "starting");
  assert.equal(farm.nextDeadline(), T0 + 160 * S);
});
