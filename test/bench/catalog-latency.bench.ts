// Event-to-revision latency over 100 container starts, in process: from Docker's event
// `timeNano` to the revision that shows the container running. The anchor, measured in the same
// run, is when the same event reaches a bare event-stream subscriber (Docker's own delivery).
// Run: node --import tsx test/bench/catalog-latency.bench.ts
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Catalog } from "../../src/catalog/index.js";
import { DockerClient, DockerEventStream } from "../../src/docker/index.js";
import { mapLimit } from "../../src/base/index.js";
import { ensureTestImage, removeLabeled, TEST_IMAGE, waitFor } from "../helpers/docker.js";

const STARTS = Number(process.env.BENCH_STARTS ?? 100);
const RUN = process.pid.toString(36);
const GROUP = `stevedore.test.group=cat-bench-latency-${RUN}`;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!;

async function main() {
  await ensureTestImage();
  await removeLabeled(GROUP);
  const docker = new DockerClient("/var/run/docker.sock");
  const dir = await mkdtemp(join(tmpdir(), "stevedore-bench-"));
  const dyn = { catalog_debounce_ms: 25, catalog_resync_secs: 300, poll_max_waiters: 10_000 };
  const catalog = new Catalog({ docker, stateDir: dir, dynamic: () => dyn as never });
  const startEvent = new Map<string, { timeNano: number; deliveredMs: number }>();
  const revisionAt = new Map<string, number>();
  const stream = new DockerEventStream(docker.transport, {
    onEvent: (e) => {
      if (e.Action === "start") startEvent.set(e.Actor.ID, { timeNano: e.timeNano, deliveredMs: Date.now() });
    },
    onUp: () => {},
    onDown: () => {},
  });
  catalog.on("revision", (r) => {
    const now = Date.now();
    for (const c of r.containers) if (c.running && !revisionAt.has(c.id)) revisionAt.set(c.id, now);
  });
  try {
    const ids = await mapLimit(Array.from({ length: STARTS }, (_, i) => i), 8, async (i) =>
      (await docker.createContainer(`cat-bench-latency-${RUN}-${i}`, {
        Image: TEST_IMAGE, Cmd: ["sleep", "3600"],
        Labels: { "stevedore.test": "catalog", "stevedore.test.group": `cat-bench-latency-${RUN}`, "stevedore.deployment": `cat-bench-latency-${RUN}`, "stevedore.service": "s" },
        HostConfig: { NetworkMode: "none" },
      })).Id,
    );
    stream.start();
    await waitFor("event stream", () => stream.up);
    await catalog.start();
    for (const id of ids) {
      await docker.startContainer(id);
      await waitFor("the revision", () => revisionAt.has(id) && startEvent.has(id), 5000, 1);
    }
    const catalogMs: number[] = [];
    const deliveryMs: number[] = [];
    for (const id of ids) {
      const e = startEvent.get(id)!;
      catalogMs.push(revisionAt.get(id)! - e.timeNano / 1e6);
      deliveryMs.push(e.deliveredMs - e.timeNano / 1e6);
    }
    console.log(`event-to-revision latency over ${STARTS} container starts (catalog_debounce_ms=${dyn.catalog_debounce_ms})`);
    console.log(`  catalog revision (timeNano → revision):        p50 ${pct(catalogMs, 50).toFixed(1)} ms  p99 ${pct(catalogMs, 99).toFixed(1)} ms`);
    console.log(`  anchor: event delivered to a bare subscriber:  p50 ${pct(deliveryMs, 50).toFixed(1)} ms  p99 ${pct(deliveryMs, 99).toFixed(1)} ms`);
    console.log(`  ratio (p50): ${(pct(catalogMs, 50) / Math.max(0.1, pct(deliveryMs, 50))).toFixed(1)}x; catalog's own share p50 ${(pct(catalogMs, 50) - pct(deliveryMs, 50)).toFixed(1)} ms`);
  } finally {
    stream.stop();
    await catalog.stop();
    await removeLabeled(GROUP);
    docker.close();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
