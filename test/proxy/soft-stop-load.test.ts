// SOFT_STOP under load, through the bundled daemon: a config site to a slow streaming backend,
// 30 requests in flight, then SOFT_STOP on the command socket. Every in-flight request completes
// with 200 and its full body, the listener refuses new connections at once, the answers are
// Processing then Ok (same id, Ok only once the backend finished every response), exit 0 in time.
// Second case: a response still streaming at the deadline (shutdown_timeout_secs = 2) does not hold
// the daemon: it exits 0 by the deadline, and that client gets the status line, headers and the
// bytes streamed so far, then the connection closes without the final chunk (res.complete false:
// a truncated response the client can detect, never a silently short "complete" one).
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { connect } from "node:net";
import { CommandClient } from "../../src/proxy/command/client.js";
import type { Answer } from "../../src/proxy/command/messages.js";
import { startDaemon, waitFor, type TestDaemon } from "../helpers/daemon.js";
import { backend, type Backend } from "./helpers.js";

const PIECES = 5;
const PIECE_MS = 100; // a response takes ~400 ms: the stop lands mid-stream
const piece = (i: number) => Buffer.alloc(16 * 1024, 97 + (i % 26));
const fullBody = (i: number) => piece(i).toString().repeat(PIECES);

let slow: Backend;
const seen = { started: 0, ended: 0, aborted: 0 };

before(async () => {
  slow = await backend("slow", (req, res) => {
    req.resume();
    seen.started++;
    const i = Number(req.url!.split("/")[2]);
    res.writeHead(200, { "content-type": "text/plain" });
    res.write(piece(i));
    res.once("close", () => { if (!res.writableFinished) seen.aborted++; });
    if (req.url!.startsWith("/hang/")) return; // never finishes
    let sent = 1;
    const timer = setInterval(() => {
      if (res.destroyed) return clearInterval(timer);
      res.write(piece(i));
      if (++sent < PIECES) return;
      clearInterval(timer);
      res.end();
      seen.ended++;
    }, PIECE_MS);
  });
});
after(() => slow.close());

interface Got { status: number; body: string; complete: boolean }

/** A request on its own connection; resolves when the response closes (complete or not). */
function fetchSite(port: number, path: string): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, headers: { host: "slow.test" }, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (c: string) => (body += c));
      res.on("error", () => {}); // "aborted" on a truncated response: reported through `complete`
      res.once("close", () => resolve({ status: res.statusCode!, body, complete: res.complete }));
    });
    req.on("error", reject);
    req.end();
  });
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => (s.destroy(), resolve(false)));
    s.once("error", (e: NodeJS.ErrnoException) => resolve(e.code === "ECONNREFUSED"));
  });
}

async function daemon(timeoutSecs: number): Promise<TestDaemon> {
  return startDaemon({
    disable: ["query", "admin", "core", "manager", "https"],
    config: `shutdown_timeout_secs = ${timeoutSecs}\n[[site]]\nhostname = "slow.test"\nbackends = ["127.0.0.1:${slow.port}"]\n`,
  });
}

/** Send SOFT_STOP; returns this request's answers, the exit code and when things happened. */
async function softStop(d: TestDaemon) {
  const exit = new Promise<{ code: number | null; at: number }>((res) => d.proc.once("exit", (code) => res({ code, at: performance.now() })));
  const c = await CommandClient.connect(d.commandSocket);
  const answers: Answer[] = [];
  let endedAtOk = -1;
  const t0 = performance.now();
  const ok = c.request({ id: "stop-1", version: 0, type: "SOFT_STOP" }, {
    onAnswer: (a) => {
      answers.push(a);
      if (a.status === "Ok") endedAtOk = seen.ended;
    },
  });
  await c.waitFor((a) => a.id === "stop-1" && a.status === "Processing");
  return { t0, answers, ok, exit, endedAtOk: () => endedAtOk, close: () => c.close() };
}

test("SOFT_STOP under load: no request that was in flight fails", async () => {
  const N = 30;
  const d = await daemon(5);
  try {
    Object.assign(seen, { started: 0, ended: 0, aborted: 0 });
    const inflight = Array.from({ length: N }, (_, i) => fetchSite(d.httpPort, `/r/${i}`));
    await waitFor("every request at the backend", () => seen.started === N);
    const s = await softStop(d);
    // the listener closes in the same turn as the Processing answer
    await waitFor("new connections refused", () => refused(d.httpPort), 1000);
    const got = await Promise.all(inflight);
    got.forEach((g, i) => {
      assert.equal(g.status, 200, `request ${i}`);
      assert.ok(g.complete, `request ${i} complete`);
      assert.ok(g.body === fullBody(i), `request ${i}: full body (${g.body.length} of ${fullBody(i).length} bytes)`);
    });
    await s.ok;
    assert.deepEqual(s.answers.map((a) => `${a.id}:${a.status}`), ["stop-1:Processing", "stop-1:Ok"]);
    assert.equal(s.endedAtOk(), N, "Ok only after the backend finished every in-flight response");
    const { code, at } = await s.exit;
    assert.equal(code, 0);
    assert.ok(at - s.t0 < 5000, `exited ${Math.round(at - s.t0)} ms after SOFT_STOP (shutdown_timeout_secs = 5)`);
    assert.equal(seen.aborted, 0);
    assert.equal(await refused(d.httpPort), true);
    s.close();
  } finally {
    await d.cleanup();
  }
});

test("SOFT_STOP with a response still streaming at the deadline: exit 0 by the deadline, that client sees a truncated response", async () => {
  // 2 s: room for the five normal responses (~400 ms) on a loaded machine before the deadline
  const d = await daemon(2);
  try {
    Object.assign(seen, { started: 0, ended: 0, aborted: 0 });
    const normal = Array.from({ length: 5 }, (_, i) => fetchSite(d.httpPort, `/r/${i}`));
    const hung = fetchSite(d.httpPort, "/hang/7");
    await waitFor("every request at the backend", () => seen.started === 6);
    const s = await softStop(d);
    for (const [i, g] of (await Promise.all(normal)).entries()) {
      assert.equal(g.status, 200);
      assert.ok(g.complete && g.body === fullBody(i), `request ${i} complete with its full body`);
    }
    const h = await hung;
    assert.equal(h.status, 200, "headers were already sent");
    assert.equal(h.complete, false, "the client can tell the response was cut");
    assert.ok(h.body.length >= piece(7).length && h.body.length < fullBody(7).length, `partial body (${h.body.length} bytes)`);
    await s.ok;
    assert.deepEqual(s.answers.map((a) => `${a.id}:${a.status}`), ["stop-1:Processing", "stop-1:Ok"]);
    const { code, at } = await s.exit;
    assert.equal(code, 0);
    const took = at - s.t0;
    assert.ok(took >= 1900, `waited for the deadline (${Math.round(took)} ms)`);
    // by the deadline, with room for a loaded machine (the hung response alone would hold it forever)
    assert.ok(took < 2000 + 2000, `exited ${Math.round(took)} ms after SOFT_STOP (deadline 2000 ms)`);
    await waitFor("the backend saw the hung response aborted", () => seen.aborted === 1);
    s.close();
  } finally {
    await d.cleanup();
  }
});
