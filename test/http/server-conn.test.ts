// The HTTP/1.1 server side on its own (no proxy, no query socket): the bound on pipelined bytes
// held while an answer is pending, synchronous answers to a long pipeline, and expectations.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, connect, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { ClientConnSet, type Incoming } from "../../src/http/server-conn.js";
import { waitFor } from "../helpers/docker.js";

const SETTINGS = { maxHeaderBytes: 16384, idleMs: 5000, headMs: 5000, answerHalfClosed: true };

function ok(inc: Incoming): void {
  inc.answer(200, "OK", ["Content-Length", String(inc.head.url.length)], Buffer.from(inc.head.url));
}

async function serve(request: (inc: Incoming) => void): Promise<{ server: Server; port: number; sockets: Socket[]; close(): Promise<void> }> {
  const conns = new ClientConnSet(() => SETTINGS, { request, refuse: (inc, status) => inc.answer(status, "Refused", ["Content-Length", "0"], Buffer.alloc(0)) });
  const sockets: Socket[] = [];
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.push(s);
    conns.accept(s);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    server, sockets,
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => { conns.closeAll(); server.close(() => r()); }),
  };
}

function client(port: number): Promise<{ s: Socket; text: () => string }> {
  return new Promise((resolve) => {
    let text = "";
    const s = connect(port, "127.0.0.1", () => resolve({ s, text: () => text }));
    s.setEncoding("latin1").on("data", (c: string) => (text += c));
    s.on("error", () => {});
  });
}

test("pipelined bytes held behind a pending answer are bounded: the connection stops reading, then goes on", async () => {
  let pending: Incoming | undefined;
  let answered = 0;
  const srv = await serve((inc) => {
    if (inc.head.url === "/slow") pending = inc;
    else {
      answered++;
      ok(inc);
    }
  });
  const c = await client(srv.port);
  try {
    const n = 4000; // ~100 KiB of pipelined requests, above the 64 KiB bound
    c.s.write("GET /slow HTTP/1.1\r\n\r\n" + "GET /p HTTP/1.1\r\nX-Pad: ......\r\n\r\n".repeat(n));
    await waitFor("the server socket paused", () => pending !== undefined && srv.sockets[0]!.isPaused());
    assert.equal(answered, 0, "nothing behind the pending answer was handled");
    ok(pending!);
    await waitFor("every pipelined request answered", () => answered === n);
    await waitFor("all answers arrived", () => c.text().split("HTTP/1.1 200 OK").length - 1 === n + 1);
  } finally {
    c.s.destroy();
    await srv.close();
  }
});

test("an expectation other than 100-continue gets 417 and the connection closes", async () => {
  let handled = 0;
  const srv = await serve((inc) => {
    handled++;
    ok(inc);
  });
  const c = await client(srv.port);
  try {
    c.s.write("POST /x HTTP/1.1\r\nExpect: something-else\r\nContent-Length: 1\r\n\r\nx");
    await waitFor("closed", () => c.s.readableEnded || c.s.destroyed);
    assert.match(c.text(), /^HTTP\/1.1 417 /);
    assert.equal(handled, 0);
  } finally {
    c.s.destroy();
    await srv.close();
  }
});
