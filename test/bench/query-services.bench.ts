// GET /services with 200 containers over the Unix socket with keep-alive:
// stevedore's query server vs a bare node:http server returning the same bytes (same run),
// and the shell-out way (docker ps -a + docker inspect per container).
import { fork, execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { load, median, type LoadResult } from "./loadgen.js";

const exec = promisify(execFile);
const ROUNDS = 5;
const DURATION_MS = 1500;
const CONNECTIONS = 16;

interface Ready {
  cmd: "ready";
  token: string;
  bytes: number;
}

async function server(mode: "stevedore" | "bare", dir: string) {
  const sock = join(dir, `${mode}.sock`);
  const child = fork(join(process.cwd(), "test/bench/query-server.ts"), [mode, sock, join(dir, "state")], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const ready = await new Promise<Ready>((resolve) => child.on("message", (m: Ready) => m.cmd === "ready" && resolve(m)));
  return { sock, ready, stop: () => child.send({ cmd: "exit" }) };
}

async function shellOut(n: number): Promise<number | undefined> {
  try {
    await exec("docker", ["version", "--format", "{{.Server.Version}}"]);
  } catch {
    return undefined;
  }
  const label = "stevedore.test=query";
  const names = Array.from({ length: n }, (_, i) => `q-bench-${i}`);
  await exec("docker", ["rm", "-f", ...names]).catch(() => {});
  for (let i = 0; i < n; i += 20)
    await Promise.all(names.slice(i, i + 20).map((name) =>
      exec("docker", ["create", "--name", name, "--label", label, "--label", "stevedore.deployment=q-bench", "--label", `stevedore.service=s${name}`, "stevedore-test/busybox:latest"])));
  try {
    const t0 = performance.now();
    const { stdout } = await exec("docker", ["ps", "-a", "-q", "--no-trunc", "--filter", "label=stevedore.deployment=q-bench"]);
    const out = [];
    for (const id of stdout.split("\n").filter(Boolean)) {
      const info = JSON.parse((await exec("docker", ["inspect", id], { maxBuffer: 1 << 22 })).stdout)[0];
      out.push({ deployment: info.Config.Labels["stevedore.deployment"], service: info.Config.Labels["stevedore.service"], container_id: id.slice(0, 12), container_name: info.Name.slice(1), running: info.State.Running });
    }
    JSON.stringify(out);
    return performance.now() - t0;
  } finally {
    await exec("docker", ["rm", "-f", ...names]).catch(() => {});
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-q-bench-"));
  try {
    const bare = await server("bare", dir);
    const ours = await server("stevedore", dir);
    const auth = { Authorization: `Bearer ${ours.ready.token}` };
    await load(bare.sock, "/services", {}, CONNECTIONS, 500); // warm-up
    await load(ours.sock, "/services", auth, CONNECTIONS, 500);
    const b: LoadResult[] = [];
    const s: LoadResult[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      b.push(await load(bare.sock, "/services", {}, CONNECTIONS, DURATION_MS));
      s.push(await load(ours.sock, "/services", auth, CONNECTIONS, DURATION_MS));
    }
    bare.stop();
    ours.stop();
    if ([...b, ...s].some((r) => r.errors)) throw new Error("errors during the load");
    const rb = median(b.map((r) => r.rps));
    const rs = median(s.map((r) => r.rps));
    const pb = median(b.map((r) => r.p99ms));
    const ps = median(s.map((r) => r.p99ms));
    console.log(`GET /services, 200 containers (${ours.ready.bytes} bytes), ${CONNECTIONS} keep-alive connections, median of ${ROUNDS} x ${DURATION_MS / 1000} s`);
    console.log(`| figure | stevedore | bare node:http (anchor) | ratio |`);
    console.log(`|---|---|---|---|`);
    console.log(`| req/s | ${rs.toFixed(0)} | ${rb.toFixed(0)} | ${(rs / rb).toFixed(2)} (goal >= 0.80) |`);
    console.log(`| p99 latency ms | ${ps.toFixed(2)} | ${pb.toFixed(2)} | ${(ps / pb).toFixed(2)} |`);
    const shell = await shellOut(200);
    if (shell === undefined) console.log("| shell-out (docker ps -a + inspect each) | skipped: no Docker | | |");
    else console.log(`| time per answer ms | ${(1000 / rs).toFixed(3)} | shell-out ${shell.toFixed(0)} | ${(shell / (1000 / rs)).toFixed(0)}x faster |`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

void main().then(() => process.exit(0));
