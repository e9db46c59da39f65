// Scheduling at scale over HTTP: 32 keep-alive worker clients (in this process) loop POST /task →
// POST /tasks/{id}/update {"task_status":"completed"} against the bundled daemon (dist/stevedore.js,
// manager listener only, journal fsync on, its own process), 1,000 workers of mixed task types,
// 1,000 vs 100,000 queued tasks in 100 jobs; anchor: a bare node:http server (own process) answering
// the same bytes after the same Basic-auth check. Goals: >= 2,000 cycles/s, 100k/1k ratio >= 0.8.
// Run: make build && node --import tsx test/bench/manager-http.bench.ts
import { fork } from "node:child_process";
import { join } from "node:path";
import { intRng } from "../helpers/random.js";
import {
  addWorkers, expectStatus, inParallel, jobSpec, load, median, quantile, RawConn, requestBytes, startManager, submitJob, userAuth,
  type BenchWorker,
} from "./manager-load.js";

const WORKERS = Number(process.env.BENCH_WORKERS ?? 1000);
const CLIENTS = 32;
const JOBS = 100;
const SMALL = 1_000;
const LARGE = 100_000;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** tasks consumed before a top-up job of as many tasks is submitted (keeps the queue at its size) */
const TOPUP = 250;
const UPDATE_BODY = '{"task_status":"completed"}';

interface Run {
  cycles: number;
  seconds: number;
  rate: number;
  p50: number;
  p99: number;
  empty: number;
  errors: number;
}

/** CLIENTS connections, each looping over its share of the workers: /task, then the update. */
async function runCycles(port: number, workers: BenchWorker[], ms: number, onCycle: () => void = () => {}): Promise<Run> {
  const latencies: number[] = [];
  let empty = 0;
  let errors = 0;
  const taskRequests = workers.map((w) => requestBytes("POST", "/task", { Authorization: w.auth }));
  const started = performance.now();
  const end = started + ms;
  await Promise.all(Array.from({ length: CLIENTS }, async (_, c) => {
    const conn = new RawConn(port);
    await conn.ready;
    let turn = 0;
    const mine = workers.map((_, i) => i).filter((i) => i % CLIENTS === c);
    while (performance.now() < end) {
      const w = mine[turn++ % mine.length]!;
      const t0 = performance.now();
      const a = await conn.request(taskRequests[w]!);
      if (a.status === 204) {
        empty++;
        continue;
      }
      if (a.status !== 200) {
        errors++;
        continue;
      }
      const id = (JSON.parse(a.body.toString()) as { _id: string })._id;
      const u = await conn.request(requestBytes("POST", `/tasks/${id}/update`, { Authorization: workers[w]!.auth, "Content-Type": "application/json" }, UPDATE_BODY));
      if (u.status !== 204) errors++;
      latencies.push(performance.now() - t0);
      onCycle();
    }
    conn.close();
  }));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { cycles: latencies.length, seconds, rate: latencies.length / seconds, p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), empty, errors };
}

async function main() {
  console.log(`load before: ${load()}`);
  const d = await startManager();
  const anchor = fork(join(import.meta.dirname, "manager-anchor.ts"), [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  try {
    const port = d.managerPort;
    const rand = intRng(7);
    // ---- setup (not timed in the figures)
    const reg = await addWorkers(port, WORKERS, rand);
    const workers = reg.workers;
    const user = await userAuth(d);
    const pools = { small: [] as string[], large: [] as string[] };
    let t = performance.now();
    const specs = [
      ...Array.from({ length: JOBS }, (_, j) => ({ pool: "small" as const, spec: jobSpec(`small-${j}`, SMALL / JOBS, rand) })),
      ...Array.from({ length: JOBS }, (_, j) => ({ pool: "large" as const, spec: jobSpec(`large-${j}`, LARGE / JOBS, rand) })),
    ];
    await inParallel(port, 4, specs, async (conn, s) => void pools[s.pool].push(await submitJob(conn, user, s.spec)));
    const submitMs = performance.now() - t;
    console.log(`setup: ${WORKERS} workers registered in ${(reg.registerMs / 1000).toFixed(1)} s (one scrypt hash each), signed on in ${(reg.signOnMs / 1000).toFixed(1)} s (one scrypt check each, 2 at a time), ${SMALL + LARGE} tasks in ${2 * JOBS} jobs submitted in ${(submitMs / 1000).toFixed(1)} s`);

    const control = new RawConn(port);
    await control.ready;
    const jobAction = async (id: string, action: "pause" | "resume") => {
      const a = await control.request(requestBytes("POST", `/api/jobs/${id}/${action}`, { Authorization: user }));
      if (a.status !== 200 && a.status !== 409) expectStatus(a, 200, `${action} job`); // 409: completed, nothing queued
    };
    const queued = async () => {
      const a = await control.request(requestBytes("GET", "/api/jobs", { Authorization: user }));
      expectStatus(a, 200, "list jobs");
      const jobs = (JSON.parse(a.body.toString()) as { jobs: { status: string; task_counts: Record<string, number> }[] }).jobs;
      return jobs.filter((j) => j.status === "queued" || j.status === "active").reduce((n, j) => n + (j.task_counts.queued ?? 0), 0);
    };
    /** only `pool`'s jobs schedulable; its queue is topped up as the cycles consume it */
    const phase = async (pool: "small" | "large", ms: number): Promise<Run & { queuedAtStart: number }> => {
      const other = pool === "small" ? "large" : "small";
      for (const id of pools[other]) await jobAction(id, "pause");
      for (const id of pools[pool]) await jobAction(id, "resume");
      const queuedAtStart = await queued();
      let consumed = 0;
      let running = true;
      let topUps = 0;
      const topUpLoop = (async () => {
        while (running) {
          if (consumed - topUps * TOPUP >= TOPUP) {
            pools[pool].push(await submitJob(control, user, jobSpec(`${pool}-topup-${pools[pool].length}`, TOPUP, rand)));
            topUps++;
          } else await new Promise((r) => setTimeout(r, 5));
        }
      })();
      const run = await runCycles(port, workers, ms, () => consumed++);
      running = false;
      await topUpLoop;
      return { ...run, queuedAtStart };
    };

    // the anchor: the manager's /task answer bytes for one real task
    const sample = await control.request(requestBytes("POST", "/task", { Authorization: workers[0]!.auth }));
    expectStatus(sample, 200, "sample task");
    const sampleId = (JSON.parse(sample.body.toString()) as { _id: string })._id;
    expectStatus(await control.request(requestBytes("POST", `/tasks/${sampleId}/update`, { Authorization: workers[0]!.auth, "Content-Type": "application/json" }, UPDATE_BODY)), 204, "sample update");
    const secrets = workers.map((w) => ({ id: w.id, secret: Buffer.from(w.auth.slice(6), "base64").toString().split(":")[1]! }));
    anchor.send({ workers: secrets, taskBody: sample.body.toString() });
    const anchorPort = await new Promise<number>((resolve) => anchor.once("message", (m: { port: number }) => resolve(m.port)));

    await phase("small", 2000); // warm-up (JIT, file handles)
    await runCycles(anchorPort, workers, 1000);
    const rows: Record<"small" | "large" | "anchor", Run[]> = { small: [], large: [], anchor: [] };
    const queuedAt: Record<"small" | "large", number[]> = { small: [], large: [] };
    for (let round = 0; round < ROUNDS; round++) {
      const s = await phase("small", SECONDS * 1000);
      rows.small.push(s);
      queuedAt.small.push(s.queuedAtStart);
      const l = await phase("large", SECONDS * 1000);
      rows.large.push(l);
      queuedAt.large.push(l.queuedAtStart);
      rows.anchor.push(await runCycles(anchorPort, workers, SECONDS * 1000));
      console.log(`round ${round + 1}: small ${s.rate.toFixed(0)}/s p99 ${s.p99.toFixed(1)} ms (queued ${s.queuedAtStart}); large ${l.rate.toFixed(0)}/s p99 ${l.p99.toFixed(1)} ms (queued ${l.queuedAtStart}); anchor ${rows.anchor[round]!.rate.toFixed(0)}/s p99 ${rows.anchor[round]!.p99.toFixed(1)} ms`);
    }
    control.close();
    const med = (k: keyof typeof rows, f: "rate" | "p99" | "p50") => median(rows[k].map((r) => r[f]));
    const bad = (k: keyof typeof rows) => rows[k].reduce((n, r) => n + r.errors, 0);
    const empties = (k: keyof typeof rows) => rows[k].reduce((n, r) => n + r.empty, 0);
    const a = med("anchor", "rate");
    console.log(`\nPOST /task + POST /tasks/{id}/update cycles, ${CLIENTS} keep-alive clients, ${WORKERS} workers, ${SECONDS} s per phase, median of ${ROUNDS} rounds (${process.version})`);
    console.log(`${"figure".padEnd(36)} ${"cycles/s".padStart(9)} ${"p50 ms".padStart(7)} ${"p99 ms".padStart(7)} ${"anchor/s".padStart(9)} ${"anchor p99".padStart(10)} ${"ratio".padStart(6)}   goal`);
    for (const k of ["small", "large"] as const) {
      const label = k === "small" ? `manager, ${SMALL.toLocaleString("en")} queued` : `manager, ${LARGE.toLocaleString("en")} queued`;
      console.log(`${label.padEnd(36)} ${med(k, "rate").toFixed(0).padStart(9)} ${med(k, "p50").toFixed(1).padStart(7)} ${med(k, "p99").toFixed(1).padStart(7)} ${a.toFixed(0).padStart(9)} ${med("anchor", "p99").toFixed(1).padStart(10)} ${(med(k, "rate") / a).toFixed(2).padStart(6)}   >= 2,000 cycles/s`);
    }
    const ratio = med("large", "rate") / med("small", "rate");
    console.log(`${"rate 100,000 / 1,000 queued".padEnd(36)} ${ratio.toFixed(2).padStart(9)} ${"".padStart(48)}   >= 0.8 ${ratio >= 0.8 ? "OK" : "MISSED"}`);
    console.log(`goal >= 2,000 cycles/s: ${Math.min(med("small", "rate"), med("large", "rate")) >= 2000 ? "OK" : "MISSED"}`);
    console.log(`queued at phase start: small ${queuedAt.small.join(", ")}; large ${queuedAt.large.join(", ")}; errors ${bad("small") + bad("large")}, anchor errors ${bad("anchor")}; empty /task answers ${empties("small") + empties("large")}`);
    const compactions = d.logs.filter((l) => l.includes("manager journal compacted")).map((l) => /ms=(\d+)/.exec(l)?.[1] ?? "?");
    console.log(`journal compactions during the run: ${compactions.length}${compactions.length ? ` (ms: ${compactions.join(", ")})` : ""}`);
    console.log(`load after: ${load()}`);
  } finally {
    anchor.kill();
    await d.cleanup();
  }
}

await main();
