// Reconfiguration latency of the command socket, in process, over 200 ADD_BACKEND requests:
//  - sent → the state's "change" event (what the data plane reacts to);
//  - sent → Ok answer received (includes the fsync'ed save of <state_dir>/proxy-state).
// Anchor, same run: a bare NUL-JSON echo round trip over a Unix socket (FrameReader + JSON).
// "ADD_BACKEND answered -> first request served by the new backend" is in proxy-reconfig.bench.ts (through the daemon).
// Run: node --import tsx test/bench/command-reconfig.bench.ts
import { createServer } from "node:net";
import { join } from "node:path";
import { FrameReader } from "../../src/proxy/command/frame.js";
import { CommandClient } from "../../src/proxy/command/client.js";
import { startCommand } from "../proxy/command/helpers.js";

const N = Number(process.env.BENCH_ADDS ?? 200);
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!;
const f = (ms: number) => `${ms.toFixed(3)} ms`;

async function echoAnchor(dir: string): Promise<number[]> {
  const path = join(dir, "echo.sock");
  const server = createServer((s) => {
    const r = new FrameReader(1 << 20);
    s.on("data", (chunk: Buffer) => {
      for (const ev of r.push(chunk)) if (ev.kind === "frame") s.write(JSON.stringify({ ...JSON.parse(ev.text), status: "Ok" }) + "\0");
    });
  });
  await new Promise<void>((res) => server.listen(path, res));
  const c = await CommandClient.connect(path);
  const out: number[] = [];
  for (let i = 0; i < N + 20; i++) {
    const t0 = performance.now();
    await c.request({ id: `e${i}`, version: 0, data: { type: "ADD_BACKEND", data: { app_id: "x", ip_address: "127.0.0.1", port: 1 } } });
    if (i >= 20) out.push(performance.now() - t0);
  }
  c.close();
  await new Promise((res) => server.close(res));
  return out;
}

async function main() {
  const h = await startCommand();
  try {
    const c = await h.client();
    let changedAt = 0;
    h.comp.state.on("change", () => (changedAt = performance.now()));
    const toChange: number[] = [];
    const toAnswer: number[] = [];
    for (let i = 0; i < N + 20; i++) {
      changedAt = 0;
      const t0 = performance.now();
      const a = await c.request({ id: `b${i}`, version: 0, data: { type: "ADD_BACKEND", data: { app_id: "bench", ip_address: "127.0.0.1", port: 10_000 + i } } });
      const t1 = performance.now();
      if (a.status !== "Ok" || changedAt === 0) throw new Error(`unexpected ${JSON.stringify(a)}`);
      if (i < 20) continue; // warm-up
      toChange.push(changedAt - t0);
      toAnswer.push(t1 - t0);
    }
    const anchor = await echoAnchor(h.dir);
    const rows: [string, number[]][] = [
      ["ADD_BACKEND sent -> state change event", toChange],
      ["ADD_BACKEND sent -> Ok answer (incl. fsync'ed save)", toAnswer],
      ["anchor: bare NUL-JSON echo round trip", anchor],
    ];
    console.log(`command socket reconfiguration, ${N} adds (goal: < 50 ms)`);
    console.log("figure".padEnd(52), "median".padStart(11), "p99".padStart(11), "median/anchor".padStart(14));
    const am = pct(anchor, 50);
    for (const [name, xs] of rows) console.log(name.padEnd(52), f(pct(xs, 50)).padStart(11), f(pct(xs, 99)).padStart(11), `${(pct(xs, 50) / am).toFixed(1)}x`.padStart(14));
  } finally {
    await h.close();
  }
}

void main();
