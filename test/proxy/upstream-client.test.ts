// The proxy's own upstream HTTP/1.1 client against a scripted raw-TCP backend: connection reuse
// only after a clean, complete, keep-alive response; malformed responses → 502 with the
// connection closed; chunked / close-delimited / HEAD / interim responses relayed right;
// request bodies re-framed as the client sent them; a stale pooled connection retried.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { request } from "node:http";
import { get, startProxy, FakeState, type TestProxy } from "./helpers.js";
import { waitFor } from "../helpers/docker.js";

interface Seen {
  /** the raw request (head + body bytes) */
  text: string;
  conn: number;
}

/** A backend that reads one request at a time and answers what `script` returns ("" = hang up without answering). */
async function scripted(script: (req: Seen, index: number) => string): Promise<{ port: number; seen: Seen[]; connections: number; closed: number; server: Server }> {
  const out = { port: 0, seen: [] as Seen[], connections: 0, closed: 0, server: undefined as unknown as Server };
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    const conn = ++out.connections;
    sockets.add(s);
    let buf = "";
    s.setEncoding("latin1");
    s.on("close", () => {
      out.closed++;
      sockets.delete(s);
    });
    s.on("error", () => {});
    s.on("data", (c: string) => {
      buf += c;
      for (;;) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buf.slice(0, end + 4);
        let total = head.length;
        const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
        if (cl) total += Number(cl[1]);
        else if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
          const z = buf.indexOf("\r\n0\r\n\r\n", end);
          if (z < 0) return;
          total = z + 7;
        }
        if (buf.length < total) return;
        const req = { text: buf.slice(0, total), conn };
        buf = buf.slice(total);
        out.seen.push(req);
        const answer = script(req, out.seen.length - 1);
        if (answer === "") s.destroy();
        else s.write(answer, "latin1");
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  out.port = (server.address() as AddressInfo).port;
  out.server = server;
  servers.push({ server, sockets });
  return out;
}

const servers: { server: Server; sockets: Set<Socket> }[] = [];
const proxies: TestProxy[] = [];
after(async () => {
  for (const p of proxies) await p.stop();
  for (const { server, sockets } of servers) {
    for (const s of sockets) s.destroy();
    server.close();
  }
});

async function proxyTo(port: number, config = ""): Promise<TestProxy> {
  const p = await startProxy({ state: new FakeState().front("A", "a.test").backend("A", port), config });
  proxies.push(p);
  return p;
}

const OK = (body: string, extra = "") => `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n${extra}\r\n${body}`;

test("keep-alive: sequential requests share one upstream connection; the head is sent as HTTP/1.1 with X-Forwarded-*", async () => {
  const b = await scripted(() => OK("hi"));
  const p = await proxyTo(b.port);
  for (let i = 0; i < 20; i++) assert.equal((await get(p.httpPort, "a.test", `/p${i}`)).body, "hi");
  assert.equal(b.connections, 1);
  assert.match(b.seen[3]!.text, /^GET \/p3 HTTP\/1\.1\r\n/);
  assert.match(b.seen[3]!.text, /\r\nX-Forwarded-For: 127\.0\.0\.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: a\.test\r\n/);
  assert.doesNotMatch(b.seen[3]!.text, /\r\nconnection:/i);
});

test("chunked and close-delimited responses are relayed; close-delimited and Connection: close are not reused", async () => {
  const answers = [
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n",
    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nfg",
    "HTTP/1.1 200 OK\r\n\r\nuntil-close",
    OK("end"),
  ];
  const b = await scripted((_r, i) => answers[i]!);
  b.server.on("connection", (s) => s.on("data", () => {}));
  const p = await proxyTo(b.port);
  const first = await get(p.httpPort, "a.test");
  assert.equal(first.body, "abcde");
  assert.equal(first.headers["x-t"], undefined, "trailers are discarded");
  assert.equal((await get(p.httpPort, "a.test")).body, "fg");
  assert.equal(b.connections, 1, "the chunked response left the connection reusable");
  // the close-delimited body needs the backend to close: this script answers on the third request
  const third = get(p.httpPort, "a.test");
  await waitFor("the third request at the backend", () => b.seen.length === 3, 5000, 1);
  assert.match(b.seen[2]!.text, /^GET \/ HTTP\/1\.1\r\n/, "the third request reached the backend");
  for (const s of servers.at(-1)!.sockets) s.end();
  assert.equal((await third).body, "until-close");
  assert.equal((await get(p.httpPort, "a.test")).body, "end");
  assert.equal(b.connections, 3, "Connection: close and a close-delimited body each ended their connection");
});

test("interim 100/103 responses are skipped; HEAD has no body and keeps the connection", async () => {
  const b = await scripted((r) =>
    r.text.startsWith("HEAD") ? "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" : "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n" + OK("final"),
  );
  const p = await proxyTo(b.port);
  const h = await get(p.httpPort, "a.test", "/", {}, "HEAD");
  assert.equal(h.status, 200);
  assert.equal(h.headers["content-length"], "1000");
  const g = await get(p.httpPort, "a.test");
  assert.equal(g.status, 200);
  assert.equal(g.body, "final");
  assert.equal(b.connections, 1);
});

test("malformed responses → 502 and the upstream connection is closed, never reused", async () => {
  const bad = [
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
    "HTTP/1.1 200 OK\r\nX: a\r\n folded\r\nContent-Length: 0\r\n\r\n",
    "HTTP/1.1 200 OK\r\nX: a\nContent-Length: 0\r\n\r\n",
    `HTTP/1.1 200 OK\r\nX: ${"a".repeat(3000)}\r\nContent-Length: 0\r\n\r\n`,
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
    "garbage\r\n\r\n",
  ];
  const b = await scripted((_r, i) => bad[i] ?? OK("fine"));
  const p = await proxyTo(b.port, "proxy_max_header_bytes = 2048\n");
  for (let i = 0; i < bad.length; i++) {
    const a = await get(p.httpPort, "a.test");
    assert.equal(a.status, 502, JSON.stringify(bad[i]));
    assert.equal(b.connections, i + 1, "each bad response closed its connection");
  }
  assert.equal((await get(p.httpPort, "a.test")).body, "fine");
});

test("bytes after the end of a response: relayed response intact, connection not reused", async () => {
  const b = await scripted((_r, i) => (i === 0 ? OK("one") + "HTTP/1.1 200 OK\r\n" : OK("two")));
  const p = await proxyTo(b.port);
  assert.equal((await get(p.httpPort, "a.test")).body, "one");
  assert.equal((await get(p.httpPort, "a.test")).body, "two");
  assert.equal(b.connections, 2);
});

test("a body cut short by the backend cuts the client's response", async () => {
  const b = await scripted(() => "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
  b.server.on("connection", (s) => setTimeout(() => s.destroy(), 100));
  const p = await proxyTo(b.port);
  const outcome = await new Promise<string>((resolve) => {
    const req = request({ port: p.httpPort, host: "127.0.0.1", headers: { host: "a.test" }, agent: false }, (res) => {
      let body = "";
      res.setEncoding("latin1").on("data", (c) => (body += c));
      res.on("error", () => {});
      res.on("end", () => resolve(`complete: ${body}`));
      res.on("close", () => resolve(`cut after ${JSON.stringify(body)}`));
    });
    req.on("error", (e) => resolve(`error ${e.message}`));
    req.end();
  });
  assert.equal(outcome, 'cut after "short"');
});

test("request bodies are re-framed as the client sent them (Content-Length, chunked)", async () => {
  const b = await scripted(() => OK("got"));
  const p = await proxyTo(b.port);
  assert.equal((await get(p.httpPort, "a.test", "/", {}, "POST", "0123456789")).body, "got");
  assert.match(b.seen[0]!.text, /\r\nContent-Length: 10\r\n(.*\r\n)*\r\n0123456789$/);
  assert.equal((await get(p.httpPort, "a.test", "/", { "transfer-encoding": "chunked" }, "POST", "abcdef")).body, "got");
  assert.match(b.seen[1]!.text, /\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n0\r\n\r\n$/);
  assert.equal(b.connections, 1);
});

test("a pooled connection the backend dropped is retried on a new connection", async () => {
  // the second request arrives on the pooled connection, which the backend drops unanswered
  const b = await scripted((_r, i) => (i === 1 ? "" : OK(`r${i}`)));
  const p = await proxyTo(b.port);
  assert.equal((await get(p.httpPort, "a.test")).body, "r0");
  assert.equal((await get(p.httpPort, "a.test")).body, "r2");
  assert.equal(b.connections, 2);
});
