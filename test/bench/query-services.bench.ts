// GET /services with 200 containers over the Unix socket with keep-alive: the bundled daemon
// (real catalog over 200 real containers) vs a bare node:http server returning the same bytes
// from memory, in the same run; and the shell-out way (docker ps -a + docker inspect per container).
// Without Docker, the daemon's query server runs over a fake catalog of 200 synthetic containers.
import { fork, execFile, spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { load, median, type LoadResult } from "./loadgen.js";
import { BUNDLE, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { get } from "../query/http.js";
import { waitFor } from "../helpers/docker.js";

const exec = promisify(execFile);
const N = 200;
const ROUNDS = 9;
const DURATION_MS = 1000;
const CONNECTIONS = 16;
const LABEL = "stevedore.test=query";

interface Ready {
  cmd: "ready";
  token: string;
  bytes: number;
}

async function child(mode: "stevedore" | "bare", dir: string, bodyFile?: string) {
  const sock = join(dir, `${mode}.sock`);
  const args = [mode, sock, join(dir, "state"), ...(bodyFile ? [bodyFile] : [])];
  const proc = fork(join(process.cwd(), "test/bench/query-server.ts"), args, { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const ready = await new Promise<Ready>((resolve) => proc.on("message", (m: Ready) => m.cmd === "ready" && resolve(m)));
  return { sock, token: ready.token, bytes: ready.bytes, stop: async () => void proc.send({ cmd: "exit" }) };
}

async function dockerAvailable(): Promise<boolean> {
  return exec("docker", ["version", "--format", "{{.Server.Version}}"]).then(() => true, () => false);
}

const names = Array.from({ length: N }, (_, i) => `q-bench-${i}`);

async function createContainers(): Promise<void> {
  await exec("docker", ["rm", "-f", ...names]).catch(() => {});
  for (let i = 0; i < N; i += 20)
    await Promise.all(names.slice(i, i + 20).map((name, j) => exec("docker", ["create", "--name", name, "--label", LABEL,
      "--label", `stevedore.deployment=q-bench${(i + j) % 20}`, "--label", `stevedore.service=s${i + j}`,
      ...((i + j) % 2 ? ["--label", "stevedore.ingress.enabled=true", "--label", `stevedore.ingress.subdomain=b${i + j}`, "--label", "stevedore.ingress.port=8080"] : []),
      "stevedore-test/busybox:latest"])));
}

async function shellOut(): Promise<number> {
  const t0 = performance.now();
  const { stdout } = await exec("docker", ["ps", "-a", "-q", "--no-trunc", "--filter", `label=${LABEL}`]);
  const out = [];
  for (const id of stdout.split("\n").filter(Boolean)) {
    const info = JSON.parse((await exec("docker", ["inspect", id], { maxBuffer: 1 << 22 })).stdout)[0];
    out.push({ deployment: info.Config.Labels["stevedore.deployment"], service: info.Config.Labels["stevedore.service"], container_id: id.slice(0, 12), container_name: info.Name.slice(1), running: info.State.Running });
  }
  JSON.stringify(out);
  return performance.now() - t0;
}

/** the daemon over the real engine; resolves with its socket, a token and the /services body */
async function realDaemon(): Promise<{ d: TestDaemon; sock: string; token: string; body: Buffer }> {
  const d = await startDaemon({ disable: ["admin", "command", "core", "manager", "http", "https"] });
  const r = spawnSync(process.execPath, [BUNDLE, "token", "get", "q-bench"], { encoding: "utf8", env: { ...process.env, STEVEDORE_CONFIG: d.configPath, STEVEDORE_STATE_DIR: "" } });
  const token = r.stdout.trim();
  const body = await waitFor("the daemon lists the 200 containers", async () => {
    const a = await get(d.querySocket, "/services", { token });
    const mine = a.status === 200 ? (a.json as { deployment: string }[]).filter((s) => s.deployment.startsWith("q-bench")).length : 0;
    return mine === N && Buffer.from(a.text);
  }, 30_000, 100);
  return { d, sock: d.querySocket, token, body };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-q-bench-"));
  const docker = await dockerAvailable();
  let daemon: TestDaemon | undefined;
  try {
    let ours: { sock: string; token: string; bytes: number; stop: () => Promise<void> };
    let what: string;
    if (docker) {
      await createContainers();
      const real = await realDaemon();
      daemon = real.d;
      ours = { sock: real.sock, token: real.token, bytes: real.body.length, stop: async () => void (await real.d.stop()) };
      await writeFile(join(dir, "body.json"), real.body);
      what = `the bundled daemon, real catalog (${N} containers of ours among all on the engine)`;
    } else {
      ours = await child("stevedore", dir);
      what = `the query server over a fake catalog (${N} synthetic containers; no Docker here)`;
    }
    const bare = await child("bare", dir, docker ? join(dir, "body.json") : undefined);
    const auth = { Authorization: `Bearer ${ours.token}` };
    await load(bare.sock, "/services", {}, CONNECTIONS, 500); // warm-up
    await load(ours.sock, "/services", auth, CONNECTIONS, 500);
    const b: LoadResult[] = [];
    const s: LoadResult[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      b.push(await load(bare.sock, "/services", {}, CONNECTIONS, DURATION_MS));
      s.push(await load(ours.sock, "/services", auth, CONNECTIONS, DURATION_MS));
    }
    await bare.stop();
    if ([...b, ...s].some((r) => r.errors)) throw new Error("errors during the load");
    const rb = median(b.map((r) => r.rps));
    const rs = median(s.map((r) => r.rps));
    // rounds alternate, so each pair shares the machine's load of the moment: the median of the
    // pairwise ratios is steadier than the ratio of the medians on a shared machine
    const ratios = s.map((r, i) => r.rps / b[i]!.rps).sort((x, y) => x - y);
    const pb = median(b.map((r) => r.p99ms));
    const ps = median(s.map((r) => r.p99ms));
    console.log(`GET /services: ${what}; body ${ours.bytes} bytes; ${CONNECTIONS} keep-alive connections; median of ${ROUNDS} x ${DURATION_MS / 1000} s`);
    console.log(`| figure | stevedore | bare node:http, same bytes (anchor) | ratio |`);
    console.log(`|---|---|---|---|`);
    console.log(`| req/s | ${rs.toFixed(0)} | ${rb.toFixed(0)} | ${median(ratios).toFixed(2)} median of pairwise ratios (range ${ratios[0]!.toFixed(2)}-${ratios.at(-1)!.toFixed(2)}; goal >= 0.80) |`);
    console.log(`| p99 latency ms | ${ps.toFixed(2)} | ${pb.toFixed(2)} | ${(ps / pb).toFixed(2)} |`);
    await ours.stop();
    if (!docker) console.log("| shell-out (docker ps -a + docker inspect each) | skipped: no Docker | | |");
    else {
      const shell = await shellOut();
      const per = 1000 / rs;
      console.log(`| ms per answer | ${per.toFixed(3)} | shell-out, docker ps -a + ${N} x docker inspect: ${shell.toFixed(0)} | shell-out ${(shell / per).toFixed(0)}x slower |`);
    }
  } finally {
    if (docker) await exec("docker", ["rm", "-f", ...names]).catch(() => {});
    await daemon?.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
}

void main().then(() => process.exit(0), (err) => (console.error(err), process.exit(1)));
