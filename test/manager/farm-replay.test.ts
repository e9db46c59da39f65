// Property tests over random operation sequences: indexes stay consistent, a task is never active
// on two workers, the indexed pick equals a brute-force scan, and snapshot + replayed records
// rebuild exactly the live farm (even under other settings: decisions are in the records).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Farm, type FarmSnapshot } from "../../src/manager/farm.js";
import { FarmError, type FarmRecord, type NextTaskResult } from "../../src/manager/model.js";
import { intRng } from "../helpers/random.js";
import { CMD, newFarm, T0, type Fixture } from "./fixtures.js";

const TYPES = ["a", "b", "c"];
const STATUSES = ["completed", "completed", "failed", "failed", "canceled", "active"] as const;

/** How often the exclusions changed the answer (the test asserts they were exercised). */
const coverage = { banned: 0, failedBy: 0 };

/** The best eligible task for a worker, by scanning a snapshot: the scheduler's specification. */
function oracle(snap: FarmSnapshot, workerId: string, ignore: { banned?: boolean; failedBy?: boolean } = {}): string | undefined {
  const worker = snap.workers.find((w) => w.id === workerId)!;
  // age: creation order, which the snapshot keeps (jobs, then their tasks, in creation order)
  let best: { jp: number; tp: number; age: number; id: string } | undefined;
  let age = 0;
  for (const job of snap.jobs) {
    if (job.status !== "queued" && job.status !== "active") continue;
    for (const task of job.tasks) {
      age++;
      if (task.status !== "queued" && task.status !== "soft-failed") continue;
      if (!worker.supported_task_types.includes(task.task_type)) continue;
      if (task.parents.some((p) => job.tasks[p]!.status !== "completed")) continue;
      if (!ignore.failedBy && task.failed_by.includes(workerId)) continue;
      if (!ignore.banned && job.blacklists.some((b) => b.task_type === task.task_type && b.banned.includes(workerId))) continue;
      const key = { jp: job.priority, tp: task.priority, age, id: task.id };
      if (!best || key.jp > best.jp || (key.jp === best.jp && (key.tp > best.tp || (key.tp === best.tp && key.age < best.age)))) best = key;
    }
  }
  return best?.id;
}

/** The public view of "a task is never active on two workers". */
function checkOneWorkerPerTask(farm: Farm): void {
  const holders = new Map<string, string>();
  for (const w of farm.listWorkers()) {
    if (!w.current_task) continue;
    assert.ok(!holders.has(w.current_task), `task ${w.current_task} held by two workers`);
    holders.set(w.current_task, w._id);
    const task = farm.getTask(w.current_task)!;
    assert.equal(task.worker, w._id);
  }
  for (const job of farm.listJobs()) {
    for (const t of farm.getJob(job._id)!.tasks!) if (t.status === "active") assert.equal(holders.get(t._id), t.worker, `active task ${t._id} not held by its worker`);
  }
}

interface World {
  fx: Fixture;
  workers: string[];
  jobs: string[];
  now: number;
}

function randomJob(rand: (n: number) => number, index: number) {
  const count = 1 + rand(15);
  const tasks = Array.from({ length: count }, (_, i) => {
    const parents = i > 0 && rand(3) === 0 ? [`t${rand(i)}`] : [];
    if (i > 1 && rand(5) === 0) parents.push(`t${i - 1}`);
    return { name: `t${i}`, task_type: TYPES[rand(TYPES.length)]!, priority: 1 + rand(3), commands: CMD, parents: [...new Set(parents)] };
  });
  return { name: `job${index}`, priority: 1 + rand(3), tasks };
}

/** One random operation; FarmErrors (404/409/...) are expected outcomes, anything else is a bug. */
function step(world: World, rand: (n: number) => number, checkPick: boolean): void {
  const { farm, settings } = world.fx;
  world.now += rand(3000);
  const now = world.now;
  const anyWorker = () => world.workers[rand(world.workers.length)]!;
  const anyJob = () => world.jobs[rand(world.jobs.length)]!;
  const anyTask = () => {
    const job = farm.getJob(anyJob())!;
    return job.tasks![rand(job.tasks!.length)]!._id;
  };
  try {
    switch (rand(20)) {
      case 0:
      case 1:
        world.jobs.push(farm.submitJob(randomJob(rand, world.jobs.length), now)._id);
        return;
      case 2:
      case 3:
      case 4:
      case 5: {
        const w = anyWorker();
        const snap = farm.snapshot();
        const before = snap.workers.find((x) => x.id === w)!;
        const result = farm.nextTask(w, now);
        if (checkPick && !before.status_requested && before.supported_task_types.length > 0) {
          const current = before.current_task && snap.jobs.flatMap((j) => j.tasks).find((t) => t.id === before.current_task);
          const expected = current && current.status === "active" ? current.id : oracle(snap, w);
          if (!(current && current.status === "active")) {
            if (oracle(snap, w, { banned: true }) !== expected) coverage.banned++;
            if (oracle(snap, w, { failedBy: true }) !== expected) coverage.failedBy++;
          }
          assert.equal(result.status === 200 ? result.task._id : undefined, expected, "indexed pick differs from a full scan");
        }
        return;
      }
      case 6:
      case 7:
      case 8:
      case 9: {
        const w = anyWorker();
        const current = farm.getWorker(w)!.current_task;
        const task = current && rand(8) > 0 ? current : anyTask();
        const status = STATUSES[rand(STATUSES.length)]!;
        farm.updateTask(w, task, { task_status: status, activity: `act${rand(3)}`, log: "line" }, now);
        return;
      }
      case 10:
        farm.mayIRun(anyWorker(), anyTask(), now);
        return;
      case 11:
        if (rand(2)) farm.signOff(anyWorker(), now);
        else farm.signOn(anyWorker(), rand(3) === 0 ? { supported_task_types: TYPES.filter(() => rand(3) > 0) } : {}, now);
        return;
      case 12: {
        const w = anyWorker();
        if (rand(2)) farm.requestStatus(w, ["asleep", "awake", "shutdown"][rand(3)]!, rand(2) === 1, now);
        else farm.ackStatusChange(w, farm.statusChange(w, now)?.status_requested ?? "awake", now);
        return;
      }
      case 13: {
        const job = anyJob();
        [
          () => farm.cancelJob(job, now),
          () => farm.requeueJob(job, rand(2) === 1, now),
          () => farm.pauseJob(job, now),
          () => farm.resumeJob(job, now),
          () => farm.setJobPriority(job, 1 + rand(3), now),
        ][rand(5)]!();
        return;
      }
      case 14: {
        const w = anyWorker();
        const current = farm.getWorker(w)!.current_task;
        if (current) farm.returnTask(w, current, now);
        return;
      }
      case 15: {
        const snap = farm.snapshot();
        const lines = snap.jobs.flatMap((j) => j.blacklists.flatMap((b) => b.banned.map((w) => [w, j.id, b.task_type] as const)));
        const pickLine = lines[rand(lines.length)];
        if (pickLine && rand(5) === 0) farm.forgetBlacklist(pickLine[0], pickLine[1], pickLine[2], now);
        return;
      }
      case 16:
        for (const w of world.workers) if (rand(4) > 0) farm.touchWorker(w, now);
        farm.expire(now + rand(90_000));
        return;
      case 17:
        settings.manager_blacklist_threshold = 1 + rand(2);
        settings.manager_task_fail_after_softfail_count = 1 + rand(3);
        settings.manager_job_fail_percentage = [0, 30, 60, 100, 100][rand(5)]!;
        return;
      case 18:
        farm.outputProduced(anyWorker(), [`/o/${rand(100)}`], now);
        return;
      default:
        world.workers.push(farm.registerWorker({ secret_hash: "h", nickname: `w${world.workers.length}`, supported_task_types: TYPES.filter(() => rand(3) > 0) }, now)._id);
        return;
    }
  } catch (err) {
    if (!(err instanceof FarmError)) throw err;
  }
}

function newWorld(rand: (n: number) => number): World {
  const fx = newFarm({ manager_job_fail_percentage: 60, manager_blacklist_threshold: 1 });
  const world: World = { fx, workers: [], jobs: [], now: T0 };
  for (let i = 0; i < 4; i++) {
    const id = fx.farm.registerWorker({ secret_hash: "h", nickname: `w${i}`, supported_task_types: TYPES.filter(() => rand(3) > 0) }, T0)._id;
    fx.farm.signOn(id, {}, T0);
    world.workers.push(id);
  }
  world.jobs.push(fx.farm.submitJob(randomJob(rand, 0), T0)._id);
  return world;
}

const json = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

test("random operations: consistent indexes, one worker per task, indexed pick = full scan", () => {
  for (let seed = 1; seed <= 20; seed++) {
    const rand = intRng(seed);
    const world = newWorld(rand);
    for (let i = 0; i < 300; i++) {
      step(world, rand, true);
      world.fx.farm.assertConsistent();
      checkOneWorkerPerTask(world.fx.farm);
    }
  }
});

test("indexed pick = full scan under heavy exclusions (many failures and blacklists, re-keys, pauses)", () => {
  coverage.banned = coverage.failedBy = 0;
  for (let seed = 200; seed < 215; seed++) {
    const rand = intRng(seed);
    const fx = newFarm({ manager_task_fail_after_softfail_count: 100, manager_job_fail_percentage: 100, manager_blacklist_threshold: 1 + rand(3) });
    const { farm } = fx;
    const workers = Array.from({ length: 6 }, (_, i) => farm.registerWorker({ secret_hash: "h", nickname: `w${i}`, supported_task_types: TYPES.filter(() => rand(4) > 0) }, T0)._id);
    const jobs = Array.from({ length: 10 }, (_, i) => {
      const spec = randomJob(rand, i);
      spec.tasks.push(...Array.from({ length: 20 }, (_, k) => ({ name: `x${k}`, task_type: TYPES[rand(3)]!, priority: 1 + rand(3), commands: CMD, parents: [] })));
      return farm.submitJob(spec, T0)._id;
    });
    for (let i = 0; i < 600; i++) {
      const w = workers[rand(workers.length)]!;
      const job = jobs[rand(jobs.length)]!;
      if (rand(10) === 0) {
        try {
          [() => farm.setJobPriority(job, 1 + rand(3), T0), () => farm.pauseJob(job, T0), () => farm.resumeJob(job, T0)][rand(3)]!();
        } catch (err) {
          if (!(err instanceof FarmError)) throw err;
        }
        continue;
      }
      const snap = farm.snapshot();
      const expected = oracle(snap, w);
      if (oracle(snap, w, { banned: true }) !== expected) coverage.banned++;
      if (oracle(snap, w, { failedBy: true }) !== expected) coverage.failedBy++;
      const result = farm.nextTask(w, T0);
      assert.equal(result.status === 200 ? result.task._id : undefined, expected, `seed ${seed} step ${i}`);
      if (result.status === 200) farm.updateTask(w, result.task._id, { task_status: (["completed", "failed", "failed", "canceled"] as const)[rand(4)] }, T0);
      farm.assertConsistent();
    }
  }
  assert.ok(coverage.banned > 20 && coverage.failedBy > 20, `exclusions exercised: ${JSON.stringify(coverage)}`);
});

test("snapshot + replayed records rebuild the live farm exactly, whatever the settings at replay", () => {
  for (let seed = 100; seed < 130; seed++) {
    const rand = intRng(seed);
    const world = newWorld(rand);
    const cutAt = 50 + rand(250);
    let snapAtCut: unknown;
    let recordsAtCut = 0;
    for (let i = 0; i < 350; i++) {
      if (i === cutAt) {
        snapAtCut = json(world.fx.farm.snapshot());
        recordsAtCut = world.fx.records.length;
      }
      step(world, rand, false);
    }
    const live = world.fx.farm;
    const records: FarmRecord[] = json(world.fx.records);
    const odd = { manager_blacklist_threshold: 1, manager_task_fail_after_softfail_count: 1, manager_job_fail_percentage: 0, manager_worker_timeout_secs: 1, manager_task_timeout_secs: 1 };
    const fromScratch = Farm.restore(undefined, records, { settings: () => odd, now: world.now });
    const fromSnapshot = Farm.restore(snapAtCut, records.slice(recordsAtCut), { now: world.now });
    assert.deepEqual(fromScratch.snapshot(), json(live.snapshot()), `seed ${seed}: replay from scratch`);
    assert.deepEqual(fromSnapshot.snapshot(), json(live.snapshot()), `seed ${seed}: snapshot + replay`);
    fromSnapshot.assertConsistent();
    // the derived indexes behave the same: every worker gets the same answer from both
    for (const w of world.workers) {
      const a: NextTaskResult = live.nextTask(w, world.now);
      const b: NextTaskResult = fromSnapshot.nextTask(w, world.now);
      assert.deepEqual(json(b), json(a), `seed ${seed}: nextTask after restore`);
    }
  }
});

test("records carry no clock: replaying the same records twice gives the same state", () => {
  const rand = intRng(7);
  const world = newWorld(rand);
  for (let i = 0; i < 300; i++) step(world, rand, false);
  const records = json(world.fx.records);
  const first = Farm.restore(undefined, records, { now: 1 }).snapshot();
  const second = Farm.restore(undefined, records, { now: 2 }).snapshot();
  assert.deepEqual(first, second);
});
