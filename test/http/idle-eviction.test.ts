// Idle clients at the connection limit (issue 16, slow clients): accepting a connection at the limit
// closes the oldest idle one (no request byte yet), never one in the middle of a request, so 2× the
// limit of idle clients cannot keep a legitimate request out.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, connect, type Socket } from "node:net";
import { ClientConnSet, type ServerSettings } from "../../src/http/index.js";
import { waitFor } from "../helpers/docker.js";

const LIMIT = 10;
const SETTINGS: ServerSettings = { maxHeaderBytes: 8192, idleMs: 60_000, headMs: 60_000, answerHalfClosed: true, maxConnections: LIMIT };

function rawGet(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1");
    let text = "";
    s.on("data", (d) => (text += d.toString("latin1")));
    s.on("end", () => resolve(text));
    s.on("close", () => resolve(text));
    s.on("error", reject);
    s.write("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  });
}

test("at the limit the oldest idle connection makes room; a half-sent request is kept", async () => {
  const conns = new ClientConnSet(() => SETTINGS, {
    request: (inc) => inc.answer(200, "OK", ["Content-Length", "2"], Buffer.from("ok")),
    refuse: (inc, status) => inc.answer(status, "Refused", ["Content-Length", "0"], Buffer.alloc(0)),
  });
  const server = createServer({ allowHalfOpen: true }, conns.accept);
  server.maxConnections = LIMIT;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  const socks: Socket[] = [];
  try {
    // the first one is in the middle of a request head: not idle, never evicted
    const busy = connect(port, "127.0.0.1");
    busy.on("error", () => {});
    let busyClosed = false;
    busy.on("close", () => (busyClosed = true));
    await new Promise((r) => busy.once("connect", r));
    busy.write("GET / HTTP/1.1\r\nHost: x\r\n");
    socks.push(busy);
    for (let i = 0; i < 2 * LIMIT; i++) {
      const s = connect(port, "127.0.0.1");
      s.on("error", () => {});
      await new Promise<void>((r) => s.once("connect", r).once("close", r));
      socks.push(s);
    }
    for (let i = 0; i < 20; i++) assert.match(await rawGet(port), /^HTTP\/1\.1 200 /, `legitimate request ${i}`);
    assert.equal(busyClosed, false);
    busy.write("\r\n");
    await waitFor("the half-sent request answered", () => busy.readableLength > 0 || undefined);
  } finally {
    for (const s of socks) s.destroy();
    server.close();
  }
});
