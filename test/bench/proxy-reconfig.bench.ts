// Reconfiguration through the bundled daemon (command socket + data plane together):
// "ADD_BACKEND answered -> first request served by the new backend" (issue 6 goal: < 50 ms).
// An app with an HTTP front loses its only backend (REMOVE_BACKEND: 503s), then a new one is added;
// from the moment the Ok arrives, requests go back to back through the proxy on one keep-alive
// connection until a 200 comes from the NEW backend (named by its x-backend header). Two local
// node:http backends alternate, each round with a fresh backend_id. Anchors, same run: a direct
// keep-alive request to a backend, and a proxied request on an unchanged route.
// Run: make build && node --import tsx test/bench/proxy-reconfig.bench.ts
import { Agent, request } from "node:http";
import { CommandClient } from "../../src/proxy/command/client.js";
import { startDaemon } from "../helpers/daemon.js";
import { backend } from "../proxy/helpers.js";

const N = Number(process.env.BENCH_ROUNDS ?? 50);
const WARMUP = 5;
const HOST = "bench.test";
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!;
const f = (ms: number) => `${ms.toFixed(3)} ms`;

const agent = new Agent({ keepAlive: true, maxSockets: 1 });
function get(port: number, host: string): Promise<{ status: number; backend: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/", headers: { host }, agent }, (res) => {
      res.resume().on("end", () => resolve({ status: res.statusCode!, backend: res.headers["x-backend"] as string | undefined }));
    });
    req.on("error", reject);
    req.end();
  });
}

async function main() {
  const bes = [await backend("a"), await backend("b")];
  const d = await startDaemon({ disable: ["query", "admin", "core", "manager", "https"] });
  const c = await CommandClient.connect(d.commandSocket);
  const order = async (type: string, data: Record<string, unknown>) => {
    const a = await c.request({ version: 0, type, data });
    if (a.status !== "Ok") throw new Error(`${type}: ${JSON.stringify(a)}`);
    return performance.now();
  };
  try {
    await order("ADD_HTTP_FRONT", { app_id: "bench", hostname: HOST, path_begin: "/" });
    await order("ADD_HTTP_FRONT", { app_id: "steady", hostname: "steady.test", path_begin: "/" });
    await order("ADD_BACKEND", { app_id: "steady", backend_id: "s", address: `127.0.0.1:${bes[0]!.port}` });
    const okToServed: number[] = [];
    const sentToServed: number[] = [];
    const direct: number[] = [];
    const steady: number[] = [];
    let attempts = 0;
    let previous: { backend_id: string; address: string } | undefined;
    for (let i = 0; i < N + WARMUP; i++) {
      const be = bes[i % 2]!;
      const name = i % 2 === 0 ? "a" : "b";
      if (previous) await order("REMOVE_BACKEND", { app_id: "bench", ...previous });
      const gap = await get(d.httpPort, HOST);
      if (gap.status !== 503) throw new Error(`expected 503 with no backend, got ${gap.status}`);
      previous = { backend_id: `r${i}`, address: `127.0.0.1:${be.port}` };
      const sent = performance.now();
      const okAt = await order("ADD_BACKEND", { app_id: "bench", ...previous });
      let tries = 0;
      for (;;) {
        tries++;
        const r = await get(d.httpPort, HOST);
        if (r.status === 200 && r.backend === name) break;
        if (performance.now() - okAt > 2000) throw new Error(`round ${i}: new backend not served within 2 s (last ${r.status} ${r.backend})`);
      }
      const servedAt = performance.now();
      // anchors, interleaved so they see the same machine load
      let t = performance.now();
      await get(be.port, "direct");
      const directMs = performance.now() - t;
      t = performance.now();
      await get(d.httpPort, "steady.test");
      const steadyMs = performance.now() - t;
      if (i < WARMUP) continue;
      okToServed.push(servedAt - okAt);
      sentToServed.push(servedAt - sent);
      direct.push(directMs);
      steady.push(steadyMs);
      attempts += tries;
    }
    const am = pct(direct, 50);
    const rows: [string, number[]][] = [
      ["ADD_BACKEND Ok -> first 200 from the new backend", okToServed],
      ["ADD_BACKEND sent -> first 200 from the new backend", sentToServed],
      ["anchor: proxied request, unchanged route", steady],
      ["anchor: direct request to the backend", direct],
    ];
    console.log(`proxy reconfiguration through the daemon, ${N} rounds (goal: Ok -> served < 50 ms)`);
    console.log("figure".padEnd(52), "median".padStart(11), "p99".padStart(11), "median/direct".padStart(14));
    for (const [label, xs] of rows) console.log(label.padEnd(52), f(pct(xs, 50)).padStart(11), f(pct(xs, 99)).padStart(11), `${(pct(xs, 50) / am).toFixed(1)}x`.padStart(14));
    console.log(`requests needed after the Ok: ${(attempts / N).toFixed(2)} on average (1 = the very first request was served by the new backend)`);
  } finally {
    c.close();
    agent.destroy();
    await d.cleanup();
    for (const b of bes) await b.close();
  }
}

void main();
