// Keyed core API requests while 2x the connection cap (2 x 256) of silent TCP clients hold
// connections open, against the same requests without them in the same run: success rate, p50 and
// p99 latency (goal: 100 %, p99 < 50 ms). Silent connections the daemon closes (it keeps at most
// 256 pending ones, closing the oldest for a new one) are opened again, one before each keyed
// request: the daemon's pending connections stay full of silent ones. Medians of ROUNDS.
// Run: node --import tsx test/bench/core-slow-clients.bench.ts  (make build first; needs Docker)
import { connect, type Socket } from "node:net";
import { startDaemon } from "../helpers/daemon.js";
import { CoreClient } from "../core/client.js";
import { RUN } from "../core/run.js";

const CAP = 256;
const SILENT = 2 * CAP;
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 400);
const CONCURRENCY = 4;

interface Figures {
  ok: number;
  total: number;
  p50: number;
  p99: number;
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;

/** REQUESTS keyed GETs of an unknown service (a 404 from Docker, JSON), each on a new connection */
async function measure(api: CoreClient, before = () => {}): Promise<Figures> {
  const ms: number[] = [];
  let ok = 0;
  let next = 0;
  const lane = async () => {
    while (next < REQUESTS) {
      const i = next++;
      before();
      const t0 = performance.now();
      try {
        const r = await api.call("GET", `/service/slow-bench-${RUN}-${i}`);
        if (r.status === 404 && typeof r.json?.error === "string") ok++;
      } catch {
        // a reset or EOF: a failure
      }
      ms.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  ms.sort((a, b) => a - b);
  return { ok, total: REQUESTS, p50: pct(ms, 50), p99: pct(ms, 99) };
}

/** SILENT connections that send nothing; topUp() opens again one the daemon closed */
function silentClients(port: number): { stop(): void; connected(): number; topUp(): void } {
  const socks = new Set<Socket>();
  let closed = 0;
  let up = 0;
  let stopped = false;
  const one = () => {
    const s = connect(port, "127.0.0.1", () => up++);
    socks.add(s);
    s.on("error", () => {});
    s.on("close", () => {
      if (s.readyState !== "opening") up--;
      socks.delete(s);
      if (!stopped) closed++;
    });
  };
  for (let i = 0; i < SILENT; i++) one();
  return {
    stop() {
      stopped = true;
      for (const s of socks) s.destroy();
    },
    connected: () => up,
    // one per keyed request: each re-opened one makes the daemon close another silent one, so
    // opening all closed ones each time would grow into a connection flood, another benchmark
    topUp() {
      if (closed > 0) {
        closed--;
        one();
      }
    },
  };
}

const line = (name: string, f: Figures) =>
  `${name.padEnd(22)} ${`${((100 * f.ok) / f.total).toFixed(1)} %`.padStart(9)} ${f.p50.toFixed(1).padStart(8)} ${f.p99.toFixed(1).padStart(8)}`;

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const med = (fs: Figures[]): Figures => ({ ok: median(fs.map((f) => f.ok)), total: REQUESTS, p50: median(fs.map((f) => f.p50)), p99: median(fs.map((f) => f.p99)) });

async function withSilent(port: number, api: CoreClient): Promise<{ f: Figures; held: number }> {
  const silent = silentClients(port);
  const started = performance.now();
  while (silent.connected() < CAP && performance.now() - started < 10_000) await new Promise((r) => setTimeout(r, 5));
  const held = silent.connected();
  const f = await measure(api, () => silent.topUp());
  silent.stop();
  return { f, held };
}

async function main(): Promise<void> {
  const d = await startDaemon({ disable: ["query", "admin", "command", "manager", "http", "https"] });
  try {
    const api = await CoreClient.forStateDir(d.corePort, d.stateDir);
    await measure(api); // warm-up
    const bases: Figures[] = [];
    const loads: Figures[] = [];
    let held = 0;
    for (let r = 0; r < ROUNDS; r++) {
      bases.push(await measure(api));
      const w = await withSilent(d.corePort, api);
      loads.push(w.f);
      held = w.held;
      process.stderr.write(`round ${r + 1}: p99 ${bases[r]!.p99.toFixed(1)} / ${w.f.p99.toFixed(1)} ms, ok ${w.f.ok}/${REQUESTS}\n`);
    }
    const base = med(bases);
    const loaded = med(loads);
    const failed = loads.reduce((n, f) => n + f.total - f.ok, 0);
    console.log(`core API: ${REQUESTS} keyed requests (${CONCURRENCY} at a time, a new connection each) x ${ROUNDS} rounds, medians; ${SILENT} silent clients (2 x cap ${CAP}), ${held} connected at the start`);
    console.log(`keyed requests failed with silent clients, all rounds: ${failed}`);
    console.log(`${"".padEnd(22)} ${"success".padStart(9)} ${"p50 ms".padStart(8)} ${"p99 ms".padStart(8)}`);
    console.log(line("without silent clients", base));
    console.log(line("with silent clients", loaded));
    console.log(`ratio p99 with/without: ${(loaded.p99 / base.p99).toFixed(2)}`);
  } finally {
    await d.cleanup();
  }
}

await main();
