// The proxy's small parsers: Host normalisation, cookies, header scanning; fuzzed (seeded, bounded).
import { test } from "node:test";
import assert from "node:assert/strict";
import { normalizeHost, RouteTable } from "../../src/proxy/table.js";
import { cookieValue, filterResponse, scanRequest } from "../../src/proxy/headers.js";
import { Pool } from "../../src/proxy/pool.js";
import { rng } from "../helpers/random.js";

test("normalizeHost: port dropped, lower-cased, malformed refused", () => {
  assert.equal(normalizeHost("Example.COM:8080"), "example.com");
  assert.equal(normalizeHost("example.com."), "example.com");
  assert.equal(normalizeHost("[::1]:80"), "[::1]");
  assert.equal(normalizeHost("127.0.0.1"), "127.0.0.1");
  for (const bad of [undefined, "", ":80", "a b", "a:b", "a:123456", "[::1", "[zz]", "ex/ample", "a".repeat(300), "é.com"]) assert.equal(normalizeHost(bad), undefined, String(bad));
});

test("cookieValue finds one cookie among many", () => {
  assert.equal(cookieValue("a=1; SOZUBALANCEID=b-2; c=3", "SOZUBALANCEID"), "b-2");
  assert.equal(cookieValue("SOZUBALANCEID=x%3A1", "SOZUBALANCEID"), "x:1");
  assert.equal(cookieValue("XSOZUBALANCEID=1", "SOZUBALANCEID"), undefined);
  assert.equal(cookieValue("SOZUBALANCEID=%E0%A4%A", "SOZUBALANCEID"), undefined);
  assert.equal(cookieValue(undefined, "SOZUBALANCEID"), undefined);
});

test("scanRequest: hop-by-hop out, X-Forwarded-* in, websocket kept", () => {
  const s = scanRequest(["Host", "h", "Connection", "Upgrade, X-A", "Upgrade", "WebSocket", "X-A", "1", "X-B", "2", "Content-Length", "3"], "10.0.0.1", "https");
  assert.deepEqual(s.out, ["Host", "h", "X-B", "2", "Content-Length", "3", "X-Forwarded-For", "10.0.0.1", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "h", "Connection", "Upgrade", "Upgrade", "websocket"]);
  assert.equal(s.websocket, true);
  const chunked = scanRequest(["Host", "h", "Transfer-Encoding", "chunked"], "1.2.3.4", "http");
  assert.deepEqual(chunked.out.slice(-2), ["Transfer-Encoding", "chunked"]);
  assert.deepEqual(filterResponse(["Connection", "close, X-Z", "X-Z", "z", "Transfer-Encoding", "chunked", "Set-Cookie", "a", "Set-Cookie", "b"]), ["Set-Cookie", "a", "Set-Cookie", "b"]);
});

/** xorshift32: deterministic fuzzing */

test("fuzz: Host, cookie and header parsers never throw and keep their invariants", () => {
  const rand = rng(0xc0ffee);
  const alphabet = "aZ09.-_:[]*/ é;=,%\t\r\n\0";
  const word = (n: number) => {
    let s = "";
    for (let i = 0; i < n; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
    return s;
  };
  const table = new RouteTable();
  const pool = new Pool("p", { policy: "roundrobin", sticky: false, httpsRedirect: false }, []);
  table.add({ hostname: "a.example.com", pathBegin: "", source: "command", pool, websocket: true });
  table.add({ hostname: "*.example.com", pathBegin: "/x", source: "command", pool, websocket: true });
  const t0 = performance.now();
  for (let i = 0; i < 20000; i++) {
    const h = word(Math.floor(rand() * 24));
    const n = normalizeHost(h);
    if (n !== undefined) {
      assert.ok(n.length > 0 && n.length <= 253 && n === n.toLowerCase() && (!n.includes(":") || n.startsWith("[")), h);
      table.lookup(n, word(4));
    }
    cookieValue(word(Math.floor(rand() * 30)), "SOZUBALANCEID");
    const raw: string[] = [];
    for (let k = Math.floor(rand() * 6); k > 0; k--) raw.push(word(1 + Math.floor(rand() * 10)), word(Math.floor(rand() * 10)));
    const s = scanRequest(raw, "1.1.1.1", "http");
    assert.equal(s.out.length % 2, 0);
    filterResponse(raw);
  }
  assert.ok(performance.now() - t0 < 5000);
});
