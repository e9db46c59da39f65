// kill -9 of the bundled daemon during concurrent POST /service (issue 16 item 4): after every
// restart each container of ours is a service the API knows (GET 200, DELETE 204 and gone), every
// acknowledged create is there, and an unacknowledged one is gone and can be created again.
// Lanes of daemons run side by side; each trial fires creates and kills at a random moment.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { needDocker, ensureTestImage, removeLabeled, dockerReachable, DOCKER_SOCKET } from "../helpers/docker.js";
import { DockerClient } from "../../src/docker/index.js";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { intRng } from "../helpers/random.js";
import { CoreClient } from "./client.js";
import { RUN, RUN_LABEL, labels } from "./run.js";

const LANES = 6;
const TRIALS_PER_LANE = 34; // 204 trials
const CREATES = 2; // concurrent creates per trial
/** the kill lands this long (uniform) after the creates were sent: a create takes ~30–300 ms here;
 *  on a loaded machine the window grows with the creates measured (see windowMs), so that kills
 *  still land before, inside and after them */
const KILL_WITHIN_MS = 250;
const DEADLINE_MS = 360_000; // ~60 s alone; room for a CI machine several times slower

let image: string;
let docker: DockerClient;

before(async () => {
  if (!(await dockerReachable())) return;
  image = await ensureTestImage();
  await removeLabeled(RUN_LABEL);
  docker = new DockerClient(DOCKER_SOCKET);
});

after(async () => {
  docker?.close();
  if (await dockerReachable()) await removeLabeled(RUN_LABEL);
});

/** this lane's containers, by name (through the Engine API: a docker CLI per call costs CPU) */
async function ours(lane: string): Promise<string[]> {
  const filters = JSON.stringify({ label: [RUN_LABEL, `stevedore.test.lane=${lane}`] });
  const list = await docker.transport.json<{ Names: string[] }[]>("list", "/containers/json", { query: { all: 1, filters } });
  return list.map((c) => c.Names[0]!.replace(/^\//, ""));
}

async function lane(index: number, deadline: number, stats: { trials: number; acked: number; unacked: number; rolledBack: number }): Promise<void> {
  const name = `${RUN}-${index}`;
  const rand = intRng(0x1600 + index);
  const d: TestDaemon = await startDaemon({ disable: ["query", "admin", "command", "manager", "http", "https"] });
  try {
    // a create timed without a kill: the window covers 1.5 of them
    let windowMs = KILL_WITHIN_MS;
    const timedCreate = async (api: CoreClient, id: string) => {
      const t0 = performance.now();
      const r = await api.create({ id, image, bind_dir: "/data", labels: { ...labels, "stevedore.test.lane": name } });
      windowMs = Math.max(KILL_WITHIN_MS, Math.round(1.5 * (performance.now() - t0)));
      return r;
    };
    {
      const api = await CoreClient.forStateDir(d.corePort, d.stateDir);
      const id = `corekill-${name}-calibrate`;
      assert.equal((await timedCreate(api, id)).status, 204);
      assert.equal((await api.call("DELETE", `/service/${id}`)).status, 204);
    }
    let acked = new Set<string>();
    let unacked: string[] = [];
    for (let trial = 0; trial < TRIALS_PER_LANE; trial++) {
      if (performance.now() > deadline) throw new Error(`lane ${index}: deadline passed at trial ${trial}`);
      const api = await CoreClient.forStateDir(d.corePort, d.stateDir);
      // after the restart: every container of ours is known to the API, every acknowledged one is there
      const names = await ours(name);
      for (const id of acked) assert.ok(names.includes(id), `lane ${index} trial ${trial}: acknowledged ${id} lost`);
      await Promise.all(names.map(async (id) => {
        const got = await api.call("GET", `/service/${id}`);
        assert.equal(got.status, 200, `lane ${index} trial ${trial}: container ${id} unknown to the API (${got.status} ${got.text})`);
        assert.equal((await api.call("DELETE", `/service/${id}`)).status, 204, `DELETE ${id}`);
      }));
      const sample = trial % 4 === 0; // the slower checks on every 4th trial
      if (sample) assert.deepEqual(await ours(name), [], "deleted services are gone from Docker");
      // an unacknowledged create left nothing in the way: the same id can be created again
      if (sample && unacked.length > 0) {
        const id = unacked[0]!;
        if (!names.includes(id)) stats.rolledBack++;
        const again = await timedCreate(api, id);
        assert.equal(again.status, 204, `lane ${index} trial ${trial}: re-create of unacknowledged ${id}: ${again.status} ${again.text}`);
        assert.equal((await api.call("DELETE", `/service/${id}`)).status, 204);
      }
      // the creates, and the kill at a random moment among them
      const ids = Array.from({ length: CREATES }, (_, k) => `corekill-${name}-${trial}-${k}`);
      const results = ids.map((id) =>
        api.create({ id, image, bind_dir: "/data", labels: { ...labels, "stevedore.test.lane": name } }).then((r) => r.status, () => 0),
      );
      await new Promise((r) => setTimeout(r, rand(windowMs)));
      await d.stop("SIGKILL");
      const statuses = await Promise.all(results);
      acked = new Set(ids.filter((_, k) => statuses[k] === 204));
      unacked = ids.filter((_, k) => statuses[k] !== 204);
      stats.trials++;
      stats.acked += acked.size;
      stats.unacked += unacked.length;
      await d.restart();
    }
  } finally {
    await d.cleanup();
  }
}

test("kill -9 during concurrent POST /service: after restart every container is a known service or gone (200 trials)", { timeout: DEADLINE_MS + 10_000 }, async (t) => {
  if (!(await needDocker(t))) return;
  const deadline = performance.now() + DEADLINE_MS;
  const stats = { trials: 0, acked: 0, unacked: 0, rolledBack: 0 };
  await Promise.all(Array.from({ length: LANES }, (_, i) => lane(i, deadline, stats)));
  t.diagnostic(JSON.stringify(stats));
  assert.equal(stats.trials, LANES * TRIALS_PER_LANE);
  // the kills landed inside creates, not only before or after them
  assert.ok(stats.acked > 0 && stats.unacked > 0, JSON.stringify(stats));
});
