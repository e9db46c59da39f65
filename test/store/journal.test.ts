// Tests for the append-only journal: round trip, group commit, limits, compaction and its crash points, damage at open.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { appendFile, cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openJournal, JournalError, type CompactStep } from "../../src/store/index.js";
import { setLogSink } from "../../src/log.js";

const LOG0 = "log-0000000000000000.jrn";
const LOG1 = "log-0000000000000001.jrn";
const SNAP1 = "snapshot-0000000000000001.jrn";

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-journal-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function captureLog(t: TestContext): string[] {
  const lines: string[] = [];
  t.after(setLogSink((line) => lines.push(line)));
  return lines;
}

/** Writes `records` one group each (awaiting every append), then closes. */
async function writeSeparately(dir: string, records: unknown[]): Promise<void> {
  const { journal } = await openJournal(dir);
  for (const r of records) await journal.append(r);
  await journal.close();
}

test("records round-trip in order across reopen, and the log continues after them", async (t) => {
  const dir = await tempDir(t);
  const records = [7, { a: 1 }, "text", 42, null, [1, "two", { three: 3 }], { unicode: "żółw 🐢 \u2028 \n", nested: { deep: [true, false] } }];
  const first = await openJournal(dir);
  assert.equal(first.snapshot, undefined);
  assert.deepEqual(first.records, []);
  assert.equal(first.cut, undefined);
  await Promise.all(records.map((r) => first.journal.append(r)));
  assert.equal(first.journal.recordsSinceSnapshot, records.length);
  await first.journal.close();

  const second = await openJournal(dir);
  assert.deepEqual(second.records, records);
  assert.equal(second.journal.recordsSinceSnapshot, records.length);
  await second.journal.append("more");
  await second.journal.close();
  const third = await openJournal(dir);
  assert.deepEqual(third.records, [...records, "more"]);
  await third.journal.close();
  assert.deepEqual(await readdir(dir), [LOG0]);
});

test("a record bigger than the read chunk (5 MiB) round-trips", async (t) => {
  const dir = await tempDir(t);
  const big = { blob: "x".repeat(5 * 1024 * 1024) };
  await writeSeparately(dir, ["before", big, "after"]);
  const { records, cut, journal } = await openJournal(dir);
  assert.equal(cut, undefined);
  assert.deepEqual(records, ["before", big, "after"]);
  await journal.close();
});

test("appends made in one tick share one write and one fsync", async (t) => {
  const dir = await tempDir(t);
  const { journal } = await openJournal(dir);
  await Promise.all(Array.from({ length: 100 }, (_, i) => journal.append({ i })));
  assert.deepEqual(journal.stats, { appends: 100, groups: 1, fsyncs: 1, compactions: 0 });
  await journal.close();
});

test("appends arriving while a group's fsync is in flight are committed together after it", async (t) => {
  const dir = await tempDir(t);
  const { journal } = await openJournal(dir);
  const first = journal.append("first");
  await null; // the writer has taken "first" and is now in its write + fsync
  assert.equal(journal.pending, 1);
  const rest = Array.from({ length: 50 }, (_, i) => journal.append({ i }));
  assert.equal(journal.pending, 51);
  await Promise.all([first, ...rest]);
  assert.equal(journal.pending, 0);
  assert.deepEqual(journal.stats, { appends: 51, groups: 2, fsyncs: 2, compactions: 0 });
  await journal.close();
});

test("32 concurrent writers, each awaiting its append, share fsyncs", async (t) => {
  const dir = await tempDir(t);
  const { journal } = await openJournal(dir);
  const perWriter = 20;
  await Promise.all(Array.from({ length: 32 }, async (_, w) => {
    for (let i = 0; i < perWriter; i++) await journal.append({ w, i });
  }));
  assert.equal(journal.stats.appends, 32 * perWriter);
  assert.ok(journal.stats.fsyncs <= perWriter + 1, `fsyncs ${journal.stats.fsyncs} for ${32 * perWriter} appends`);
  await journal.close();
  const { records, journal: reopened } = await openJournal(dir);
  assert.equal(records.length, 32 * perWriter);
  for (let w = 0; w < 32; w++) {
    const mine = records.filter((r) => (r as { w: number }).w === w).map((r) => (r as { i: number }).i);
    assert.deepEqual(mine, Array.from({ length: perWriter }, (_, i) => i)); // each writer's records in its order
  }
  await reopened.close();
});

test("maxGroupBytes splits a burst into several writes", async (t) => {
  const dir = await tempDir(t);
  const { journal } = await openJournal(dir, { maxGroupBytes: 1000 });
  await Promise.all(Array.from({ length: 10 }, () => journal.append("y".repeat(400))));
  assert.equal(journal.stats.groups, 5);
  await journal.close();
  const { records, journal: reopened } = await openJournal(dir);
  assert.equal(records.length, 10);
  await reopened.close();
});

test("limits: too-big and non-JSON records and too many pending bytes are refused, the journal goes on", async (t) => {
  const dir = await tempDir(t);
  const { journal } = await openJournal(dir, { maxRecordBytes: 100, maxPendingBytes: 250 });
  await assert.rejects(journal.append("z".repeat(99)), { code: "EJOURNALRECORDSIZE" });
  await assert.rejects(journal.append(undefined), TypeError);
  await assert.rejects(journal.append(10n), TypeError);
  await assert.rejects(journal.compact(() => 1), TypeError);
  const queued = [journal.append("a".repeat(90)), journal.append("b".repeat(90))];
  await assert.rejects(journal.append("c".repeat(90)), { code: "EJOURNALFULL" });
  await Promise.all(queued);
  await journal.append("ok");
  await journal.close();
  await assert.rejects(journal.append("late"), { code: "EJOURNALCLOSED" });
  const { records, journal: reopened } = await openJournal(dir);
  assert.deepEqual(records, ["a".repeat(90), "b".repeat(90), "ok"]);
  await reopened.close();
});

test("one open journal per directory in a process", async (t) => {
  const dir = await tempDir(t);
  const { journal } = await openJournal(dir);
  await assert.rejects(openJournal(join(dir, ".")), { code: "EJOURNALOPEN" });
  await journal.close();
  const again = await openJournal(dir);
  await again.journal.close();
});

test("compaction replaces the snapshot, starts a fresh log and drops older generations", async (t) => {
  const dir = await tempDir(t);
  const { journal } = await openJournal(dir);
  const before = [journal.append(1), journal.append(2)];
  const compacted = journal.compact({ sum: 3 }); // covers 1 and 2, appended before the call
  assert.equal(journal.recordsSinceSnapshot, 0);
  const after = [journal.append(3), journal.append(4)];
  assert.equal(journal.recordsSinceSnapshot, 2);
  await Promise.all([...before, compacted, ...after]);
  assert.equal(journal.generation, 1);
  assert.deepEqual((await readdir(dir)).sort(), [LOG1, SNAP1]);
  await journal.close();

  const second = await openJournal(dir);
  assert.deepEqual(second.snapshot, { sum: 3 });
  assert.deepEqual(second.records, [3, 4]);
  await second.journal.compact({ sum: 10 });
  await second.journal.append(5);
  await second.journal.close();
  assert.deepEqual((await readdir(dir)).sort(), ["log-0000000000000002.jrn", "snapshot-0000000000000002.jrn"]);
  const third = await openJournal(dir);
  assert.deepEqual(third.snapshot, { sum: 10 });
  assert.deepEqual(third.records, [5]);
  assert.equal(third.journal.stats.compactions, 0);
  await third.journal.close();
});

const STEPS: CompactStep[] = ["temp-created", "temp-written", "temp-synced", "renamed", "dir-synced", "log-created", "log-dir-synced", "old-log-removed", "old-snapshot-removed"];
const NEW_FROM = STEPS.indexOf("renamed");

for (const fromGen of [0, 1]) {
  test(`a crash at each step of compaction from generation ${fromGen} loads the old state or the new one`, async (t) => {
    const root = await tempDir(t);
    for (const [i, crashAt] of STEPS.entries()) {
      const dir = join(root, `live-${crashAt}`);
      const crashed = join(root, `crash-${crashAt}`);
      if (fromGen === 1) {
        const { journal } = await openJournal(dir);
        await journal.append("p");
        await journal.compact({ old: "p" });
        await journal.close();
      }
      const { journal } = await openJournal(dir, {
        // The directory as a kill -9 at this step would leave it (the page cache survives that).
        onCompactStep: async (step) => {
          if (step === crashAt) await cp(dir, crashed, { recursive: true });
        },
      });
      const appended = [journal.append("a"), journal.append("b")];
      const compacted = journal.compact({ state: "ab" });
      const later = journal.append("c"); // after the call: only ever in the new log
      await Promise.all([...appended, compacted, later]);
      await journal.close();

      const loaded = await openJournal(crashed);
      const oldState = fromGen === 1 ? { snapshot: { old: "p" }, records: ["a", "b"] } : { snapshot: undefined, records: ["a", "b"] };
      const newState = { snapshot: { state: "ab" }, records: [] };
      assert.deepEqual({ snapshot: loaded.snapshot, records: loaded.records }, i < NEW_FROM ? oldState : newState, `crash at ${crashAt}`);
      assert.equal(loaded.cut, undefined);
      const gen = i < NEW_FROM ? fromGen : fromGen + 1;
      await loaded.journal.append("d");
      await loaded.journal.close();
      const files = (await readdir(crashed)).sort();
      assert.deepEqual(files, gen === 0 ? [LOG0] : [`log-000000000000000${gen}.jrn`, `snapshot-000000000000000${gen}.jrn`], `crash at ${crashAt}: leftovers removed`);
      const reread = await openJournal(crashed);
      assert.deepEqual(reread.records, [...(i < NEW_FROM ? oldState.records : []), "d"]);
      await reread.journal.close();
    }
  });
}

test("a torn temp snapshot (crash while writing it) is ignored and removed", async (t) => {
  const dir = await tempDir(t);
  const crashed = join(dir, "..", `${dir.split("/").pop()}-crashed`);
  t.after(() => rm(crashed, { recursive: true, force: true }));
  const { journal } = await openJournal(dir, {
    onCompactStep: async (step) => {
      if (step !== "temp-written") return;
      await cp(dir, crashed, { recursive: true });
      const temp = (await readdir(crashed)).find((n) => n.endsWith(".tmp"))!;
      const content = await readFile(join(crashed, temp));
      await writeFile(join(crashed, temp), content.subarray(0, content.length >> 1));
    },
  });
  await journal.append("a");
  await journal.compact({ s: 1 });
  await journal.close();
  const loaded = await openJournal(crashed);
  assert.deepEqual([loaded.snapshot, loaded.records], [undefined, ["a"]]);
  await loaded.journal.close();
  assert.deepEqual(await readdir(crashed), [LOG0]);
});

test("a compaction failing before its rename rejects and the journal keeps the old generation", async (t) => {
  const dir = await tempDir(t);
  const { journal } = await openJournal(dir, {
    onCompactStep: (step) => {
      if (step === "temp-synced") throw new Error("disk full");
    },
  });
  await journal.append("a");
  await assert.rejects(journal.compact({ s: 1 }), /disk full/);
  assert.equal(journal.recordsSinceSnapshot, 1);
  await journal.append("b");
  await journal.close();
  assert.deepEqual(await readdir(dir), [LOG0]);
  const loaded = await openJournal(dir);
  assert.deepEqual([loaded.snapshot, loaded.records], [undefined, ["a", "b"]]);
  await loaded.journal.close();
});

test("a compaction failing after its rename stops the journal; reopening loads the new generation", async (t) => {
  const dir = await tempDir(t);
  const { journal } = await openJournal(dir, {
    onCompactStep: (step) => {
      if (step === "dir-synced") throw new Error("EIO");
    },
  });
  await journal.append("a");
  const after = journal.append("b");
  await assert.rejects(journal.compact({ s: 1 }).then(() => after), /EIO/);
  const late = journal.append("c");
  await assert.rejects(late, { code: "EJOURNALFAILED" });
  await journal.close();
  const loaded = await openJournal(dir);
  assert.deepEqual([loaded.snapshot, loaded.records], [{ s: 1 }, []]);
  await loaded.journal.close();
});

test("a torn tail is cut at open, logged with its offset and reason, and the log goes on cleanly", async (t) => {
  const dir = await tempDir(t);
  const lines = captureLog(t);
  await writeSeparately(dir, ["a", "b", "c"]);
  const path = join(dir, LOG0);
  const size = (await stat(path)).size;
  await appendFile(path, '1234abcd 3 0 {"half":'); // a write cut short, no LF
  const { records, cut, journal } = await openJournal(dir);
  assert.deepEqual(records, ["a", "b", "c"]);
  assert.deepEqual(cut, { file: path, offset: size, reason: "no newline at end of file", bytes: 21 });
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /level=warn msg="journal: cut a torn or corrupt tail".* offset=\d+ reason="no newline at end of file"/);
  assert.ok(lines[0]!.includes(`offset=${size}`));
  assert.equal((await stat(path)).size, size, "truncated at the cut");
  await journal.append("d");
  await journal.close();
  const again = await openJournal(dir);
  assert.deepEqual([again.records, again.cut], [["a", "b", "c", "d"], undefined]);
  await again.journal.close();
});

test("a flipped bit in the last record and garbage after it are cut as the torn tail", async (t) => {
  const dir = await tempDir(t);
  captureLog(t);
  await writeSeparately(dir, ["a", "b", "c"]);
  const path = join(dir, LOG0);
  const bytes = await readFile(path);
  const lastStart = bytes.lastIndexOf(10, bytes.length - 2) + 1;
  bytes[bytes.length - 3]! ^= 0x04;
  await writeFile(path, Buffer.concat([bytes, Buffer.alloc(4096)])); // a zero-filled block too
  const { records, cut, journal } = await openJournal(dir);
  assert.deepEqual(records, ["a", "b"]);
  assert.equal(cut?.offset, lastStart);
  assert.equal(cut?.reason, "checksum mismatch");
  await journal.close();
});

test("damage inside the last group is a torn write even with later records of that group", async (t) => {
  const dir = await tempDir(t);
  captureLog(t);
  const { journal } = await openJournal(dir);
  await journal.append("a");
  await Promise.all([journal.append("b1"), journal.append("b2"), journal.append("b3")]); // one group
  await journal.close();
  const path = join(dir, LOG0);
  const text = await readFile(path, "latin1");
  const at = text.indexOf('"b1"');
  await writeFile(path, text.slice(0, at) + "\0\0\0\0" + text.slice(at + 4), "latin1"); // a page that never reached the disk
  const loaded = await openJournal(dir);
  assert.deepEqual(loaded.records, ["a"]);
  assert.equal(loaded.cut?.reason, "checksum mismatch");
  await loaded.journal.close();
});

test("a corrupt record followed by a later group refuses to open and leaves the file alone", async (t) => {
  const dir = await tempDir(t);
  await writeSeparately(dir, ["a", "b", "c"]);
  const path = join(dir, LOG0);
  const bytes = await readFile(path);
  const damaged = Buffer.from(bytes);
  damaged[bytes.indexOf('"b"') + 1] = 0x42; // "B"
  await writeFile(path, damaged);
  await assert.rejects(openJournal(dir), (err: JournalError) => {
    assert.equal(err.code, "EJOURNALCORRUPT");
    assert.match(err.message, /corrupt record at offset \d+ \(checksum mismatch\).*seq 2/);
    return true;
  });
  assert.deepEqual(await readFile(path), damaged);
  // The directory is not left marked open.
  await assert.rejects(openJournal(dir), { code: "EJOURNALCORRUPT" });
});

test("a missing or duplicated line in acknowledged data refuses to open", async (t) => {
  const dir = await tempDir(t);
  await writeSeparately(dir, ["a", "b", "c", "d"]);
  const path = join(dir, LOG0);
  const lines = (await readFile(path, "latin1")).split(/(?<=\n)/);
  await writeFile(path, lines[0]! + lines[2]! + lines[3]!, "latin1");
  await assert.rejects(openJournal(dir), /seq 2 where 1 was expected/);
  await writeFile(path, lines[0]! + lines[1]! + lines[1]! + lines[2]! + lines[3]!, "latin1");
  await assert.rejects(openJournal(dir), /seq 1 where 2 was expected.*seq 3/);
});

test("a corrupt snapshot, or a log without its snapshot, refuses to open", async (t) => {
  const dir = await tempDir(t);
  const { journal } = await openJournal(dir);
  await journal.append("a");
  await journal.compact({ s: "a" });
  await journal.close();
  const snap = join(dir, SNAP1);
  const good = await readFile(snap);
  const bad = Buffer.from(good);
  bad[bad.length - 4]! ^= 1;
  await writeFile(snap, bad);
  await assert.rejects(openJournal(dir), /snapshot .* is corrupt \(checksum mismatch\)/);
  await writeFile(snap, good.subarray(0, good.length - 1));
  await assert.rejects(openJournal(dir), { code: "EJOURNALCORRUPT" });
  await writeFile(snap, good);
  await writeFile(join(dir, "log-0000000000000002.jrn"), "x\n");
  await assert.rejects(openJournal(dir), /log-0000000000000002.jrn has records but no snapshot-0000000000000002.jrn/);
  await writeFile(join(dir, "log-0000000000000002.jrn"), "");
  const loaded = await openJournal(dir);
  assert.deepEqual([loaded.snapshot, loaded.records], [{ s: "a" }, []]);
  await loaded.journal.close();
  assert.deepEqual((await readdir(dir)).sort(), [LOG1, SNAP1]);
});

test("an over-long garbage line at the tail is cut without reading it whole", async (t) => {
  const dir = await tempDir(t);
  captureLog(t);
  await writeSeparately(dir, ["a"]);
  const path = join(dir, LOG0);
  const size = (await stat(path)).size;
  await appendFile(path, Buffer.alloc(9 * 1024 * 1024, 0x41));
  const { records, cut, journal } = await openJournal(dir, { maxRecordBytes: 1024 });
  assert.deepEqual(records, ["a"]);
  assert.equal(cut?.offset, size);
  assert.match(cut!.reason, /line longer than/);
  await journal.close();
});
