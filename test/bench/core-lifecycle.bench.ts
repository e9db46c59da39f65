// Create, start, stop and delete N services through the core API (the bundled daemon), side by
// side with the same Engine API calls made directly with our Docker client. Prints totals and the
// ratio (goal ≤ 1.10). Run: node --import tsx test/bench/core-lifecycle.bench.ts  (make build first)
import { mkdir, rm, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DockerClient } from "../../src/docker/index.js";
import { createBody } from "../../src/core/params.js";
import { ensureTestImage, removeLabeled, DOCKER_SOCKET } from "../helpers/docker.js";
import { startDaemon } from "../helpers/daemon.js";
import { CoreClient } from "../core/client.js";
import { RUN, RUN_LABEL, labels } from "../core/run.js";

const N = Number(process.env.BENCH_SERVICES ?? 50);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const STOP_SECS = 2;
// exits at once on SIGTERM, so stop measures the calls, not a grace period
const CMD = ["sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"];
type Phases = Record<"create" | "start" | "stop" | "delete", number>;

async function phase(ids: string[], fn: (id: string) => Promise<void>): Promise<number> {
  const t0 = performance.now();
  for (const id of ids) await fn(id);
  return performance.now() - t0;
}

function check(r: { status: number; text: string }, what: string): void {
  if (r.status !== 204) throw new Error(`${what}: ${r.status} ${r.text}`);
}

async function viaCore(api: CoreClient, image: string, round: number): Promise<Phases> {
  const ids = Array.from({ length: N }, (_, i) => `core-bench-${RUN}-${round}-${i}`);
  return {
    create: await phase(ids, async (id) => check(await api.create({ id, image, bind_dir: "/data", labels, cmd: CMD }), `create ${id}`)),
    start: await phase(ids, async (id) => check(await api.ctl(id, "start"), `start ${id}`)),
    stop: await phase(ids, async (id) => check(await api.ctl(id, "stop"), `stop ${id}`)),
    delete: await phase(ids, async (id) => check(await api.call("DELETE", `/service/${id}`), `delete ${id}`)),
  };
}

/** The Engine API calls the core API makes, made directly: image check + create; inspect + start; inspect + stop; remove. */
async function direct(docker: DockerClient, image: string, binds: string, round: number): Promise<Phases> {
  const ids = Array.from({ length: N }, (_, i) => `core-benchd-${RUN}-${round}-${i}`);
  return {
    create: await phase(ids, async (id) => {
      await docker.imageExists(image);
      await mkdir(join(binds, id));
      await docker.createContainer(id, createBody({ id, image, bind_dir: "/data", labels, cmd: CMD }, {}, join(binds, id), "core"));
    }),
    start: await phase(ids, async (id) => {
      await docker.inspectContainer(id);
      await docker.startContainer(id);
    }),
    stop: await phase(ids, async (id) => {
      await docker.inspectContainer(id);
      await docker.stopContainer(id, STOP_SECS);
    }),
    delete: await phase(ids, async (id) => {
      await docker.removeContainer(id, { force: true });
      await rm(join(binds, id), { recursive: true, force: true });
    }),
  };
}

const total = (p: Phases) => p.create + p.start + p.stop + p.delete;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const image = await ensureTestImage();
  await removeLabeled(RUN_LABEL);
  const d = await startDaemon({ disable: ["query", "admin", "command", "manager", "http", "https"], config: `core_stop_timeout_secs = ${STOP_SECS}` });
  const api = await CoreClient.forStateDir(d.corePort, d.stateDir);
  const docker = new DockerClient(DOCKER_SOCKET);
  const binds = await mkdtemp(join(tmpdir(), "core-bench-binds-"));
  const core: Phases[] = [];
  const anchor: Phases[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      // alternate the order so neither side always runs on a warmer engine
      if (round % 2 === 0) {
        anchor.push(await direct(docker, image, binds, round));
        core.push(await viaCore(api, image, round));
      } else {
        core.push(await viaCore(api, image, round));
        anchor.push(await direct(docker, image, binds, round));
      }
      process.stderr.write(`round ${round + 1}/${ROUNDS}: core ${total(core[round]!).toFixed(0)} ms, direct ${total(anchor[round]!).toFixed(0)} ms\n`);
    }
  } finally {
    await d.cleanup();
    docker.close();
    await rm(binds, { recursive: true, force: true });
    await removeLabeled(RUN_LABEL);
  }
  const rows: [string, number, number][] = (["create", "start", "stop", "delete"] as const).map((k) => [k, median(core.map((p) => p[k])), median(anchor.map((p) => p[k]))]);
  rows.push(["total", median(core.map(total)), median(anchor.map(total))]);
  console.log(`core API lifecycle, ${N} services, median of ${ROUNDS} rounds (ms)`);
  console.log(`${"phase".padEnd(8)} ${"core API".padStart(10)} ${"direct".padStart(10)} ${"ratio".padStart(7)}`);
  for (const [name, c, a] of rows) console.log(`${name.padEnd(8)} ${c.toFixed(0).padStart(10)} ${a.toFixed(0).padStart(10)} ${(c / a).toFixed(3).padStart(7)}`);
}

await main();
