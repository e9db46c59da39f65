// Manager recovery: FarmStore.open (journal read, every record verified, parsed and applied to the
// farm) with a journal of 1,000,000 farm records vs the anchor, a bare loop reading the same records
// as plain JSON lines and JSON.parse-ing each, in the same run (goal: bare/ours >= 0.5). Plus RSS per
// queued task of a process holding a restored farm of 100,000 queued tasks, minus its baseline before
// (goal < 2 KB). Run: node --import tsx test/bench/manager-recovery.bench.ts
import { fork } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { setLogLevel } from "../../src/log.js";
import { Farm } from "../../src/manager/farm.js";
import { DEFAULT_SETTINGS, type FarmRecord } from "../../src/manager/model.js";
import { FarmStore } from "../../src/manager/store.js";
import { openJournal } from "../../src/store/index.js";
import { intRng } from "../helpers/random.js";
import { jobSpec, load, median, TYPES } from "./manager-load.js";

const RECORDS = Number(process.env.BENCH_RECORDS ?? 1_000_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const QUEUED = 100_000;
const WORKERS = 1000;
const JOBS = 100;
const NOW = Date.parse("2024-01-01T00:00:00Z");
const SECRET_HASH = `scrypt$16384$8$1$${"A".repeat(22)}==$${"B".repeat(43)}=`;
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
const settings = () => DEFAULT_SETTINGS;
setLogLevel("warn");

/**
 * Writes a farm's journal into `<stateDir>/manager/`: 1,000 workers, 100 jobs of 1,000 tasks, then
 * (when `cycles`) tasks run to completion with progress reports (10 records a task) until `limit`.
 */
async function writeFarmJournal(stateDir: string, limit: number, cycles: boolean): Promise<FarmRecord[] | undefined> {
  const { journal } = await openJournal(join(stateDir, "manager"));
  const kept: FarmRecord[] | undefined = cycles ? [] : undefined;
  let batch: Promise<void>[] = [];
  let written = 0;
  const farm = new Farm({
    settings,
    persist: (r) => {
      if (written++ >= limit) return;
      kept?.push(r);
      batch.push(journal.append(r));
    },
  });
  const flush = async () => {
    await Promise.all(batch);
    batch = [];
  };
  const rand = intRng(11);
  const workers = Array.from({ length: WORKERS }, (_, i) => {
    const types = TYPES.filter(() => rand(2) === 1);
    if (types.length === 0) types.push(TYPES[i % TYPES.length]!);
    const id = farm.registerWorker({ secret_hash: SECRET_HASH, nickname: `w${i}`, platform: "linux", software: "bench", supported_task_types: types }, NOW)._id;
    farm.signOn(id, {}, NOW);
    return id;
  });
  for (let j = 0; j < JOBS; j++) farm.submitJob(jobSpec(`job-${j}`, QUEUED / JOBS, rand), NOW);
  await flush();
  for (let turn = 0; cycles && written < limit; turn++) {
    const worker = workers[turn % WORKERS]!;
    const r = farm.nextTask(worker, NOW);
    if (r.status !== 200) continue;
    for (let p = 10; p <= 80; p += 10) farm.updateTask(worker, r.task._id, { activity: `rendering, ${p} %`, task_progress_percentage: p }, NOW);
    farm.updateTask(worker, r.task._id, { task_status: "completed", task_progress_percentage: 100 }, NOW);
    if (batch.length >= 10_000) await flush();
  }
  await flush();
  await journal.close();
  return kept;
}

async function bareLoad(path: string): Promise<unknown[]> {
  const buf = await readFile(path);
  const out: unknown[] = [];
  let start = 0;
  for (let nl = buf.indexOf(10); nl !== -1; nl = buf.indexOf(10, start)) {
    out.push(JSON.parse(buf.toString("utf8", start, nl)));
    start = nl + 1;
  }
  return out;
}

/** Child mode: RSS and heap of this process before and after restoring the farm in argv[3]. */
async function memoryChild(stateDir: string): Promise<void> {
  gc();
  const before = process.memoryUsage();
  const store = await FarmStore.open(stateDir, settings);
  gc();
  gc();
  const after = process.memoryUsage();
  const queued = store.farm.listJobs().reduce((n, j) => n + (j.task_counts.queued ?? 0), 0);
  process.send!({ queued, rss: after.rss - before.rss, heap: after.heapUsed - before.heapUsed });
  await store.close();
}

async function memoryPerTask(stateDir: string): Promise<{ queued: number; rss: number; heap: number }> {
  const child = fork(import.meta.filename, ["memory", stateDir], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const m = await new Promise<{ queued: number; rss: number; heap: number }>((resolve, reject) => {
    child.once("message", resolve);
    child.once("exit", (code) => reject(new Error(`memory child exited with ${code}`)));
  });
  await new Promise((resolve) => child.once("exit", resolve));
  return m;
}

async function main() {
  console.log(`load before: ${load()}`);
  const root = await mkdtemp(join(tmpdir(), "stevedore-bench-mrec-"));
  try {
    const queuedDir = join(root, "queued");
    await writeFarmJournal(queuedDir, Infinity, false);
    const memory = [await memoryPerTask(queuedDir), await memoryPerTask(queuedDir), await memoryPerTask(queuedDir)];

    const stateDir = join(root, "state");
    const records = (await writeFarmJournal(stateDir, RECORDS, true))!;
    const plain = join(root, "plain.jsonl");
    await writeFile(plain, records.map((r) => JSON.stringify(r)).join("\n") + "\n");
    records.length = 0;
    const journalBytes = (await stat(join(stateDir, "manager", "log-0000000000000000.jrn"))).size;
    const plainBytes = (await stat(plain)).size;

    const oursMs: number[] = [];
    const bareMs: number[] = [];
    let tasks = 0;
    for (let round = 0; round < ROUNDS; round++) {
      gc();
      let t = performance.now();
      const store = await FarmStore.open(stateDir, settings);
      oursMs.push(performance.now() - t);
      tasks = store.farm.listJobs().reduce((n, j) => n + Object.values(j.task_counts).reduce((a, b) => a + b, 0), 0);
      await store.close();
      gc();
      t = performance.now();
      const bare = await bareLoad(plain);
      bareMs.push(performance.now() - t);
      if (bare.length !== RECORDS) throw new Error(`bare loop loaded ${bare.length} records`);
    }
    const o = median(oursMs);
    const b = median(bareMs);
    const rss = median(memory.map((m) => m.rss)) / QUEUED;
    const heap = median(memory.map((m) => m.heap)) / QUEUED;
    console.log(`manager recovery, ${RECORDS.toLocaleString("en")} farm records (${WORKERS} workers, ${tasks.toLocaleString("en")} tasks; journal ${(journalBytes / 1e6).toFixed(0)} MB, plain JSON lines ${(plainBytes / 1e6).toFixed(0)} MB), median of ${ROUNDS} (${process.version})`);
    console.log(`${"figure".padEnd(46)} ${"ours".padStart(9)} ${"anchor".padStart(9)} ${"ratio".padStart(6)}   goal`);
    console.log(`${"start-up ms: FarmStore.open / bare JSON.parse".padEnd(46)} ${o.toFixed(0).padStart(9)} ${b.toFixed(0).padStart(9)} ${(b / o).toFixed(2).padStart(6)}   bare/ours >= 0.5 ${b / o >= 0.5 ? "OK" : "MISSED"}`);
    console.log(`${"RSS per queued task at 100,000 (B)".padEnd(46)} ${rss.toFixed(0).padStart(9)} ${"".padStart(9)} ${"".padStart(6)}   < 2048 ${rss < 2048 ? "OK" : "MISSED"} (heap ${heap.toFixed(0)} B; queued ${memory[0]!.queued})`);
    console.log(`rounds: ours ${oursMs.map((x) => x.toFixed(0)).join(", ")}; bare ${bareMs.map((x) => x.toFixed(0)).join(", ")}; rss/task ${memory.map((m) => (m.rss / QUEUED).toFixed(0)).join(", ")}`);
    console.log(`load after: ${load()}`);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

if (process.argv[2] === "memory") await memoryChild(process.argv[3]!);
else await main();
