// The worker's pieces in-process: the Docker log demultiplexer (fuzzed), line splitting, back-off,
// the update batcher, task parsing, the state file and the registration token.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { intRng, mutate, rng } from "../helpers/random.js";
import {
  Backoff, LineBuffer, LogDemuxer, TaskReporter, containerName, hs256Token, intervalsFromEnv, loadRegistration, logLine,
  normalizeManagerUrl, parseTask, saveRegistration, taskLabels,
} from "../../src/worker/index.js";

function frame(stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h[0] = stream;
  h.writeUInt32BE(payload.length, 4);
  return Buffer.concat([h, payload]);
}

function demuxAll(chunks: Buffer[]): Buffer[] {
  const out = [Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0)];
  const d = new LogDemuxer((s, b) => (out[s] = Buffer.concat([out[s]!, b])));
  for (const c of chunks) d.push(c);
  return out;
}

/** cut a buffer at random points */
function chop(buf: Buffer, rand: (n: number) => number): Buffer[] {
  const parts: Buffer[] = [];
  let at = 0;
  while (at < buf.length) {
    const n = 1 + rand(Math.min(40, buf.length - at));
    parts.push(buf.subarray(at, at + n));
    at += n;
  }
  return parts;
}

test("LogDemuxer: any chunking of valid frames gives each stream's bytes back", () => {
  const rand = intRng(7);
  for (let i = 0; i < 10_000; i++) {
    const expected = [Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0)];
    const frames: Buffer[] = [];
    for (let f = rand(6); f > 0; f--) {
      const stream = 1 + rand(2);
      const payload = Buffer.from(Array.from({ length: rand(30) }, () => rand(256)));
      expected[stream] = Buffer.concat([expected[stream]!, payload]);
      frames.push(frame(stream, payload));
    }
    const got = demuxAll(chop(Buffer.concat(frames), rand));
    assert.deepEqual(got, expected);
  }
});

test("LogDemuxer: mutated streams never throw and never emit more bytes than they got", () => {
  const rand = intRng(11);
  const pieces = ["\x01\x00\x00\x00", "\x02\x00\x00\x00\x00\x00\x00\x05", "\xff\xff\xff\xff", "\x00", "\n"];
  const seed = Buffer.concat([frame(1, Buffer.from("hello\n")), frame(2, Buffer.from("oops\n")), frame(1, Buffer.from("bye"))]);
  for (let i = 0; i < 10_000; i++) {
    let buf: Buffer = seed;
    for (let m = 1 + rand(3); m > 0; m--) buf = mutate(buf, rand, pieces);
    const got = demuxAll(chop(buf, rand));
    assert.ok(got.reduce((n, b) => n + b.length, 0) <= buf.length);
  }
});

test("LogDemuxer: a stream without framing (a TTY) passes through as stdout", () => {
  const got = demuxAll([Buffer.from("plain text\nmore")]);
  assert.equal(got[1]!.toString(), "plain text\nmore");
});

test("LineBuffer splits lines, drops the \\r of CRLF, cuts over-long lines and keeps the unfinished tail for end()", () => {
  const lines: string[] = [];
  const b = new LineBuffer((l) => lines.push(l), 5);
  b.push("ab\r\ncd");
  b.push("e\n123456789");
  b.push("\nx");
  b.end();
  assert.deepEqual(lines, ["ab", "cde", "12345", "6789", "x"]);
  const random = rng(3);
  const fuzzed: string[] = [];
  const fb = new LineBuffer((l) => fuzzed.push(l), 16);
  let text = "";
  for (let i = 0; i < 10_000; i++) {
    const piece = ["a", "\n", "\r", "é", "xyz"][Math.floor(random() * 5)]!;
    text += piece;
    fb.push(piece);
  }
  fb.end();
  for (const l of fuzzed) assert.ok(l.length <= 16 && !l.includes("\n"));
  assert.equal(fuzzed.join("").replace(/\r/g, ""), text.replace(/[\r\n]/g, ""));
});

test("Backoff doubles with ±20 % jitter up to the cap, and resets", () => {
  const b = new Backoff(1000, 30_000, () => 0.5);
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map(() => b.delay()), [1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  b.reset();
  assert.equal(b.delay(), 1000);
  const low = new Backoff(1000, 30_000, () => 0);
  const high = new Backoff(1000, 30_000, () => 0.999);
  assert.equal(low.delay(), 800);
  assert.ok(high.delay() > 1190);
  for (let i = 0; i < 10; i++) assert.ok(high.delay() <= 30_000);
});

test("TaskReporter batches lines and progress, sends the final status with the last lines, and retries", async () => {
  const sent: Record<string, unknown>[] = [];
  let answer: "ok" | "retry" | "gone" = "retry";
  const r = new TaskReporter(async (u) => (sent.push({ ...u }), answer), 60_000, () => {});
  r.log("one");
  r.set({ activity: "working", task_progress_percentage: 10 });
  await r.flush();
  assert.equal(sent.length, 1);
  answer = "ok";
  r.log("two");
  await r.flush();
  assert.equal(sent.length, 2);
  assert.match(String(sent[1]!.log), /^\S+Z: one\n\S+Z: two\n$/, "lines kept after a failed send");
  assert.equal(sent[1]!.activity, "working");
  await r.flush();
  assert.equal(sent.length, 2, "nothing new, nothing sent");
  r.log("three");
  let retries = 0;
  answer = "retry";
  const delivered = await r.finish({ task_status: "completed" }, async () => void (retries++ === 1 && (answer = "ok")), new AbortController().signal);
  assert.ok(delivered);
  assert.equal(sent.at(-1)!.task_status, "completed");
  assert.match(String(sent.at(-1)!.log), /: three\n$/);
});

test("TaskReporter: a gone answer calls onGone; finish gives up when told to", async () => {
  let gone = 0;
  const r = new TaskReporter(async () => "gone", 60_000, () => gone++);
  r.log("x");
  await r.flush();
  assert.equal(gone, 1);
  assert.equal(await r.finish({ task_status: "failed" }, async () => {}, new AbortController().signal), false);
  const stop = new AbortController();
  const r2 = new TaskReporter(async () => "retry", 60_000, () => {});
  assert.equal(await r2.finish({ task_status: "failed" }, async () => stop.abort(), stop.signal), false);
});

test("TaskReporter keeps at most 4 MiB of unsent log and says how much it dropped", async () => {
  const sent: string[] = [];
  let ok = false;
  const r = new TaskReporter(async (u) => (ok && sent.push(String(u.log ?? "")), ok ? "ok" : "retry"), 60_000, () => {});
  const big = "x".repeat(100 * 1024);
  for (let i = 0; i < 100; i++) r.log(big); // 10 MiB, the early flushes fail
  r.log("last");
  ok = true;
  assert.ok(await r.finish({ task_status: "completed" }, async () => {}, new AbortController().signal));
  const all = sent.join("");
  assert.ok(all.length < 5 * 1024 * 1024);
  assert.match(all, /log lines dropped/);
  assert.match(all, /: last\n$/);
  assert.ok(sent.every((s) => s.length <= 1024 * 1024 + 200 * 1024), "updates are bounded");
});

test("logLine is ISO8601: line", () => {
  assert.equal(logLine("hi", new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6))), "2026-01-02T03:04:05.006Z: hi\n");
});

test("parseTask checks the Task document", () => {
  assert.equal(typeof parseTask(null), "string");
  assert.equal(typeof parseTask({ _id: "a" }), "string");
  assert.equal(typeof parseTask({ _id: "a", commands: [{ settings: {} }] }), "string");
  assert.equal(typeof parseTask({ _id: "a", commands: [{ name: "echo", settings: [] }] }), "string");
  const t = parseTask({ _id: "a", job: "j", commands: [{ name: "echo" }] });
  assert.deepEqual(t, { _id: "a", job: "j", name: "a", commands: [{ name: "echo", settings: {} }] });
});

test("container labels put task containers in deployment job-<job id>; names are Docker-valid", () => {
  assert.deepEqual(taskLabels({ id: "t1", job: "65F0a0b0c0d0e0f001020304", name: "Render: Frame 1" }), {
    "stevedore.worker.task": "t1",
    "stevedore.worker.job": "65F0a0b0c0d0e0f001020304",
    "stevedore.deployment": "job-65f0a0b0c0d0e0f001020304",
    "stevedore.service": "render-frame-1",
  });
  const odd = taskLabels({ id: "t2", job: "../x", name: "!!!" });
  assert.equal(odd["stevedore.deployment"], "worker-jobs");
  assert.equal(odd["stevedore.service"], "task-t2");
  assert.match(containerName({ id: "a/b c", job: "", name: "" }, 3), /^stevedore-task-a-b-c-3-[0-9a-f]{6}$/);
});

test("the state file: saved 0600, read back, corrupt ones are errors", async () => {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-wstate-"));
  try {
    const file = join(dir, "sub", "worker.json");
    assert.equal(await loadRegistration(file), undefined);
    await saveRegistration(file, { manager: "http://m", id: "i", secret: "s", registered: "now" });
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.deepEqual(await loadRegistration(file), { manager: "http://m", id: "i", secret: "s", registered: "now" });
    await writeFile(file, "{");
    await assert.rejects(loadRegistration(file), /not JSON/);
    await writeFile(file, '{"id": 3}');
    await assert.rejects(loadRegistration(file), /not a worker registration/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("hs256Token verifies with the registration secret", () => {
  const tok = hs256Token("s3cret", "node-1", 1000);
  const [h, p, sig] = tok.split(".");
  assert.equal(createHmac("sha256", "s3cret").update(`${h}.${p}`).digest("base64url"), sig);
  assert.deepEqual(JSON.parse(Buffer.from(p!, "base64url").toString()), { sub: "node-1", iat: 1000, exp: 1300 });
});

test("interval overrides and manager URLs are checked", () => {
  assert.equal(intervalsFromEnv({ STEVEDORE_WORKER_IDLE_MS: "20" }).idleMs, 20);
  assert.equal(intervalsFromEnv({}).idleMs, 5000);
  assert.throws(() => intervalsFromEnv({ STEVEDORE_WORKER_FLUSH_MS: "0" }), /STEVEDORE_WORKER_FLUSH_MS/);
  assert.equal(normalizeManagerUrl("http://h:8083/"), "http://h:8083");
  assert.equal(normalizeManagerUrl("https://h/base/"), "https://h/base");
  assert.throws(() => normalizeManagerUrl("http://u:p@h"), /credentials/);
  assert.throws(() => normalizeManagerUrl("h:8083"), /http/);
});
