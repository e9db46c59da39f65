// Config parse and admin socket round trip, in process.
//  1. parseConfig of a 2000-route file (~360 KB); anchor: JSON.parse of the same data as JSON.
//  2. admin `status` over a real Unix socket (connect, command, reply, close), sequential;
//     anchor: a bare node:net server on a Unix socket that answers one fixed line and closes.
// Run: node --import tsx test/bench/config-admin.bench.ts
import { EventEmitter } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../../src/config/index.js";
import { AdminSocket } from "../../src/admin/server.js";
import { adminHandlers } from "../../src/admin/commands.js";
import type { DaemonContext } from "../../src/component/index.js";
import { setLogLevel } from "../../src/log.js";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
function time(n: number, fn: () => void): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    fn();
    out.push(performance.now() - t);
  }
  return out;
}
async function timeAsync(n: number, fn: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}
function roundTrip(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect(path, () => s.write("status\n"));
    s.resume();
    s.on("error", reject);
    s.on("close", () => resolve());
  });
}

async function main() {
  setLogLevel("error");
  let toml = "";
  const sites = [];
  for (let i = 0; i < 2000; i++) {
    toml += `[[site]]\nhostname = "h${i % 10}.example.com"\npath = "/p${i}"\nbackends = ["127.0.0.1:9000", "127.0.0.1:9001"] # two\n`;
    sites.push({ hostname: `h${i % 10}.example.com`, path: `/p${i}`, backends: ["127.0.0.1:9000", "127.0.0.1:9001"] });
  }
  const json = JSON.stringify({ site: sites });
  time(20, () => parseConfig(toml, "bench.conf", {}));
  time(20, () => JSON.parse(json));
  const parse = median(time(50, () => parseConfig(toml, "bench.conf", {})));
  const anchor = median(time(50, () => JSON.parse(json)));
  console.log(`config parse + validate, 2000 [[site]] routes (${(toml.length / 1024).toFixed(0)} KiB), median of 50`);
  console.log(`  parseConfig:          ${parse.toFixed(2)} ms`);
  console.log(`  anchor: JSON.parse:   ${anchor.toFixed(2)} ms   ratio ${(parse / anchor).toFixed(1)}x`);

  const dir = await mkdtemp(join(tmpdir(), "stevedore-bench-"));
  const config = parseConfig(process.env.BENCH_SMALL ? "" : toml, "bench.conf", {});
  const catalog = Object.assign(new EventEmitter(), {
    current: () => ({ seq: 1, ts: 1, containers: [], deployments: [] }),
    dockerState: () => "ok",
    waiterCount: () => 0,
  });
  const ctx = { config, dynamic: () => config.dynamic, catalog, startedAt: performance.now(), components: [], reload: async () => ({ errors: [], restartRequired: [] }) } as unknown as DaemonContext;
  const admin = new AdminSocket(join(dir, "admin.sock"), adminHandlers(ctx));
  (ctx.components as unknown as unknown[]).push(admin);
  await admin.start();
  const bare = createServer((s) => {
    s.once("data", () => s.end('{"status":"ok","uptime_secs":0,"sites":10}\n'));
    s.resume();
  });
  await new Promise<void>((r) => bare.listen(join(dir, "bare.sock"), r));
  try {
    await timeAsync(200, () => roundTrip(join(dir, "admin.sock")));
    await timeAsync(200, () => roundTrip(join(dir, "bare.sock")));
    const a = median(await timeAsync(1000, () => roundTrip(join(dir, "admin.sock"))));
    const b = median(await timeAsync(1000, () => roundTrip(join(dir, "bare.sock"))));
    console.log(`admin socket round trip (connect, "status", reply, close), sequential, median of 1000`);
    console.log(`  admin status:                 ${(a * 1000).toFixed(0)} µs`);
    console.log(`  anchor: bare one-line server: ${(b * 1000).toFixed(0)} µs   ratio ${(a / b).toFixed(2)}x`);
  } finally {
    await admin.stop(false, 0);
    bare.close();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
