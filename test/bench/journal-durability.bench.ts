// Acknowledged appends/s with 32 concurrent writers (each awaits its append before the next):
// the journal (group commit) vs Python's sqlite3, one-row transactions, WAL, synchronous=FULL,
// 32 threads each with its own connection, on the same disk in the same run (the anchor).
// Run: node --import tsx test/bench/journal-durability.bench.ts
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openJournal } from "../../src/store/index.js";

const WRITERS = 32;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const PAYLOAD = { type: "task", id: "0123456789abcdef01234567", status: "completed", activity: "rendered frame 42 of 250" };

async function journalRound(dir: string): Promise<{ perSecond: number; perGroup: number }> {
  const { journal } = await openJournal(dir);
  const stopAt = performance.now() + SECONDS * 1000;
  let acked = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: WRITERS }, async (_, w) => {
    while (performance.now() < stopAt) {
      await journal.append({ ...PAYLOAD, w, n: acked });
      acked++;
    }
  }));
  const elapsed = (performance.now() - started) / 1000;
  const perGroup = journal.stats.appends / journal.stats.groups;
  await journal.close();
  return { perSecond: acked / elapsed, perGroup };
}

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
  proc.stdin.end(JSON.stringify({ ...PAYLOAD, w: 0, n: 0 }));
  let out = "";
  proc.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
  const code = await new Promise<number | null>((resolve) => proc.on("exit", resolve));
  if (code !== 0) throw new Error(`python3 sqlite3 run exited with ${code}`);
  const r = JSON.parse(out) as { commits: number; seconds: number; version: string };
  return { perSecond: r.commits / r.seconds, version: r.version };
}

async function main() {
  const root = await mkdtemp(join(tmpdir(), "stevedore-bench-journal-"));
  try {
    const journalRates: number[] = [];
    const groupSizes: number[] = [];
    const sqliteRates: number[] = [];
    let version = "";
    for (let round = 0; round < ROUNDS; round++) {
      const j = await journalRound(join(root, `journal-${round}`));
      journalRates.push(j.perSecond);
      groupSizes.push(j.perGroup);
      const s = await sqliteRound(await mkdtemp(join(root, `sqlite-${round}-`)));
      sqliteRates.push(s.perSecond);
      version = s.version;
    }
    const j = median(journalRates);
    const s = median(sqliteRates);
    console.log(`durable appends, ${WRITERS} writers each awaiting its append, ${SECONDS} s per round, median of ${ROUNDS} (disk: ${tmpdir()}, ${process.version}, sqlite ${version})`);
    console.log(`${"figure".padEnd(44)} ${"journal".padStart(10)} ${"sqlite (anchor)".padStart(16)} ${"ratio".padStart(7)}   goal`);
    console.log(`${"acknowledged appends/s".padEnd(44)} ${j.toFixed(0).padStart(10)} ${s.toFixed(0).padStart(16)} ${(j / s).toFixed(2).padStart(7)}   >= 1`);
    console.log(`rounds: journal ${journalRates.map((x) => x.toFixed(0)).join(", ")}; sqlite ${sqliteRates.map((x) => x.toFixed(0)).join(", ")}; records per journal fsync ${median(groupSizes).toFixed(1)}`);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

await main();
