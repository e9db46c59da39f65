// The query socket over the real engine and the real catalog (bundled daemon): a docker-compose
// project, health going starting → healthy, a finished one-shot job, long-poll across real
// container changes, Docker going away and coming back.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync, execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { randomBytes } from "node:crypto";
import { BUNDLE, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { ensureTestImage, needDocker, removeLabeled, run, waitFor, TEST_IMAGE } from "../helpers/docker.js";
import { Relay } from "../catalog/harness.js";
import { get } from "./http.js";

const exec = promisify(execFile);
/** Per-run suffix of container, project and deployment names and of the cleanup label: a leftover
 *  of an earlier (killed) run, or the same file running from another checkout on the one engine,
 *  cannot collide, and cleanup removes only this run's containers. */
const RUN = randomBytes(3).toString("hex");
const LABEL = `stevedore.test.run=${RUN}`;
const QCOMP = `q-comp${RUN}`;
const only = { disable: ["admin", "command", "core", "manager", "http", "https"] as ("admin" | "command" | "core" | "manager" | "http" | "https")[] };

after(async () => {
  await removeLabeled(LABEL);
});

function token(d: TestDaemon, name: string): string {
  const r = spawnSync(process.execPath, [BUNDLE, "token", "get", name], { encoding: "utf8", env: { ...process.env, STEVEDORE_CONFIG: d.configPath, STEVEDORE_STATE_DIR: "" } });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

const composeFile = `
services:
  web:
    image: ${TEST_IMAGE}
    pull_policy: never
    labels:
      stevedore.test: query
      stevedore.test.run: "${RUN}"
      stevedore.ingress.enabled: "true"
      stevedore.ingress.subdomain: qcomp
      stevedore.ingress.port: "8080"
      stevedore.ingress.websocket: "yes"
      stevedore.ingress.healthcheck: /health
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/health"]
      interval: 2s
      timeout: 2s
      retries: 3
  worker:
    image: ${TEST_IMAGE}
    pull_policy: never
    command: ["sleep", "3600"]
    labels:
      stevedore.test: query
      stevedore.test.run: "${RUN}"
  migrate:
    image: ${TEST_IMAGE}
    pull_policy: never
    command: ["true"]
    restart: "no"
    labels:
      stevedore.test: query
      stevedore.test.run: "${RUN}"
`;

test("a docker-compose project: /services, /deployments, /status with health starting → healthy and a finished one-shot job", { timeout: 120_000 }, async (t) => {
  if (!(await needDocker(t))) return;
  await ensureTestImage();
  const dir = await mkdtemp(join(tmpdir(), "stevedore-q-compose-"));
  const project = ["-p", `stevedore-${QCOMP}`, "-f", join(dir, "docker-compose.yml")];
  await writeFile(join(dir, "docker-compose.yml"), composeFile);
  const d = await startDaemon(only);
  try {
    const tok = token(d, "q-reader");
    await waitFor("token in force", async () => (await get(d.querySocket, "/deployments", { token: tok })).status === 200);
    await run("docker-compose", [...project, "up", "-d", "--no-build"], { cwd: dir });
    const healths: string[] = [];
    const status = await waitFor("web healthy and the job finished", async () => {
      const r = await get(d.querySocket, `/status/${QCOMP}`, { token: tok });
      if (r.status !== 200) return false;
      const web = r.json.containers.find((c: { service: string }) => c.service === "web");
      if (web?.state === "running" && healths.at(-1) !== web.health) healths.push(web.health);
      const job = r.json.containers.find((c: { service: string }) => c.service === "migrate");
      return r.json.containers.length === 3 && web?.health === "healthy" && job?.state === "exited" && r.json;
    }, 60_000, 50);
    assert.deepEqual(healths, ["starting", "healthy"]);
    assert.equal(status.deployment, QCOMP);
    assert.equal(status.project_name, `stevedore-${QCOMP}`);
    assert.equal(status.healthy, true, "a one-shot job that exited 0 does not make the deployment unhealthy");
    assert.equal(status.message, "All 3 containers healthy");
    const [job, web, worker] = status.containers;
    assert.deepEqual([job.service, web.service, worker.service], ["migrate", "web", "worker"]);
    assert.deepEqual([job.name, web.name, worker.name], [`stevedore-${QCOMP}_migrate_1`, `stevedore-${QCOMP}_web_1`, `stevedore-${QCOMP}_worker_1`]);
    assert.equal(job.status, "Exited (0)");
    assert.equal(job.exit_code, 0);
    assert.match(web.status, /^Up \d+s \(healthy\)$/);
    assert.match(worker.status, /^Up \d+s$/);
    assert.equal(worker.health, "none");
    assert.equal(web.image, TEST_IMAGE);
    assert.equal(web.state, "running");
    for (const c of status.containers) {
      assert.match(c.id, /^[0-9a-f]{12}$/);
      assert.match(c.started_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    }

    // curl, a real client, reads the same
    const { stdout } = await exec("curl", ["-sf", "--unix-socket", d.querySocket, "-H", `Authorization: Bearer ${tok}`, "http://localhost/services"]);
    const mine = JSON.parse(stdout).filter((s: { deployment: string }) => s.deployment === QCOMP);
    assert.deepEqual(mine.map((s: { service: string; running: boolean }) => `${s.service}:${s.running}`), ["migrate:false", "web:true", "worker:true"]);
    assert.deepEqual(mine[1].ingress, { enabled: true, subdomain: "qcomp", port: 8080, websocket: true, healthcheck: "/health" });
    assert.equal(mine[1].container_id, web.id);
    assert.equal(mine[1].container_name, `stevedore-${QCOMP}_web_1`);
    assert.equal(mine[0].ingress, undefined);
    const ingress = (await get(d.querySocket, "/services?ingress=true", { token: tok })).json.filter((s: { deployment: string }) => s.deployment === QCOMP);
    assert.deepEqual(ingress.map((s: { service: string }) => s.service), ["web"]);
    const deployments = (await get(d.querySocket, "/deployments", { token: tok })).json.map((x: { name: string }) => x.name);
    assert.ok(deployments.includes(QCOMP));
    assert.ok(deployments.includes("q-reader"), "a deployment with a token is registered");
    assert.deepEqual(deployments, [...deployments].sort());

    // the worker stops: not healthy any more
    await run("docker", ["stop", "-t", "0", `stevedore-${QCOMP}_worker_1`]);
    const down = await waitFor("worker down", async () => {
      const r = await get(d.querySocket, `/status/${QCOMP}`, { token: tok });
      return r.json.healthy === false && r.json;
    }, 10_000);
    assert.equal(down.message, "1/3 containers running"); // web runs; the job is done; the worker is down
  } finally {
    await run("docker-compose", [...project, "down", "-t", "0"], { cwd: dir }).catch(() => {});
    await d.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
});

test("no health check in the deployment: the message says All N containers running, not healthy (and the CLI shows it)", { timeout: 120_000 }, async (t) => {
  if (!(await needDocker(t))) return;
  await ensureTestImage();
  const d = await startDaemon(only);
  const suffix = Math.random().toString(36).slice(2, 8);
  const names = [`q-nohc-a-${suffix}`, `q-nohc-b-${suffix}`];
  const dep = `q-nohc-${suffix}`;
  try {
    const tok = token(d, dep);
    for (const [i, name] of names.entries())
      await run("docker", ["run", "-d", "--name", name, "--label", LABEL, "--label", `stevedore.deployment=${dep}`, "--label", `stevedore.service=s${i}`, TEST_IMAGE, "sleep", "3600"]);
    const status = await waitFor("both running", async () => {
      const r = await get(d.querySocket, `/status/${dep}`, { token: tok });
      return r.status === 200 && r.json.containers.length === 2 && r.json.containers.every((c: { state: string }) => c.state === "running") && r.json;
    }, 30_000, 50);
    assert.deepEqual(status.containers.map((c: { health: string }) => c.health), ["none", "none"]);
    assert.equal(status.healthy, true);
    assert.equal(status.message, "All 2 containers running");
    const cli = spawnSync(process.execPath, [BUNDLE, "deployment", dep], { encoding: "utf8", env: { ...process.env, STEVEDORE_CONFIG: d.configPath, STEVEDORE_STATE_DIR: "", STEVEDORE_QUERY_TOKEN: tok } });
    assert.equal(cli.status, 0, cli.stderr);
    assert.match(cli.stdout, /^healthy: +yes \(All 2 containers running\)$/m);
  } finally {
    await exec("docker", ["rm", "-f", ...names]).catch(() => {});
    await d.cleanup();
  }
});

test("poll: a client echoing timestamps sees each of 20 container changes; no answer comes without a change", { timeout: 120_000 }, async (t) => {
  if (!(await needDocker(t))) return;
  await ensureTestImage();
  const d = await startDaemon(only);
  const names = Array.from({ length: 20 }, (_, i) => `q-echo${RUN}-${i}`);
  const dep = `q-echo${RUN}`;
  try {
    const tok = token(d, "q-echo");
    await waitFor("token in force", async () => (await get(d.querySocket, "/deployments", { token: tok })).status === 200);
    let since = (await get(d.querySocket, "/poll?since=0", { token: tok })).json.timestamp as number;
    const answers: { changed: boolean; timestamp: number }[] = [];
    const seen = async (i: number) =>
      ((await get(d.querySocket, "/services", { token: tok })).json as { service: string; deployment: string }[]).some((s) => s.deployment === dep && s.service === `s${i}`);
    for (let i = 0; i < 20; i++) {
      let polled = get(d.querySocket, `/poll?since=${since}&timeout=30`, { token: tok });
      await run("docker", ["create", "--name", names[i]!, "--label", LABEL, "--label", `stevedore.deployment=${dep}`, "--label", `stevedore.service=s${i}`, TEST_IMAGE]);
      // answers until this change is visible (containers of other test files make changes of their
      // own, as many as they like: the bound is time, not a number of answers)
      const deadline = performance.now() + 30_000;
      for (;;) {
        const r = (await polled).json as { changed: boolean; timestamp: number };
        answers.push(r);
        assert.equal(r.changed, true, "an answer without a change");
        assert.ok(r.timestamp > since, `timestamp ${r.timestamp} not newer than ${since}`);
        since = r.timestamp;
        if (await seen(i)) break;
        assert.ok(performance.now() < deadline, `change ${i} never seen`);
        polled = get(d.querySocket, `/poll?since=${since}&timeout=30`, { token: tok });
      }
    }
    assert.ok(answers.length >= 20);
  } finally {
    await exec("docker", ["rm", "-f", ...names]).catch(() => {});
    await d.cleanup();
  }
});

test("Docker unreachable: X-Stevedore-Stale, then 503 after catalog_stale_after_secs; its return is a change", { timeout: 120_000 }, async (t) => {
  if (!(await needDocker(t))) return;
  const dir = await mkdtemp(join(tmpdir(), "stevedore-q-relay-"));
  const relay = new Relay(dir);
  await relay.open();
  const d = await startDaemon({ ...only, config: "catalog_stale_after_secs = 4", env: { DOCKER_HOST: `unix://${relay.path}` } });
  try {
    const tok = token(d, "q-stale");
    await d.waitForLog(/msg="docker connected"/, 10_000);
    await waitFor("token in force", async () => (await get(d.querySocket, "/deployments", { token: tok })).status === 200);
    const fresh = await get(d.querySocket, "/services", { token: tok });
    assert.equal(fresh.headers["x-stevedore-stale"], undefined);
    await relay.cut();
    await d.waitForLog(/msg="docker unavailable"/);
    const stale = await get(d.querySocket, "/deployments", { token: tok });
    assert.equal(stale.status, 200);
    assert.match(String(stale.headers["x-stevedore-stale"]), /^[0-3]$/);
    assert.ok(stale.json.some((x: { name: string }) => x.name === "q-stale"), "answers from the last catalog");
    const gone = await waitFor("503 after the stale limit", async () => {
      const r = await get(d.querySocket, "/services", { token: tok });
      return r.status === 503 && r;
    }, 20_000, 100);
    assert.deepEqual(gone.json, { error: "docker unavailable" });
    assert.equal((await get(d.querySocket, "/status/q-stale", { token: tok })).status, 503);
    assert.equal((await get(d.querySocket, "/healthz")).status, 200);
    const ts = (await get(d.querySocket, "/poll?since=0", { token: tok })).json.timestamp as number;
    const waiting = get(d.querySocket, `/poll?since=${ts}&timeout=30`, { token: tok });
    await relay.open();
    const back = await waiting;
    assert.equal(back.json.changed, true);
    assert.ok(back.json.timestamp > ts);
    await waitFor("fresh again", async () => {
      const r = await get(d.querySocket, "/services", { token: tok });
      return r.status === 200 && r.headers["x-stevedore-stale"] === undefined;
    });
  } finally {
    await d.cleanup();
    await relay.cut();
    await rm(dir, { recursive: true, force: true });
  }
});
