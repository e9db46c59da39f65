// The upstream response parser: framing, strictness, limits, interim responses, keep-alive
// decisions, and a seeded fuzz (mutated responses split at random points).
import { test } from "node:test";
import assert from "node:assert/strict";
import { ResponseParser, ResponseParseError, type ResponseHead } from "../../src/proxy/response-parser.js";
import { intRng, mutate } from "../helpers/random.js";

interface Result {
  heads: ResponseHead[];
  body: string;
  ended: boolean;
  error: string | undefined;
  keepAlive: boolean;
  extra: boolean;
}

function parse(input: string | Buffer, opts: { head?: boolean; max?: number; splits?: number[]; eof?: boolean } = {}): Result {
  const r: Result = { heads: [], body: "", ended: false, error: undefined, keepAlive: false, extra: false };
  const bodyParts: Buffer[] = [];
  const p = new ResponseParser({
    onHead: (h) => r.heads.push(h),
    onBody: (c) => bodyParts.push(Buffer.from(c)),
    onEnd: () => {
      assert.equal(r.ended, false, "onEnd twice");
      r.ended = true;
    },
  });
  p.begin(opts.head ?? false, opts.max ?? 16384);
  const buf = typeof input === "string" ? Buffer.from(input, "latin1") : input;
  const cuts = [0, ...(opts.splits ?? []).filter((n) => n > 0 && n < buf.length).sort((a, b) => a - b), buf.length];
  try {
    for (let i = 0; i + 1 < cuts.length; i++) p.execute(buf.subarray(cuts[i], cuts[i + 1]));
    if (opts.eof) p.eof();
  } catch (e) {
    if (!(e instanceof ResponseParseError)) throw e;
    r.error = e.message;
  }
  r.body = Buffer.concat(bodyParts).toString("latin1");
  r.keepAlive = p.keepAlive;
  r.extra = p.extra;
  return r;
}

test("Content-Length body, keep-alive by default in HTTP/1.1", () => {
  const r = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  b \r\n\r\nhello");
  assert.equal(r.error, undefined);
  assert.equal(r.ended, true);
  assert.equal(r.body, "hello");
  assert.deepEqual(r.heads, [{ status: 200, reason: "OK", rawHeaders: ["Content-Length", "5", "X-A", "b"] }]);
  assert.equal(r.keepAlive, true);
  assert.equal(r.extra, false);
});

test("every split point gives the same result", () => {
  const msgs = [
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n1\r\n!\r\n0\r\nT: v\r\n\r\n",
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
  ];
  for (const m of msgs) {
    const whole = parse(m);
    assert.equal(whole.error, undefined, m);
    assert.equal(whole.ended, true);
    for (let i = 1; i < m.length; i++) for (const j of [i + 1, i + 7]) assert.deepEqual(parse(m, { splits: [i, j] }), whole, `${JSON.stringify(m)} split ${i},${j}`);
  }
});

test("chunked body decoded, trailers discarded", () => {
  const r = parse("HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\na\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n");
  assert.equal(r.body, "0123456789");
  assert.equal(r.ended, true);
  assert.equal(r.keepAlive, true);
});

test("close-delimited body ends at EOF and is never kept alive", () => {
  const r = parse("HTTP/1.1 200 OK\r\n\r\nsome bytes", { eof: true });
  assert.equal(r.body, "some bytes");
  assert.equal(r.ended, true);
  assert.equal(r.keepAlive, false);
});

test("EOF inside a framed body is an error", () => {
  assert.match(parse("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", { eof: true }).error ?? "", /closed/);
  assert.match(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", { eof: true }).error ?? "", /closed/);
  assert.match(parse("HTTP/1.1 200 O", { eof: true }).error ?? "", /closed/);
});

test("no body for HEAD, 204 and 304 whatever the headers say", () => {
  for (const [m, head] of [
    ["HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n", true],
    ["HTTP/1.1 204 No Content\r\nContent-Length: 50\r\n\r\n", false],
    ["HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", false],
  ] as const) {
    const r = parse(m, { head });
    assert.equal(r.error, undefined, m);
    assert.equal(r.ended, true, m);
    assert.equal(r.body, "");
    assert.equal(r.keepAlive, true);
  }
});

test("1xx interim responses are skipped; 101 to a plain request is an error", () => {
  const r = parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  assert.equal(r.heads.length, 1);
  assert.equal(r.heads[0]!.status, 200);
  assert.equal(r.ended, true);
  assert.match(parse("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n").error ?? "", /101/);
});

test("keep-alive: Connection close, HTTP/1.0 rules, bytes after the end", () => {
  assert.equal(parse("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keepAlive, false);
  assert.equal(parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keepAlive, false);
  assert.equal(parse("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n").keepAlive, true);
  const r = parse("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naEXTRA");
  assert.equal(r.body, "a");
  assert.equal(r.ended, true);
  assert.equal(r.extra, true);
  assert.equal(r.keepAlive, false);
});

test("strictness: each malformed response is a clean error", () => {
  const bad: [string, RegExp][] = [
    ["HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", /Content-Length with Transfer-Encoding/],
    ["HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", /differing/],
    ["HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", /Content-Length/],
    ["HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\n", /Content-Length/],
    ["HTTP/1.1 200 OK\r\nContent-Length: 1234567890123456\r\n\r\n", /Content-Length/],
    ["HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", /Transfer-Encoding/],
    ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", /Transfer-Encoding/],
    ["HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n", /obs-fold/],
    ["HTTP/1.1 200 OK\r\nX: a\nY: b\r\n\r\n", /bare/],
    ["HTTP/1.1 200 OK\r\nX : a\r\n\r\n", /header name/],
    ["HTTP/1.1 200 OK\r\n: a\r\n\r\n", /header line/],
    ["HTTP/1.1 200 OK\r\nnocolon\r\n\r\n", /header line/],
    ["HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n", /header value/],
    ["HTTP/1.1 200 OK\r\nX: a\x7fb\r\n\r\n", /header value/],
    ["HTTP/1.2 200 OK\r\n\r\n", /status line/],
    ["HTTP/1.1 20 OK\r\n\r\n", /status line/],
    ["HTTP/1.1 099 OK\r\n\r\n", /status line/],
    ["HTTP/1.1 200 O\x01K\r\n\r\n", /status line/],
    ["HTTP/1.1  200 OK\r\n\r\n", /status line/],
    ["ICY 200 OK\r\n\r\n", /status line/],
    ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", /chunk size/],
    ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1234567890abc\r\n", /chunk size/],
    ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", /chunk size/],
    ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n", /CRLF/],
    ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n bad\r\n\r\n", /trailer/],
  ];
  for (const [m, re] of bad) {
    const r = parse(m);
    assert.match(r.error ?? "(no error)", re, JSON.stringify(m));
    assert.equal(r.ended, false);
  }
});

test("header block limit counts the whole block, split or not", () => {
  const head = `HTTP/1.1 200 OK\r\nX: ${"a".repeat(100)}\r\nContent-Length: 0\r\n\r\n`;
  assert.equal(parse(head, { max: head.length }).error, undefined);
  assert.match(parse(head, { max: head.length - 1 }).error ?? "", /too large/);
  assert.match(parse(head, { max: head.length - 1, splits: [10, 50, 100] }).error ?? "", /too large/);
  // no terminator at all: refused as soon as the limit is passed, not buffered without bound
  assert.match(parse(`HTTP/1.1 200 OK\r\nX: ${"a".repeat(5000)}`, { max: 1024 }).error ?? "", /too large/);
  assert.match(parse(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;${"e".repeat(5000)}`).error ?? "", /chunk line too large/);
});

test("fuzz: 10,000 mutated responses split at random points parse cleanly or fail cleanly", () => {
  const rand = intRng(0x5eed6);
  const corpus = [
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3;e=1\r\nefg\r\n0\r\nX-Trailer: t\r\n\r\n",
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno\n",
    "HTTP/1.0 200 OK\r\nServer: x\r\n\r\nclose delimited body",
    "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
    "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
  ];
  const pieces = ["\r\n", "\r\n\r\n", ":", " ", "\t", "\n", "\r", "0", "ff", ";", "Content-Length: 3\r\n", "Transfer-Encoding: chunked\r\n", "\x00", "\xff", "HTTP/1.1 "];
  let ok = 0;
  let failed = 0;
  for (let n = 0; n < 10_000; n++) {
    const base = Buffer.from(corpus[rand(corpus.length)]!, "latin1");
    let buf: Buffer = base;
    const edits = rand(4);
    for (let e = 0; e < edits; e++) buf = mutate(buf, rand, pieces);
    const splits = Array.from({ length: rand(5) }, () => rand(buf.length + 1));
    const head = rand(10) === 0;
    const whole = parse(buf, { head, eof: true });
    const split = parse(buf, { head, eof: true, splits });
    // the parse does not depend on how the bytes were cut
    assert.deepEqual(split, whole, `split-dependent result for ${JSON.stringify(buf.toString("latin1"))} at ${splits}`);
    if (whole.error === undefined) {
      ok++;
      assert.equal(whole.ended, true);
      assert.equal(whole.heads.length, 1);
      const h = whole.heads[0]!;
      assert.ok(h.status >= 200 && h.status <= 999);
      // a declared Content-Length is exactly the body delivered
      const cl = h.rawHeaders.findIndex((v, i) => i % 2 === 0 && v.toLowerCase() === "content-length");
      if (cl >= 0 && !head && h.status !== 204 && h.status !== 304) assert.equal(whole.body.length, Number(h.rawHeaders[cl + 1]));
    } else {
      failed++;
    }
    if (edits === 0) assert.equal(whole.error, undefined, `unmutated input failed: ${JSON.stringify(buf.toString("latin1"))}`);
  }
  assert.ok(ok > 1000 && failed > 1000, `both outcomes exercised (ok ${ok}, failed ${failed})`);
});
