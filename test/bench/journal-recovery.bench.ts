// Recovery time: opening a journal of 1,000,000 small records (checksums verified, JSON parsed)
// vs the anchor, a bare loop that reads the same records as plain JSON lines and JSON.parses
// each (whole-file read, indexOf, toString, JSON.parse), measured in the same run.
// Run: node --import tsx test/bench/journal-recovery.bench.ts
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { openJournal } from "../../src/store/index.js";

const RECORDS = Number(process.env.BENCH_RECORDS ?? 1_000_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void; // between rounds, so one round's garbage is not billed to the next

const record = (i: number) => ({ type: "task", id: (0x5f0000000000 + i).toString(16).padStart(24, "0"), n: i, status: "queued" });

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

async function main() {
  const root = await mkdtemp(join(tmpdir(), "stevedore-bench-recovery-"));
  try {
    const dir = join(root, "journal");
    const { journal } = await openJournal(dir);
    for (let i = 0; i < RECORDS; i += 10_000) {
      await Promise.all(Array.from({ length: Math.min(10_000, RECORDS - i) }, (_, k) => journal.append(record(i + k))));
    }
    await journal.close();
    const plain = join(root, "plain.jsonl");
    const lines: string[] = [];
    for (let i = 0; i < RECORDS; i++) lines.push(JSON.stringify(record(i)));
    await writeFile(plain, lines.join("\n") + "\n");
    lines.length = 0;
    const journalBytes = (await stat(join(dir, "log-0000000000000000.jrn"))).size;
    const plainBytes = (await stat(plain)).size;

    const journalMs: number[] = [];
    const bareMs: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      gc();
      let t = performance.now();
      const opened = await openJournal(dir);
      journalMs.push(performance.now() - t);
      if (opened.records.length !== RECORDS || opened.cut) throw new Error("journal did not load every record");
      await opened.journal.close();
      gc();
      t = performance.now();
      const bare = await bareLoad(plain);
      bareMs.push(performance.now() - t);
      if (bare.length !== RECORDS) throw new Error("bare loop did not load every record");
    }
    const j = median(journalMs);
    const b = median(bareMs);
    console.log(`recovery of ${RECORDS} records, median of ${ROUNDS} (journal ${(journalBytes / 1e6).toFixed(1)} MB, plain JSON lines ${(plainBytes / 1e6).toFixed(1)} MB, ${process.version})`);
    console.log(`${"figure".padEnd(40)} ${"journal ms".padStart(11)} ${"bare loop ms (anchor)".padStart(22)} ${"ratio bare/journal".padStart(19)}   goal`);
    console.log(`${"open: verify + parse every record".padEnd(40)} ${j.toFixed(0).padStart(11)} ${b.toFixed(0).padStart(22)} ${(b / j).toFixed(2).padStart(19)}   >= 0.5`);
    console.log(`rounds: journal ${journalMs.map((x) => x.toFixed(0)).join(", ")}; bare ${bareMs.map((x) => x.toFixed(0)).join(", ")}`);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

await main();
