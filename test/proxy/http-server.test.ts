// The proxy's client-facing HTTP/1.1 server behaviour, on raw TCP sockets: persistence,
// pipelining, HTTP/1.0, response framing (chunked, close-delimited, HEAD, 204/304), 100-continue,
// request bodies, strict parsing (400/501/431), timeouts (408, idle close), half-close, early
// backend answers, CONNECT and `Connection: close`. Routing, header rewriting, WebSocket and the
// node:http-client level checks are in routing.test.ts.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import type { IncomingMessage } from "node:http";
import { setTimeout as delay } from "node:timers/promises";
import { backend, startProxy, FakeState, type Backend, type TestProxy } from "./helpers.js";

const backends: Backend[] = [];
async function be(name: string, handler?: Parameters<typeof backend>[1]): Promise<Backend> {
  const b = await backend(name, handler);
  backends.push(b);
  return b;
}

const conns = new Set<Conn>();
function destroyConns(): void {
  for (const c of conns) c.destroy();
  conns.clear();
}

after(async () => {
  destroyConns();
  for (const b of backends) await b.close();
});

/** Run `fn` against a proxy for `state`; sockets and the proxy are cleaned up afterwards. */
async function withProxy(state: FakeState, config: string | undefined, fn: (p: TestProxy) => Promise<void>): Promise<void> {
  const p = await startProxy({ state, ...(config !== undefined ? { config } : {}) });
  try {
    await fn(p);
  } finally {
    destroyConns();
    await p.stop();
  }
}

/** One front `a.test` on backend `b`. */
function oneFront(b: Backend): FakeState {
  return new FakeState().front("A", "a.test").backend("A", b.port);
}

/** Collect a request body at a backend. */
function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c)).on("end", () => resolve(Buffer.concat(parts))).on("error", reject);
  });
}

const CRLF2 = Buffer.from("\r\n\r\n");

interface Resp {
  version: string;
  status: number;
  reason: string;
  /** lower-cased name, trimmed value; in order */
  headers: [string, string][];
  body: Buffer;
  /** how the body was delimited */
  framing: "none" | "length" | "chunked" | "close";
}

/** a header's values joined with ", ", or undefined */
function hdr(r: Resp, name: string): string | undefined {
  const v = r.headers.filter(([n]) => n === name).map(([, v]) => v);
  return v.length ? v.join(", ") : undefined;
}

/** the lower-cased tokens of a list header */
function tokens(r: Resp, name: string): string[] {
  return (hdr(r, name) ?? "").split(",").map((t) => t.trim().toLowerCase()).filter(Boolean);
}

/**
 * A raw client connection: everything the proxy sends is buffered; responses are parsed from the
 * buffer by the rules of RFC 9112 §6.3 (no body for 1xx/204/304/HEAD, chunked, Content-Length,
 * else until close). Every wait has a deadline and is woken by socket events, never by polling.
 */
class Conn {
  buf: Buffer = Buffer.alloc(0);
  /** the proxy closed the connection (FIN, reset or error) */
  ended = false;
  error: Error | undefined;
  private wakers = new Set<() => void>();

  private constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on("data", (c: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, c]) : c;
      this.wake();
    });
    const gone = () => {
      this.ended = true;
      this.wake();
    };
    socket.on("end", gone).on("close", gone).on("error", (e) => {
      this.error ??= e;
      gone();
    });
  }

  static open(port: number): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const s = connect(port, "127.0.0.1");
      const c = new Conn(s);
      conns.add(c);
      s.once("connect", () => resolve(c));
      s.once("error", reject);
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    for (const w of [...this.wakers]) w();
  }

  /** Write bytes (latin1 for strings); resolves once handed to the kernel (or the socket is gone). */
  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (this.ended || !this.socket.writable) return resolve();
      this.socket.write(typeof data === "string" ? Buffer.from(data, "latin1") : data, () => resolve());
    });
  }

  /** what is buffered and not parsed yet */
  rest(): string {
    return this.buf.toString("latin1");
  }

  /** Wait until ready() holds; throws after ms. */
  async until(what: string, ready: () => boolean, ms = 15_000): Promise<void> {
    const deadline = performance.now() + ms;
    while (!ready()) {
      const left = deadline - performance.now();
      if (left <= 0) {
        const got = JSON.stringify(this.rest().slice(0, 300));
        throw new Error(`timed out after ${ms} ms waiting for ${what}; unparsed bytes ${got}${this.ended ? " (connection closed)" : ""}`);
      }
      await new Promise<void>((resolve) => {
        const w = () => {
          clearTimeout(t);
          this.wakers.delete(w);
          resolve();
        };
        const t = setTimeout(w, left);
        this.wakers.add(w);
      });
    }
  }

  /** Wait for the proxy to close the connection. */
  closed(ms = 10_000): Promise<void> {
    return this.until("the proxy to close the connection", () => this.ended, ms);
  }

  /** Parse the next response (a 1xx is returned on its own). */
  async response(opts: { method?: string; ms?: number } = {}): Promise<Resp> {
    const ms = opts.ms ?? 15_000;
    await this.until("a response head", () => this.buf.indexOf(CRLF2) >= 0 || this.ended, ms);
    const end = this.buf.indexOf(CRLF2);
    if (end < 0)
      throw new Error(`connection closed before a complete response head; got ${JSON.stringify(this.rest().slice(0, 300))}${this.error ? ` (${this.error.message})` : ""}`);
    const lines = this.buf.subarray(0, end).toString("latin1").split("\r\n");
    this.buf = this.buf.subarray(end + 4);
    const m = /^HTTP\/(1\.[01]) (\d{3})(?: (.*))?$/.exec(lines[0]!);
    assert.ok(m, `bad status line ${JSON.stringify(lines[0])}`);
    const headers: [string, string][] = [];
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      assert.ok(colon > 0 && /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(line.slice(0, colon)), `bad response header line ${JSON.stringify(line)}`);
      headers.push([line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()]);
    }
    const status = Number(m[2]);
    const r: Resp = { version: m[1]!, status, reason: m[3] ?? "", headers, body: Buffer.alloc(0), framing: "none" };
    if (status < 200 || status === 204 || status === 304 || opts.method === "HEAD") return r;
    const te = hdr(r, "transfer-encoding");
    const cl = hdr(r, "content-length");
    if (te !== undefined) {
      assert.match(te, /(^|,)\s*chunked$/i, "a proxy response's final transfer coding is chunked");
      assert.equal(cl, undefined, "Content-Length together with Transfer-Encoding");
      r.framing = "chunked";
      r.body = await this.dechunk(ms);
    } else if (cl !== undefined) {
      assert.match(cl, /^\d+$/, `bad Content-Length ${cl}`);
      const n = Number(cl);
      await this.until(`${n} body bytes`, () => this.buf.length >= n || this.ended, ms);
      assert.ok(this.buf.length >= n, `connection closed after ${this.buf.length} of ${n} body bytes`);
      r.body = Buffer.from(this.buf.subarray(0, n));
      this.buf = this.buf.subarray(n);
      r.framing = "length";
    } else {
      await this.until("the end of a close-delimited body", () => this.ended, ms);
      r.body = this.buf;
      this.buf = Buffer.alloc(0);
      r.framing = "close";
    }
    return r;
  }

  private async line(ms: number): Promise<string> {
    await this.until("a chunk line", () => this.buf.indexOf("\r\n") >= 0 || this.ended, ms);
    const i = this.buf.indexOf("\r\n");
    assert.ok(i >= 0, "connection closed inside the chunked framing");
    const s = this.buf.subarray(0, i).toString("latin1");
    this.buf = this.buf.subarray(i + 2);
    return s;
  }

  private async dechunk(ms: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (;;) {
      const line = await this.line(ms);
      assert.match(line, /^[0-9a-fA-F]+[ \t]*(;.*)?$/, `bad chunk size line ${JSON.stringify(line)}`);
      const size = parseInt(line, 16);
      if (size === 0) {
        while ((await this.line(ms)) !== "");
        return Buffer.concat(parts);
      }
      await this.until("chunk data", () => this.buf.length >= size + 2 || this.ended, ms);
      assert.ok(this.buf.length >= size + 2, "connection closed inside a chunk");
      assert.equal(this.buf.subarray(size, size + 2).toString("latin1"), "\r\n", "chunk data not followed by CRLF");
      parts.push(Buffer.from(this.buf.subarray(0, size)));
      this.buf = this.buf.subarray(size + 2);
    }
  }

  /** Write `total` bytes with backpressure until done, stop() or a close; returns the bytes written. */
  async upload(total: number, stop: () => boolean, ms = 20_000): Promise<number> {
    const piece = Buffer.alloc(64 * 1024, 0x78);
    const deadline = performance.now() + ms;
    let sent = 0;
    while (sent < total && !stop() && !this.ended && this.socket.writable) {
      const n = Math.min(piece.length, total - sent);
      sent += n;
      if (this.socket.write(piece.subarray(0, n))) continue;
      // wait for drain, or for anything from the proxy (an answer, a close)
      await new Promise<void>((resolve, reject) => {
        const done = () => {
          clearTimeout(t);
          this.socket.off("drain", done);
          this.wakers.delete(done);
          resolve();
        };
        const t = setTimeout(() => {
          done();
          reject(new Error(`upload stalled after ${sent} bytes: the proxy neither reads nor answers nor closes`));
        }, Math.max(0, deadline - performance.now()));
        this.socket.once("drain", done);
        this.wakers.add(done);
      });
    }
    return sent;
  }
}

// ---- 1. keep-alive ------------------------------------------------------------------------

test("keep-alive: three sequential requests on one HTTP/1.1 connection are all answered", async () => {
  const b = await be("A");
  await withProxy(oneFront(b), undefined, async (p) => {
    const c = await Conn.open(p.httpPort);
    for (let i = 0; i < 3; i++) {
      await c.write(`GET /k${i} HTTP/1.1\r\nHost: a.test\r\n\r\n`);
      const r = await c.response();
      assert.equal(r.status, 200, `request ${i}`);
      assert.equal(r.version, "1.1");
      assert.equal(hdr(r, "x-backend"), "A");
      assert.equal(r.body.toString(), "A");
      assert.ok(!tokens(r, "connection").includes("close"), "an HTTP/1.1 connection persists by default");
      assert.equal(c.ended, false, `the connection is still open after request ${i}`);
    }
    assert.equal(c.rest(), "");
    assert.equal(b.hits, 3);
  });
});

// ---- 2. pipelining ------------------------------------------------------------------------

test("pipelining: requests written at once are answered in order, the slow first one first", async () => {
  const b = await be("P", (req, res) => {
    void readBody(req).then((body) => {
      const text = `${req.url}:${body.toString("latin1")}`;
      const answer = () => {
        res.writeHead(200, { "content-type": "text/plain", "content-length": String(Buffer.byteLength(text)) });
        res.end(text);
      };
      if (req.url === "/slow") setTimeout(answer, 200); // the backend is slow on this one
      else answer();
    });
  });
  await withProxy(oneFront(b), undefined, async (p) => {
    const c = await Conn.open(p.httpPort);
    await c.write(
      "GET /slow HTTP/1.1\r\nHost: a.test\r\n\r\n" +
        "POST /post HTTP/1.1\r\nHost: a.test\r\nContent-Length: 11\r\n\r\nGET /x HTTP" +
        "GET /last HTTP/1.1\r\nHost: a.test\r\n\r\n",
    );
    for (const expected of ["/slow:", "/post:GET /x HTTP", "/last:"]) {
      const r = await c.response();
      assert.equal(r.status, 200);
      assert.equal(r.body.toString("latin1"), expected, "responses come in request order; a body is not a request");
    }
    assert.equal(c.rest(), "");
    assert.equal(c.ended, false);
    assert.equal(b.hits, 3);
  });
});

// ---- 3. HTTP/1.0 ---------------------------------------------------------------------------

test("HTTP/1.0 without keep-alive: the response arrives, then the proxy closes", async () => {
  const b = await be("A");
  await withProxy(oneFront(b), undefined, async (p) => {
    const c = await Conn.open(p.httpPort);
    await c.write("GET /ten HTTP/1.0\r\nHost: a.test\r\n\r\n");
    const r = await c.response();
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), "A");
    assert.equal(hdr(r, "transfer-encoding"), undefined, "no chunked framing towards an HTTP/1.0 client");
    await c.closed();
    assert.equal(c.rest(), "");
  });
});

test("HTTP/1.0 with Connection: keep-alive and a Content-Length response: the connection stays open", async () => {
  const b = await be("L", (req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "text/plain", "content-length": String(Buffer.byteLength(req.url!)) });
      res.end(req.url);
    });
  });
  await withProxy(oneFront(b), undefined, async (p) => {
    const c = await Conn.open(p.httpPort);
    for (const path of ["/one", "/two"]) {
      await c.write(`GET ${path} HTTP/1.0\r\nHost: a.test\r\nConnection: keep-alive\r\n\r\n`);
      const r = await c.response();
      assert.equal(r.status, 200);
      assert.equal(r.framing, "length");
      assert.equal(r.body.toString(), path);
      assert.ok(tokens(r, "connection").includes("keep-alive"), "an HTTP/1.0 client only keeps the connection on Connection: keep-alive");
      assert.equal(c.ended, false);
    }
    // the last HTTP/1.0 request without keep-alive ends the connection
    await c.write("GET /three HTTP/1.0\r\nHost: a.test\r\n\r\n");
    assert.equal((await c.response()).body.toString(), "/three");
    await c.closed();
    assert.equal(b.hits, 3);
  });
});

// ---- 4. response without Content-Length ----------------------------------------------------

const STREAM_PARTS = ["part1-", "x".repeat(70_000), "-part3"];
const STREAM_BODY = STREAM_PARTS.join("");

/** answers in several writes without Content-Length (node:http frames it chunked to the proxy) */
async function streamingBackend(): Promise<Backend> {
  return be("S", (req, res) => {
    req.resume();
    void (async () => {
      res.writeHead(200, { "content-type": "text/plain" });
      for (const part of STREAM_PARTS) {
        res.write(part);
        await delay(5); // the backend produces its body in pieces
      }
      res.end();
    })();
  });
}

test("a response without Content-Length reaches an HTTP/1.1 client chunked; the connection persists", async () => {
  const b = await streamingBackend();
  await withProxy(oneFront(b), undefined, async (p) => {
    const c = await Conn.open(p.httpPort);
    for (let i = 0; i < 2; i++) {
      await c.write("GET /stream HTTP/1.1\r\nHost: a.test\r\n\r\n");
      const r = await c.response();
      assert.equal(r.status, 200);
      assert.deepEqual(tokens(r, "transfer-encoding"), ["chunked"]);
      assert.equal(hdr(r, "content-length"), undefined);
      assert.equal(r.framing, "chunked");
      assert.equal(r.body.toString("latin1"), STREAM_BODY);
    }
    assert.equal(c.rest(), "");
    assert.equal(c.ended, false);
  });
});

test("a response without Content-Length reaches an HTTP/1.0 client close-delimited", async () => {
  const b = await streamingBackend();
  await withProxy(oneFront(b), undefined, async (p) => {
    const c = await Conn.open(p.httpPort);
    await c.write("GET /stream HTTP/1.0\r\nHost: a.test\r\n\r\n");
    const r = await c.response();
    assert.equal(r.status, 200);
    assert.equal(hdr(r, "transfer-encoding"), undefined, "HTTP/1.0 has no chunked coding");
    assert.equal(hdr(r, "content-length"), undefined);
    assert.equal(r.framing, "close");
    assert.equal(r.body.toString("latin1"), STREAM_BODY, "the body is complete and not chunk-framed");
    assert.ok(c.ended);
  });
});

// ---- 5. HEAD -------------------------------------------------------------------------------

test("HEAD: the backend's headers with Content-Length, no body; the connection is reused", async () => {
  const b = await be("H", (req, res) => {
    req.resume();
    res.writeHead(200, { "content-type": "text/plain", "content-length": "11", "x-method": req.method! });
    res.end(req.method === "HEAD" ? undefined : "hello world");
  });
  await withProxy(oneFront(b), undefined, async (p) => {
    const c = await Conn.open(p.httpPort);
    await c.write("HEAD /h HTTP/1.1\r\nHost: a.test\r\n\r\n");
    const h = await c.response({ method: "HEAD" });
    assert.equal(h.status, 200);
    assert.equal(hdr(h, "content-length"), "11", "HEAD keeps the Content-Length a GET would have");
    assert.equal(hdr(h, "x-method"), "HEAD");
    // any body byte after the HEAD head would be parsed as the start of the next response
    await c.write("GET /g HTTP/1.1\r\nHost: a.test\r\n\r\n");
    const g = await c.response();
    assert.equal(g.status, 200);
    assert.equal(hdr(g, "x-method"), "GET");
    assert.equal(g.body.toString(), "hello world");
    assert.equal(c.rest(), "");
    assert.equal(c.ended, false);
  });
});

// ---- 6. 204 / 304 --------------------------------------------------------------------------

test("204 and 304 from the backend: no body, the connection is reused", async () => {
  const b = await be("N", (req, res) => {
    req.resume();
    if (req.url === "/204") res.writeHead(204, { "x-s": "204" }).end();
    else if (req.url === "/304") res.writeHead(304, { etag: '"v1"' }).end();
    else res.writeHead(200, { "content-type": "text/plain", "content-length": "5" }).end("after");
  });
  await withProxy(oneFront(b), undefined, async (p) => {
    const c = await Conn.open(p.httpPort);
    await c.write("GET /204 HTTP/1.1\r\nHost: a.test\r\n\r\n");
    const n = await c.response();
    assert.equal(n.status, 204);
    assert.equal(hdr(n, "x-s"), "204");
    assert.equal(hdr(n, "transfer-encoding"), undefined, "no Transfer-Encoding in a 204 (RFC 9112 §6.1)");
    assert.equal(hdr(n, "content-length"), undefined, "no Content-Length in a 204 (RFC 9110 §8.6)");
    await c.write('GET /304 HTTP/1.1\r\nHost: a.test\r\nIf-None-Match: "v1"\r\n\r\n');
    const nm = await c.response();
    assert.equal(nm.status, 304);
    assert.equal(hdr(nm, "etag"), '"v1"');
    // a stray body or chunk terminator after either would break this parse
    await c.write("GET /after HTTP/1.1\r\nHost: a.test\r\n\r\n");
    const r = await c.response();
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), "after");
    assert.equal(c.rest(), "");
    assert.equal(c.ended, false);
    assert.equal(b.hits, 3);
  });
});

// ---- 7. Expect: 100-continue ---------------------------------------------------------------

test("Expect: 100-continue: 100 Continue before the body is sent, then the final response", async () => {
  let received: Buffer | undefined;
  const got = () => received;
  const b = await be("E", (req, res) => {
    void readBody(req).then((body) => {
      received = body;
      const text = `got:${body.toString("latin1")}`;
      res.writeHead(200, { "content-type": "text/plain", "content-length": String(text.length) }).end(text);
    });
  });
  await withProxy(oneFront(b), undefined, async (p) => {
    const c = await Conn.open(p.httpPort);
    await c.write("POST /up HTTP/1.1\r\nHost: a.test\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    const interim = await c.response();
    assert.equal(interim.status, 100, "the interim answer comes first, while the body is held back");
    assert.equal(interim.version, "1.1");
    assert.equal(c.rest(), "", "nothing but the 100 before the body");
    assert.equal(got(), undefined, "the backend has no body yet");
    await c.write("hello");
    const r = await c.response();
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), "got:hello");
    assert.equal(got()?.toString(), "hello");
  });
});

// ---- 8. request bodies ---------------------------------------------------------------------

function recordingBackend(seen: { body: Buffer; headers: IncomingMessage["headers"] }[]): Promise<Backend> {
  return be("R", (req, res) => {
    void readBody(req).then((body) => {
      seen.push({ body, headers: req.headers });
      const text = `len:${body.length}`;
      res.writeHead(200, { "content-type": "text/plain", "content-length": String(text.length) }).end(text);
    });
  });
}

test("a Content-Length request body reaches the backend byte for byte", async () => {
  const seen: { body: Buffer; headers: IncomingMessage["headers"] }[] = [];
  const b = await recordingBackend(seen);
  await withProxy(oneFront(b), undefined, async (p) => {
    const big = Buffer.alloc(100_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 8)) & 0xff; // every byte value, CR/LF included
    const c = await Conn.open(p.httpPort);
    await c.write(`POST /cl HTTP/1.1\r\nHost: a.test\r\nContent-Type: application/octet-stream\r\nContent-Length: ${big.length}\r\n\r\n`);
    await c.write(big.subarray(0, 30_000));
    await c.write(big.subarray(30_000));
    const r1 = await c.response();
    assert.equal(r1.status, 200);
    assert.equal(r1.body.toString(), `len:${big.length}`);
    // a second, small body on the same connection: the first body's end was found exactly
    await c.write("POST /cl2 HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\n\r\nabc");
    const r2 = await c.response();
    assert.equal(r2.body.toString(), "len:3");
    assert.equal(seen.length, 2);
    assert.ok(seen[0]!.body.equals(big), "the backend received exactly the bytes sent");
    assert.equal(seen[1]!.body.toString(), "abc");
  });
});

test("a chunked request body sent in several writes reaches the backend byte for byte", async () => {
  const seen: { body: Buffer; headers: IncomingMessage["headers"] }[] = [];
  const b = await recordingBackend(seen);
  await withProxy(oneFront(b), undefined, async (p) => {
    const large = Buffer.alloc(0x10000, 0x5a);
    const writes: (string | Buffer)[] = [
      "POST /chunked HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n",
      "a\r\n0123",
      "456789\r\n1", // a chunk size line split across writes
      "0;name=value\r\n", // a chunk extension (ignored)
      "ABCDEFGHIJKLMNOP",
      "\r\n",
      "3\r\n\r\n\xff\r\n", // chunk data holding CRLF
      "10000\r\n",
      large,
      "\r\n0\r\n",
      "\r\n",
    ];
    const c = await Conn.open(p.httpPort);
    for (const w of writes) await c.write(w);
    const expected = Buffer.concat([Buffer.from("0123456789ABCDEFGHIJKLMNOP\r\n\xff", "latin1"), large]);
    const r = await c.response();
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), `len:${expected.length}`);
    assert.equal(seen.length, 1);
    assert.ok(seen[0]!.body.equals(expected), "the backend received exactly the de-chunked bytes");
    // the chunked body's end was found exactly: the connection goes on
    await c.write("GET /next HTTP/1.1\r\nHost: a.test\r\n\r\n");
    assert.equal((await c.response()).body.toString(), "len:0");
    assert.equal(c.rest(), "");
  });
});

// ---- 9. malformed requests -----------------------------------------------------------------

test("malformed requests get 400 and the connection is closed; nothing reaches the backend", async (t) => {
  const b = await be("A");
  const cases: [string, string][] = [
    ["garbage request line", "this is not http\r\n\r\n"],
    ["Content-Length with Transfer-Encoding: chunked", "POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"],
    ["two different Content-Length values", "POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"],
    ["obs-fold header line", "GET / HTTP/1.1\r\nHost: a.test\r\nX-Folded: one\r\n two\r\n\r\n"],
    ["header name with a space", "GET / HTTP/1.1\r\nHost: a.test\r\nX Bad: 1\r\n\r\n"],
    ["raw non-UTF-8 bytes in the request target", "GET /\xed\xa0 HTTP/1.1\r\nHost: a.test\r\n\r\n"],
    ["raw non-ASCII in the request target", "GET /caf\xe9 HTTP/1.1\r\nHost: a.test\r\n\r\n"],
    ["a control byte in the request target", "GET /a\x01b HTTP/1.1\r\nHost: a.test\r\n\r\n"],
    ["DEL in the request target", "GET /a\x7f HTTP/1.1\r\nHost: a.test\r\n\r\n"],
  ];
  await withProxy(oneFront(b), undefined, async (p) => {
    for (const [name, bytes] of cases) {
      await t.test(name, async () => {
        const c = await Conn.open(p.httpPort);
        try {
          await c.write(bytes);
          const r = await c.response();
          assert.equal(r.status, 400);
          await c.closed();
          assert.equal(c.rest(), "");
          assert.equal(b.hits, 0, "the request was not forwarded");
        } finally {
          c.destroy();
        }
      });
    }
  });
});

test("an invalid chunk size (-1, 0x1, +1, empty) gets 400 before the connection closes", async (t) => {
  const b = await be("A");
  await withProxy(oneFront(b), undefined, async (p) => {
    for (const size of ["-1", "0x1", "+1", "", "1 2", "fffffffffffffffff"]) {
      await t.test(JSON.stringify(size), async () => {
        const c = await Conn.open(p.httpPort);
        try {
          await c.write(`POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n${size}\r\n`);
          const r = await c.response();
          assert.equal(r.status, 400);
          await c.closed();
        } finally {
          c.destroy();
        }
      });
    }
  });
});

test("a refused HEAD gets the 400 status line and headers without a body", async () => {
  const b = await be("A");
  await withProxy(oneFront(b), undefined, async (p) => {
    for (const bytes of ["HEAD /\xed\xa0 HTTP/1.1\r\nHost: a.test\r\n\r\n", "HEAD / HTTP/1.1\r\nHost: a.test\r\nX Bad: 1\r\n\r\n", "HEAD / HTTP/1.1\r\nHost: bad host\r\n\r\n"]) {
      const c = new Set<Socket>();
      const text = await new Promise<string>((resolve, reject) => {
        let got = "";
        const s = connect(p.httpPort, "127.0.0.1", () => s.write(Buffer.from(bytes, "latin1")));
        c.add(s);
        s.setEncoding("latin1").on("data", (d: string) => (got += d));
        s.on("error", reject);
        s.on("close", () => resolve(got));
        setTimeout(() => s.destroy(), 15_000).unref();
      });
      assert.match(text, /^HTTP\/1.1 400 /, JSON.stringify(bytes));
      assert.match(text, /Content-Length: [1-9]/);
      assert.ok(text.endsWith("\r\n\r\n"), `no body after the head: ${JSON.stringify(text)}`);
    }
    assert.equal(b.hits, 0);
  });
});

// ---- 10. unknown transfer coding -----------------------------------------------------------

test("an unknown transfer coding gets 501 (or 400 when chunked is not last) and the connection is closed", async (t) => {
  const b = await be("A");
  await withProxy(oneFront(b), undefined, async (p) => {
    await t.test("Transfer-Encoding: gzip, chunked → 501", async () => {
      // framing is unambiguous (chunked last), but gzip is not understood: RFC 9112 §6.1 → 501
      const c = await Conn.open(p.httpPort);
      await c.write("POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
      const r = await c.response();
      assert.equal(r.status, 501);
      await c.closed();
      assert.equal(b.hits, 0, "the request was not forwarded");
    });
    await t.test("Transfer-Encoding: gzip → 501 or 400", async () => {
      // unknown coding (§6.1: 501) and chunked not final (§6.3: 400): either is a correct refusal
      const c = await Conn.open(p.httpPort);
      await c.write("POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: gzip\r\n\r\nhello");
      const r = await c.response();
      assert.ok(r.status === 501 || r.status === 400, `status ${r.status}`);
      await c.closed();
      assert.equal(b.hits, 0, "the request was not forwarded");
    });
  });
});

// ---- 11. header limit ----------------------------------------------------------------------

test("a request head over proxy_max_header_bytes gets 431 and the connection is closed", async (t) => {
  const b = await be("A");
  await withProxy(oneFront(b), "proxy_max_header_bytes = 4096\n", async (p) => {
    await t.test("a head under the limit passes", async () => {
      const c = await Conn.open(p.httpPort);
      await c.write(`GET / HTTP/1.1\r\nHost: a.test\r\nX-Pad: ${"a".repeat(3000)}\r\nConnection: close\r\n\r\n`);
      assert.equal((await c.response()).status, 200);
      assert.equal(b.hits, 1);
    });
    await t.test("a complete head over the limit → 431", async () => {
      const c = await Conn.open(p.httpPort);
      await c.write(`GET / HTTP/1.1\r\nHost: a.test\r\nX-Pad: ${"a".repeat(6000)}\r\n\r\n`);
      const r = await c.response();
      assert.equal(r.status, 431);
      await c.closed();
      assert.equal(c.rest(), "");
      assert.equal(b.hits, 1, "not forwarded");
    });
    await t.test("an unfinished head growing over the limit → 431 without waiting for its end", async () => {
      const c = await Conn.open(p.httpPort);
      await c.write("GET / HTTP/1.1\r\nHost: a.test\r\nX-Pad: ");
      await c.write("a".repeat(8000)); // no end of line, no end of head
      const r = await c.response();
      assert.equal(r.status, 431);
      await c.closed();
      assert.equal(b.hits, 1, "not forwarded");
    });
  });
});

// ---- 12. timeouts --------------------------------------------------------------------------

test("proxy_idle_timeout_secs = 1: idle keep-alive connections are closed, a stalled head gets 408", async (t) => {
  const b = await be("A");
  await withProxy(oneFront(b), "proxy_idle_timeout_secs = 1\n", async (p) => {
    await t.test("an idle keep-alive connection is closed silently after about 1 s", async () => {
      const c = await Conn.open(p.httpPort);
      await c.write("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
      assert.equal((await c.response()).status, 200);
      const t0 = performance.now();
      await c.closed(); // (the default 60 s would time out here)
      const idle = performance.now() - t0;
      assert.ok(idle >= 800, `closed after only ${idle.toFixed(0)} ms`);
      assert.equal(c.rest(), "", "nothing is sent on an idle connection (a 408 there would race a new request)");
    });
    await t.test("a partially sent request head gets 408, then close", async () => {
      const t0 = performance.now();
      const c = await Conn.open(p.httpPort);
      await c.write("GET /partial HTTP/1.1\r\nHost: a.test\r\n");
      const r = await c.response();
      const took = performance.now() - t0;
      assert.equal(r.status, 408);
      assert.ok(took >= 900, `408 after only ${took.toFixed(0)} ms`);
      await c.closed();
      assert.equal(c.rest(), "");
      assert.equal(b.hits, 1, "the partial request was not forwarded");
    });
    await t.test("a connection that never sends a byte is closed after about 1 s", async () => {
      const t0 = performance.now();
      const c = await Conn.open(p.httpPort);
      await c.closed(); // (the default 60 s would time out here)
      const took = performance.now() - t0;
      assert.ok(took >= 900, `closed after only ${took.toFixed(0)} ms`);
      // an answer is optional here (RFC 9112 §9.5 allows a silent close); if any, it is a 408
      if (c.buf.length) assert.match(c.rest(), /^HTTP\/1\.1 408 /);
    });
  });
});

// ---- 13. half-close ------------------------------------------------------------------------

test("client half-close after a full request: the response still arrives, then the proxy closes", async () => {
  const b = await be("slow", (req, res) => {
    req.resume();
    setTimeout(() => res.writeHead(200, { "content-type": "text/plain", "content-length": "4" }).end("late"), 100);
  });
  await withProxy(oneFront(b), undefined, async (p) => {
    const c = await Conn.open(p.httpPort);
    c.socket.end("GET /hc HTTP/1.1\r\nHost: a.test\r\n\r\n"); // the request, then FIN
    const r = await c.response();
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), "late");
    await c.closed();
    assert.equal(c.rest(), "");
    assert.equal(b.hits, 1);
  });
});

// ---- 14. early backend answer --------------------------------------------------------------

test("a backend answering 413 before reading the upload: the client gets it, nothing hangs", async () => {
  const early = await be("early", (req, res) => {
    // answers at once, without reading the body
    res.writeHead(413, { "content-type": "text/plain", "content-length": "9" });
    res.end("too large");
  });
  const ok = await be("ok");
  const state = new FakeState().front("U", "a.test", "/upload").backend("U", early.port).front("A", "a.test").backend("A", ok.port);
  await withProxy(state, undefined, async (p) => {
    const size = 4 * 1024 * 1024;
    const c = await Conn.open(p.httpPort);
    await c.write(`POST /upload HTTP/1.1\r\nHost: a.test\r\nContent-Type: application/octet-stream\r\nContent-Length: ${size}\r\n\r\n`);
    const answered = () => c.buf.indexOf(CRLF2) >= 0;
    let sent = await c.upload(size, answered);
    const r = await c.response();
    assert.equal(r.status, 413);
    assert.equal(r.body.toString(), "too large");
    // then: either the proxy closes the connection, or it reads the rest of the body and the
    // connection is usable again; it must not stall
    if (!c.ended) sent += await c.upload(size - sent, () => false);
    if (!c.ended) {
      await c.write("GET /after HTTP/1.1\r\nHost: a.test\r\n\r\n");
      await c.until("an answer to the next request or a close", () => answered() || c.ended);
      if (answered()) {
        const next = await c.response();
        assert.equal(next.status, 200);
        assert.equal(next.body.toString(), "ok");
      }
    }
    // a new connection works
    const c2 = await Conn.open(p.httpPort);
    await c2.write("GET /fresh HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n");
    const fresh = await c2.response();
    assert.equal(fresh.status, 200);
    assert.equal(fresh.body.toString(), "ok");
    assert.equal(early.hits, 1);
  });
});

// ---- 15. CONNECT ---------------------------------------------------------------------------

test("CONNECT is refused with an error answer and not forwarded", async () => {
  const b = await be("A");
  await withProxy(oneFront(b), undefined, async (p) => {
    const c = await Conn.open(p.httpPort);
    await c.write("CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n");
    const r = await c.response();
    // 4xx (400/405) as the contract; 501 (method not implemented, RFC 9110 §9.1) is as correct
    assert.ok((r.status >= 400 && r.status < 500) || r.status === 501, `status ${r.status}`);
    assert.equal(b.hits, 0, "CONNECT was not forwarded");
  });
});

// ---- 16. Connection: close -----------------------------------------------------------------

test("Connection: close is answered with Connection: close and the connection is closed", async (t) => {
  const paths: string[] = [];
  const b = await be("A", (req, res) => {
    paths.push(req.url!);
    req.resume();
    res.writeHead(200, { "content-type": "text/plain", "content-length": "1", "x-backend": "A" }).end("A");
  });
  await withProxy(oneFront(b), undefined, async (p) => {
    await t.test("the response carries close and the proxy closes after it", async () => {
      const c = await Conn.open(p.httpPort);
      await c.write("GET /close HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n");
      const r = await c.response();
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), "A");
      assert.ok(tokens(r, "connection").includes("close"), `Connection: ${hdr(r, "connection")}`);
      await c.closed();
      assert.equal(c.rest(), "");
    });
    await t.test("a request pipelined after Connection: close is not processed (RFC 9112 §9.6)", async () => {
      const c = await Conn.open(p.httpPort);
      await c.write("GET /first HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\nGET /ignored HTTP/1.1\r\nHost: a.test\r\n\r\n");
      const r = await c.response();
      assert.equal(r.body.toString(), "A");
      await c.closed();
      assert.equal(c.rest(), "", "one response only");
      // a later request on a new connection, to have given a forwarded /ignored the time to arrive
      const c2 = await Conn.open(p.httpPort);
      await c2.write("GET /sentinel HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n");
      assert.equal((await c2.response()).status, 200);
      assert.ok(!paths.includes("/ignored"), `backend saw ${paths.join(" ")}`);
    });
  });
});

test("the proxy's own answers (404, 301) carry a current Date header", async () => {
  const b = await be("A");
  const state = oneFront(b).app("R", { httpsRedirect: true }).front("R", "r.test").backend("R", b.port);
  const p = await startProxy({ state, https: true });
  try {
    for (const host of ["nowhere.test", "r.test"]) {
      const c = await Conn.open(p.httpPort);
      await c.write(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
      const r = await c.response();
      assert.equal(r.status, host === "r.test" ? 301 : 404);
      const date = Date.parse(hdr(r, "date") ?? "");
      assert.ok(Math.abs(date - Date.now()) < 5000, `Date ${hdr(r, "date")}`);
    }
    assert.equal(b.hits, 0);
  } finally {
    destroyConns();
    await p.stop();
  }
});
