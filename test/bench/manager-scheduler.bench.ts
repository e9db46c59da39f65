// Manager scheduler: nextTask → update(completed) cycles per second with 1,000 vs 100,000 queued
// tasks (100 jobs, 1,000 workers of mixed task types), the ratio (goal >= 0.8), a run where 5 % of
// the tasks fail (workers skip tasks they failed), and heap/RSS per queued task at 100,000 (goal
// < 2 KB). Run: node --import tsx test/bench/manager-scheduler.bench.ts
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { Farm } from "../../src/manager/farm.js";
import { DEFAULT_SETTINGS } from "../../src/manager/model.js";
import { intRng } from "../helpers/random.js";

const TYPES = ["render", "sleep", "echo", "exec"];
const WORKERS = 1000;
const JOBS = 100;
const BATCH = 500; // cycles per timed batch; the queue is topped up by BATCH tasks between batches
const BATCHES = Number(process.env.BENCH_BATCHES ?? 20);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const NOW = Date.parse("2024-01-01T00:00:00Z");
// a full GC before each memory reading, without needing --expose-gc on the command line
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

function tasksFor(rand: (n: number) => number, count: number, prefix: string) {
  return Array.from({ length: count }, (_, i) => ({
    name: `${prefix}-${i}`,
    task_type: TYPES[rand(TYPES.length)]!,
    priority: 1 + rand(100),
    commands: [{ name: "echo", settings: { message: `frame ${i}` } }],
  }));
}

function build(queued: number, seed: number): { farm: Farm; workers: string[]; rand: (n: number) => number } {
  const rand = intRng(seed);
  const settings = { ...DEFAULT_SETTINGS, manager_task_fail_after_softfail_count: 1000, manager_job_fail_percentage: 100, manager_blacklist_threshold: 1000 };
  const farm = new Farm({ persist: () => {}, settings: () => settings });
  const workers = Array.from({ length: WORKERS }, (_, i) => {
    const types = TYPES.filter(() => rand(2) === 1);
    if (types.length === 0) types.push(TYPES[i % TYPES.length]!);
    const id = farm.registerWorker({ secret_hash: "h", nickname: `w${i}`, supported_task_types: types }, NOW)._id;
    farm.signOn(id, {}, NOW);
    return id;
  });
  for (let j = 0; j < JOBS; j++) farm.submitJob({ name: `job${j}`, priority: 1 + rand(100), tasks: tasksFor(rand, queued / JOBS, `j${j}`) }, NOW);
  return { farm, workers, rand };
}

/**
 * The time (ms) of each of BATCHES timed batches of BATCH cycles; `failEvery`: every n-th cycle
 * reports failed.
 */
function measure(queued: number, seed: number, failEvery = 0): number[] {
  const { farm, workers, rand } = build(queued, seed);
  const times: number[] = [];
  let cycles = 0;
  let turn = 0;
  for (let batch = 0; batch < BATCHES; batch++) {
    const started = performance.now();
    for (let i = 0; i < BATCH; i++) {
      const worker = workers[turn++ % WORKERS]!;
      const result = farm.nextTask(worker, NOW);
      if (result.status !== 200) throw new Error(`no task for a worker (${result.status})`);
      const failed = failEvery > 0 && cycles % failEvery === 0;
      farm.updateTask(worker, result.task._id, { task_status: failed ? "failed" : "completed" }, NOW);
      cycles++;
    }
    times.push(performance.now() - started);
    farm.submitJob({ name: `top-up${batch}`, priority: 1 + rand(100), tasks: tasksFor(rand, BATCH, `t${batch}`) }, NOW);
  }
  return times;
}

function memoryPerTask(queued: number): { heap: number; rss: number } {
  gc();
  const before = process.memoryUsage();
  const { farm } = build(queued, 99);
  gc();
  const after = process.memoryUsage();
  if (farm.listJobs().length !== JOBS) throw new Error("jobs missing");
  return { heap: (after.heapUsed - before.heapUsed) / queued, rss: (after.rss - before.rss) / queued };
}

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * q)]!;
/** Cycles per second at a quantile of the batch times: the fast quartile shows the code, the median also shows a busy machine. */
const rate = (times: number[], q: number) => (BATCH * 1000) / quantile(times, q);

function main(): void {
  const memory = memoryPerTask(100_000); // first, while RSS holds nothing else
  measure(1_000, 1); // warm-up
  const small: number[] = [];
  const large: number[] = [];
  const failing: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    small.push(...measure(1_000, 10 + round));
    large.push(...measure(100_000, 20 + round));
    failing.push(...measure(100_000, 30 + round, 20));
  }
  const row = (label: string, times: number[]) => console.log(`${label} ${rate(times, 0.25).toFixed(0).padStart(7)} cycles/s (fast quartile), ${rate(times, 0.5).toFixed(0).padStart(7)} (median batch)`);
  row("nextTask+update, 1,000 queued:               ", small);
  row("nextTask+update, 100,000 queued:             ", large);
  row("100,000 queued, 5 % of cycles report failed: ", failing);
  const ratio = rate(large, 0.25) / rate(small, 0.25);
  const ratioMedian = rate(large, 0.5) / rate(small, 0.5);
  console.log(`ratio 100,000 / 1,000: ${ratio.toFixed(2)} fast quartile, ${ratioMedian.toFixed(2)} median (goal >= 0.8) ${ratio >= 0.8 ? "OK" : "MISSED"}`);
  console.log(`memory per queued task at 100,000: heap ${memory.heap.toFixed(0)} B, rss ${memory.rss.toFixed(0)} B (goal < 2048) ${Math.max(memory.heap, memory.rss) < 2048 ? "OK" : "MISSED"}`);
}

main();
