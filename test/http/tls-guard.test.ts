// The TLS handshake guard (issue 16 item 1): stalled handshakes (silent or a partial ClientHello) are
// closed after the timeout, never keep a legitimate client out at the connection limit, and failed
// handshakes are logged with SNI, client and error. For a bare TLS server and the JSON API server.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect, createServer as createTlsServer, type Server as TlsServer } from "node:tls";
import { request as httpsRequest } from "node:https";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApiServer, guardTlsHandshakes } from "../../src/http/index.js";
import { setLogLevel, setLogSink } from "../../src/log.js";
import { waitFor } from "../helpers/docker.js";

const LIMIT = 20;
// Long enough that connecting the stalled clients and one legitimate handshake fit well inside it
// on a loaded machine: the legitimate client must get through before the first stalled one times out.
const HANDSHAKE_MS = 4000;

async function makeCert(): Promise<{ dir: string; certFile: string; keyFile: string }> {
  const dir = await mkdtemp(join(tmpdir(), "tls-guard-"));
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  await promisify(execFile)("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost", "-days", "1", "-keyout", keyFile, "-out", certFile]);
  return { dir, certFile, keyFile };
}

// the first bytes of a TLS record carrying a ClientHello, then nothing
const PARTIAL_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);

/** 2× the limit of stalled clients: most send nothing, some a partial ClientHello. */
async function stall(port: number): Promise<{ socks: Socket[]; closed: () => number }> {
  const socks: Socket[] = [];
  let closed = 0;
  for (let i = 0; i < 2 * LIMIT; i++) {
    const s = netConnect(port, "127.0.0.1");
    s.on("error", () => {});
    s.on("close", () => closed++);
    await new Promise<void>((resolve) => s.once("connect", resolve).once("close", resolve));
    if (i % 4 === 0) s.write(PARTIAL_HELLO);
    socks.push(s);
  }
  return { socks, closed: () => closed };
}

function httpsGet(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: "127.0.0.1", port, path: "/", rejectUnauthorized: false, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end();
  });
}

async function flood(port: number): Promise<void> {
  const firstStalled = performance.now();
  const { socks, closed } = await stall(port);
  try {
    // a legitimate client gets through while all the stalled ones are connected, before the first
    // of them could have timed out (without eviction it would wait for that)
    assert.equal(await httpsGet(port), 200);
    assert.ok(performance.now() - firstStalled < HANDSHAKE_MS, "the legitimate request did not wait for the stalled ones to time out");
    // and every stalled socket is closed by the server once the timeout passed (bounded)
    await waitFor("stalled sockets closed by the server", () => closed() === socks.length, HANDSHAKE_MS + 10_000);
    assert.equal(await httpsGet(port), 200);
  } finally {
    for (const s of socks) s.destroy();
  }
}

test("bare TLS server: stalled handshakes are evicted at the limit and closed after the timeout", async () => {
  const { dir, certFile, keyFile } = await makeCert();
  const server: TlsServer = createTlsServer({ cert: await readFile(certFile), key: await readFile(keyFile) }, (s) => {
    s.on("data", () => s.end("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
    s.on("error", () => {});
  });
  server.maxConnections = LIMIT;
  const guard = guardTlsHandshakes(server, { name: "test", handshakeMs: () => HANDSHAKE_MS });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    await flood((server.address() as { port: number }).port);
    await waitFor("no handshake pending", () => guard.pending() === 0);
  } finally {
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("bare TLS server: a ClientHello trickled byte by byte does not extend the timeout", async () => {
  const { dir, certFile, keyFile } = await makeCert();
  const server = createTlsServer({ cert: await readFile(certFile), key: await readFile(keyFile) }, (s) => s.end());
  guardTlsHandshakes(server, { name: "test", handshakeMs: () => 500 });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const s = netConnect((server.address() as { port: number }).port, "127.0.0.1");
  s.on("error", () => {});
  let closed = false;
  s.on("close", () => (closed = true));
  let i = 0;
  const trickle = setInterval(() => !closed && i < PARTIAL_HELLO.length && s.write(PARTIAL_HELLO.subarray(i, ++i)), 100);
  try {
    await waitFor("trickling client closed", () => closed, 8000);
  } finally {
    clearInterval(trickle);
    s.destroy();
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("a failed handshake is logged at debug with SNI, client address and error", async () => {
  const { dir, certFile, keyFile } = await makeCert();
  const lines: string[] = [];
  const restore = setLogSink((l) => lines.push(l));
  setLogLevel("debug");
  const server = createTlsServer({ cert: await readFile(certFile), key: await readFile(keyFile), SNICallback: (_name, cb) => cb(new Error("no certificate for it"), undefined) }, (s) => s.end());
  guardTlsHandshakes(server, { name: "test", handshakeMs: () => 5000 });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const c = tlsConnect({ port: (server.address() as { port: number }).port, host: "127.0.0.1", servername: "unknown.example", rejectUnauthorized: false });
    await new Promise((resolve) => c.on("error", resolve).on("close", resolve));
    const line = await waitFor("handshake failure logged", () => lines.find((l) => l.includes("TLS handshake failed")));
    assert.match(line, /level=debug/);
    assert.match(line, /sni=unknown\.example/);
    assert.match(line, /client=[^ ]*127\.0\.0\.1/);
    assert.match(line, /error=/);
  } finally {
    setLogLevel("info");
    restore();
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("JSON API server with TLS (core, manager): stalled handshakes never lock legitimate clients out", async () => {
  const { dir, certFile, keyFile } = await makeCert();
  const restore = setLogSink(() => {});
  const api = createApiServer({
    name: "test",
    listen: "127.0.0.1:0",
    tls: { certFile, keyFile, handshakeMs: () => HANDSHAKE_MS },
    routes: [{ method: "GET", path: "/", handler: () => ({ status: 200, body: {} }) }],
    limits: () => ({ maxBodyBytes: 1024, maxConnections: LIMIT, headMs: 5000, idleMs: 5000, maxHeaderBytes: 8192 }),
  });
  await api.start();
  try {
    const port = Number(api.status().address?.split(":").pop());
    await flood(port);
  } finally {
    await api.stop(false, performance.now() + 2000);
    restore();
    await rm(dir, { recursive: true, force: true });
  }
});
