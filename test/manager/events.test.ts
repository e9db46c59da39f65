// GET /api/events (Server-Sent Events) against the bundled daemon: job, task and worker events as
// the state changes, task log lines on ?task=, replay after a reconnect with Last-Event-ID, a
// reset after a restart, the bound on subscribers, and the bound on a subscriber that stops reading.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { request, type ClientRequest } from "node:http";
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import { SseParser, type SseEvent } from "../../src/cli/manager-client.js";
import { assertError, bearer, Manager } from "./client.js";

let m: Manager;
before(async () => {
  m = await Manager.start();
});
after(async () => {
  await m?.d.cleanup();
});

interface Stream {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** the error body when the status is not 200 */
  text: string;
  events: SseEvent[];
  /** resolves with the first event (from `from` on) matching, or rejects after the deadline */
  waitFor(pred: (e: SseEvent, data: Record<string, unknown>) => boolean, opts?: { from?: number; timeoutMs?: number }): Promise<SseEvent>;
  close(): void;
}

function open(opts: { task?: string; lastEventId?: string; auth?: string | null } = {}): Promise<Stream> {
  const headers: Record<string, string> = {};
  const auth = opts.auth === undefined ? bearer(m.token) : opts.auth;
  if (auth !== null) headers.Authorization = auth;
  if (opts.lastEventId !== undefined) headers["Last-Event-ID"] = opts.lastEventId;
  const path = `/api/events${opts.task ? `?task=${opts.task}` : ""}`;
  return new Promise((resolve, reject) => {
    let req: ClientRequest | undefined = undefined;
    req = request({ host: "127.0.0.1", port: m.port, path, headers, agent: false }, (res) => {
      const events: SseEvent[] = [];
      const waiters = new Set<() => void>();
      const parser = new SseParser((e) => {
        events.push(e);
        for (const w of waiters) w();
      });
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (res.statusCode === 200 ? parser.push(chunk) : (text += chunk)));
      res.on("error", () => {});
      const stream: Stream = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        get text() {
          return text;
        },
        events,
        waitFor(pred, { from = 0, timeoutMs = 15_000 } = {}) {
          const find = () => events.slice(from).find((e) => pred(e, JSON.parse(e.data) as Record<string, unknown>));
          const found = find();
          if (found) return Promise.resolve(found);
          return new Promise((res2, rej2) => {
            const timer = setTimeout(() => {
              waiters.delete(check);
              rej2(new Error(`no matching event within ${timeoutMs} ms; got ${events.slice(from).map((e) => `${e.event} ${e.data}`).join("\n")}`));
            }, timeoutMs);
            const check = () => {
              const hit = find();
              if (!hit) return;
              clearTimeout(timer);
              waiters.delete(check);
              res2(hit);
            };
            waiters.add(check);
          });
        },
        close: () => req!.destroy(),
      };
      if (res.statusCode === 200) resolve(stream);
      else res.on("end", () => resolve(stream));
    });
    req.on("error", reject);
    req.end();
  });
}

test("the event stream needs a user token and is text/event-stream", async () => {
  const none = await open({ auth: null });
  assert.equal(none.status, 401);
  assert.equal((await open({ auth: "Bearer x.y.z" })).status, 401);
  const s = await open();
  try {
    assert.equal(s.status, 200);
    assert.match(String(s.headers["content-type"]), /^text\/event-stream/);
    assert.equal(s.headers["cache-control"], "no-store");
  } finally {
    s.close();
  }
});

test("worker, job and task events arrive as the state changes", async () => {
  const s = await open();
  try {
    const w = await m.register({ supported_task_types: ["ev"], nickname: "ev-worker" });
    await s.waitFor((e, d) => e.event === "worker" && d._id === w.id && d.nickname === "ev-worker");
    assert.equal((await w.signOn()).status, 204);
    await s.waitFor((e, d) => e.event === "worker" && d._id === w.id && d.status === "starting");
    let mark = s.events.length;
    const job = await m.job("ev-job", "ev", 1);
    const taskId = job.tasks![0]!._id;
    await s.waitFor((e, d) => e.event === "job" && d._id === job._id && d.status === "queued", { from: mark });
    await s.waitFor((e, d) => e.event === "task" && d._id === taskId && d.job === job._id && d.status === "queued", { from: mark });
    mark = s.events.length;
    assert.equal((await w.task()).status, 200);
    await s.waitFor((e, d) => e.event === "task" && d._id === taskId && d.status === "active" && d.worker === w.id, { from: mark });
    await s.waitFor((e, d) => e.event === "job" && d._id === job._id && d.status === "active", { from: mark });
    await s.waitFor((e, d) => e.event === "worker" && d._id === w.id && d.current_task === taskId && d.status === "awake", { from: mark });
    mark = s.events.length;
    assert.equal((await w.update(taskId, { task_status: "completed", log: "not for this stream" })).status, 204);
    await s.waitFor((e, d) => e.event === "task" && d._id === taskId && d.status === "completed", { from: mark });
    await s.waitFor((e, d) => e.event === "job" && d._id === job._id && d.status === "completed" && d.progress === 100, { from: mark });
    // every event carries an id; no log events without ?task=
    assert.ok(s.events.every((e) => /^[0-9a-z]+-\d+$/.test(e.id)));
    assert.ok(!s.events.some((e) => e.event === "log"));
  } finally {
    s.close();
  }
});

test("?task=ID adds that task's log lines, and only that task's", async () => {
  const w = await m.worker(["logev"]);
  const job = await m.job("log-job", "logev", 2);
  const [t0, t1] = [job.tasks![0]!._id, job.tasks![1]!._id];
  const following = await open({ task: t0 });
  const other = await open({ task: t1 });
  const plain = await open();
  try {
    assert.equal((await w.task()).json._id, t0);
    await following.waitFor((e, d) => e.event === "log" && d.task === t0 && d.job === job._id && /task assigned to worker/.test(d.text as string));
    assert.equal((await w.update(t0, { log: "2024-01-01T00:00:00Z: rendering frame 1" })).status, 204);
    const line = await following.waitFor((e, d) => e.event === "log" && d.text === "2024-01-01T00:00:00Z: rendering frame 1\n");
    assert.equal(line.event, "log");
    // a marker every stream sees: the log lines came before it, so the others would have them by now
    assert.equal((await m.api("POST", `/api/jobs/${job._id}/priority`, { priority: 61 })).status, 200);
    for (const s of [following, other, plain]) await s.waitFor((e, d) => e.event === "job" && d._id === job._id && d.priority === 61);
    assert.ok(!other.events.some((e) => e.event === "log"), "another task's stream has no log lines of this one");
    assert.ok(!plain.events.some((e) => e.event === "log"));
  } finally {
    for (const s of [following, other, plain]) s.close();
  }
});

test("a reconnect with Last-Event-ID is replayed what it missed", async () => {
  const job = await m.job("replay", "none");
  const s = await open();
  assert.equal((await m.api("POST", `/api/jobs/${job._id}/priority`, { priority: 11 })).status, 200);
  const seen = await s.waitFor((e, d) => e.event === "job" && d._id === job._id && d.priority === 11);
  s.close();
  // changes while disconnected
  for (const priority of [12, 13]) assert.equal((await m.api("POST", `/api/jobs/${job._id}/priority`, { priority })).status, 200);
  const again = await open({ lastEventId: seen.id });
  try {
    await again.waitFor((e, d) => e.event === "job" && d._id === job._id && d.priority === 13);
    const mine = again.events.filter((e) => e.event === "job" && (JSON.parse(e.data) as { _id: string })._id === job._id);
    assert.deepEqual(mine.map((e) => (JSON.parse(e.data) as { priority: number }).priority), [12, 13], "the missed events once each, not the one already seen");
    const [epoch, seq] = seen.id.split("-");
    for (const e of again.events) {
      assert.equal(e.id.split("-")[0], epoch);
      assert.ok(Number(e.id.split("-")[1]) > Number(seq));
    }
    assert.ok(!again.events.some((e) => e.event === "reset"));
  } finally {
    again.close();
  }
  // an id this daemon never gave out: reset
  const bogus = await open({ lastEventId: "nonsense" });
  try {
    await bogus.waitFor((e) => e.event === "reset");
  } finally {
    bogus.close();
  }
});

test("too many subscribers → 503; a place frees up when one leaves", async () => {
  const streams: Awaited<ReturnType<typeof open>>[] = [];
  try {
    let refused: Stream | undefined;
    for (let i = 0; i < 300 && !refused; i++) {
      const s = await open();
      if (s.status === 200) streams.push(s);
      else refused = s;
    }
    assert.ok(refused, "refused before 300 streams");
    assert.equal(refused.status, 503);
    assertError({ status: refused.status, headers: refused.headers, text: refused.text, json: JSON.parse(refused.text) }, 503, /too many/);
    assert.ok(streams.length <= 256 && streams.length > 200, `${streams.length} streams accepted`);
    streams.pop()!.close();
    // the server notices the close asynchronously: retry until the place is free
    const deadline = Date.now() + 15_000;
    for (;;) {
      const s = await open();
      if (s.status === 200) {
        streams.push(s);
        break;
      }
      assert.ok(Date.now() < deadline, "a place frees up after a stream closes");
    }
  } finally {
    for (const s of streams) s.close();
  }
});

test("a Last-Event-ID from before a daemon restart gets a reset event", async () => {
  const s = await open();
  const job = await m.job("before-restart", "none");
  const seen = await s.waitFor((e, d) => e.event === "job" && d._id === job._id);
  s.close();
  await m.d.restart();
  const again = await open({ lastEventId: seen.id });
  try {
    assert.equal(again.status, 200, again.text);
    const reset = await again.waitFor((e) => e.event === "reset");
    assert.deepEqual(JSON.parse(reset.data), {});
    assert.notEqual(reset.id.split("-")[0], seen.id.split("-")[0], "a new epoch");
    assert.equal(again.events[0]!.event, "reset");
  } finally {
    again.close();
  }
});

test("a subscriber that stops reading is dropped (bounded buffer), and a reconnect with Last-Event-ID is replayed what it missed", async () => {
  const w = await m.worker(["slowev"]);
  const job = await m.job("slow-reader", "slowev", 1);
  const taskId = (await w.task()).json._id as string;
  // HTTP/1.0: the stream is delimited by the close, not chunked, so the raw bytes are the events
  const sock = connect({ host: "127.0.0.1", port: m.port });
  const events: SseEvent[] = [];
  const parser = new SseParser((e) => events.push(e));
  let head = "";
  await new Promise<void>((resolve, reject) => {
    sock.once("error", reject);
    sock.setEncoding("latin1");
    sock.write(`GET /api/events?task=${taskId} HTTP/1.0\r\nHost: x\r\nAuthorization: ${bearer(m.token)}\r\n\r\n`);
    const onData = (chunk: string) => {
      head += chunk;
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      sock.off("data", onData);
      sock.pause(); // from here on it reads nothing: the kernel buffers fill, then the server's
      parser.push(head.slice(end + 4));
      head = head.slice(0, end);
      resolve();
    };
    sock.on("data", onData);
  });
  assert.match(head, /^HTTP\/1\.1 200 /);
  const ended = new Promise<void>((resolve) => sock.once("close", () => resolve()));
  // 1 MiB log lines for the task, more of them than the socket buffers of both ends can hold
  // (their kernel maximum) plus the 1 MiB the manager lets a subscriber fall behind, so the stream
  // must be cut somewhere in them
  const LINES = Math.min(1000, Math.ceil((bufferMax("tcp_rmem") + bufferMax("tcp_wmem")) / (1024 * 1024)) + 4);
  const line = (i: number) => `${String(i).padStart(4, "0")}${"x".repeat(1024 * 1024)}`;
  for (let i = 0; i < LINES; i++) assert.equal((await w.update(taskId, { log: line(i) })).status, 204);
  // a marker after them: a stream that was not cut would carry it
  assert.equal((await m.api("POST", `/api/jobs/${job._id}/priority`, { priority: 77 })).status, 200);
  const marker = (e: SseEvent) => e.event === "job" && (JSON.parse(e.data) as { priority?: number }).priority === 77;
  // read what the kernel holds: the stream must end (the server closed it) without the marker
  sock.setEncoding("utf8");
  sock.on("data", (chunk: string) => parser.push(chunk));
  sock.resume();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    ended,
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`the slow stream was not closed; ${events.length} events read`)), 30_000))),
  ]);
  clearTimeout(timer);
  assert.ok(!events.some(marker), "the stream was cut before the marker");
  const logNo = (e: SseEvent) => Number((JSON.parse(e.data) as { text: string }).text.slice(0, 4));
  const firstLogs = events.filter((e) => e.event === "log").map(logNo);
  assert.ok(firstLogs.length < LINES, `cut short (${firstLogs.length} of ${LINES} lines)`);
  // a reconnect from the last event it read whole gets the rest, once each, and the marker
  const lastId = events.length ? events[events.length - 1]!.id : undefined;
  assert.ok(lastId, "at least one event before the cut");
  const again = await open({ task: taskId, lastEventId: lastId });
  try {
    await again.waitFor((e) => marker(e), { timeoutMs: 30_000 });
    const replayed = again.events.filter((e) => e.event === "log").map(logNo);
    assert.deepEqual([...firstLogs, ...replayed], Array.from({ length: LINES }, (_, i) => i), "every line once, in order");
    assert.ok(!again.events.some((e) => e.event === "reset"));
  } finally {
    again.close();
  }
});

/** the largest socket buffer the kernel grows to (net.ipv4.tcp_rmem/tcp_wmem max), 6 MiB if unknown */
function bufferMax(name: string): number {
  try {
    const max = Number(readFileSync(`/proc/sys/net/ipv4/${name}`, "utf8").trim().split(/\s+/)[2]);
    return Number.isFinite(max) && max > 0 ? max : 6 * 1024 * 1024;
  } catch {
    return 6 * 1024 * 1024;
  }
}
