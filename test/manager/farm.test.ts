// Farm rules: scheduling order, parents, re-asks, may-i-run, failures and blacklists, roll-up,
// cancel/requeue/pause/priority, status requests, outputs, documents and events.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FarmError, type FarmEvent } from "../../src/manager/model.js";
import { addJob, addWorker, CMD, newFarm, pickName, T0, taskOf } from "./fixtures.js";

const fails = (status: number, fn: () => unknown, message?: RegExp) =>
  assert.throws(fn, (err: unknown) => err instanceof FarmError && err.status === status && (!message || message.test(err.message)));

test("tasks come out by job priority, then task priority, then oldest id", () => {
  const { farm } = newFarm();
  const w = addWorker(farm, ["render"]);
  addJob(farm, "low", 10, [["l1", "render", 90], ["l2", "render", 95]]);
  addJob(farm, "high", 80, [["h1", "render", 10], ["h2", "render", 20], ["h3", "render", 20]]);
  addJob(farm, "mid", 50, [["m1", "render", 50]]);
  const order: (string | number)[] = [];
  for (let i = 0; i < 7; i++) {
    const r = farm.nextTask(w, T0);
    if (r.status !== 200) {
      order.push(r.status);
      continue;
    }
    order.push(r.task.name);
    farm.updateTask(w, r.task._id, { task_status: "completed" }, T0);
  }
  assert.deepEqual(order, ["h2", "h3", "h1", "m1", "l2", "l1", 204]);
});

test("a task waits for all its parents: one of two incomplete → 204", () => {
  const { farm } = newFarm();
  const w = addWorker(farm, ["a", "b"]);
  const job = addJob(farm, "j", 50, [["p1", "a"], ["p2", "a"], ["child", "b", 100, ["p1", "p2"]]]);
  const first = taskOf(farm.nextTask(w, T0));
  farm.updateTask(w, first._id, { task_status: "completed" }, T0);
  const second = taskOf(farm.nextTask(w, T0));
  assert.notEqual(second._id, job.task.child);
  // p2 still active: the child is not ready, and a worker of type b alone gets nothing
  const onlyB = addWorker(farm, ["b"]);
  assert.equal(farm.nextTask(onlyB, T0).status, 204);
  farm.updateTask(w, second._id, { task_status: "completed" }, T0);
  assert.equal(pickName(farm, onlyB), "child");
});

test("a worker asking again gets the same active task, without a new assignment", () => {
  const { farm, records } = newFarm();
  const w = addWorker(farm, ["a"]);
  addJob(farm, "j", 50, [["t1", "a"], ["t2", "a"]]);
  const first = farm.nextTask(w, T0);
  assert.equal(first.status === 200 && first.log?.rotate, true);
  const count = records.length;
  const again = farm.nextTask(w, T0 + 1);
  assert.equal(taskOf(again)._id, taskOf(first)._id);
  assert.equal(again.status === 200 && again.log, undefined, "no log rotation on a re-ask");
  assert.equal(records.length, count, "nothing journaled");
});

test("406 without task types, 423 with a pending status request (lazy or not)", () => {
  const { farm } = newFarm();
  const none = addWorker(farm, []);
  assert.equal(farm.nextTask(none, T0).status, 406);
  const w = addWorker(farm, ["a"]);
  addJob(farm, "j", 50, [["t", "a"]]);
  farm.requestStatus(w, "asleep", true, T0);
  assert.deepEqual(farm.nextTask(w, T0), { status: 423, body: { status_requested: "asleep" } });
  farm.ackStatusChange(w, "asleep", T0);
  assert.equal(farm.getWorker(w)!.status, "asleep");
  assert.equal(pickName(farm, w), "t");
  assert.equal(farm.getWorker(w)!.status, "awake", "asking for work marks the worker awake");
});

test("a worker only gets task types it supports", () => {
  const { farm } = newFarm();
  const w = addWorker(farm, ["sleep"]);
  addJob(farm, "j", 100, [["r", "render"]]);
  assert.equal(farm.nextTask(w, T0).status, 204);
  addJob(farm, "k", 1, [["s", "sleep"]]);
  assert.equal(pickName(farm, w), "s");
});

test("may-i-run: exact shapes; false when unknown, reassigned, not active, cancel-requested or an immediate request is pending", () => {
  const { farm } = newFarm();
  const w1 = addWorker(farm, ["a"], "one");
  const w2 = addWorker(farm, ["a"], "two");
  const job = addJob(farm, "j", 50, [["t", "a"]]);
  const task = taskOf(farm.nextTask(w1, T0));
  assert.deepEqual(farm.mayIRun(w1, task._id, T0), { may_keep_running: true });
  assert.deepEqual(Object.keys(farm.mayIRun(w1, "0".repeat(24), T0)), ["may_keep_running", "reason"]);
  assert.equal(farm.mayIRun(w2, task._id, T0).may_keep_running, false, "assigned to another worker");

  farm.requestStatus(w1, "asleep", true, T0);
  assert.deepEqual(farm.mayIRun(w1, task._id, T0), { may_keep_running: true }, "a lazy request lets the task finish");
  farm.requestStatus(w1, "shutdown", false, T0);
  const immediate = farm.mayIRun(w1, task._id, T0);
  assert.deepEqual(Object.keys(immediate), ["may_keep_running", "reason", "status_requested"]);
  assert.equal(immediate.may_keep_running, false);
  assert.equal(immediate.status_requested, "shutdown");
  farm.requestStatus(w1, "awake", false, T0);
  assert.equal(farm.mayIRun(w1, task._id, T0).may_keep_running, true, "awake is a running status");
  farm.ackStatusChange(w1, "awake", T0);

  farm.cancelJob(job.id, T0);
  assert.equal(farm.getTask(task._id)!.status, "cancel-requested");
  const canceled = farm.mayIRun(w1, task._id, T0);
  assert.equal(canceled.may_keep_running, false);
  assert.match(canceled.reason!, /cancel-requested/);
});

test("may-i-run false after the task was re-queued and given to another worker", () => {
  const { farm } = newFarm();
  const w1 = addWorker(farm, ["a"], "one");
  const w2 = addWorker(farm, ["a"], "two");
  addJob(farm, "j", 50, [["t", "a"]]);
  const task = taskOf(farm.nextTask(w1, T0));
  farm.signOff(w1, T0);
  assert.equal(taskOf(farm.nextTask(w2, T0))._id, task._id);
  assert.deepEqual(farm.mayIRun(w1, task._id, T0), { may_keep_running: false, reason: "task is assigned to another worker" });
  assert.deepEqual(farm.mayIRun(w2, task._id, T0), { may_keep_running: true });
});

test("a second worker's update is refused with 409 and nothing applied", () => {
  const { farm, records } = newFarm();
  const w1 = addWorker(farm, ["a"]);
  const w2 = addWorker(farm, ["a"]);
  addJob(farm, "j", 50, [["t", "a"]]);
  const task = taskOf(farm.nextTask(w1, T0));
  const count = records.length;
  fails(409, () => farm.updateTask(w2, task._id, { task_status: "completed", activity: "x" }, T0));
  assert.equal(records.length, count);
  const now = farm.getTask(task._id)!;
  assert.equal(now.status, "active");
  assert.equal(now.worker, w1);
  assert.equal(now.activity, "");
  fails(404, () => farm.updateTask(w1, "f".repeat(24), {}, T0));
  fails(400, () => farm.updateTask(w1, task._id, { task_status: "queued" } as never, T0));
});

test("updates: activity and progress apply; a no-longer-active task keeps its status but gets its log", () => {
  const { farm } = newFarm();
  const w = addWorker(farm, ["a"]);
  addJob(farm, "j", 50, [["t", "a"]]);
  const task = taskOf(farm.nextTask(w, T0));
  farm.updateTask(w, task._id, { activity: "rendering", task_progress_percentage: 42.4 }, T0);
  assert.equal(farm.getTask(task._id)!.activity, "rendering");
  assert.equal(farm.getTask(task._id)!.progress, 42);
  farm.updateTask(w, task._id, { task_status: "completed" }, T0);
  const late = farm.updateTask(w, task._id, { task_status: "failed", log: "late line", activity: "late" }, T0);
  assert.equal(farm.getTask(task._id)!.status, "completed");
  assert.equal(farm.getTask(task._id)!.activity, "rendering");
  assert.equal(late.log?.text, "late line\n");
});

test("a worker reporting canceled on an active task re-queues it", () => {
  const { farm } = newFarm();
  const w = addWorker(farm, ["a"]);
  addJob(farm, "j", 50, [["t", "a"]]);
  const task = taskOf(farm.nextTask(w, T0));
  const out = farm.updateTask(w, task._id, { task_status: "canceled" }, T0);
  assert.equal(farm.getTask(task._id)!.status, "queued");
  assert.equal(farm.getWorker(w)!.current_task, "");
  assert.match(out.log!.text, /re-queued/);
});

test("blacklisted after 3 failures on a job and task type, while another worker still gets the type", () => {
  const { farm, settings } = newFarm();
  settings.manager_task_fail_after_softfail_count = 10;
  const bad = addWorker(farm, ["render", "sleep"], "bad");
  const good = addWorker(farm, ["render"], "good");
  const job = addJob(farm, "j", 50, [["r1", "render"], ["r2", "render"], ["r3", "render"], ["r4", "render"], ["r5", "render"], ["s1", "sleep", 1]]);
  for (let i = 0; i < 3; i++) {
    const t = taskOf(farm.nextTask(bad, T0));
    const out = farm.updateTask(bad, t._id, { task_status: "failed" }, T0);
    assert.equal(farm.getTask(t._id)!.status, "soft-failed");
    if (i === 2) assert.match(out.log!.text, /blacklisted/);
  }
  // blacklisted for (job, render): the bad worker now gets only the sleep task
  assert.equal(pickName(farm, bad), "s1");
  // the good worker gets render tasks, including the soft-failed ones
  const seen = new Set<string>();
  for (let i = 0; i < 5; i++) {
    const t = taskOf(farm.nextTask(good, T0));
    seen.add(t.name);
    farm.updateTask(good, t._id, { task_status: "completed" }, T0);
  }
  assert.deepEqual([...seen].sort(), ["r1", "r2", "r3", "r4", "r5"]);
  // forgetting the blacklist line: the bad worker may take render tasks of this job again
  const more = addJob(farm, "k", 1, [["x", "render"]]);
  assert.notEqual(more.id, job.id);
  farm.forgetBlacklist(bad, job.id, "render", T0);
  fails(404, () => farm.forgetBlacklist(bad, job.id, "render", T0));
});

test("a failing worker never gets the task it failed again", () => {
  const { farm } = newFarm();
  const w1 = addWorker(farm, ["a"]);
  addWorker(farm, ["a"]);
  addJob(farm, "j", 50, [["t", "a"]]);
  const t = taskOf(farm.nextTask(w1, T0));
  farm.updateTask(w1, t._id, { task_status: "failed" }, T0);
  assert.equal(farm.getTask(t._id)!.status, "soft-failed");
  assert.equal(farm.nextTask(w1, T0).status, 204);
});

test("soft → hard fail with two workers (no other worker left)", () => {
  const { farm } = newFarm({ manager_job_fail_percentage: 100 });
  const w1 = addWorker(farm, ["a"]);
  const w2 = addWorker(farm, ["a"]);
  addJob(farm, "j", 50, [["t", "a"], ["u", "a", 1]]);
  const t = taskOf(farm.nextTask(w1, T0));
  farm.updateTask(w1, t._id, { task_status: "failed" }, T0);
  assert.equal(farm.getTask(t._id)!.status, "soft-failed");
  assert.equal(taskOf(farm.nextTask(w2, T0))._id, t._id);
  farm.updateTask(w2, t._id, { task_status: "failed" }, T0);
  assert.equal(farm.getTask(t._id)!.status, "failed");
});

test("soft → hard fail with four workers (failed by task_fail_after_softfail_count)", () => {
  const { farm } = newFarm({ manager_job_fail_percentage: 100 });
  const workers = [1, 2, 3, 4].map((i) => addWorker(farm, ["a"], `w${i}`));
  addJob(farm, "j", 50, [["t", "a"]]);
  const statuses: string[] = [];
  for (const w of workers.slice(0, 3)) {
    const t = taskOf(farm.nextTask(w, T0));
    farm.updateTask(w, t._id, { task_status: "failed" }, T0);
    statuses.push(farm.getTask(t._id)!.status);
  }
  assert.deepEqual(statuses, ["soft-failed", "soft-failed", "failed"]);
  assert.equal(farm.nextTask(workers[3]!, T0).status, 204, "a failed task is not handed out");
});

test("job roll-up: active, completed, and failed at job_fail_percentage with queued tasks canceled", () => {
  const { farm } = newFarm({ manager_job_fail_percentage: 50, manager_task_fail_after_softfail_count: 1 });
  const w = addWorker(farm, ["a"]);
  const ok = addJob(farm, "ok", 90, [["t", "a"]]);
  assert.equal(farm.getJob(ok.id)!.status, "queued");
  const t = taskOf(farm.nextTask(w, T0));
  assert.equal(farm.getJob(ok.id)!.status, "active");
  farm.updateTask(w, t._id, { task_status: "completed" }, T0);
  assert.equal(farm.getJob(ok.id)!.status, "completed");
  assert.equal(farm.getJob(ok.id)!.progress, 100);

  const bad = addJob(farm, "bad", 50, [["a1", "a", 90], ["a2", "a", 80], ["a3", "a"], ["a4", "a"]]);
  const a1 = taskOf(farm.nextTask(w, T0));
  farm.updateTask(w, a1._id, { task_status: "failed" }, T0);
  assert.equal(farm.getJob(bad.id)!.status, "active", "25% failed < 50%");
  const a2 = taskOf(farm.nextTask(w, T0));
  farm.updateTask(w, a2._id, { task_status: "failed" }, T0);
  const job = farm.getJob(bad.id)!;
  assert.equal(job.status, "failed");
  assert.deepEqual(job.task_counts, { failed: 2, canceled: 2 });
  assert.equal(farm.nextTask(w, T0).status, 204);
});

test("a job whose failed task leaves nothing runnable ends failed, below job_fail_percentage", () => {
  const { farm } = newFarm({ manager_job_fail_percentage: 100, manager_task_fail_after_softfail_count: 1 });
  const w = addWorker(farm, ["a"]);
  const job = addJob(farm, "j", 50, [["first", "a", 90], ["other", "a", 10], ["child", "a", 50, ["first"]]]);
  farm.updateTask(w, taskOf(farm.nextTask(w, T0))._id, { task_status: "failed" }, T0);
  assert.equal(farm.getJob(job.id)!.status, "active", "another task can still run");
  farm.updateTask(w, taskOf(farm.nextTask(w, T0))._id, { task_status: "completed" }, T0);
  const doc = farm.getJob(job.id)!;
  assert.equal(doc.status, "failed", "the child of the failed task can never run");
  assert.deepEqual(doc.task_counts, { failed: 1, completed: 1, canceled: 1 });
});

test("cancel: queued tasks canceled, active ones cancel-requested, job canceled when none remain active", () => {
  const { farm } = newFarm();
  const w = addWorker(farm, ["a"]);
  const job = addJob(farm, "j", 50, [["t1", "a"], ["t2", "a"]]);
  const t = taskOf(farm.nextTask(w, T0));
  const doc = farm.cancelJob(job.id, T0);
  assert.equal(doc.status, "cancel-requested");
  assert.deepEqual(doc.task_counts, { "cancel-requested": 1, canceled: 1 });
  farm.updateTask(w, t._id, { task_status: "canceled" }, T0);
  assert.equal(farm.getJob(job.id)!.status, "canceled");
  assert.equal(farm.getWorker(w)!.current_task, "");
  const idle = addJob(farm, "idle", 50, [["x", "a"]]);
  assert.equal(farm.cancelJob(idle.id, T0).status, "canceled");
  fails(404, () => farm.cancelJob("0".repeat(24), T0));
});

test("a cancel-requested task is canceled when its worker asks for new work", () => {
  const { farm } = newFarm();
  const w = addWorker(farm, ["a"]);
  const job = addJob(farm, "j", 50, [["t1", "a"]]);
  const t = taskOf(farm.nextTask(w, T0));
  farm.cancelJob(job.id, T0);
  assert.equal(farm.nextTask(w, T0).status, 204);
  assert.equal(farm.getTask(t._id)!.status, "canceled");
  assert.equal(farm.getJob(job.id)!.status, "canceled");
});

test("requeue: the whole job, or only failed and canceled tasks", () => {
  const { farm } = newFarm({ manager_job_fail_percentage: 30, manager_task_fail_after_softfail_count: 1 });
  const w = addWorker(farm, ["a"]);
  const job = addJob(farm, "j", 50, [["t1", "a", 90], ["t2", "a", 80], ["t3", "a"]]);
  const t1 = taskOf(farm.nextTask(w, T0));
  farm.updateTask(w, t1._id, { task_status: "completed" }, T0);
  const t2 = taskOf(farm.nextTask(w, T0));
  farm.updateTask(w, t2._id, { task_status: "failed" }, T0);
  assert.equal(farm.getJob(job.id)!.status, "failed");
  const again = farm.requeueJob(job.id, true, T0);
  assert.equal(again.status, "active");
  assert.deepEqual(again.task_counts, { completed: 1, queued: 2 });
  assert.equal(pickName(farm, w), "t2", "the worker that failed it may try again after a requeue");
  const all = farm.requeueJob(job.id, false, T0);
  assert.deepEqual(all.task_counts, { queued: 2, active: 1 }, "the running task keeps running");
});

test("pause keeps a job's tasks from workers; resume gives them back; priority re-keys the job", () => {
  const { farm } = newFarm();
  const w = addWorker(farm, ["a"]);
  const hi = addJob(farm, "hi", 90, [["h1", "a"], ["h2", "a"]]);
  const lo = addJob(farm, "lo", 10, [["l1", "a"], ["l2", "a"]]);
  assert.equal(farm.pauseJob(hi.id, T0).status, "paused");
  const l = taskOf(farm.nextTask(w, T0));
  assert.equal(l.name, "l1");
  farm.updateTask(w, l._id, { task_status: "completed" }, T0);
  assert.equal(farm.resumeJob(hi.id, T0).status, "queued");
  farm.setJobPriority(lo.id, 100, T0);
  assert.equal(pickName(farm, w), "l2");
  fails(400, () => farm.setJobPriority(lo.id, 0, T0));
  fails(409, () => farm.resumeJob(lo.id, T0) && farm.pauseJob(farm.cancelJob(lo.id, T0)._id, T0));
});

test("sign-off re-queues the worker's task with a log line; sign-on does too and applies new fields", () => {
  const { farm } = newFarm();
  const w = addWorker(farm, ["a"], "alpha");
  addJob(farm, "j", 50, [["t", "a"]]);
  const t = taskOf(farm.nextTask(w, T0));
  const logs = farm.signOff(w, T0);
  assert.equal(logs.length, 1);
  assert.match(logs[0]!.text, /re-queued: worker alpha \(\w+\) signed off/);
  assert.equal(farm.getTask(t._id)!.status, "queued");
  assert.equal(farm.getWorker(w)!.status, "offline");
  assert.equal(farm.getWorker(w)!.current_task, "");
  farm.nextTask(w, T0);
  farm.signOn(w, { nickname: "beta", supported_task_types: ["b"] }, T0);
  const doc = farm.getWorker(w)!;
  assert.equal(doc.status, "starting");
  assert.equal(doc.nickname, "beta");
  assert.deepEqual(doc.supported_task_types, ["b"]);
  assert.equal(farm.getTask(t._id)!.status, "queued");
});

test("status requests: status-change, ack, shutdown acked by sign-off", () => {
  const { farm } = newFarm();
  const w = addWorker(farm, ["a"]);
  assert.equal(farm.statusChange(w, T0), undefined);
  farm.requestStatus(w, "asleep", false, T0);
  assert.deepEqual(farm.statusChange(w, T0), { status_requested: "asleep" });
  farm.ackStatusChange(w, "asleep", T0);
  assert.equal(farm.statusChange(w, T0), undefined);
  assert.equal(farm.getWorker(w)!.status, "asleep");
  farm.requestStatus(w, "shutdown", false, T0);
  farm.ackStatusChange(w, "shutdown", T0);
  assert.deepEqual(farm.statusChange(w, T0), { status_requested: "shutdown" }, "acking shutdown is ignored");
  farm.signOff(w, T0);
  assert.equal(farm.statusChange(w, T0), undefined);
  fails(400, () => farm.requestStatus(w, "bogus", false, T0));
  fails(400, () => farm.ackStatusChange(w, "bogus", T0));
  fails(404, () => farm.statusChange("0".repeat(24), T0));
});

test("returnTask hands a task back to the queue", () => {
  const { farm } = newFarm();
  const w = addWorker(farm, ["a"]);
  addJob(farm, "j", 50, [["t", "a"]]);
  const t = taskOf(farm.nextTask(w, T0));
  farm.returnTask(w, t._id, T0);
  assert.equal(farm.getTask(t._id)!.status, "queued");
  fails(409, () => farm.returnTask(w, t._id, T0));
});

test("outputs: the last 10 paths per job; empty → 422", () => {
  const { farm } = newFarm();
  const w = addWorker(farm, ["a"]);
  const job = addJob(farm, "j", 50, [["t", "a"]]);
  assert.equal(farm.outputProduced(w, ["/x"], T0), false, "no current task: dropped");
  taskOf(farm.nextTask(w, T0));
  for (let i = 0; i < 12; i++) farm.outputProduced(w, [`/out/${i}.png`], T0);
  assert.deepEqual(farm.getJob(job.id)!.outputs, Array.from({ length: 10 }, (_, i) => `/out/${i + 2}.png`));
  fails(422, () => farm.outputProduced(w, [], T0));
  fails(400, () => farm.outputProduced(w, [1], T0));
});

test("submitJob validation: defaults, cycles, parents, unknown fields and wrong types → 400 naming task and field", () => {
  const { farm, records } = newFarm();
  const doc = farm.submitJob({ name: "j", tasks: [{ name: "t", task_type: "a", commands: CMD }] }, T0);
  assert.equal(doc.priority, 50);
  assert.equal(doc.tasks![0]!.priority, 50);
  assert.match(doc._id, /^[0-9a-f]{24}$/);
  const count = records.length;
  const task = (extra: object) => ({ name: "t", task_type: "a", commands: CMD, ...extra });
  fails(400, () => farm.submitJob({ name: "j", tasks: [task({ name: "x", parents: ["y"] }), task({ name: "y", parents: ["z"] }), task({ name: "z", parents: ["x"] })] }, T0), /task "[xyz]": field "parents": dependency cycle/);
  fails(400, () => farm.submitJob({ name: "j", tasks: [task({ parents: ["t"] })] }, T0), /cycle/);
  fails(400, () => farm.submitJob({ name: "j", tasks: [task({ parents: [doc.tasks![0]!._id] })] }, T0), /task "t": field "parents": .* is not a task of this job/);
  fails(400, () => farm.submitJob({ name: "j", tasks: [task({ colour: "red" })] }, T0), /task "t": field "colour": unknown field/);
  fails(400, () => farm.submitJob({ name: "j", tasks: [task({ priority: "high" })] }, T0), /task "t": field "priority"/);
  fails(400, () => farm.submitJob({ name: "j", tasks: [task({ commands: [{ name: "echo", settings: [] }] })] }, T0), /task "t": command 0: field "settings"/);
  fails(400, () => farm.submitJob({ name: "j", tasks: [task({}), task({})] }, T0), /same name/);
  fails(400, () => farm.submitJob({ name: "j", priority: 101, tasks: [task({})] }, T0), /field "priority"/);
  fails(400, () => farm.submitJob({ name: "x".repeat(257), tasks: [task({})] }, T0), /field "name"/);
  fails(400, () => farm.submitJob({ name: "j", tasks: [] }, T0), /field "tasks"/);
  fails(400, () => farm.submitJob({ name: "j", tasks: new Array(100_001).fill(0) }, T0), /at most 100000 tasks/);
  fails(400, () => farm.submitJob("nope", T0));
  assert.equal(records.length, count, "nothing journaled for a refused job");
});

test("documents: worker JSON has exactly the contract keys and never the secret", () => {
  const { farm } = newFarm();
  const w = addWorker(farm, ["a"], "n");
  assert.deepEqual(Object.keys(farm.getWorker(w)!).sort(), [
    "_id",
    "address",
    "current_task",
    "last_activity",
    "nickname",
    "platform",
    "software",
    "status",
    "supported_task_types",
  ]);
  assert.equal(farm.workerSecretHash(w), "hash");
  assert.ok(!JSON.stringify(farm.listWorkers()).includes("hash"));
  const job = addJob(farm, "j", 50, [["t", "a"]]);
  assert.deepEqual(Object.keys(farm.getJob(job.id)!).sort(), ["_id", "created", "name", "outputs", "priority", "progress", "status", "task_counts", "tasks", "type", "updated"]);
  assert.equal(farm.listJobs("queued").length, 1);
  assert.equal(farm.listJobs("active").length, 0);
});

test("events: job, task and worker documents on every change", () => {
  const { farm } = newFarm();
  const events: FarmEvent[] = [];
  const off = farm.onEvent((e) => events.push(e));
  const w = addWorker(farm, ["a"]);
  const job = addJob(farm, "j", 50, [["t", "a"]]);
  const t = taskOf(farm.nextTask(w, T0));
  events.length = 0;
  farm.updateTask(w, t._id, { task_status: "completed" }, T0);
  const kinds = events.map((e) => `${e.type}:${e.type === "job" ? e.doc.status : e.type === "task" ? e.doc.status : e.doc.current_task}`);
  assert.deepEqual(kinds.sort(), ["job:completed", "task:completed", "worker:"]);
  const taskEvent = events.find((e) => e.type === "task")!;
  assert.equal(taskEvent.type === "task" && taskEvent.doc.job, job.id);
  assert.ok(!JSON.stringify(events).includes("hash"));
  off();
  events.length = 0;
  farm.cancelJob(addJob(farm, "k", 50, [["u", "a"]]).id, T0);
  assert.equal(events.length, 0);
});

test("settings are read on every decision (a reload applies)", () => {
  const { farm, settings } = newFarm();
  const w1 = addWorker(farm, ["a"]);
  addWorker(farm, ["a"]);
  addWorker(farm, ["a"]);
  addJob(farm, "j", 50, [["t", "a"], ["u", "a"], ["v", "a"], ["x", "a"], ["y", "a"], ["z", "a"]]);
  settings.manager_task_fail_after_softfail_count = 1;
  const t = taskOf(farm.nextTask(w1, T0));
  farm.updateTask(w1, t._id, { task_status: "failed" }, T0);
  assert.equal(farm.getTask(t._id)!.status, "failed");
});
