// Start-up with 200 member containers: `stevedore daemon` spawn → `catalog ready` log, side by
// side in one run with a shell-out implementation of one listing (`docker ps -a` plus one
// `docker inspect` per container). Run: node --import tsx test/bench/catalog-startup.bench.ts
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DockerClient } from "../../src/docker/index.js";
import { mapLimit } from "../../src/base/index.js";
import { ensureTestImage, removeLabeled, run, TEST_IMAGE } from "../helpers/docker.js";

const COUNT = Number(process.env.BENCH_CONTAINERS ?? 200);
const DAEMON_RUNS = 5;
const SHELL_RUNS = 3;
const RUN = process.pid.toString(36);
const GROUP = `stevedore.test.group=cat-bench-startup-${RUN}`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function daemonStartup(conf: string): Promise<number> {
  const t0 = performance.now();
  const proc = spawn(process.execPath, [resolve("dist/stevedore.js"), "daemon", "--config", conf], {
    env: { ...process.env, STEVEDORE_CONFIG: "", STEVEDORE_QUERY_SOCKET: "", STEVEDORE_STATE_DIR: "" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const exited = new Promise((r) => proc.once("exit", r));
  const took = await new Promise<number>((res, rej) => {
    let buf = "";
    const timer = setTimeout(() => rej(new Error(`no "catalog ready" within 30 s:\n${buf}`)), 30_000);
    proc.stderr!.setEncoding("utf8").on("data", (c: string) => {
      buf += c;
      if (/msg="catalog ready"/.test(buf)) {
        clearTimeout(timer);
        res(performance.now() - t0);
      }
    });
  });
  proc.kill("SIGTERM");
  await exited;
  return took;
}

async function shellOut(): Promise<{ ms: number; inspected: number }> {
  const t0 = performance.now();
  const { stdout } = await run("docker", ["ps", "-a", "--format", "{{.ID}}"], { maxBuffer: 16 << 20 });
  const ids = stdout.split("\n").filter(Boolean);
  for (const id of ids) JSON.parse((await run("docker", ["inspect", id], { maxBuffer: 16 << 20 })).stdout);
  return { ms: performance.now() - t0, inspected: ids.length };
}

async function main() {
  await ensureTestImage();
  await removeLabeled(GROUP);
  const docker = new DockerClient("/var/run/docker.sock");
  const dir = await mkdtemp(join(tmpdir(), "stevedore-bench-"));
  try {
    await mapLimit(Array.from({ length: COUNT }, (_, i) => i), 8, (i) =>
      docker.createContainer(`cat-bench-startup-${RUN}-${i}`, {
        Image: TEST_IMAGE,
        Labels: { "stevedore.test": "catalog", "stevedore.test.group": `cat-bench-startup-${RUN}`, "stevedore.deployment": `cat-bench-${i % 20}`, "stevedore.service": `s${i % 3}` },
      }),
    );
    const conf = join(dir, "stevedore.conf");
    await writeFile(conf, [`state_dir = "${join(dir, "state")}"`, ...["query_socket_path", "admin_socket_path", "command_socket_path", "core_listen", "manager_listen", "proxy_http_listen", "proxy_https_listen"].map((k) => `${k} = ""`)].join("\n") + "\n");
    const daemonRuns: number[] = [];
    const shellRuns: number[] = [];
    let inspected = 0;
    await daemonStartup(conf); // warm the page cache
    for (let i = 0; i < Math.max(DAEMON_RUNS, SHELL_RUNS); i++) {
      if (i < DAEMON_RUNS) daemonRuns.push(await daemonStartup(conf));
      if (i < SHELL_RUNS) {
        const s = await shellOut();
        shellRuns.push(s.ms);
        inspected = s.inspected;
      }
    }
    const d = median(daemonRuns);
    const s = median(shellRuns);
    console.log(`catalog start-up, ${COUNT} member containers (${inspected} containers on the engine)`);
    console.log(`  stevedore daemon: spawn → "catalog ready"        median ${d.toFixed(0)} ms  (runs: ${daemonRuns.map((x) => x.toFixed(0)).join(", ")})`);
    console.log(`  shell-out: docker ps -a + docker inspect each   median ${s.toFixed(0)} ms  (runs: ${shellRuns.map((x) => x.toFixed(0)).join(", ")})`);
    console.log(`  ratio shell-out / daemon: ${(s / d).toFixed(1)}x`);
  } finally {
    await removeLabeled(GROUP);
    docker.close();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
