// "Answer first, then linger" on the JSON API server: an answer before the end of a request body
// (401, 413, an upload not needed) goes out at once; the rest of the body is read and dropped
// after it, within bytes and time; a body that ends within them leaves the connection usable;
// else our side shuts down after the answer and reads go on until the client closes or the time
// is up, so that the client reads the answer and not a reset.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApiServer, HttpError, type ApiLimits, type ApiServer } from "../../src/http/index.js";
import { setLogSink } from "../../src/log.js";
import { waitFor } from "../helpers/docker.js";
import { rawClient, send } from "../helpers/raw-socket.js";

setLogSink(() => {});

const LIMITS: ApiLimits = { maxBodyBytes: 1024, maxConnections: 50, headMs: 5000, idleMs: 5000, maxHeaderBytes: 8192 };
const BIG = 64 * 1024 * 1024;

async function serve(limits: Partial<ApiLimits> = {}): Promise<{ api: ApiServer; port: number; close(): Promise<void> }> {
  const api = createApiServer({
    name: "linger-test",
    listen: "127.0.0.1:0",
    routes: [
      // answers without reading the body (Shaman's 208 for a stored file)
      { method: "POST", path: "/early", handler: () => ({ status: 208 }) },
      { method: "GET", path: "/ok", handler: () => ({ status: 200, body: { ok: true } }) },
      { method: "POST", path: "/json", handler: async (req) => ({ status: 200, body: await req.json() }) },
    ],
    before: (req) => {
      if (req.header("x-key") !== "good") throw new HttpError(401, "no");
    },
    limits: () => ({ ...LIMITS, ...limits }),
  });
  await api.start();
  return { api, port: Number(api.address.split(":").pop()), close: () => api.stop(false, 0) };
}

const raw = rawClient;

const head = (path: string, length: number | "chunked", key = "good") =>
  `POST ${path} HTTP/1.1\r\nHost: x\r\nX-Key: ${key}\r\n${length === "chunked" ? "Transfer-Encoding: chunked" : `Content-Length: ${length}`}\r\n\r\n`;

/** write, waiting for the socket to take it */

test("answer first: a 401 comes while the client has sent 1 KiB of a 64 MiB body and waits; Connection: close, then the close lingers without a reset", async () => {
  const { port, close } = await serve();
  try {
    const c = await raw(port);
    await send(c.s, head("/json", BIG, "bad") + "x".repeat(1024));
    // nothing more is sent until the answer is in: a server that drained first would never answer
    await waitFor("the answer before the body", () => c.text().endsWith('{"error":"no"}'), 3000);
    assert.match(c.text(), /^HTTP\/1.1 401 /);
    assert.match(c.text(), /\r\nConnection: close\r\n/);
    await waitFor("our side shut down after the answer", () => c.ended(), 3000);
    // the server still reads and drops: what the client sends now is no reset
    for (let i = 0; i < 16; i++) await send(c.s, Buffer.alloc(64 * 1024));
    assert.equal(c.closed(), false, "kept until the client closes (or the linger time)");
    c.s.end();
    await waitFor("closed after the client", () => c.closed(), 3000);
    assert.equal(c.error(), undefined, "no reset");
  } finally {
    await close();
  }
});

test("keep-alive: the rest of a body (under the bound) arriving after the early answer is dropped and the next request is served on the same connection", async () => {
  const { port, close } = await serve();
  try {
    const c = await raw(port);
    await send(c.s, head("/early", 200_000) + "x".repeat(1000));
    await waitFor("208 before the body", () => /\r\n\r\n$/.test(c.text()), 3000);
    assert.match(c.text(), /^HTTP\/1.1 208 /);
    assert.doesNotMatch(c.text(), /Connection: close/i);
    const first = c.text().length;
    // the rest of the body and, pipelined behind it, the next request
    await send(c.s, Buffer.concat([Buffer.alloc(199_000, 0x78), Buffer.from("GET /ok HTTP/1.1\r\nHost: x\r\nX-Key: good\r\n\r\n")]));
    await waitFor("the next answer", () => c.text().endsWith('{"ok":true}'), 3000);
    assert.match(c.text().slice(first), /^HTTP\/1.1 200 /);
    // a JSON body refused after part of it was read (413 past maxBodyBytes), then drained: still usable
    await send(c.s, head("/json", "chunked") + "500\r\n" + "1".repeat(1280) + "\r\n");
    await waitFor("413", () => c.text().includes("413 "), 3000);
    await send(c.s, "400\r\n" + "1".repeat(1024) + "\r\n0\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\nX-Key: good\r\n\r\n");
    await waitFor("served after the chunked drain", () => c.text().split('{"ok":true}').length === 3, 3000);
    assert.equal(c.ended(), false);
    c.s.end();
    await waitFor("closed", () => c.closed(), 3000);
    assert.equal(c.error(), undefined);
  } finally {
    await close();
  }
});

test("a chunked body past the byte bound after a keep-alive answer: the close lingers (our FIN, reads go on), no reset", async () => {
  const { port, close } = await serve({ lingerBytes: 64 * 1024 });
  try {
    const c = await raw(port);
    await send(c.s, head("/early", "chunked") + "10\r\n" + "y".repeat(16) + "\r\n");
    await waitFor("208", () => /\r\n\r\n$/.test(c.text()), 3000);
    assert.doesNotMatch(c.text(), /Connection: close/i, "the size was unknown: the connection was meant to stay");
    const chunk = "4000\r\n" + "z".repeat(0x4000) + "\r\n";
    for (let i = 0; i < 8 && !c.ended(); i++) await send(c.s, chunk);
    await waitFor("our side shut down past 64 KiB", () => c.ended(), 3000);
    await send(c.s, chunk); // still read and dropped
    c.s.end();
    await waitFor("closed", () => c.closed(), 3000);
    assert.equal(c.error(), undefined, "no reset");
  } finally {
    await close();
  }
});

/** one GET /ok on a new connection: its status */
async function getOk(port: number): Promise<number> {
  const c = await raw(port);
  await send(c.s, "GET /ok HTTP/1.1\r\nHost: x\r\nX-Key: good\r\nConnection: close\r\n\r\n");
  await waitFor("an answer", () => c.ended() || c.closed(), 3000);
  c.s.destroy();
  return Number(/^HTTP\/1.1 (\d+) /.exec(c.text())?.[1] ?? 0);
}

test("a client that stops sending is closed at the linger time, holding its admitted slot until then (keep-alive drain and closing linger)", async () => {
  const LINGER_MS = 400;
  const { port, close } = await serve({ lingerMs: LINGER_MS, maxConnections: 1, maxPendingConnections: 4 });
  try {
    for (const length of [100_000, BIG]) {
      const c = await raw(port);
      await send(c.s, head("/early", length) + "x".repeat(10));
      await waitFor("208", () => /\r\n\r\n$/.test(c.text()), 3000);
      const answered = performance.now();
      assert.equal(/Connection: close/i.test(c.text()), length === BIG, `keep-alive only when the rest is under the bound (${length})`);
      // the one admitted slot stays this connection's until it is closed, then is free again
      const statuses: number[] = [];
      await waitFor(`the slot freed at the linger time (${length})`, async () => {
        statuses.push(await getOk(port));
        return statuses.at(-1) === 200;
      }, 5000, 25);
      const freed = performance.now() - answered;
      assert.equal(statuses[0], 503, "held while lingering");
      assert.ok(freed >= LINGER_MS - 50, `freed after ${Math.round(freed)} ms`);
      assert.ok(c.ended(), "our side closed");
      c.s.destroy();
    }
  } finally {
    await close();
  }
});

function curl(args: string[]): Promise<{ code: number; status: number; uploaded: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_upload}", ...args], { encoding: "utf8" }, (err, stdout, stderr) => {
      const [status, uploaded] = stdout.trim().split(" ").map(Number);
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, status: status ?? 0, uploaded: uploaded ?? 0, stderr });
    });
  });
}

test("curl: 401 and 413 before a 64 MiB body reach the client (exit 0); with Expect: 100-continue it sends no body (no 100 before the answer), without it stops sending", async () => {
  const { port, close } = await serve();
  const dir = await mkdtemp(join(tmpdir(), "stevedore-linger-"));
  try {
    const file = join(dir, "big.bin");
    await writeFile(file, Buffer.alloc(BIG));
    for (const expect of [[], ["-H", "Expect:"]]) {
      for (const [key, status] of [["bad", 401], ["good", 413]] as const) {
        const r = await curl([...expect, "-H", `X-Key: ${key}`, "-H", "Content-Type: application/json", "--data-binary", `@${file}`, `http://127.0.0.1:${port}/json`]);
        assert.deepEqual([r.code, r.status], [0, status], `${expect.join(" ")} ${key}: ${r.stderr}`);
        if (expect.length === 0) assert.equal(r.uploaded, 0, "answered before any 100 Continue: the body was never sent");
        else assert.ok(r.uploaded < BIG, `curl stopped sending (${r.uploaded} bytes)`);
      }
    }
  } finally {
    await close();
    await rm(dir, { recursive: true, force: true });
  }
});
