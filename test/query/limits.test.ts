// Server limits: header size, header/request deadlines that never cut a long-poll, keep-alive,
// max connections. The limits are shortened for the test (same code path, smaller numbers).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LIMITS, QueryServer } from "../../src/query/index.js";
import { listenUnix } from "../../src/http/index.js";
import { FakeCatalog } from "./fake-catalog.js";
import { get } from "./http.js";
import { waitFor } from "../helpers/docker.js";

const TOKEN = "t".repeat(64);

async function server(t: { after: (fn: () => Promise<void>) => void }, over: Partial<typeof LIMITS> = {}, maxConnections = 100) {
  const saved = { ...LIMITS };
  Object.assign(LIMITS, over);
  const catalog = new FakeCatalog();
  const qs = new QueryServer({ catalog, lookupToken: (t) => (t === TOKEN ? "web" : undefined), staleAfterSecs: () => 30, pollDefaultTimeoutSecs: () => 60, maxConnections });
  Object.assign(LIMITS, saved);
  const dir = await mkdtemp(join(tmpdir(), "stevedore-q-limits-"));
  const sock = join(dir, "q.sock");
  assert.ok((await listenUnix(qs.server, sock, 0o666, "query")).ok);
  t.after(async () => {
    catalog.releaseWaiters();
    qs.closeAllConnections();
    await new Promise((r) => qs.server.close(r));
    await rm(dir, { recursive: true, force: true });
  });
  return { sock, catalog };
}

/** write raw bytes, collect everything until the server closes */
function raw(sock: string, data: string, timeoutMs = 15_000): Promise<{ text: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const s = connect(sock);
    let text = "";
    const timer = setTimeout(() => (s.destroy(), reject(new Error(`still open after ${timeoutMs} ms: ${text}`))), timeoutMs);
    s.on("connect", () => s.write(data));
    s.setEncoding("utf8").on("data", (c: string) => (text += c));
    s.on("close", () => (clearTimeout(timer), resolve({ text, ms: performance.now() - t0 })));
    s.on("error", () => {});
  });
}

test("request headers over 16 KiB → 431 JSON", async (t) => {
  const { sock } = await server(t);
  const r = await raw(sock, `GET /healthz HTTP/1.1\r\nX-Big: ${"a".repeat(17 * 1024)}\r\n\r\n`);
  assert.match(r.text, /^HTTP\/1.1 431 /);
  assert.match(r.text, /\{"error":"request headers too large"\}$/);
  const ok = await raw(sock, `GET /healthz HTTP/1.1\r\nX-Big: ${"a".repeat(15 * 1024)}\r\nConnection: close\r\n\r\n`);
  assert.match(ok.text, /^HTTP\/1.1 200 /);
});

test("headers that never finish are cut at the headers timeout; a long-poll outlives it", async (t) => {
  const { sock } = await server(t, { headersTimeoutMs: 300 });
  const slow = await raw(sock, "GET /services HTTP/1.1\r\nAuthorization: Bearer x");
  assert.match(slow.text, /^HTTP\/1.1 408 /);
  assert.ok(slow.ms < 5000, `cut after ${slow.ms} ms (set: 300 ms; default: 10 s)`);
  const t0 = performance.now();
  const poll = await get(sock, "/poll?timeout=1", { token: TOKEN });
  assert.equal(poll.status, 200);
  assert.equal(poll.json.changed, false);
  assert.ok(performance.now() - t0 >= 950);
});

test("an idle keep-alive connection is closed after the keep-alive timeout", async (t) => {
  const { sock } = await server(t, { keepAliveTimeoutMs: 300 });
  const r = await raw(sock, "GET /healthz HTTP/1.1\r\n\r\n");
  assert.match(r.text, /^HTTP\/1.1 200 /);
  // set: 300 ms; the default would close it after 5 s
  assert.ok(r.ms >= 250 && r.ms < 4000, `closed after ${r.ms} ms`);
});

test("connections beyond query_max_connections are refused", async (t) => {
  const { sock, catalog } = await server(t, {}, 2);
  const rev = catalog.publish([]);
  // two clients busy in long polls hold both slots: a third is closed without an answer
  const held: Socket[] = [];
  t.after(async () => held.forEach((s) => s.destroy()));
  for (const n of [1, 2]) {
    const s = connect(sock);
    s.on("error", () => {});
    held.push(s);
    await new Promise((r) => s.once("connect", r));
    s.write(`GET /poll?since=${rev.ts}&timeout=60 HTTP/1.1\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);
    await waitFor("the poll waits", () => catalog.waiterCount() === n);
  }
  const third = await raw(sock, "GET /healthz HTTP/1.1\r\n\r\n");
  assert.equal(third.text, "", "the third connection is closed without an answer");
  held[0]!.destroy();
  await waitFor("a free slot serves again", async () => /^HTTP\/1.1 200 /.test((await raw(sock, "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")).text));
});

test("idle connections at query_max_connections make room for new clients (oldest first)", async (t) => {
  const { sock } = await server(t, {}, 2);
  const held = [connect(sock), connect(sock), connect(sock), connect(sock)];
  t.after(async () => held.forEach((s) => s.destroy()));
  held.forEach((s) => s.on("error", () => {}));
  for (let i = 0; i < 5; i++) assert.match((await raw(sock, "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")).text, /^HTTP\/1.1 200 /);
});

test("malformed requests get 400 (unknown codings 501) in the JSON error shape, then the connection closes", async (t) => {
  const { sock } = await server(t);
  for (const [req, status, error] of [
    ["GET /healthz HTTP/9.9\r\n\r\n", 400, "bad request"],
    ["GET /healthz HTTP/1.1\r\nBad Name: x\r\n\r\n", 400, "bad request"],
    ["GET /healthz HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "bad request"],
    ["POST /healthz HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "unsupported transfer coding"],
  ] as const) {
    const r = await raw(sock, req); // resolves when the server closes
    assert.match(r.text, new RegExp(`^HTTP/1.1 ${status} `), req);
    assert.match(r.text, /Content-Type: application\/json/);
    assert.ok(r.text.endsWith(JSON.stringify({ error })), r.text);
  }
});

test("a long-poll client that half-closes has gone: its waiter leaves at once", async (t) => {
  const { sock, catalog } = await server(t);
  const rev = catalog.publish([]);
  const s = connect(sock);
  t.after(() => void s.destroy());
  s.on("error", () => {});
  await new Promise((r) => s.once("connect", r));
  s.write(`GET /poll?since=${rev.ts}&timeout=60 HTTP/1.1\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);
  await waitFor("the poll waits", () => catalog.waiterCount() === 1);
  s.end();
  await waitFor("the waiter left", () => catalog.waiterCount() === 0, 5000); // not the poll's 60 s
});
