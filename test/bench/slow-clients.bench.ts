// Slow clients (issue 16): legitimate request success rate and latency (p50/p99) on the proxy HTTP and
// HTTPS listeners and the query socket while 2× the connection limit of idle clients (HTTPS: clients
// stalled in the TLS handshake, silent or after a partial ClientHello) are connected, against the same
// requests without them (anchor) in the same run. Goal: 100 % success, p99 < 50 ms.
// Run: make build && node --import tsx test/bench/slow-clients.bench.ts
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect, type Socket } from "node:net";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { join } from "node:path";
import { startDaemon } from "../helpers/daemon.js";

const LIMIT = 20;
const REQUESTS = Number(process.env.SLOW_BENCH_REQUESTS ?? 200);
const PARTIAL_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);

type Target = { name: string; connect: () => Socket; get: () => Promise<number>; tls: boolean };

function one(fn: typeof httpRequest, opts: object): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = fn({ ...opts, path: "/healthz", agent: false, timeout: 2000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

async function measure(t: Target): Promise<{ ok: number; p50: number; p99: number }> {
  const lat: number[] = [];
  let ok = 0;
  for (let i = 0; i < REQUESTS; i++) {
    const t0 = performance.now();
    const status = await t.get().catch(() => 0);
    if (status > 0) {
      ok++;
      lat.push(performance.now() - t0);
    }
  }
  lat.sort((a, b) => a - b);
  const q = (p: number) => (lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN);
  return { ok: ok / REQUESTS, p50: q(0.5), p99: q(0.99) };
}

async function stall(t: Target): Promise<Socket[]> {
  const socks: Socket[] = [];
  for (let i = 0; i < 2 * LIMIT; i++) {
    const s = t.connect();
    s.on("error", () => {});
    await new Promise<void>((resolve) => s.once("connect", resolve).once("close", resolve));
    if (t.tls && i % 2 === 0) s.write(PARTIAL_HELLO);
    socks.push(s);
  }
  return socks;
}

async function main(): Promise<void> {
  const d = await startDaemon({ disable: ["core", "manager"], config: "" });
  const certFile = join(d.dir, "cert.pem");
  const keyFile = join(d.dir, "key.pem");
  await promisify(execFile)("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost", "-days", "1", "-keyout", keyFile, "-out", certFile]);
  await d.restart();
  await d.writeConfig(`proxy_max_connections = ${LIMIT}\nquery_max_connections = ${LIMIT}\nproxy_default_cert = "${certFile}"\nproxy_default_key = "${keyFile}"`);
  await d.restart();
  const targets: Target[] = [
    { name: "proxy http", tls: false, connect: () => connect(d.httpPort, "127.0.0.1"), get: () => one(httpRequest, { host: "127.0.0.1", port: d.httpPort }) },
    { name: "proxy https", tls: true, connect: () => connect(d.httpsPort, "127.0.0.1"), get: () => one(httpsRequest as typeof httpRequest, { host: "127.0.0.1", port: d.httpsPort, rejectUnauthorized: false }) },
    { name: "query socket", tls: false, connect: () => connect(d.querySocket), get: () => one(httpRequest, { socketPath: d.querySocket }) },
  ];
  console.log(`slow clients: ${REQUESTS} sequential requests (new connection each), limit ${LIMIT}, ${2 * LIMIT} stalled clients; machine shared and noisy`);
  console.log("listener        | anchor ok  p50 ms  p99 ms | stalled ok  p50 ms  p99 ms | p99 ratio");
  try {
    for (const t of targets) {
      const anchor = await measure(t);
      const socks = await stall(t);
      const loaded = await measure(t);
      for (const s of socks) s.destroy();
      const f = (n: number) => (Number.isNaN(n) ? "   -" : n.toFixed(1).padStart(6));
      console.log(`${t.name.padEnd(15)} | ${(anchor.ok * 100).toFixed(0).padStart(4)} % ${f(anchor.p50)} ${f(anchor.p99)} | ${(loaded.ok * 100).toFixed(0).padStart(5)} % ${f(loaded.p50)} ${f(loaded.p99)} | ${(loaded.p99 / anchor.p99).toFixed(2)}`);
    }
  } finally {
    await d.cleanup();
  }
}

void main();
