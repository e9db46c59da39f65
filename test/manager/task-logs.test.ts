import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TaskLogs, TaskLogError } from "../../src/manager/task-logs.js";

const JOB = "65a1b2c3d4e5f60718293a4b";
const TASK = "65a1b2c3d4e5f60718293a4c";
const TASK2 = "65a1b2c3d4e5f60718293a4d";

async function setup(t: { after(fn: () => Promise<void>): void }, opts: ConstructorParameters<typeof TaskLogs>[1] = {}) {
  const state = await mkdtemp(join(tmpdir(), "stevedore-task-logs-"));
  const logs = new TaskLogs(state, opts);
  t.after(async () => {
    await logs.close();
    await rm(state, { recursive: true, force: true });
  });
  return { state, logs };
}

async function until(cond: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

test("the path layout; malformed ids are refused before any path or directory is made", async (t) => {
  const { state, logs } = await setup(t);
  assert.equal(logs.path(JOB, TASK), join(state, "task-logs", "job-65a1", JOB, `task-${TASK}.txt`));
  const bad = ["", "65a1b2c3d4e5f60718293a4", "65a1b2c3d4e5f60718293a4bb", "65A1B2C3D4E5F60718293A4B", "../../../../../etc/passwdx",
    `${JOB}\n`, "65a1b2c3d4e5f60718293a/b", "65a1b2c3d4e5f60718293a4g", "..", `${JOB.slice(0, 23)}\0`];
  for (const id of bad) {
    for (const [job, task] of [[id, TASK], [JOB, id]] as const) {
      assert.throws(() => logs.path(job, task), (e: unknown) => e instanceof TaskLogError && e.status === 404, JSON.stringify(id));
      await assert.rejects(logs.append(job, task, "x"), TaskLogError);
      await assert.rejects(logs.rotate(job, task), TaskLogError);
      await assert.rejects(logs.read(job, task), TaskLogError);
      await assert.rejects(logs.size(job, task), TaskLogError);
      await assert.rejects(logs.readRange(job, task, 0, 10), TaskLogError);
      await assert.rejects(logs.stream(job, task), TaskLogError);
    }
  }
  assert.deepEqual(await readdir(state), [], "nothing was created");
});

test("append adds a missing trailing newline, is durable when it resolves, and read returns the log", async (t) => {
  const { logs } = await setup(t);
  assert.equal(await logs.read(JOB, TASK), undefined);
  assert.equal(await logs.size(JOB, TASK), undefined);
  await logs.append(JOB, TASK, "2026-01-01T00:00:00Z: starting\n2026-01-01T00:00:01Z: step 1");
  assert.equal(logs.syncs, 1);
  await logs.append(JOB, TASK, "2026-01-01T00:00:02Z: done\n");
  await logs.append(JOB, TASK, "");
  assert.equal(logs.syncs, 2, "an empty append writes nothing");
  const text = "2026-01-01T00:00:00Z: starting\n2026-01-01T00:00:01Z: step 1\n2026-01-01T00:00:02Z: done\n";
  assert.equal((await logs.read(JOB, TASK))!.toString(), text);
  assert.equal(await logs.size(JOB, TASK), text.length);
  assert.equal(await readFile(logs.path(JOB, TASK), "utf8"), text);
  assert.equal((await stat(logs.path(JOB, TASK))).mode & 0o777, 0o644 & ~process.umask());
});

test("an oversized append is refused whole (413); oversized reads too", async (t) => {
  const { logs } = await setup(t, { maxAppendBytes: 100, maxReadBytes: 150 });
  await assert.rejects(logs.append(JOB, TASK, "x".repeat(100)), (e: unknown) => e instanceof TaskLogError && e.status === 413); // 101 with the newline
  assert.equal(await logs.read(JOB, TASK), undefined);
  await logs.append(JOB, TASK, "y".repeat(98));
  await logs.append(JOB, TASK, "z".repeat(98));
  await assert.rejects(logs.read(JOB, TASK), (e: unknown) => e instanceof TaskLogError && e.status === 413);
  assert.equal((await logs.readRange(JOB, TASK, 99, 150))!.toString(), "z".repeat(98) + "\n");
  await assert.rejects(logs.readRange(JOB, TASK, 0, 151), TaskLogError);
});

test("rotate: current → .1 → .2 …, at most keepRotated kept; appends before the call go to the old file", async (t) => {
  const { logs } = await setup(t, { keepRotated: 3 });
  const p = logs.path(JOB, TASK);
  await logs.rotate(JOB, TASK); // nothing to rotate yet
  assert.equal(await logs.read(JOB, TASK), undefined);
  const written: Promise<void>[] = [];
  for (let i = 1; i <= 5; i++) {
    written.push(logs.append(JOB, TASK, `activation ${i}`));
    written.push(logs.rotate(JOB, TASK)); // not awaited: order of calls decides
  }
  written.push(logs.append(JOB, TASK, "activation 6"));
  await Promise.all(written);
  assert.equal(await readFile(p, "utf8"), "activation 6\n");
  assert.equal(await readFile(`${p}.1`, "utf8"), "activation 5\n");
  assert.equal(await readFile(`${p}.2`, "utf8"), "activation 4\n");
  assert.equal(await readFile(`${p}.3`, "utf8"), "activation 3\n");
  assert.deepEqual((await readdir(join(p, ".."))).sort(), [`task-${TASK}.txt`, `task-${TASK}.txt.1`, `task-${TASK}.txt.2`, `task-${TASK}.txt.3`]);
});

test("concurrent appends to one task keep each append's lines whole and together, and share fsyncs", async (t) => {
  const { logs } = await setup(t);
  const appends: string[] = [];
  for (let i = 0; i < 300; i++) {
    const lines = 1 + (i % 7);
    const width = i % 10 === 0 ? 20_000 : 10 + (i % 50); // a few big ones
    let text = "";
    for (let l = 0; l < lines; l++) text += `2026-01-01T00:00:00Z: append ${i} line ${l} ${"x".repeat(width)}\n`;
    appends.push(i % 2 ? text : text.slice(0, -1)); // half without the trailing newline
  }
  await Promise.all(appends.map((text) => logs.append(JOB, TASK, text)));
  assert.ok(logs.syncs < appends.length / 2, `fsyncs grouped: ${logs.syncs} for ${appends.length} appends`);
  t.diagnostic(`${logs.syncs} fsyncs for ${appends.length} concurrent appends`);
  const content = (await logs.read(JOB, TASK))!.toString();
  assert.ok(content.endsWith("\n"));
  // Every append appears exactly once, whole, in call order (appends to one file are serialized).
  let at = 0;
  for (const text of appends) {
    const whole = text.endsWith("\n") ? text : text + "\n";
    assert.equal(content.slice(at, at + whole.length), whole);
    at += whole.length;
  }
  assert.equal(at, content.length);
});

test("a tail: size() then readRange() from that offset returns only what was added; stream() gives a snapshot", async (t) => {
  const { logs } = await setup(t);
  await logs.append(JOB, TASK, "one");
  const offset = (await logs.size(JOB, TASK))!;
  await logs.append(JOB, TASK, "two\nthree");
  assert.equal((await logs.readRange(JOB, TASK, offset, 1024))!.toString(), "two\nthree\n");
  assert.equal((await logs.readRange(JOB, TASK, 1000, 10))!.length, 0);
  assert.equal(await logs.readRange(JOB, TASK2, 0, 10), undefined);
  for (const [o, n] of [[-1, 10], [0, -1], [0.5, 10], [0, Infinity]]) await assert.rejects(logs.readRange(JOB, TASK, o!, n!), RangeError);

  const s = (await logs.stream(JOB, TASK))!;
  await logs.append(JOB, TASK, "four"); // after the snapshot: not in the stream
  const chunks: Buffer[] = [];
  for await (const c of s.stream) chunks.push(c as Buffer);
  assert.equal(Buffer.concat(chunks).toString(), "one\ntwo\nthree\n");
  assert.equal(s.size, 14);
  assert.equal(await logs.stream(JOB, TASK2), undefined);

  await writeFile(logs.path(JOB, TASK2), "");
  const empty = (await logs.stream(JOB, TASK2))!;
  const got: unknown[] = [];
  for await (const c of empty.stream) got.push(c);
  assert.deepEqual([empty.size, got], [0, []]);
});

test("open files are bounded and idle ones are closed", async (t) => {
  const { logs } = await setup(t, { maxOpenFiles: 2, idleCloseMs: 40 });
  const tasks = Array.from({ length: 6 }, (_, i) => `65a1b2c3d4e5f60718293b${i.toString(16).padStart(2, "0")}`);
  let most = 0;
  const sample = setInterval(() => (most = Math.max(most, logs.openCount)), 1);
  const all: Promise<void>[] = [];
  for (let round = 0; round < 5; round++) for (const task of tasks) all.push(logs.append(JOB, task, `round ${round}`));
  await Promise.all(all);
  clearInterval(sample);
  assert.ok(logs.openCount <= 2 && most <= 2, `open: ${logs.openCount}, most ${most}`);
  for (const task of tasks) assert.equal((await logs.read(JOB, task))!.toString(), "round 0\nround 1\nround 2\nround 3\nround 4\n");
  await until(() => logs.openCount === 0);
  await logs.append(JOB, tasks[0]!, "again"); // reopened on demand
  assert.match((await logs.read(JOB, tasks[0]!))!.toString(), /round 4\nagain\n$/);
});

test("a failed write rejects its appends and the next append works again", async (t) => {
  const { state, logs } = await setup(t);
  // A directory where the job directory should be: opening fails.
  await writeFile(join(state, "task-logs"), "not a dir");
  await assert.rejects(logs.append(JOB, TASK, "lost"));
  await rm(join(state, "task-logs"));
  await logs.append(JOB, TASK, "kept");
  assert.equal((await logs.read(JOB, TASK))!.toString(), "kept\n");
  assert.equal(logs.openCount, 1);
});

test("new logs made at once in one job directory share its fsyncs; each is whole and readable", async (t) => {
  const { logs } = await setup(t);
  await logs.append(JOB, TASK, "first"); // the job's directory exists from here on
  const tasks = Array.from({ length: 40 }, (_, i) => `65a1b2c3d4e5f607182${(0x93b00 + i).toString(16)}`);
  const before = logs.dirFsyncs;
  await Promise.all(tasks.map((task) => logs.append(JOB, task, `line of ${task}`)));
  const made = logs.dirFsyncs - before;
  assert.ok(made >= 1 && made < tasks.length / 2, `${made} directory fsyncs for ${tasks.length} new files`);
  for (const task of tasks) assert.equal((await logs.read(JOB, task))?.toString(), `line of ${task}\n`);
  // a rotation's rename is synced too, after the call (a later file creation does not make it skip)
  const rotations = logs.dirFsyncs;
  await logs.rotate(JOB, tasks[0]!);
  assert.ok(logs.dirFsyncs > rotations);
});
