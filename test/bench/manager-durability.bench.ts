// Durability cost: acknowledged task updates per second, 32 concurrent writers each awaiting its
// answer before the next (POST /tasks/{id}/update with a new activity and a log line, through the
// bundled daemon's manager over HTTP: a journal record and a task-log append, both fsynced before
// the 204) vs Python's sqlite3 (Flamenco v3's store) doing one-row transactions, WAL,
// synchronous=FULL, 32 threads, on the same disk in the same run (the anchor). Goal >= 1x.
// Run: make build && node --import tsx test/bench/manager-durability.bench.ts
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { intRng } from "../helpers/random.js";
import { addWorkers, expectStatus, jobSpec, load, median, RawConn, requestBytes, startManager, submitJob, userAuth } from "./manager-load.js";

const WRITERS = 32;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const update = (n: number) => JSON.stringify({ activity: `rendering frame ${n}`, log: `frame ${n}: 1920x1080, 128 samples, 2.31 s` });

/** Each writer holds one active task and updates it in a loop; returns acknowledged updates per second. */
async function managerRound(port: number, writers: { auth: string; task: string }[]): Promise<number> {
  let acked = 0;
  const started = performance.now();
  const stopAt = started + SECONDS * 1000;
  await Promise.all(writers.map(async (w) => {
    const conn = new RawConn(port);
    await conn.ready;
    while (performance.now() < stopAt) {
      const a = await conn.request(requestBytes("POST", `/tasks/${w.task}/update`, { Authorization: w.auth, "Content-Type": "application/json" }, update(acked)));
      expectStatus(a, 204, "task update");
      acked++;
    }
    conn.close();
  }));
  return acked / ((performance.now() - started) / 1000);
}

// the anchor, as in journal-durability.bench.ts
const SQLITE = `
import json, sqlite3, sys, threading, time
path, seconds, threads = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
setup = sqlite3.connect(path)
setup.execute("PRAGMA journal_mode=WAL")
setup.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
setup.commit()
setup.close()
payload = sys.stdin.read()
counts = [0] * threads
start = time.perf_counter()
stop = start + seconds
def writer(i):
    conn = sqlite3.connect(path, timeout=30, isolation_level="IMMEDIATE")
    conn.execute("PRAGMA synchronous=FULL")
    n = 0
    while time.perf_counter() < stop:
        conn.execute("INSERT INTO t (v) VALUES (?)", (payload,))
        conn.commit()
        n += 1
    counts[i] = n
    conn.close()
ts = [threading.Thread(target=writer, args=(i,)) for i in range(threads)]
for t in ts: t.start()
for t in ts: t.join()
print(json.dumps({"commits": sum(counts), "seconds": time.perf_counter() - start, "version": sqlite3.sqlite_version}))
`;

async function sqliteRound(dir: string): Promise<{ perSecond: number; version: string }> {
  const proc = spawn("python3", ["-c", SQLITE, join(dir, "bench.db"), String(SECONDS), String(WRITERS)], { stdio: ["pipe", "pipe", "inherit"] });
  proc.stdin.end(update(0));
  let out = "";
  proc.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
  const code = await new Promise<number | null>((resolve) => proc.on("exit", resolve));
  if (code !== 0) throw new Error(`python3 sqlite3 run exited with ${code}`);
  const r = JSON.parse(out) as { commits: number; seconds: number; version: string };
  return { perSecond: r.commits / r.seconds, version: r.version };
}

async function main() {
  console.log(`load before: ${load()}`);
  const d = await startManager();
  const root = await mkdtemp(join(tmpdir(), "stevedore-bench-mdur-"));
  try {
    const port = d.managerPort;
    const rand = intRng(3);
    const { workers } = await addWorkers(port, WRITERS, rand);
    const conn = new RawConn(port);
    await conn.ready;
    await submitJob(conn, await userAuth(d), jobSpec("durability", 4 * WRITERS, rand));
    const writers: { auth: string; task: string }[] = [];
    for (const w of workers) {
      const a = await conn.request(requestBytes("POST", "/task", { Authorization: w.auth }));
      expectStatus(a, 200, "task");
      writers.push({ auth: w.auth, task: (JSON.parse(a.body.toString()) as { _id: string })._id });
    }
    conn.close();
    await managerRound(port, writers); // warm-up
    const ours: number[] = [];
    const anchor: number[] = [];
    let version = "";
    for (let round = 0; round < ROUNDS; round++) {
      ours.push(await managerRound(port, writers));
      const s = await sqliteRound(await mkdtemp(join(root, `sqlite-${round}-`)));
      anchor.push(s.perSecond);
      version = s.version;
    }
    const m = median(ours);
    const s = median(anchor);
    console.log(`acknowledged task updates, ${WRITERS} writers each awaiting its answer, ${SECONDS} s per round, median of ${ROUNDS} (disk: ${tmpdir()}, ${process.version}, sqlite ${version})`);
    console.log(`${"figure".padEnd(52)} ${"manager".padStart(9)} ${"sqlite (anchor)".padStart(16)} ${"ratio".padStart(6)}   goal`);
    console.log(`${"POST /tasks/{id}/update (activity + log line) /s".padEnd(52)} ${m.toFixed(0).padStart(9)} ${s.toFixed(0).padStart(16)} ${(m / s).toFixed(2).padStart(6)}   >= 1 ${m >= s ? "OK" : "MISSED"}`);
    console.log(`rounds: manager ${ours.map((x) => x.toFixed(0)).join(", ")}; sqlite ${anchor.map((x) => x.toFixed(0)).join(", ")}`);
    console.log(`load after: ${load()}`);
  } finally {
    await d.cleanup();
    await rm(root, { recursive: true, force: true });
  }
}

await main();
