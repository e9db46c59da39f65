// The JSON API server over real sockets: routing (404, 405 + Allow, decoded and checked params),
// bounded bodies, the before hook, error mapping, HEAD, keep-alive, connection limit, TLS, the
// hand-over option, request logs, graceful stop.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Agent, request, type IncomingHttpHeaders } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect, type Server, type Socket } from "node:net";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { chmod, lstat, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApiServer, HttpError, type ApiLimits, type ApiServer, type ApiServerOptions } from "../../src/http/index.js";
import { setLogLevel, setLogSink } from "../../src/log.js";
import { waitFor } from "../helpers/docker.js";

setLogSink(() => {}); // the tests that look at logs capture them

const LIMITS: ApiLimits = { maxBodyBytes: 1024, maxConnections: 50, headMs: 5000, idleMs: 5000, maxHeaderBytes: 8192 };

class Conflict extends Error {}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
  reused: boolean;
}

function call(port: number, method: string, path: string, opts: { headers?: Record<string, string>; body?: Buffer | string | Buffer[]; agent?: Agent } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path, headers: opts.headers, agent: opts.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject); // cut mid-answer
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json, reused: req.reusedSocket });
      });
    });
    req.on("error", reject);
    if (Array.isArray(opts.body)) {
      for (const b of opts.body) req.write(b); // no Content-Length: chunked
      req.end();
    } else req.end(opts.body);
  });
}

/** a raw client: what it received so far, and whether the server closed */
function raw(port: number): Promise<{ s: Socket; text: () => string; closed: () => boolean }> {
  return new Promise((resolve, reject) => {
    let text = "";
    let closed = false;
    const s = connect(port, "127.0.0.1", () => resolve({ s, text: () => text, closed: () => closed }));
    s.setEncoding("latin1").on("data", (c: string) => (text += c));
    s.on("error", () => {});
    s.on("close", () => (closed = true));
    s.once("error", reject);
  });
}

const ID = /^[a-z0-9 ]{1,20}$/;

function routes(): ApiServerOptions["routes"] {
  return [
    { method: "GET", path: "/items/:id", handler: (req) => ({ status: 200, body: { id: req.params.id, q: req.query.get("q"), user: req.user ?? null } }) },
    { method: "DELETE", path: "/items/:id", handler: () => ({ status: 204 }) },
    { method: "POST", path: "/items", handler: async (req) => ({ status: 201, body: { got: await req.json() } }) },
    { method: "POST", path: "/raw", handler: async (req) => ({ status: 200, body: (await req.body(16)).toString() }) },
    { method: "POST", path: "/upload", handler: async (req) => {
      let n = 0;
      for await (const c of req.stream(64 * 1024)) n += (c as Buffer).length;
      return { status: 200, body: { bytes: n } };
    } },
    { method: "GET", path: "/conflict", handler: () => { throw new Conflict("taken"); } },
    { method: "GET", path: "/bug", handler: () => { throw new TypeError("secret detail"); } },
    { method: "GET", path: "/teapot", handler: () => { throw new HttpError(418, "short and stout", { "X-Why": "tea" }); } },
    { method: "GET", path: "/text", handler: () => ({ status: 200, body: "hello", headers: { "X-Extra": "1" } }) },
  ];
}

async function serve(extra: Partial<ApiServerOptions> = {}): Promise<{ api: ApiServer; port: number; close(): Promise<void> }> {
  const api = createApiServer({
    name: "test",
    listen: "127.0.0.1:0",
    routes: routes(),
    params: { id: ID },
    errorStatus: (err) => (err instanceof Conflict ? { status: 409, message: err.message, headers: { "X-Conflict": "yes" } } : undefined),
    limits: () => LIMITS,
    ...extra,
  });
  await api.start();
  assert.equal(api.status().state, "listening", "listening");
  return { api, port: Number(api.address.split(":").pop()), close: () => api.stop(false, 0) };
}

test("routing: params percent-decoded and checked, query, 404 and 405 with Allow, one JSON error shape", async () => {
  const { port, close } = await serve();
  try {
    const r = await call(port, "GET", "/items/a%20b?q=x%26y");
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-type"], "application/json");
    assert.deepEqual(r.json, { id: "a b", q: "x&y", user: null });
    for (const path of ["/items/UPPER", "/items/%zz", "/items/a%2Fb", "/items/", "/items/a/b", "/nothing", "/"]) {
      const nf = await call(port, "GET", path);
      assert.equal(nf.status, 404, path);
      assert.equal(typeof nf.json.error, "string", path);
      assert.deepEqual(Object.keys(nf.json), ["error"]);
    }
    const m = await call(port, "PUT", "/items/x");
    assert.equal(m.status, 405);
    assert.equal(m.headers.allow, "GET, DELETE");
    assert.match(m.json.error, /PUT not allowed/);
    assert.equal((await call(port, "DELETE", "/items/x")).status, 204);
    const t = await call(port, "GET", "/text");
    assert.deepEqual([t.status, t.text, t.headers["content-type"], t.headers["x-extra"]], [200, "hello", "text/plain; charset=utf-8", "1"]);
  } finally {
    await close();
  }
});

test("bodies: JSON parsed; 415 wrong type; 400 bad JSON; 413 declared and streamed, the rest dropped after the answer", async () => {
  const { port, close } = await serve();
  try {
    const ok = await call(port, "POST", "/items", { headers: { "Content-Type": "application/json" }, body: '{"a":1}' });
    assert.deepEqual([ok.status, ok.json], [201, { got: { a: 1 } }]);
    const noType = await call(port, "POST", "/items", { body: "[1]" });
    assert.deepEqual([noType.status, noType.json], [201, { got: [1] }]);
    const wrongType = await call(port, "POST", "/items", { headers: { "Content-Type": "text/plain" }, body: "{}" });
    assert.equal(wrongType.status, 415);
    assert.match(wrongType.json.error, /application\/json/);
    const bad = await call(port, "POST", "/items", { body: "{nope" });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error, /invalid JSON/);
    const declared = await call(port, "POST", "/items", { body: "x".repeat(2000) });
    assert.equal(declared.status, 413);
    assert.match(declared.json.error, /larger than 1024 bytes/);
    const agent = new Agent({ keepAlive: true });
    const streamed = await call(port, "POST", "/items", { body: Array.from({ length: 10 }, () => Buffer.alloc(300, 32)), agent });
    agent.destroy();
    assert.equal(streamed.status, 413);
    assert.equal(streamed.headers.connection, undefined, "the body was drained: the connection stays usable");
    const small = await call(port, "POST", "/raw", { body: "x".repeat(17) });
    assert.equal(small.status, 413, "a handler's own limit");
    assert.match(small.json.error, /larger than 16 bytes/);
    assert.equal((await call(port, "POST", "/raw", { body: "0123456789abcdef" })).text, "0123456789abcdef");
  } finally {
    await close();
  }
});

test("raw streamed body: backpressure pauses the socket while the handler does not read; 413 past the limit", async () => {
  let paused = false;
  let proceed!: () => void;
  const gate = new Promise<void>((r) => (proceed = r));
  const { port, close } = await serve({
    routes: [{ method: "POST", path: "/slow", handler: async (req) => {
      const s = req.stream(8 * 1024 * 1024);
      await waitFor("socket paused by backpressure", () => req.inc.socket.isPaused());
      paused = true;
      await gate;
      let n = 0;
      for await (const c of s) n += (c as Buffer).length;
      return { status: 200, body: { bytes: n } };
    } }, ...routes()],
  });
  try {
    const pending = call(port, "POST", "/slow", { body: Array.from({ length: 64 }, () => Buffer.alloc(64 * 1024)) });
    await waitFor("handler saw the pause", () => paused);
    proceed();
    const r = await pending;
    assert.deepEqual([r.status, r.json], [200, { bytes: 4 * 1024 * 1024 }]);
    const over = await call(port, "POST", "/upload", { body: Array.from({ length: 3 }, () => Buffer.alloc(30 * 1024)) });
    assert.equal(over.status, 413);
    const declared = await call(port, "POST", "/upload", { body: Buffer.alloc(65 * 1024) });
    assert.equal(declared.status, 413);
    assert.deepEqual((await call(port, "POST", "/upload", { body: Buffer.alloc(1000) })).json, { bytes: 1000 });
  } finally {
    await close();
  }
});

test("a malformed request gets the JSON 400 and the connection closes", async () => {
  const { port, close } = await serve();
  try {
    const c = await raw(port);
    c.s.write("NOT AN HTTP REQUEST\r\n\r\n");
    await waitFor("closed", () => c.closed());
    assert.match(c.text(), /^HTTP\/1.1 400 /);
    assert.match(c.text(), /Content-Type: application\/json/);
    assert.ok(c.text().endsWith('{"error":"bad request"}'), c.text());
  } finally {
    await close();
  }
});

test("before hook: runs before routing, can answer (401 even for unknown paths) or set req.user; a body is dropped after the answer", async () => {
  const seen: string[] = [];
  const { port, close } = await serve({
    before(req) {
      seen.push(`${req.method} ${req.path}`);
      const key = req.header("x-KEY");
      if (key === undefined) return { status: 401, body: { error: "who are you" } };
      if (key !== "good") throw new HttpError(401, "bad key", { "WWW-Authenticate": "Key" });
      req.user = { name: "ann" };
    },
  });
  try {
    const none = await call(port, "GET", "/no/such/route?secret=1");
    assert.deepEqual([none.status, none.json], [401, { error: "who are you" }]);
    const agent = new Agent({ keepAlive: true });
    const bad = await call(port, "POST", "/items", { headers: { "X-Key": "bad" }, body: "x".repeat(100_000), agent });
    agent.destroy();
    assert.deepEqual([bad.status, bad.json, bad.headers["www-authenticate"]], [401, { error: "bad key" }, "Key"]);
    assert.equal(bad.headers.connection, undefined, "a body under the linger bound is dropped after the answer, the connection stays");
    const ok = await call(port, "GET", "/items/x", { headers: { "X-Key": "good" } });
    assert.deepEqual(ok.json.user, { name: "ann" });
    assert.deepEqual(seen, ["GET /no/such/route", "POST /items", "GET /items/x"]);
  } finally {
    await close();
  }
});

test("a request failed before its body, with more body to come than the linger bound: answered at once with Connection: close", async () => {
  const { port, close } = await serve({ before: () => { throw new HttpError(401, "no"); } });
  try {
    const c = await raw(port);
    c.s.write(`POST /items HTTP/1.1\r\nHost: x\r\nContent-Length: ${64 * 1024 * 1024}\r\n\r\n`);
    c.s.write(Buffer.alloc(256 * 1024)); // and no more until the answer (see linger.test.ts)
    await waitFor("the whole answer", () => c.text().endsWith('{"error":"no"}'), 15_000);
    assert.match(c.text(), /^HTTP\/1.1 401 /);
    assert.match(c.text(), /\r\nConnection: close\r\n/);
    c.s.end();
    await waitFor("closed", () => c.closed(), 15_000);
  } finally {
    await close();
  }
});

test("errors: HttpError keeps status and headers; the domain mapper; unknown → 500 without the message, logged", async () => {
  const lines: string[] = [];
  const restore = setLogSink((l) => lines.push(l));
  const { port, close } = await serve();
  try {
    const tea = await call(port, "GET", "/teapot");
    assert.deepEqual([tea.status, tea.json, tea.headers["x-why"]], [418, { error: "short and stout" }, "tea"]);
    const conflict = await call(port, "GET", "/conflict");
    assert.deepEqual([conflict.status, conflict.json, conflict.headers["x-conflict"]], [409, { error: "taken" }, "yes"]);
    const bug = await call(port, "GET", "/bug");
    assert.deepEqual([bug.status, bug.json], [500, { error: "internal error" }]);
    assert.ok(lines.some((l) => /level=error .*test API request failed.*secret detail/.test(l)), lines.join("\n"));
  } finally {
    restore();
    await close();
  }
});

test("HEAD: served by the GET route, same headers, no body; errors too", async () => {
  const { port, close } = await serve();
  try {
    const get = await call(port, "GET", "/items/abc");
    const c = await raw(port);
    c.s.write("HEAD /items/abc HTTP/1.1\r\nHost: x\r\n\r\nHEAD /nothing HTTP/1.1\r\nHost: x\r\n\r\nGET /items/abc HTTP/1.1\r\nHost: x\r\n\r\n");
    await waitFor("three answers", () => c.text().split("HTTP/1.1 ").length - 1 === 3 && c.text().endsWith(get.text));
    const [head, notFound] = c.text().split("HTTP/1.1 ").slice(1);
    assert.match(head!, /^200 OK\r\n/);
    assert.match(head!, new RegExp(`\r\nContent-Length: ${get.text.length}\r\n`));
    assert.ok(head!.endsWith("\r\n\r\n"), "no body after a HEAD answer");
    assert.match(notFound!, /^404 /);
    assert.ok(notFound!.endsWith("\r\n\r\n"));
    c.s.destroy();
  } finally {
    await close();
  }
});

test("keep-alive: requests reuse one connection", async () => {
  const { port, close } = await serve();
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const a = await call(port, "GET", "/items/a", { agent });
    const b = await call(port, "GET", "/items/b", { agent });
    const e = await call(port, "GET", "/nothing", { agent });
    const c = await call(port, "GET", "/items/c", { agent });
    assert.deepEqual([a.reused, b.reused, e.reused, c.reused], [false, true, true, true]);
    assert.equal(c.json.id, "c");
  } finally {
    agent.destroy();
    await close();
  }
});

test("maxConnections: a request on a connection past the limit gets a JSON 503 and the connection closes; the others are served", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let waiting = 0;
  const { port, close } = await serve({
    limits: () => ({ ...LIMITS, maxConnections: 2 }),
    routes: [{ method: "GET", path: "/wait", handler: async () => (waiting++, await gate, { status: 200, body: { ok: true } }) }],
  });
  try {
    const first = call(port, "GET", "/wait");
    const second = call(port, "GET", "/wait");
    await waitFor("two requests in flight", () => waiting === 2);
    const third = await raw(port);
    third.s.write("GET /wait HTTP/1.1\r\nHost: x\r\n\r\n");
    await waitFor("the third connection closed", () => third.closed());
    assert.match(third.text(), /^HTTP\/1.1 503 [^]*Connection: close[^]*\{"error":"too many connections"\}$/);
    assert.equal(waiting, 2);
    release();
    assert.deepEqual([(await first).status, (await second).status], [200, 200]);
  } finally {
    release();
    await close();
  }
});

test("silent clients: 2x the connection cap of them never keep keyed requests out; a fresh connection has headMs for its head", async () => {
  const cap = 20;
  const { port, close } = await serve({
    limits: () => ({ ...LIMITS, maxConnections: cap, headMs: 1500 }),
    before: (req) => (req.header("x-key") === "good" ? undefined : { status: 401, body: { error: "no key" } }),
  });
  const silent: Awaited<ReturnType<typeof raw>>[] = [];
  try {
    for (let i = 0; i < 2 * cap; i++) silent.push(await raw(port));
    // unkeyed requests do not take a client's slot either
    for (let i = 0; i < cap; i++) assert.equal((await call(port, "GET", "/items/x", { headers: { "X-Key": "bad" } })).status, 401);
    const keyed = await Promise.all(Array.from({ length: 3 * cap }, () => call(port, "GET", "/items/x", { headers: { "X-Key": "good" } }).then((r) => r.status, (e: Error) => e.message)));
    assert.deepEqual(keyed, Array(3 * cap).fill(200));
    // the silent ones that were not pushed out are closed unanswered once headMs is over
    const started = performance.now();
    await waitFor("silent connections closed", () => silent.every((c) => c.closed()), 5000);
    assert.ok(performance.now() - started < 4000);
    assert.ok(silent.every((c) => c.text() === ""));
    // a head started but not finished in time: the JSON 408
    const slow = await raw(port);
    slow.s.write("GET /items/x HT");
    await waitFor("408", () => slow.closed());
    assert.match(slow.text(), /^HTTP\/1.1 408 [^]*\{"error":"request timeout"\}$/);
  } finally {
    for (const c of silent) c.s.destroy();
    await close();
  }
});

test("every malformed request gets a JSON answer: bad header byte, CONNECT, non-ASCII target, long head, bad chunk size; HEAD without body", async () => {
  const { port, close } = await serve();
  const cases: [string, number][] = [
    ["GET /items/x HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01b\r\n\r\n", 400],
    ["GET /items/x HTTP/1.1\r\nHo\x7fst: x\r\n\r\n", 400],
    ["CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 400],
    ["GET /items/\xed\xa0 HTTP/1.1\r\nHost: x\r\n\r\n", 400],
    ["GET /items/\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400],
    ["GET /items/a b HTTP/1.1\r\nHost: x\r\n\r\n", 400],
    [`GET /items/x HTTP/1.1\r\nHost: x\r\nX-Long: ${"a".repeat(10_000)}\r\n\r\n`, 431],
    ["POST /items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", 400],
    ["POST /items HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\nzz\r\n", 400],
    ["POST /items HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501],
  ];
  try {
    for (const [request, status] of cases) {
      const c = await raw(port);
      c.s.write(Buffer.from(request, "latin1"));
      await waitFor("closed", () => c.closed());
      const text = c.text();
      assert.match(text, new RegExp(`^HTTP/1.1 ${status} `), JSON.stringify(request.slice(0, 60)));
      assert.match(text, /Content-Type: application\/json/);
      const body = text.slice(text.indexOf("\r\n\r\n") + 4);
      assert.equal(typeof JSON.parse(body).error, "string", body);
    }
    // a refused HEAD: the same head, no body
    for (const request of ["HEAD /items/\xed\xa0 HTTP/1.1\r\nHost: x\r\n\r\n", "HEAD /items/x HTTP/1.1\r\nX-Bad: \x01\r\n\r\n", `HEAD /x HTTP/1.1\r\nX: ${"a".repeat(10_000)}\r\n\r\n`]) {
      const c = await raw(port);
      c.s.write(Buffer.from(request, "latin1"));
      await waitFor("closed", () => c.closed());
      assert.match(c.text(), /^HTTP\/1.1 4\d\d [^]*Content-Length: [1-9][^]*\r\n\r\n$/, c.text());
    }
  } finally {
    await close();
  }
});

test("TLS: the same API over HTTPS", async () => {
  const dir = await mkdtemp(join(tmpdir(), "api-tls-"));
  try {
    const certFile = join(dir, "cert.pem");
    const keyFile = join(dir, "key.pem");
    await promisify(execFile)("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost", "-days", "1", "-keyout", keyFile, "-out", certFile]);
    const { port, close } = await serve({ tls: { certFile, keyFile } });
    try {
      const get = (path: string) => new Promise<{ status: number; body: string }>((resolve, reject) => {
        httpsRequest({ host: "127.0.0.1", port, path, rejectUnauthorized: false, agent: false }, (res) => {
          let body = "";
          res.setEncoding("utf8").on("data", (c: string) => (body += c)).on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        }).on("error", reject).end();
      });
      assert.deepEqual(await get("/items/tls"), { status: 200, body: '{"id":"tls","q":null,"user":null}' });
      assert.equal((await get("/nothing")).status, 404);
      // plain HTTP on the TLS port gets no answer
      await assert.rejects(call(port, "GET", "/items/x"));
    } finally {
      await close();
    }
    const missing = createApiServer({ name: "test", listen: "127.0.0.1:0", tls: { certFile: join(dir, "none"), keyFile }, routes: [], limits: () => LIMITS });
    const lines: string[] = [];
    const restore = setLogSink((l) => lines.push(l));
    await missing.start().finally(restore);
    assert.equal(missing.status().state, "unavailable");
    assert.ok(lines.some((l) => /level=error msg="test API unavailable".*ENOENT/.test(l)), lines.join("\n"));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** curl over a Unix socket: status, lower-cased headers, body */
async function curlUnix(socket: string, method: string, path: string, body?: string): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const args = ["-sS", "-i", "--unix-socket", socket, "-X", method, `http://api${path}`];
  if (body !== undefined) args.push("-H", "Content-Type: application/json", "--data-binary", body);
  const { stdout } = await promisify(execFile)("curl", args);
  const end = stdout.indexOf("\r\n\r\n");
  const [statusLine, ...lines] = stdout.slice(0, end).split("\r\n");
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
  return { status: Number(statusLine!.split(" ")[1]), headers, body: stdout.slice(end + 4) };
}

test("Unix socket: the same JSON API and error shape over a socket made by the floor's Unix listener", async () => {
  const dir = await mkdtemp(join(tmpdir(), "api-unix-"));
  try {
    const path = join(dir, "api.sock");
    const inherited: [string, string][] = [];
    const { api, close } = await serve({ listen: path, socketMode: 0o600, inherit: async (_s, name, address) => (inherited.push([name, address]), false) });
    try {
      assert.deepEqual(inherited, [["test", path]], "the hand-over is asked for the path first");
      assert.equal(api.address, path);
      assert.deepEqual(api.status(), { state: "listening", address: path });
      assert.equal(api.listeners().get("test")?.address, path);
      const st = await lstat(path);
      assert.ok(st.isSocket());
      assert.equal(st.mode & 0o777, 0o600, "born with socketMode");
      const ok = await curlUnix(path, "GET", "/items/a%20b?q=x");
      assert.deepEqual([ok.status, ok.headers["content-type"], JSON.parse(ok.body)], [200, "application/json", { id: "a b", q: "x", user: null }]);
      assert.deepEqual(JSON.parse((await curlUnix(path, "POST", "/items", '{"a":1}')).body), { got: { a: 1 } });
      // the one error shape: {"error": "..."} with the status of each failure
      for (const [method, p, body, status] of [["GET", "/nothing", undefined, 404], ["PUT", "/items/x", undefined, 405], ["POST", "/items", "{nope", 400], ["GET", "/conflict", undefined, 409], ["GET", "/teapot", undefined, 418], ["GET", "/bug", undefined, 500]] as const) {
        const r = await curlUnix(path, method, p, body);
        assert.equal(r.status, status, `${method} ${p}`);
        assert.equal(r.headers["content-type"], "application/json");
        const json = JSON.parse(r.body);
        assert.deepEqual(Object.keys(json), ["error"]);
        assert.equal(typeof json.error, "string");
        if (status === 405) assert.equal(r.headers.allow, "GET, DELETE");
        if (status === 500) assert.equal(json.error, "internal error");
      }
      // a malformed request gets the JSON 400 from our HTTP/1.1 server side
      const garbage = await new Promise<string>((resolve, reject) => {
        let text = "";
        const s = connect(path, () => s.end("GET /items/x HTTP/1.1\r\nBad Header\r\n\r\n"));
        s.setEncoding("latin1").on("data", (c: string) => (text += c)).on("close", () => resolve(text)).on("error", reject);
      });
      assert.match(garbage, /^HTTP\/1\.1 400 [^]*\r\n\r\n\{"error":"[^"]+"\}$/);
      // a live socket is never taken over by a second server
      const second = createApiServer({ name: "second", listen: path, routes: [], limits: () => LIMITS });
      await second.start();
      assert.equal(second.status().state, "unavailable");
      assert.match(second.status().reason ?? "", /in use by another process/);
    } finally {
      await close();
    }
    await assert.rejects(lstat(path), /ENOENT/, "the path is removed at stop");
    // after a hand-over the path is the new master's: stop leaves it
    const handed = await serve({ listen: path, handedOver: () => true });
    await handed.close();
    assert.ok((await lstat(path)).isSocket(), "left in place for the new master");
    // the floor's rules: a directory others may write to is refused
    const open = join(dir, "open");
    await mkdir(open);
    await chmod(open, 0o777);
    const unsafe = createApiServer({ name: "unsafe", listen: join(open, "api.sock"), routes: [], limits: () => LIMITS });
    await unsafe.start();
    assert.equal(unsafe.status().state, "unavailable");
    assert.match(unsafe.status().reason ?? "", /writable by group or others/);
    const relative = createApiServer({ name: "rel", listen: "api.sock", routes: [], limits: () => LIMITS });
    await relative.start();
    assert.match(relative.status().reason ?? "", /host:port or an absolute socket path/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("graceful stop: no new connections, idle ones closed, the in-flight request finishes with Connection: close", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let entered = false;
  const { api, port } = await serve({
    routes: [{ method: "GET", path: "/wait", handler: async () => (entered = true, await gate, { status: 200, body: { done: true } }) }, ...routes()],
  });
  const idle = await raw(port);
  idle.s.write("GET /items/idle HTTP/1.1\r\nHost: x\r\n\r\n");
  await waitFor("idle connection answered", () => idle.text().endsWith('"user":null}'));
  const inFlight = call(port, "GET", "/wait");
  await waitFor("request in flight", () => entered);
  let stopped = false;
  const stopping = api.stop(true, performance.now() + 10_000).then(() => (stopped = true));
  await waitFor("idle connection closed", () => idle.closed());
  await assert.rejects(call(port, "GET", "/items/x"), /ECONNREFUSED/);
  assert.equal(stopped, false, "waits for the request in flight");
  release();
  const r = await inFlight;
  assert.deepEqual([r.status, r.json, r.headers.connection], [200, { done: true }, "close"]);
  await stopping;
  assert.deepEqual(api.status(), { state: "stopped", address: undefined });
});

test("stop at the deadline cuts what is still in flight", async () => {
  let entered = false;
  const { api, port } = await serve({ routes: [{ method: "GET", path: "/never", handler: () => void (entered = true) }] });
  const pending = call(port, "GET", "/never");
  await waitFor("request in flight", () => entered);
  await api.stop(true, performance.now() + 50);
  await assert.rejects(pending, /socket hang up|ECONNRESET/);
});

test("hand-over: inherit() is asked first; true = the socket is taken over, false = bind as usual; listeners() names it", async () => {
  const calls: [string, string][] = [];
  let taken: Server | undefined;
  const { api, close } = await serve({
    name: "core",
    inherit: async (server, name, address) => {
      calls.push([name, address]);
      taken = server;
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r)); // stands for the handed-over fd
      return true;
    },
  });
  try {
    assert.deepEqual(calls, [["core", "127.0.0.1:0"]]);
    const l = api.listeners().get("core");
    assert.equal(l?.server, taken);
    assert.equal(l?.address, "127.0.0.1:0");
    assert.equal((await call(Number(api.address.split(":").pop()), "GET", "/items/x")).status, 200);
  } finally {
    await close();
  }
  assert.equal(api.listeners().size, 0);
  const fresh = await serve({ inherit: async () => false });
  try {
    assert.equal((await call(fresh.port, "GET", "/items/y")).status, 200);
  } finally {
    await fresh.close();
  }
  const disabled = createApiServer({ name: "off", listen: "", routes: [], limits: () => LIMITS });
  await disabled.start();
  assert.deepEqual(disabled.status(), { state: "disabled", address: undefined });
});

test("request log at debug: method, path without the query, status, ms; no headers", async () => {
  const lines: string[] = [];
  const restore = setLogSink((l) => lines.push(l));
  setLogLevel("debug");
  const { port, close } = await serve();
  try {
    await call(port, "GET", "/items/x?token=hush", { headers: { Authorization: "Bearer hush" } });
    await call(port, "GET", "/nothing");
    await waitFor("two request lines", () => lines.filter((l) => /test API request"/.test(l)).length === 2);
    const reqLines = lines.filter((l) => /test API request"/.test(l));
    assert.match(reqLines[0]!, /^(time=\S+ )?level=debug .* method=GET path=\/items\/x status=200 ms=\d+$/);
    assert.match(reqLines[1]!, /path=\/nothing status=404/);
    assert.ok(!lines.some((l) => l.includes("hush")), lines.join("\n"));
  } finally {
    setLogLevel("info");
    restore();
    await close();
  }
});

test("a handler answering through req.inc (streaming); a failure after the head cuts the connection", async () => {
  const { port, close } = await serve({
    routes: [
      { method: "GET", path: "/events", handler: (req) => {
        req.inc.writeHead(200, "OK", ["Content-Type", "text/event-stream", "X-Peer", req.remoteAddress]);
        req.inc.write(Buffer.from("data: 1\n\n"));
        setImmediate(() => (req.inc.write(Buffer.from("data: 2\n\n")), req.inc.end()));
      } },
      { method: "GET", path: "/half", handler: (req) => {
        req.inc.writeHead(200, "OK", ["Content-Type", "text/plain"]);
        req.inc.write(Buffer.from("partial"));
        throw new Error("broke mid-answer");
      } },
    ],
  });
  try {
    const r = await call(port, "GET", "/events");
    assert.deepEqual([r.status, r.headers["content-type"], r.headers["x-peer"], r.text], [200, "text/event-stream", "127.0.0.1", "data: 1\n\ndata: 2\n\n"]);
    await assert.rejects(call(port, "GET", "/half"), /aborted|ECONNRESET|socket hang up/);
  } finally {
    await close();
  }
});
