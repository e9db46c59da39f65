// Proxy throughput with the access log on (to a file, and to stderr read through a pipe as
// journald would; one line per request) against off, in one
// run on one daemon (a reload switches it), alternating rounds; medians and the ratio (goal ≥ 0.9).
// Run: node --import tsx test/bench/access-log.bench.ts
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { startDaemon, freePort } from "../helpers/daemon.js";
import { run, waitFor } from "../helpers/docker.js";

const SECS = process.env.BENCH_SECS ?? "3";
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? "5");
const CONNECTIONS = 32;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const BACKEND = `
const http = require("node:http");
const body = Buffer.from("hello from the backend\\n");
const s = http.createServer((req, res) => { req.resume(); res.writeHead(200, { "content-type": "text/plain", "content-length": body.length }); res.end(body); });
s.keepAliveTimeout = 65000;
s.listen(Number(process.argv[1]), "127.0.0.1", () => process.send && process.send("up"));
`;

async function wrk(url: string): Promise<number> {
  const { stdout } = await run("wrk", ["-t1", `-c${CONNECTIONS}`, `-d${SECS}s`, "-H", "Host: bench.test", url], { maxBuffer: 1 << 20 });
  if (/Non-2xx/.test(stdout)) throw new Error(`wrk saw errors:\n${stdout}`);
  return Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
}

async function main(): Promise<void> {
  const backendPort = await freePort();
  const backend = spawn(process.execPath, ["-e", BACKEND, String(backendPort)], { stdio: ["ignore", "ignore", "inherit", "ipc"] });
  await new Promise((r) => backend.once("message", r));
  const site = `[[site]]\nhostname = "bench.test"\nbackends = ["127.0.0.1:${backendPort}"]\n`;
  const d = await startDaemon({ disable: ["query", "admin", "command", "core", "manager", "https"], config: `access_log = "off"\n${site}` });
  const file = join(d.dir, "access.log");
  const set = async (dest: string) => {
    const from = d.logs.length;
    await d.writeConfig(`access_log = "${dest}"\n${site}`);
    d.proc.kill("SIGHUP");
    await waitFor("reload", () => d.logs.slice(from).some((l) => /config reloaded/.test(l)), 10_000);
  };
  const url = `http://127.0.0.1:${d.httpPort}/bench?token=x`;
  try {
    await wrk(url); // warm-up
    const off: number[] = [];
    const on: number[] = [];
    const err: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      await set("off");
      off.push(await wrk(url));
      await set(file);
      on.push(await wrk(url));
      await set("stderr");
      err.push(await wrk(url));
      d.logs.length = 0; // the helper keeps every stderr line: free them between rounds
    }
    await set("off");
    const lines = (await readFile(file, "utf8")).split("\n").length - 1;
    const [mOff, mOn] = [median(off), median(on)];
    console.log(`access log off (anchor): median ${mOff.toFixed(0)} req/s  rounds ${off.map((x) => x.toFixed(0)).join(" ")}`);
    console.log(`access log on (file):    median ${mOn.toFixed(0)} req/s  rounds ${on.map((x) => x.toFixed(0)).join(" ")}  (${lines} lines written)`);
    const mErr = median(err);
    console.log(`access log on (stderr):  median ${mErr.toFixed(0)} req/s  rounds ${err.map((x) => x.toFixed(0)).join(" ")}`);
    console.log(`ratio file/off: ${(mOn / mOff).toFixed(3)}, stderr/off: ${(mErr / mOff).toFixed(3)} (goal >= 0.9; wrk -c${CONNECTIONS} ${SECS}s x ${ROUNDS} rounds, alternating)`);
  } finally {
    await d.cleanup();
    backend.kill();
  }
}

void main();
