// The client-side request parser: head fields, keep-alive and upgrade decisions, body framings
// (Content-Length, chunked with extensions and trailers) across arbitrary reads, pipelining
// (held bytes released by next()), upgrade hand-over (rest()), strictness and limits, and a
// seeded fuzz (valid pipelined sequences, mutated, split at random points).
import { test } from "node:test";
import assert from "node:assert/strict";
import { RequestParser, RequestParseError, type RequestHead, type RequestSink } from "../../src/http/request-parser.js";
import { HttpParseError, MAX_CHUNK_LINE } from "../../src/http/http1.js";
import { intRng, mutate } from "../helpers/random.js";

const DEFAULT_MAX = 16384;

/** A sink that records what it is told and checks the callback order as it goes. */
class Recorder implements RequestSink {
  heads: RequestHead[] = [];
  bodies: Buffer[][] = [];
  ends = 0;
  /** between onRequest and onEnd */
  open = false;
  /** "req", "body", "end" in the order received */
  events: string[] = [];

  onRequest(head: RequestHead): void {
    assert.equal(this.open, false, "onRequest before the previous request ended");
    this.open = true;
    this.heads.push(head);
    this.bodies.push([]);
    this.events.push("req");
  }
  onBody(chunk: Buffer): void {
    assert.equal(this.open, true, "body bytes outside a request (before its head or after its end)");
    this.bodies[this.bodies.length - 1]!.push(Buffer.from(chunk));
    this.events.push("body");
  }
  onEnd(): void {
    assert.equal(this.open, true, "onEnd without a request");
    this.open = false;
    this.ends++;
    this.events.push("end");
  }
  body(i: number): string {
    return Buffer.concat(this.bodies[i] ?? []).toString("latin1");
  }
}

function make(max = DEFAULT_MAX): { p: RequestParser; r: Recorder } {
  const r = new Recorder();
  const p = new RequestParser(r);
  p.begin(max);
  return { p, r };
}

const b = (s: string): Buffer => Buffer.from(s, "latin1");

interface Outcome {
  heads: RequestHead[];
  bodies: string[];
  ends: number;
  error: { message: string; status: number } | undefined;
  /** rest() after an upgrade */
  rest: string | undefined;
  held: number;
  idle: boolean;
}

/**
 * Feed `input` cut at `splits`; after each read, call next() for every request that ended (so
 * pipelined requests go on), except after an upgrade, where rest() is taken at the end.
 * Only HttpParseError is caught: anything else fails the test.
 */
function run(input: string | Buffer, opts: { max?: number; splits?: number[]; auto?: boolean } = {}): Outcome {
  const max = opts.max ?? DEFAULT_MAX;
  const { p, r } = make(max);
  const buf = typeof input === "string" ? b(input) : input;
  const cuts = [0, ...(opts.splits ?? []).filter((n) => n > 0 && n < buf.length).sort((x, y) => x - y), buf.length];
  let error: Outcome["error"];
  let nexted = 0;
  const upgraded = (): boolean => r.heads.some((h) => h.upgrade);
  try {
    for (let i = 0; i + 1 < cuts.length; i++) {
      if (cuts[i] === cuts[i + 1]) continue;
      // each read in its own buffer, overwritten once execute returns: the caller may reuse its
      // read buffers, so what the parser keeps across reads must be a copy
      const read = Buffer.from(buf.subarray(cuts[i], cuts[i + 1]));
      p.execute(read);
      read.fill(0xee);
      while ((opts.auto ?? true) && nexted < r.ends && !upgraded()) {
        nexted++;
        p.next(max);
      }
    }
  } catch (e) {
    if (!(e instanceof HttpParseError)) throw e;
    error = { message: e.message, status: e.status };
  }
  const held = p.heldBytes;
  const idle = p.idle;
  const rest = error === undefined && upgraded() ? p.rest().toString("latin1") : undefined;
  return { heads: r.heads, bodies: r.heads.map((_, i) => r.body(i)), ends: r.ends, error, rest, held, idle };
}

/** Runs `input` and returns the HttpParseError it must raise. */
function failure(input: string | Buffer, opts: { max?: number; splits?: number[] } = {}): { message: string; status: number } {
  const o = run(input, opts);
  assert.ok(o.error, `expected an error for ${JSON.stringify(typeof input === "string" ? input : input.toString("latin1"))}`);
  return o.error;
}

function assertFails(input: string, status: number, re: RegExp, opts: { max?: number; splits?: number[] } = {}): void {
  const e = failure(input, opts);
  assert.equal(e.status, status, `${JSON.stringify(input)}: ${e.message}`);
  assert.match(e.message, re, JSON.stringify(input));
}

// ---------------------------------------------------------------------------------------------

test("RequestParseError is the shared HttpParseError, 400 by default", () => {
  assert.equal(RequestParseError, HttpParseError);
  assert.equal(new RequestParseError("x").status, 400);
  assert.equal(new RequestParseError("x", 431).status, 431);
  assert.ok(new RequestParseError("x") instanceof Error);
});

test("GET without body: head fields, then its end at once", () => {
  const { p, r } = make();
  p.execute(b("GET /path?q=1&r=%20 HTTP/1.1\r\nHost: example.com\r\nX-A:  b \t\r\nAccept: */*\r\nX-Empty:\r\n\r\n"));
  assert.deepEqual(r.events, ["req", "end"]);
  assert.deepEqual(r.heads[0], {
    method: "GET",
    url: "/path?q=1&r=%20",
    http10: false,
    rawHeaders: ["Host", "example.com", "X-A", "b", "Accept", "*/*", "X-Empty", ""],
    keepAlive: true,
    upgrade: false,
    hasBody: false,
    chunked: false,
    expect: undefined,
  });
  assert.equal(p.heldBytes, 0);
  assert.equal(p.done, true);
});

test("head fields: any token method, absolute-form, authority-form, asterisk, HTTP/1.0", () => {
  const cases: [string, string, string, boolean][] = [
    ["OPTIONS * HTTP/1.1", "OPTIONS", "*", false],
    ["CONNECT example.com:443 HTTP/1.1", "CONNECT", "example.com:443", false],
    ["GET http://example.com:8080/a?b HTTP/1.1", "GET", "http://example.com:8080/a?b", false],
    ["M-SEARCH /x HTTP/1.0", "M-SEARCH", "/x", true],
    ["get /lower HTTP/1.1", "get", "/lower", false],
    ["GET /caf%C3%A9~!$&'()*+,;=:@ HTTP/1.1", "GET", "/caf%C3%A9~!$&'()*+,;=:@", false],
  ];
  for (const [line, method, url, http10] of cases) {
    const o = run(`${line}\r\n\r\n`);
    assert.equal(o.error, undefined, line);
    assert.equal(o.heads.length, 1);
    assert.equal(o.heads[0]!.method, method);
    assert.equal(o.heads[0]!.url, url);
    assert.equal(o.heads[0]!.http10, http10);
    assert.equal(o.ends, 1);
  }
});

test("keep-alive: HTTP/1.1 by default unless Connection: close; HTTP/1.0 only with Connection: keep-alive", () => {
  const cases: [string, boolean][] = [
    ["GET / HTTP/1.1\r\n\r\n", true],
    ["GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false],
    ["GET / HTTP/1.1\r\nconnection: Close\r\n\r\n", false],
    ["GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n", false],
    ["GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", true],
    ["GET / HTTP/1.0\r\n\r\n", false],
    ["GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true],
    ["GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true],
    ["GET / HTTP/1.0\r\nConnection: foo,keep-alive\r\n\r\n", true],
    ["GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false],
    ["GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", false],
    ["GET / HTTP/1.0\r\nKeep-Alive: timeout=5\r\n\r\n", false],
  ];
  for (const [m, keepAlive] of cases) {
    const o = run(m);
    assert.equal(o.error, undefined, m);
    assert.equal(o.heads[0]!.keepAlive, keepAlive, JSON.stringify(m));
  }
});

test("a request without Content-Length or Transfer-Encoding has no body: what follows is held", () => {
  const { p, r } = make();
  p.execute(b("POST /x HTTP/1.1\r\nHost: h\r\n\r\nnot a body"));
  assert.deepEqual(r.events, ["req", "end"]);
  assert.equal(r.heads[0]!.hasBody, false);
  assert.equal(p.heldBytes, "not a body".length);
});

test("Content-Length body: delivered the same for every split point and for 1-byte reads", () => {
  const msgs = [
    "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world",
    "PUT /a HTTP/1.0\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n\r\n\x00",
    "POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcdeGET /next HTTP/1.1\r\nContent-Length: 2\r\n\r\nxy",
  ];
  for (const m of msgs) {
    const whole = run(m);
    assert.equal(whole.error, undefined, m);
    assert.ok(whole.ends >= 1);
    assert.equal(whole.ends, whole.heads.length);
    assert.equal(whole.idle, true);
    for (let i = 1; i < m.length; i++) {
      assert.deepEqual(run(m, { splits: [i] }), whole, `${JSON.stringify(m)} split at ${i}`);
      for (let j = i + 1; j < m.length; j++) assert.deepEqual(run(m, { splits: [i, j] }), whole, `${JSON.stringify(m)} split at ${i},${j}`);
    }
    const bytewise = Array.from({ length: m.length }, (_, i) => i);
    assert.deepEqual(run(m, { splits: bytewise }), whole, `${JSON.stringify(m)} 1-byte reads`);
  }
  const first = run(msgs[0]!);
  assert.equal(first.bodies[0], "hello world");
  assert.equal(first.heads[0]!.hasBody, true);
  assert.equal(first.heads[0]!.chunked, false);
  assert.equal(run(msgs[1]!).bodies[0], "\r\n\x00");
  assert.deepEqual(run(msgs[2]!).bodies, ["abcde", "xy"]);
});

test("Content-Length body: onBody between head and end, and the end comes with the last byte", () => {
  const { p, r } = make();
  p.execute(b("POST / HTTP/1.1\r\nContent-Length: 6\r\n\r\nab"));
  assert.deepEqual(r.events, ["req", "body"]);
  assert.equal(p.done, false);
  p.execute(b("cd"));
  assert.deepEqual(r.events, ["req", "body", "body"]);
  p.execute(b("ef"));
  assert.deepEqual(r.events, ["req", "body", "body", "body", "end"]);
  assert.equal(r.body(0), "abcdef");
  assert.equal(p.heldBytes, 0);
});

test("large Content-Length body over many reads; 15-digit Content-Length accepted", () => {
  const body = Buffer.alloc(100_000);
  for (let i = 0; i < body.length; i++) body[i] = (i * 31 + 7) & 0xff;
  const { p, r } = make();
  p.execute(b(`POST / HTTP/1.1\r\nContent-Length: ${body.length}\r\n\r\n`));
  for (let at = 0; at < body.length; at += 997) p.execute(body.subarray(at, at + 997));
  assert.equal(r.ends, 1);
  assert.ok(Buffer.concat(r.bodies[0]!).equals(body));

  const big = make();
  big.p.execute(b("POST / HTTP/1.1\r\nContent-Length: 999999999999999\r\n\r\nsome"));
  assert.equal(big.r.heads[0]!.hasBody, true);
  assert.equal(big.r.ends, 0);
  assert.equal(big.r.body(0), "some");

  // leading zeros: 15 digits meaning 5
  const o = run("POST / HTTP/1.1\r\nContent-Length: 000000000000005\r\n\r\n12345GET / HTTP/1.1\r\n\r\n");
  assert.equal(o.error, undefined);
  assert.deepEqual(o.bodies, ["12345", ""]);
  assert.equal(o.ends, 2);
});

test("zero-length Content-Length: no body, end at the head", () => {
  const { p, r } = make();
  p.execute(b("POST /z HTTP/1.1\r\nContent-Length: 0\r\n\r\n"));
  assert.deepEqual(r.events, ["req", "end"]);
  assert.equal(r.heads[0]!.hasBody, false);
  assert.equal(r.heads[0]!.chunked, false);
  // and bytes after it are the next request, not a body
  const o = run("POST /z HTTP/1.1\r\nContent-Length: 0\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
  assert.deepEqual(o.bodies, ["", ""]);
  assert.deepEqual(
    o.heads.map((h) => h.url),
    ["/z", "/b"],
  );
});

test("identical duplicate Content-Length headers are accepted", () => {
  const o = run("POST / HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc");
  assert.equal(o.error, undefined);
  assert.deepEqual(o.bodies, ["abc"]);
  assert.equal(o.ends, 1);
  assert.deepEqual(o.heads[0]!.rawHeaders, ["Content-Length", "3", "content-length", "3"]);
});

test("chunked body: de-chunked, with extensions, hex forms and trailers discarded", () => {
  const m =
    "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
    "5;name=val;flag\r\nhello\r\n" +
    '6 ; q="a b"\r\n world\r\n' +
    "000A\r\n0123456789\r\n" +
    "b\r\n\r\n\r\n0\r\n\r\n\r\n\r\n" + // 11 bytes of CRs and LFs and zeros
    "0;last=1\r\nX-Trailer: t\r\nY:\tu\r\n\r\n";
  const whole = run(m);
  assert.equal(whole.error, undefined);
  assert.equal(whole.ends, 1);
  assert.equal(whole.bodies[0], "hello world0123456789\r\n\r\n0\r\n\r\n\r\n");
  const h = whole.heads[0]!;
  assert.equal(h.chunked, true);
  assert.equal(h.hasBody, true);
  assert.deepEqual(h.rawHeaders, ["Host", "h", "Transfer-Encoding", "chunked"]);
  assert.equal(whole.idle, true);
  for (let i = 1; i < m.length; i++) assert.deepEqual(run(m, { splits: [i] }), whole, `split at ${i}`);
  const bytewise = Array.from({ length: m.length }, (_, i) => i);
  assert.deepEqual(run(m, { splits: bytewise }), whole, "1-byte reads");
});

test("chunked: Transfer-Encoding is case-insensitive; empty chunked body still hasBody; end after the trailer section", () => {
  const { p, r } = make();
  p.execute(b("POST / HTTP/1.1\r\ntransfer-encoding:  Chunked \r\n\r\n"));
  assert.deepEqual(r.events, ["req"]);
  assert.equal(r.heads[0]!.chunked, true);
  assert.equal(r.heads[0]!.hasBody, true);
  p.execute(b("0\r\n"));
  assert.equal(r.ends, 0, "no end before the empty line closing the trailers");
  p.execute(b("T: 1\r\n"));
  assert.equal(r.ends, 0);
  p.execute(b("\r\nGET"));
  assert.deepEqual(r.events, ["req", "end"]);
  assert.equal(r.body(0), "");
  assert.equal(p.heldBytes, 3);
});

test("pipelining: two requests in one read, the second held until next()", () => {
  const second = "GET /two HTTP/1.1\r\nHost: h\r\n\r\n";
  const { p, r } = make();
  p.execute(b(`GET /one HTTP/1.1\r\nHost: h\r\n\r\n${second}`));
  assert.deepEqual(r.events, ["req", "end"]);
  assert.equal(r.heads.length, 1);
  assert.equal(p.heldBytes, second.length);
  assert.equal(p.idle, false);
  p.next(DEFAULT_MAX);
  assert.deepEqual(r.events, ["req", "end", "req", "end"]);
  assert.equal(r.heads[1]!.url, "/two");
  assert.equal(p.heldBytes, 0);
  assert.equal(p.idle, false, "the second request has ended but next() was not called yet");
  p.next(DEFAULT_MAX);
  assert.equal(p.idle, true);
  assert.equal(r.heads.length, 2);
});

test("pipelining: three requests with bodies in one read, released one next() at a time", () => {
  const r1 = "POST /1 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
  const r2 = "POST /2 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n";
  const r3 = "GET /3 HTTP/1.1\r\n\r\n";
  const { p, r } = make();
  p.execute(b(r1 + r2 + r3));
  assert.deepEqual(r.events, ["req", "body", "end"]);
  assert.equal(p.heldBytes, r2.length + r3.length);
  p.next(DEFAULT_MAX);
  assert.equal(r.heads.length, 2);
  assert.equal(r.ends, 2);
  assert.equal(r.body(1), "de");
  assert.equal(p.heldBytes, r3.length);
  p.next(DEFAULT_MAX);
  assert.equal(r.heads.length, 3);
  assert.equal(r.ends, 3);
  assert.equal(p.heldBytes, 0);
  p.next(DEFAULT_MAX);
  assert.equal(p.idle, true);
  assert.deepEqual(
    r.heads.map((h) => h.url),
    ["/1", "/2", "/3"],
  );
  // the same requests byte by byte
  const all = r1 + r2 + r3;
  const o = run(all, { splits: Array.from({ length: all.length }, (_, i) => i) });
  assert.equal(o.error, undefined);
  assert.deepEqual(o.bodies, ["abc", "de", ""]);
  assert.equal(o.ends, 3);
});

test("pipelining: bytes arriving in later reads after the end are held, not parsed", () => {
  const { p, r } = make();
  p.execute(b("GET /1 HTTP/1.1\r\n\r\n"));
  assert.equal(r.ends, 1);
  assert.equal(p.heldBytes, 0);
  p.execute(b("GET /2 HTTP/1.1\r\n"));
  p.execute(b("\r\nGET /3 HT"));
  assert.equal(r.heads.length, 1, "nothing parsed before next()");
  assert.equal(p.heldBytes, "GET /2 HTTP/1.1\r\n\r\nGET /3 HT".length);
  // even garbage is only held (it belongs to the next request)
  p.execute(b("\x00"));
  assert.equal(p.heldBytes, "GET /2 HTTP/1.1\r\n\r\nGET /3 HT".length + 1);
  p.next(DEFAULT_MAX);
  assert.equal(r.heads.length, 2);
  assert.equal(p.heldBytes, "GET /3 HT".length + 1);
});

test("pipelining: next() while a partial request is held continues it with the following reads", () => {
  const { p, r } = make();
  p.execute(b("GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Le"));
  p.next(DEFAULT_MAX);
  assert.equal(r.heads.length, 1);
  assert.equal(p.heldBytes, 0);
  assert.equal(p.idle, false, "bytes of the next head are pending");
  p.execute(b("ngth: 4\r\n\r\nbo"));
  assert.equal(r.heads.length, 2);
  assert.equal(r.heads[1]!.hasBody, true);
  p.execute(b("dy"));
  assert.equal(r.ends, 2);
  assert.equal(r.body(1), "body");
});

test("pipelining: the header limit is per request, and next() sets the limit for the next one", () => {
  const pad = (url: string, n: number): string => {
    const base = `GET ${url} HTTP/1.1\r\nX: \r\n\r\n`;
    return `GET ${url} HTTP/1.1\r\nX: ${"a".repeat(n - base.length)}\r\n\r\n`;
  };
  const a = pad("/a", 600);
  const c = pad("/c", 600);
  assert.equal(a.length, 600);
  // two 600-byte heads with a 1000-byte limit: each fits on its own
  const o = run(a + c, { max: 1000 });
  assert.equal(o.error, undefined);
  assert.equal(o.ends, 2);
  // the same second head against a smaller limit given to next()
  const { p, r } = make(1000);
  p.execute(b(a + c));
  assert.equal(r.ends, 1);
  assert.throws(
    () => p.next(599),
    (e: unknown) => e instanceof HttpParseError && e.status === 431,
  );
  assert.equal(r.heads.length, 1);
  const ok = make(1000);
  ok.p.execute(b(a + c));
  ok.p.next(600);
  assert.equal(ok.r.ends, 2);
});

test("pipelining: an error in a held request surfaces from next(), after the good request", () => {
  const { p, r } = make();
  p.execute(b("GET /ok HTTP/1.1\r\n\r\nGET /bad HTTP/2.0\r\n\r\n"));
  assert.deepEqual(r.events, ["req", "end"]);
  assert.throws(
    () => p.next(DEFAULT_MAX),
    (e: unknown) => e instanceof HttpParseError && e.status === 400 && /request line/.test(e.message),
  );
  assert.equal(r.heads.length, 1);
  assert.throws(() => p.execute(b("GET / HTTP/1.1\r\n\r\n")), HttpParseError);
  assert.equal(r.heads.length, 1);
});

test("idle: only between requests with no byte of the next one seen", () => {
  const { p } = make();
  assert.equal(p.idle, true, "fresh");
  p.execute(b("G"));
  assert.equal(p.idle, false, "a head byte pending");
  p.execute(b("ET / HTTP/1.1\r\nContent-Length: 2\r\n\r\n"));
  assert.equal(p.idle, false, "in a body");
  p.execute(b("x"));
  assert.equal(p.idle, false, "in a body");
  p.execute(b("y"));
  assert.equal(p.idle, false, "ended, answer not done yet");
  p.next(DEFAULT_MAX);
  assert.equal(p.idle, true, "after next() with nothing held");
  p.execute(b("GET / HTTP/1.1\r\n\r\n\r"));
  assert.equal(p.idle, false, "a held byte");
  assert.equal(p.heldBytes, 1);
  p.next(DEFAULT_MAX);
  assert.equal(p.idle, false, "the held byte is now a pending head byte");
  assert.equal(p.heldBytes, 0);
  // chunked body, trailers
  const c = make();
  c.p.execute(b("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"));
  assert.equal(c.p.idle, false);
  c.p.execute(b("0\r\n"));
  assert.equal(c.p.idle, false);
  c.p.execute(b("\r\n"));
  c.p.next(DEFAULT_MAX);
  assert.equal(c.p.idle, true);
});

test("begin() starts afresh: clears held bytes, a pending head and a failure", () => {
  const { p, r } = make();
  p.execute(b("GET / HTTP/1.1\r\n\r\nGET /held HTTP/1.1\r\n\r\n"));
  assert.ok(p.heldBytes > 0);
  p.begin(DEFAULT_MAX);
  assert.equal(p.heldBytes, 0);
  assert.equal(p.idle, true);
  p.execute(b("GET /par"));
  p.begin(DEFAULT_MAX);
  assert.equal(p.idle, true);
  assert.throws(() => p.execute(b("BAD\r\n\r\n")), HttpParseError);
  p.begin(DEFAULT_MAX);
  p.execute(b("GET /fresh HTTP/1.1\r\n\r\n"));
  assert.deepEqual(
    r.heads.map((h) => h.url),
    ["/", "/fresh"],
  );
});

test("what is kept across reads is a copy: a caller reusing its read buffer changes nothing", () => {
  // one scratch buffer for every read, overwritten after each execute
  const m =
    "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;e\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n" +
    "GET /b HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x00frames";
  const { p, r } = make();
  const scratch = Buffer.alloc(16);
  const all = b(m);
  let nexted = 0;
  for (let at = 0; at < all.length; ) {
    const n = 1 + (at % 5); // reads of 1..5 bytes, cutting every line, CRLF and the head
    const len = all.copy(scratch, 0, at, Math.min(all.length, at + n));
    p.execute(scratch.subarray(0, len));
    scratch.fill(0x55);
    at += len;
    while (nexted < r.ends && !r.heads.some((h) => h.upgrade)) {
      nexted++;
      p.next(DEFAULT_MAX);
    }
  }
  assert.deepEqual(
    r.heads.map((h) => h.url),
    ["/a", "/b"],
  );
  assert.equal(r.body(0), "abcde");
  assert.equal(p.rest().toString("latin1"), "\x81\x00frames");
});

// --- upgrade ---------------------------------------------------------------------------------

const WS_HEAD =
  "GET /chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
/** a masked text frame "Hello" and a masked close frame */
const WS_FRAMES = Buffer.from([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58, 0x88, 0x80, 0x01, 0x02, 0x03, 0x04]);

test("upgrade: the request ends at its head and rest() returns the bytes after it", () => {
  const { p, r } = make();
  p.execute(Buffer.concat([b(WS_HEAD), WS_FRAMES]));
  assert.deepEqual(r.events, ["req", "end"]);
  const h = r.heads[0]!;
  assert.equal(h.upgrade, true);
  assert.equal(h.hasBody, false);
  assert.equal(h.keepAlive, true);
  assert.equal(p.heldBytes, WS_FRAMES.length);
  const rest = p.rest();
  assert.ok(rest.equals(WS_FRAMES));
  assert.equal(p.heldBytes, 0);
  // the parser is given up
  assert.throws(() => p.execute(b("GET / HTTP/1.1\r\n\r\n")), HttpParseError);
  assert.equal(r.heads.length, 1);
});

test("upgrade: frames in later reads accumulate for rest(), even ones that look like HTTP", () => {
  const { p, r } = make();
  p.execute(b(WS_HEAD.slice(0, 40)));
  p.execute(b(WS_HEAD.slice(40)));
  assert.equal(r.heads[0]!.upgrade, true);
  assert.equal(p.heldBytes, 0);
  p.execute(WS_FRAMES.subarray(0, 5));
  p.execute(WS_FRAMES.subarray(5));
  p.execute(b("GET / HTTP/1.1\r\n\r\n"));
  assert.equal(r.heads.length, 1);
  assert.ok(p.rest().equals(Buffer.concat([WS_FRAMES, b("GET / HTTP/1.1\r\n\r\n")])));
  // nothing held: rest() is empty
  const e = make();
  e.p.execute(b(WS_HEAD));
  assert.equal(e.p.rest().length, 0);
});

test("upgrade: Connection token in a list, any case; a Content-Length does not make it wait for a body", () => {
  const o = run("GET / HTTP/1.1\r\nconnection: keep-alive, UPGRADE\r\nupgrade: h2c\r\nContent-Length: 4\r\n\r\nabcdNEXT");
  assert.equal(o.error, undefined);
  assert.equal(o.heads[0]!.upgrade, true);
  assert.equal(o.heads[0]!.hasBody, false);
  assert.deepEqual(o.bodies, [""]);
  assert.equal(o.ends, 1);
  assert.equal(o.rest, "abcdNEXT");
});

test("no upgrade without the Upgrade header, without Connection: upgrade, or in HTTP/1.0", () => {
  const cases = [
    "GET / HTTP/1.1\r\nConnection: Upgrade\r\n\r\n",
    "GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
    "GET / HTTP/1.1\r\nConnection: keep-alive\r\nUpgrade: websocket\r\n\r\n",
    "GET / HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
  ];
  for (const m of cases) {
    // what follows is parsed as the next request, not handed over
    const o = run(`${m}GET /after HTTP/1.1\r\n\r\n`);
    assert.equal(o.error, undefined, m);
    assert.equal(o.heads[0]!.upgrade, false, m);
    assert.equal(o.rest, undefined);
    assert.deepEqual(
      o.heads.map((h) => h.url),
      ["/", "/after"],
      m,
    );
  }
  // without upgrade, a Content-Length body is read as a body
  const o = run("POST / HTTP/1.1\r\nUpgrade: websocket\r\nContent-Length: 2\r\n\r\nhi");
  assert.deepEqual(o.bodies, ["hi"]);
  assert.equal(o.heads[0]!.hasBody, true);
});

test("Expect: reported lower-cased; undefined without the header", () => {
  const { p, r } = make();
  p.execute(b("PUT /f HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n"));
  assert.deepEqual(r.events, ["req"], "the head is delivered before any body byte arrives");
  assert.equal(r.heads[0]!.expect, "100-continue");
  assert.equal(r.heads[0]!.hasBody, true);
  p.execute(b("abc"));
  assert.equal(r.ends, 1);
  assert.equal(run("GET / HTTP/1.1\r\nexpect: 100-continue\r\n\r\n").heads[0]!.expect, "100-continue");
  assert.equal(run("GET / HTTP/1.1\r\n\r\n").heads[0]!.expect, undefined);
  assert.equal(run("GET / HTTP/1.1\r\nX-Expect: 100-continue\r\n\r\n").heads[0]!.expect, undefined);
});

// --- limits ----------------------------------------------------------------------------------

test("header block limit: the whole block including the blank line, split or not → 431", () => {
  const head = `GET / HTTP/1.1\r\nX: ${"a".repeat(100)}\r\nHost: h\r\n\r\n`;
  assert.equal(run(head, { max: head.length }).error, undefined);
  assertFails(head, 431, /header too large/, { max: head.length - 1 });
  for (let i = 1; i < head.length; i++) assertFails(head, 431, /too large/, { max: head.length - 1, splits: [i] });
  assertFails(head, 431, /too large/, { max: head.length - 1, splits: Array.from({ length: head.length }, (_, i) => i) });
  assert.equal(run(head, { max: head.length, splits: Array.from({ length: head.length }, (_, i) => i) }).error, undefined);
});

test("header block limit crossed across several reads without a terminator: refused at the crossing read", () => {
  const { p, r } = make(1024);
  p.execute(b("GET / HTTP/1.1\r\nX-Long: "));
  let fed = "GET / HTTP/1.1\r\nX-Long: ".length;
  const piece = b("a".repeat(100));
  while (fed + piece.length <= 1024) {
    p.execute(piece); // still within the limit: must not throw
    fed += piece.length;
  }
  assert.throws(
    () => p.execute(piece),
    (e: unknown) => e instanceof HttpParseError && e.status === 431,
  );
  assert.equal(r.heads.length, 0);
});

test("a request line alone too long → 431", () => {
  assertFails(`GET /${"a".repeat(2000)}`, 431, /too large/, { max: 1024 });
  assertFails(`GET /${"a".repeat(2000)} HTTP/1.1\r\n\r\n`, 431, /too large/, { max: 1024 });
  assertFails(`GET /${"a".repeat(2000)} HTTP/1.1\r\n\r\n`, 431, /too large/, { max: 1024, splits: [500, 1000, 1500] });
});

// --- strictness ------------------------------------------------------------------------------

test("bad request lines → 400", () => {
  const bad: [string, RegExp][] = [
    ["GET /\r\n\r\n", /bad request line/],
    ["GET / \r\n\r\n", /bad request line/],
    ["GET / HTTP/2.0\r\n\r\n", /bad request line/],
    ["GET / HTTP/1.2\r\n\r\n", /bad request line/],
    ["GET / HTTP/1\r\n\r\n", /bad request line/],
    ["GET / http/1.1\r\n\r\n", /bad request line/],
    ["GET / HTTP/1.1 \r\n\r\n", /bad request line/],
    ["GET /a b HTTP/1.1\r\n\r\n", /bad request line/],
    ["GET  / HTTP/1.1\r\n\r\n", /bad request line/],
    [" GET / HTTP/1.1\r\n\r\n", /bad request line/],
    ["GET\t/ HTTP/1.1\r\n\r\n", /bad request line/],
    ["GET /a\tb HTTP/1.1\r\n\r\n", /bad request line/],
    ["GET /a\x00b HTTP/1.1\r\n\r\n", /bad request line/],
    ["GET /a\x01b HTTP/1.1\r\n\r\n", /bad request line/],
    ["GET /a\x7fb HTTP/1.1\r\n\r\n", /bad request line/],
    ["GET /a\rb HTTP/1.1\r\n\r\n", /bad request line/],
    ["G(ET / HTTP/1.1\r\n\r\n", /bad request line/],
    ["G\xe9T / HTTP/1.1\r\n\r\n", /bad request line/],
    ["/ HTTP/1.1\r\n\r\n", /bad request line/],
    ["GET HTTP/1.1\r\n\r\n", /bad request line/],
    ["GET / HTTP/1.1\nHost: h\r\n\r\n", /bad request line/],
    ["\r\n\r\n", /empty request line/],
    ["\r\nGET / HTTP/1.1\r\n\r\n", /empty request line/],
  ];
  for (const [m, re] of bad) {
    const o = run(m);
    assert.ok(o.error, `no error for ${JSON.stringify(m)}`);
    assert.equal(o.error.status, 400, JSON.stringify(m));
    assert.match(o.error.message, re, JSON.stringify(m));
    assert.equal(o.heads.length, 0, JSON.stringify(m));
  }
});

test("bad header lines → 400", () => {
  const bad: [string, RegExp][] = [
    ["X: a\r\n folded", /obs-fold/],
    ["X: a\r\n\tfolded", /obs-fold/],
    [" X: a", /obs-fold/],
    ["X: a\nY: b", /bare CR or LF/],
    ["X: a\n", /bare CR or LF/],
    ["X: a\rY: b", /bare CR or LF/],
    ["X: a\r", /bare CR or LF/],
    ["X Y: a", /header name/],
    ["X : a", /header name/],
    ["X\t: a", /header name/],
    ["X(: a", /header name/],
    ["X\xe9: a", /header name/],
    [": a", /header line/],
    ["nocolon", /header line/],
    ["X: a\x00b", /header value/],
    ["X: a\x01b", /header value/],
    ["X: a\x1bb", /header value/],
    ["X: a\x7fb", /header value/],
    ["X: a\x0bb", /header value/],
  ];
  for (const [line, re] of bad) {
    const m = `GET / HTTP/1.1\r\nHost: h\r\n${line}\r\n\r\n`;
    const o = run(m);
    assert.ok(o.error, `no error for ${JSON.stringify(line)}`);
    assert.equal(o.error.status, 400, JSON.stringify(line));
    assert.match(o.error.message, re, JSON.stringify(line));
    assert.equal(o.heads.length, 0);
  }
  // the same characters in allowed places are fine: tab and obs-text in values, empty values
  const ok = run("GET / HTTP/1.1\r\nX: a\tb\xe9\xff c\r\nY:\r\nZ:\t \r\n\r\n");
  assert.equal(ok.error, undefined);
  assert.deepEqual(ok.heads[0]!.rawHeaders, ["X", "a\tb\xe9\xff c", "Y", "", "Z", ""]);
});

test("body framing errors: CL with TE, differing CLs, malformed CL → 400; unknown transfer coding → 501", () => {
  const bad: [string, number, RegExp][] = [
    ["Content-Length: 1\r\nTransfer-Encoding: chunked", 400, /Content-Length with Transfer-Encoding/],
    ["Transfer-Encoding: chunked\r\nContent-Length: 1", 400, /Content-Length with Transfer-Encoding/],
    ["Content-Length: 0\r\nTransfer-Encoding: chunked", 400, /Content-Length with Transfer-Encoding/],
    ["Content-Length: 1\r\nContent-Length: 2", 400, /differing Content-Length/],
    ["Content-Length: 1\r\nContent-Length: 01", 400, /differing Content-Length/],
    ["Content-Length: abc", 400, /bad Content-Length/],
    ["Content-Length: -1", 400, /bad Content-Length/],
    ["Content-Length: +1", 400, /bad Content-Length/],
    ["Content-Length: 1.0", 400, /bad Content-Length/],
    ["Content-Length: 1, 1", 400, /bad Content-Length/],
    ["Content-Length: 1 2", 400, /bad Content-Length/],
    ["Content-Length: 0x10", 400, /bad Content-Length/],
    ["Content-Length: ", 400, /bad Content-Length/],
    ["Content-Length: 1234567890123456", 400, /bad Content-Length/],
    ["Content-Length: 0000000000000001", 400, /bad Content-Length/],
    ["Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", 400, /repeated Transfer-Encoding/],
    ["Transfer-Encoding: gzip", 501, /unsupported Transfer-Encoding/],
    ["Transfer-Encoding: gzip, chunked", 501, /unsupported Transfer-Encoding/],
    ["Transfer-Encoding: chunked, chunked", 501, /unsupported Transfer-Encoding/],
    ["Transfer-Encoding: identity", 501, /unsupported Transfer-Encoding/],
  ];
  for (const [headers, status, re] of bad) assertFails(`POST / HTTP/1.1\r\n${headers}\r\n\r\n`, status, re);
});

test("chunk framing errors → 400", () => {
  const pre = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  const bad: [string, RegExp][] = [
    ["zz\r\n", /bad chunk size/],
    ["\r\n", /bad chunk size/],
    ["-1\r\n", /bad chunk size/],
    ["0x5\r\nhello\r\n", /bad chunk size/],
    [" 5\r\nhello\r\n", /bad chunk size/],
    ["5 5\r\nhello\r\n", /bad chunk size/],
    [";ext\r\n", /bad chunk size/],
    ["1234567890abc\r\n", /bad chunk size/],
    ["5\nhello\r\n0\r\n\r\n", /bad chunk size/],
    ["1;a\x01b\r\nx\r\n", /bad chunk extension/],
    ["1;a\x7f\r\nx\r\n", /bad chunk extension/],
    ["3\r\nabcX\r\n0\r\n\r\n", /not followed by CRLF/],
    ["3\r\nabcX\n0\r\n\r\n", /not followed by CRLF/],
    ["3\r\nabc\n\n0\r\n\r\n", /not followed by CRLF/],
    ["3\r\nabc\n0\r\n\r\n", /not followed by CRLF/],
    ["3\r\nabc\r0\r\n\r\n", /not followed by CRLF/],
    ["3\r\nabcd\r\n", /not followed by CRLF/],
    ["0\r\n folded: x\r\n\r\n", /bad trailer line/],
    ["0\r\nnocolon\r\n\r\n", /bad trailer line/],
    ["0\r\nX Y: v\r\n\r\n", /bad trailer line/],
    ["0\r\n: v\r\n\r\n", /bad trailer line/],
    ["0\r\nX: a\x00b\r\n\r\n", /bad trailer line/],
  ];
  for (const [body, re] of bad) {
    const m = pre + body;
    const whole = run(m);
    assert.ok(whole.error, `no error for ${JSON.stringify(body)}`);
    assert.equal(whole.error.status, 400, JSON.stringify(body));
    assert.match(whole.error.message, re, JSON.stringify(body));
    assert.equal(whole.ends, 0, JSON.stringify(body));
    // and the same split anywhere
    for (let i = pre.length; i < m.length; i++) assert.deepEqual(run(m, { splits: [i] }), whole, `${JSON.stringify(body)} split at ${i}`);
  }
  // 12 hex digits are the most a chunk size may have
  const o = run(`${pre}000000000001\r\nx\r\n0\r\n\r\n`);
  assert.equal(o.error, undefined);
  assert.deepEqual(o.bodies, ["x"]);
});

test("chunk line limit: 4096 bytes with its CRLF accepted, one more refused, split or not", () => {
  const pre = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  const line = (n: number): string => `1;${"e".repeat(n - 4)}\r\n`;
  assert.equal(line(MAX_CHUNK_LINE).length, MAX_CHUNK_LINE);
  const ok = run(`${pre}${line(MAX_CHUNK_LINE)}x\r\n0\r\n\r\n`);
  assert.equal(ok.error, undefined);
  assert.deepEqual(ok.bodies, ["x"]);
  for (const opts of [{}, { splits: [pre.length + 1000, pre.length + 4000] }]) {
    const e = failure(`${pre}${line(MAX_CHUNK_LINE + 1)}x\r\n0\r\n\r\n`, opts);
    assert.match(e.message, /chunk line too large/);
    assert.equal(e.status, 400); // a framing error, not a header block too large
  }
  // no CRLF at all: refused once past the limit, not buffered without bound
  const { p } = make();
  p.execute(b(pre));
  p.execute(b(`1;${"e".repeat(MAX_CHUNK_LINE - 2)}`));
  assert.throws(() => p.execute(b("ee")), /chunk line too large/);
});

test("trailers: limited to maxHeaderBytes in all (431), checked line by line", () => {
  const max = 1024;
  const pre = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n";
  // trailer section (lines with their CRLFs plus the closing CRLF) of exactly `total` bytes
  const section = (total: number): string => {
    const lines: string[] = [];
    let left = total - 2;
    while (left > 0) {
      const n = Math.min(left, 100);
      assert.ok(n >= 5);
      lines.push(`T:${"v".repeat(n - 4)}\r\n`);
      left -= n;
    }
    return `${lines.join("")}\r\n`;
  };
  assert.equal(section(max).length, max);
  // many small lines add up
  const ok = run(pre + section(max) + "GET / HTTP/1.1\r\n\r\n", { max });
  assert.equal(ok.error, undefined);
  assert.equal(ok.ends, 2);
  assert.deepEqual(ok.bodies, ["x", ""]);
  assertFails(pre + section(max + 1), 431, /trailers too large/, { max });
  assertFails(pre + section(max + 1), 431, /trailers too large/, { max, splits: [pre.length + 300, pre.length + 700] });
  // one long line without its end yet
  assertFails(`${pre}T: ${"v".repeat(2000)}`, 431, /trailers too large/, { max });
  // the trailer budget is independent of the head's size
  const bigHead = `POST / HTTP/1.1\r\nX: ${"h".repeat(900)}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n${section(max)}`;
  assert.equal(run(bigHead, { max }).error, undefined);
});

test("after an error the parser stays failed", () => {
  const bads = [
    "GET / HTTP/2.0\r\n\r\n",
    "GET / HTTP/1.1\r\nX: a\nb\r\n\r\n",
    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
    `GET /${"a".repeat(200)}`,
  ];
  for (const bad of bads) {
    const { p, r } = make(128);
    let first: unknown;
    try {
      p.execute(b(bad));
    } catch (e) {
      first = e;
    }
    assert.ok(first instanceof HttpParseError, JSON.stringify(bad));
    const heads = r.heads.length;
    const events = r.events.length;
    assert.throws(() => p.execute(b("GET / HTTP/1.1\r\n\r\n")), HttpParseError);
    assert.throws(() => p.execute(b("x")), HttpParseError);
    assert.equal(r.heads.length, heads);
    assert.equal(r.events.length, events, "no callback after the failure");
    assert.equal(p.idle, false);
  }
});

// --- fuzz ------------------------------------------------------------------------------------

const TCHAR = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const VCHAR = Array.from({ length: 0x7f - 0x21 }, (_, i) => String.fromCharCode(0x21 + i)).join("");
// obs-text (0xa0 included: only spaces and tabs are trimmed from values)
const OBS = Array.from({ length: 0x80 }, (_, i) => String.fromCharCode(0x80 + i)).join("");

interface Expected {
  bytes: Buffer;
  heads: RequestHead[];
  bodies: string[];
  rest: string | undefined;
}

/** A valid pipelined sequence of 1..4 requests; the last may upgrade, followed by opaque bytes. */
function genSequence(rand: (n: number) => number): Expected {
  const pick = <T>(xs: readonly T[]): T => xs[rand(xs.length)]!;
  const str = (alphabet: string, min: number, max: number): string => {
    let s = "";
    const n = min + rand(max - min + 1);
    for (let i = 0; i < n; i++) s += alphabet[rand(alphabet.length)];
    return s;
  };
  const ows = (): string => pick(["", "", " ", "  ", "\t", " \t"]);
  const parts: Buffer[] = [];
  const heads: RequestHead[] = [];
  const bodies: string[] = [];
  let rest: string | undefined;
  const count = 1 + rand(4);
  for (let n = 0; n < count; n++) {
    const http10 = rand(5) === 0;
    const upgrade = !http10 && n === count - 1 && rand(6) === 0;
    const method = upgrade ? "GET" : pick(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "M-SEARCH", str(TCHAR, 1, 8)]);
    const url = pick(["/", "*", "/a/b?c=d&e=%20", "http://example.com:8080/x?y", "example.com:443", `/${str(VCHAR, 0, 30)}`]);
    const raw: string[] = [];
    const lines: string[] = [];
    const add = (name: string, value: string): void => {
      raw.push(name, value);
      lines.push(`${name}:${ows()}${value}${ows()}`);
    };
    const extra = (): void => {
      const value = rand(4) === 0 ? "" : str(VCHAR + OBS, 1, 1) + str(VCHAR + OBS + " \t", 0, 20) + str(VCHAR + OBS, 0, 1);
      add(`X-${str(TCHAR, 1, 10)}`, value.length > 1 && /[ \t]$/.test(value) ? value.trimEnd() : value);
    };
    if (rand(2) === 0) add(pick(["Host", "host"]), "example.com");
    for (let i = rand(4); i > 0; i--) extra();
    const conn = upgrade ? pick(["Upgrade", "keep-alive, upgrade"]) : pick([undefined, "keep-alive", "close", "Keep-Alive, foo", "foo"]);
    if (conn !== undefined) add(pick(["Connection", "connection"]), conn);
    if (upgrade) add(pick(["Upgrade", "upgrade"]), pick(["websocket", "h2c"]));
    const expect = rand(6) === 0 ? "100-continue" : undefined;
    if (expect) add("Expect", pick(["100-continue", "100-Continue"]));
    const framing = upgrade ? "none" : pick(["none", "cl", "cl", "chunked", "chunked"] as const);
    const body = framing === "none" ? "" : str(Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join(""), 0, rand(4) === 0 ? 300 : 20);
    let encoded = "";
    if (framing === "cl") {
      const cl = pick(["", "0", "00"]) + String(body.length);
      add(pick(["Content-Length", "content-length"]), cl);
      if (rand(5) === 0) add("Content-Length", cl);
      encoded = body;
    } else if (framing === "chunked") {
      add(pick(["Transfer-Encoding", "transfer-encoding"]), pick(["chunked", "Chunked"]));
      let at = 0;
      while (at < body.length) {
        const size = Math.min(body.length - at, 1 + rand(40));
        let hex = size.toString(16);
        if (rand(2) === 0) hex = hex.toUpperCase();
        if (rand(4) === 0) hex = "0".repeat(1 + rand(3)) + hex;
        const ext = pick(["", "", ";a=b", ";x", ' ;q="s p"', ";\xe9"]);
        encoded += `${hex}${ext}\r\n${body.slice(at, at + size)}\r\n`;
        at += size;
      }
      encoded += `0${pick(["", ";last"])}\r\n`;
      for (let i = rand(3); i > 0; i--) encoded += `T-${str(TCHAR, 1, 6)}:${ows()}${str(VCHAR, 0, 10)}\r\n`;
      encoded += "\r\n";
    }
    for (let i = rand(2); i > 0; i--) extra();
    parts.push(b(`${method} ${url} HTTP/1.${http10 ? 0 : 1}\r\n${lines.map((l) => `${l}\r\n`).join("")}\r\n${encoded}`));
    const lc = conn?.toLowerCase() ?? "";
    heads.push({
      method,
      url,
      http10,
      rawHeaders: raw,
      keepAlive: !lc.includes("close") && (!http10 || lc.includes("keep-alive")),
      upgrade,
      hasBody: framing === "chunked" || (framing === "cl" && body.length > 0),
      chunked: framing === "chunked",
      expect,
    });
    bodies.push(body);
    if (upgrade) {
      rest = pick(["", str(Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join(""), 1, 30), "GET / HTTP/1.1\r\n\r\n"]);
      parts.push(b(rest));
    }
  }
  return { bytes: Buffer.concat(parts), heads, bodies, rest };
}

test("fuzz: 10,000 valid and mutated pipelined sequences in random reads parse correctly or fail cleanly", () => {
  const rand = intRng(0x7e9e57);
  const pieces = ["\r\n", "\r\n\r\n", ":", " ", "\t", "\n", "\r", "0", "ff", ";", "Content-Length: 3\r\n", "Transfer-Encoding: chunked\r\n", "Connection: upgrade\r\nUpgrade: x\r\n", "\x00", "\xff", " HTTP/1.1\r\n", "GET / HTTP/1.1\r\n\r\n"];
  const statuses = new Set<number>();
  let valid = 0;
  let ok = 0;
  let failed = 0;
  let requests = 0;
  for (let n = 0; n < 10_000; n++) {
    const exp = genSequence(rand);
    let buf = exp.bytes;
    const edits = rand(3) === 0 ? 0 : 1 + rand(3);
    for (let e = 0; e < edits; e++) buf = mutate(buf, rand, pieces);
    const max = rand(4) === 0 ? 64 + rand(256) : DEFAULT_MAX;
    const splits = Array.from({ length: rand(6) }, () => rand(buf.length + 1));
    // run() lets anything but an HttpParseError through, and the recorder fails on body bytes
    // outside a request
    const whole = run(buf, { max });
    const split = run(buf, { max, splits });
    assert.deepEqual(split, whole, `split-dependent result for ${JSON.stringify(buf.toString("latin1"))} at ${splits}`);
    if (whole.error) {
      failed++;
      statuses.add(whole.error.status);
      assert.ok([400, 431, 501].includes(whole.error.status), `status ${whole.error.status}`);
    } else ok++;
    // whatever the input, a request that ended with a Content-Length got exactly that many bytes
    for (let i = 0; i < whole.heads.length; i++) {
      const h = whole.heads[i]!;
      if (!h.hasBody) assert.equal(whole.bodies[i], "", "body bytes for a request without a body");
      const cl = h.rawHeaders.findIndex((v, j) => j % 2 === 0 && v.toLowerCase() === "content-length");
      if (cl >= 0 && h.hasBody) {
        const len = Number(h.rawHeaders[cl + 1]);
        if (i < whole.ends) assert.equal(whole.bodies[i]!.length, len);
        else assert.ok(whole.bodies[i]!.length < len);
      }
    }
    assert.ok(whole.ends === whole.heads.length || whole.ends === whole.heads.length - 1);
    if (edits === 0 && max === DEFAULT_MAX) {
      valid++;
      requests += exp.heads.length;
      const show = JSON.stringify(buf.toString("latin1"));
      assert.equal(whole.error, undefined, `unmutated input failed: ${show}`);
      assert.equal(whole.heads.length, exp.heads.length, show);
      assert.equal(whole.ends, exp.heads.length, show);
      assert.deepEqual(whole.heads, exp.heads, show);
      assert.deepEqual(whole.bodies, exp.bodies, show);
      assert.equal(whole.rest, exp.rest, show);
      if (exp.rest === undefined) assert.equal(whole.idle, true, show);
      // and byte by byte (a sample: it is the slow part)
      if (valid % 8 !== 0) continue;
      const bytewise = run(buf, { splits: Array.from({ length: buf.length }, (_, i) => i) });
      assert.deepEqual(bytewise, whole, `1-byte reads: ${show}`);
    }
  }
  assert.ok(valid > 2000, `valid inputs ${valid}`);
  assert.ok(requests > valid * 2, `pipelined requests ${requests}`);
  assert.ok(ok > 3000 && failed > 1500, `both outcomes exercised (ok ${ok}, failed ${failed})`);
  for (const s of [400, 431]) assert.ok(statuses.has(s), `status ${s} seen`);
});

test("header values lose only leading and trailing spaces and tabs (0xa0 is a value byte)", () => {
  const r = run("GET / HTTP/1.1\r\nHost: a\r\nX: \t\xa0v\xa0 \t\r\n\r\n");
  assert.equal(r.error, undefined);
  assert.deepEqual(r.heads[0]!.rawHeaders, ["Host", "a", "X", "\xa0v\xa0"]);
});

test("request target: a control, space, DEL or non-ASCII byte is a 400 (never a head); failedMethod names the method", () => {
  for (const target of ["/caf\xe9", "/\xed\xa0", "/\x80", "/a\x7f", "/a\x00b", "/a\tb", "\xff"]) {
    const { p, r } = make();
    assert.throws(() => p.execute(b(`HEAD ${target} HTTP/1.1\r\nHost: x\r\n\r\n`)), (e: unknown) => e instanceof RequestParseError && e.status === 400, JSON.stringify(target));
    assert.equal(r.heads.length, 0);
    assert.equal(p.failedMethod(), "HEAD");
  }
  // a head too large, not finished: its method from the bytes held
  const { p } = make(64);
  assert.throws(() => p.execute(b(`HEAD /${"a".repeat(100)}`)), (e: unknown) => e instanceof RequestParseError && e.status === 431);
  assert.equal(p.failedMethod(), "HEAD");
  const junk = make();
  assert.throws(() => junk.p.execute(b("\x01\x02 / HTTP/1.1\r\n\r\n")));
  assert.equal(junk.p.failedMethod(), undefined);
});

test("fuzz: 10,000 request targets of random bytes: accepted exactly when every byte is visible ASCII, and then passed as sent", () => {
  const rand = intRng(0x16b);
  let accepted = 0;
  for (let i = 0; i < 10_000; i++) {
    const n = 1 + rand(12);
    const bytes = Array.from({ length: n }, () => (rand(3) === 0 ? rand(256) : 0x21 + rand(94)));
    const target = "/" + String.fromCharCode(...bytes);
    const visible = bytes.every((c) => c >= 0x21 && c <= 0x7e);
    const { p, r } = make();
    let err: unknown;
    try {
      p.execute(b(`GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`));
    } catch (e) {
      err = e;
    }
    if (visible) {
      assert.equal(err, undefined, JSON.stringify(target));
      assert.equal(r.heads[0]?.url, target);
      accepted++;
    } else {
      // CR LF inside make another line: still never a head with that target
      assert.ok(err instanceof RequestParseError, JSON.stringify(target));
      assert.ok(r.heads.every((h) => h.url !== target));
    }
  }
  assert.ok(accepted > 100 && accepted < 9900, `both kinds tried (${accepted})`);
});

test("fuzz: 10,000 chunk-size lines: a 400 unless the size is hex digits (then the body is what was sent)", () => {
  const rand = intRng(0xc4);
  const alphabet = "0123456789abcdefABCDEF-+ x;.\t_gG\xff";
  for (let i = 0; i < 10_000; i++) {
    const n = 1 + rand(5);
    let line = "";
    for (let k = 0; k < n; k++) line += alphabet[rand(alphabet.length)];
    if (rand(4) === 0) line = pickSign(rand) + line;
    const { p, r } = make();
    let err: unknown;
    try {
      p.execute(b(`POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n${line}\r\n`));
    } catch (e) {
      err = e;
    }
    const size = (line.includes(";") ? line.slice(0, line.indexOf(";")) : line).replace(/[ \t]+$/, "");
    const hex = /^[0-9a-fA-F]+$/.test(size);
    if (!hex) {
      assert.ok(err instanceof RequestParseError && err.status === 400, JSON.stringify(line));
      assert.equal(r.ends, 0);
    } else if (!line.includes(";")) {
      assert.equal(err, undefined, JSON.stringify(line));
    }
  }
});

const pickSign = (rand: (n: number) => number): string => ["-", "+", "-0", " ", "0x"][rand(5)]!;
