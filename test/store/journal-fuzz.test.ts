// Fuzz of the journal reader: 10,000 damaged journal directories load a prefix of what was written (cut logged) or refuse.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openJournal, JournalError } from "../../src/store/index.js";
import { setLogSink } from "../../src/log.js";
import { intRng, mutate } from "../helpers/random.js";

const ROUNDS = 10_000;
// tmpfs when there is one: the fuzzer is about parsing, and a cut's fsync costs nothing there.
const ROOT = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();

// Records of every shape, written in groups of these sizes (so damage lands in and between groups).
const RECORDS: unknown[] = [0, "a", { task: "0123456789abcdef01234567", status: "queued" }, null, [1, 2, 3], "żółw 🐢",
  { nested: { deep: ["x", { y: true }] } }, 123456789, "", { n: 9 }, false, "line\nbreak", { big: "b".repeat(300) }, 7];
const GROUPS = [1, 3, 1, 5, 2, 2];
const SNAPSHOT = { state: ["s", 1, { t: 2 }] };

interface Base {
  files: Map<string, Buffer>;
  /** What a clean open loads. */
  snapshot: unknown;
  records: unknown[];
}

async function writeBase(dir: string, compactAfter: number | undefined): Promise<Base> {
  const { journal } = await openJournal(dir);
  let next = 0;
  for (const size of GROUPS) {
    await Promise.all(RECORDS.slice(next, next + size).map((r) => journal.append(r)));
    next += size;
    if (next === compactAfter) await journal.compact(SNAPSHOT);
  }
  await journal.close();
  const files = new Map<string, Buffer>();
  for (const name of await readdir(dir)) files.set(name, await readFile(join(dir, name)));
  return compactAfter === undefined
    ? { files, snapshot: undefined, records: RECORDS }
    : { files, snapshot: SNAPSHOT, records: RECORDS.slice(compactAfter) };
}

function lineSplice(buf: Buffer, rand: (n: number) => number): Buffer {
  const lines = buf.toString("latin1").split(/(?<=\n)/);
  const i = rand(lines.length);
  switch (rand(3)) {
    case 0: // a whole line duplicated in place
      lines.splice(i, 0, lines[i]!);
      break;
    case 1: // a whole line moved elsewhere
      lines.splice(rand(lines.length), 0, ...lines.splice(i, 1));
      break;
    default: // a zero-filled range (a page that never reached the disk)
      return Buffer.concat([buf.subarray(0, i * 7), Buffer.alloc(1 + rand(64)), buf.subarray(i * 7 + 1 + rand(64))]);
  }
  return Buffer.from(lines.join(""), "latin1");
}

test(`${ROUNDS} damaged journals load a prefix of what was written, with the cut logged, or refuse to open`, async (t) => {
  const root = await mkdtemp(join(ROOT, "stevedore-journal-fuzz-"));
  t.after(() => rm(root, { recursive: true, force: true }));
  const bases = [await writeBase(join(root, "base0"), undefined), await writeBase(join(root, "base1"), 4)];
  const pieces = ["\n", " ", "0", "9", "{", "}", '"', "\0", "\xff", "00000000 0 0 0\n", "1 0 ", "\n\n"];
  const logLines: string[] = [];
  t.after(setLogSink((line) => logLines.push(line)));
  const outcomes = { intact: 0, prefix: 0, cut: 0, refused: 0 };

  // Lanes run side by side (each its own directory and seeded PRNG) so file I/O overlaps.
  const lane = async (laneNo: number, rounds: number) => {
    const work = join(root, `work${laneNo}`);
    await mkdir(work);
    const rand = intRng(0x10c4a1 + laneNo);
    for (let round = 0; round < rounds; round++) {
      const base = bases[rand(4) === 0 ? 1 : 0]!;
      const names = [...base.files.keys()];
      const target = names[rand(names.length)]!;
      let damaged = base.files.get(target)!;
      for (let edits = 1 + rand(3); edits > 0; edits--) damaged = rand(4) === 0 ? lineSplice(damaged, rand) : mutate(damaged, rand, pieces);
      for (const [name, content] of base.files) await writeFile(join(work, name), name === target ? damaged : content);

      const context = `lane ${laneNo} round ${round}: ${target}`;
      const opened = await openJournal(work).catch((err: unknown) => {
        assert.ok(err instanceof JournalError, `${context}: ${String(err)}`);
        assert.equal(err.code, "EJOURNALCORRUPT", context);
        return undefined;
      });
      const mine = logLines.filter((line) => line.includes(`${work}/`));
      if (opened === undefined) outcomes.refused++;
      else {
        const { journal, snapshot, records, cut } = opened;
        await journal.close();
        assert.deepEqual(snapshot, base.snapshot, context);
        assert.ok(records.length <= base.records.length, context);
        assert.deepEqual(records, base.records.slice(0, records.length), `${context}: loaded a record that was not written there`);
        if (cut) {
          outcomes.cut++;
          assert.equal(mine.length, 1, context);
          assert.ok(mine[0]!.includes(`offset=${cut.offset}`), context);
          assert.equal((await stat(cut.file)).size, cut.offset, `${context}: truncated at the cut`);
        } else {
          assert.equal(mine.length, 0, context);
          if (records.length === base.records.length) outcomes.intact++;
          else outcomes.prefix++; // cut off cleanly at a line boundary: nothing left to detect
        }
      }
      for (let i = logLines.length - 1; i >= 0; i--) if (logLines[i]!.includes(`${work}/`)) logLines.splice(i, 1);
      for (const name of await readdir(work)) await unlink(join(work, name));
    }
  };
  const LANES = 4;
  await Promise.all(Array.from({ length: LANES }, (_, i) => lane(i, ROUNDS / LANES)));
  t.diagnostic(JSON.stringify(outcomes));
  // Every kind of outcome happened, so each branch above was exercised.
  for (const [kind, count] of Object.entries(outcomes)) assert.ok(count > 10, `${kind}: ${count}`);
});
