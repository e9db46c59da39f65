// kill -9 trials: a child appends with concurrent writers and is killed at a random moment; every acknowledged record survives, in order.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { openJournal } from "../../src/store/index.js";
import { setLogSink } from "../../src/log.js";
import { intRng } from "../helpers/random.js";

const LANES = 4;
const TRIALS_PER_LANE = 50;
const CHILD = fileURLToPath(new URL("./journal-kill-child.ts", import.meta.url));

interface Trial {
  opened: number | undefined;
  acked: number[];
}

/** Runs the child until a random moment, then SIGKILLs it; returns what it printed. */
async function runChild(script: string, dir: string, rand: (n: number) => number): Promise<Trial> {
  const child = spawn(process.execPath, [script, dir, String(1 + rand(16)), String(5 + rand(60))], { stdio: ["ignore", "pipe", "inherit"] });
  const trial: Trial = { opened: undefined, acked: [] };
  let partial = "";
  let onFirstAck: (() => void) | undefined;
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    const lines = (partial + chunk).split("\n");
    partial = lines.pop()!;
    for (const line of lines) {
      if (line.startsWith("open ")) trial.opened = Number(line.slice(5));
      else trial.acked.push(Number(line));
    }
    if (trial.acked.length > 0) onFirstAck?.();
  });
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  if (rand(8) === 0) {
    // Anywhere, open and its cut included.
    await new Promise((resolve) => setTimeout(resolve, rand(150)));
  } else {
    // While records are flowing: after the first acknowledgement, up to 60 ms in.
    const firstAck = new Promise<void>((resolve) => (onFirstAck = resolve));
    const deadline = new Promise<never>((_, reject) => setTimeout(() => reject(new Error("no acknowledgement within 20 s")), 20_000).unref());
    await Promise.race([firstAck, deadline, exited.then(() => Promise.reject(new Error("child exited before killed")))]);
    await new Promise((resolve) => setTimeout(resolve, rand(60)));
  }
  child.kill("SIGKILL");
  await exited;
  return trial;
}

test(`${LANES * TRIALS_PER_LANE} kill -9 trials lose no acknowledged record and keep the order`, { timeout: 300_000 }, async (t) => {
  const root = await mkdtemp(join(tmpdir(), "stevedore-journal-kill-"));
  t.after(() => rm(root, { recursive: true, force: true }));
  // One esbuild bundle of the child (what tsx would compile) so a trial starts as plain node:
  // `node --import tsx` costs ~0.5 s of CPU per start, 100 s for 200 children on two cores.
  const script = join(root, "child.mjs");
  await build({ entryPoints: [CHILD], bundle: true, platform: "node", format: "esm", target: "node20", outfile: script, logLevel: "warning" });
  const cuts: string[] = [];
  t.after(setLogSink((line) => cuts.push(line)));
  const totals = { acked: 0, compactions: 0, cuts: 0 };

  const lane = async (laneNo: number) => {
    const dir = join(root, `lane${laneNo}`);
    const rand = intRng(0x6b111 + laneNo);
    let maxAcked = -1;
    let expectedOpen = 0;
    let generation = 0;
    for (let i = 0; i < TRIALS_PER_LANE; i++) {
      const trial = await runChild(script, dir, rand);
      const context = `lane ${laneNo} trial ${i}`;
      if (trial.opened !== undefined) assert.equal(trial.opened, expectedOpen, `${context}: the child loaded what the parent verified`);
      for (const n of trial.acked) maxAcked = Math.max(maxAcked, n);
      totals.acked += trial.acked.length;

      const { journal, snapshot, records } = await openJournal(dir);
      await journal.close();
      const upTo = (snapshot as { upTo: number } | undefined)?.upTo ?? 0;
      records.forEach((r, k) => assert.equal((r as { n: number }).n, upTo + k, `${context}: record ${k} in order`));
      const total = upTo + records.length;
      assert.ok(maxAcked < total, `${context}: acknowledged ${maxAcked} but only ${total} records survived`);
      expectedOpen = total;
      if (journal.generation > generation) totals.compactions += journal.generation - generation;
      generation = journal.generation;
    }
  };
  await Promise.all(Array.from({ length: LANES }, (_, i) => lane(i)));
  totals.cuts = cuts.filter((line) => line.includes("journal: cut")).length;
  t.diagnostic(JSON.stringify(totals));
  assert.ok(totals.acked > 1000 && totals.compactions > 20, JSON.stringify(totals));
});
