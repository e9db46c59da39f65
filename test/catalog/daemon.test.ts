// The bundled daemon (dist/stevedore.js) with and without a reachable Docker.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { ensureTestImage, needDocker, removeLabeled } from "../helpers/docker.js";
import { createMember, engine, Relay, RUN, waitFor } from "./harness.js";

const ALL_OFF = { disable: ["query", "admin", "command", "core", "manager", "http", "https"] as ("query" | "admin" | "command" | "core" | "manager" | "http" | "https")[] };
after(async () => {
  await removeLabeled(`stevedore.test.group=cat-daemon-${RUN}`);
  engine.close();
});

/** A prompt stop: far below shutdown_timeout_secs (30 s), which a stop stuck on Docker would wait
 *  for; the rest is room for a loaded CI machine. */
const STOP_MS = 5000;

async function stopWithin(d: TestDaemon, ms: number): Promise<void> {
  const t0 = performance.now();
  const code = await d.stop("SIGTERM");
  const took = performance.now() - t0;
  assert.equal(code, 0);
  assert.ok(took < ms, `stopped in ${took.toFixed(0)} ms`);
}

const count = (d: TestDaemon, re: RegExp) => d.logs.filter((l) => re.test(l)).length;

test("Docker unreachable: the daemon keeps retrying, logs once, stops with 0 promptly", async () => {
  const d = await startDaemon({ ...ALL_OFF, config: 'log_level = "debug"', env: { DOCKER_HOST: "unix:///nonexistent/docker.sock" } });
  try {
    await waitFor("four retries", () => count(d, /msg="docker event stream down"/) >= 4, 20_000);
    assert.equal(count(d, /msg="docker unavailable"/), 1);
    assert.equal(count(d, /msg="docker connected"/), 0);
    assert.equal(d.proc.exitCode, null, "still running");
    await stopWithin(d, STOP_MS);
  } finally {
    await d.cleanup();
  }
});

test("Docker appearing, vanishing and coming back: one log line per change of state", async (t) => {
  if (!(await needDocker(t))) return;
  const dir = await mkdtemp(join(tmpdir(), "stevedore-relay-"));
  const relay = new Relay(dir);
  const d = await startDaemon({ ...ALL_OFF, env: { DOCKER_HOST: `unix://${relay.path}` } });
  try {
    await d.waitForLog(/msg="docker unavailable"/);
    await relay.open();
    await d.waitForLog(/msg="catalog ready"/, 20_000);
    await d.waitForLog(/msg="docker connected"/);
    await relay.cut();
    await waitFor("second unavailable", () => count(d, /msg="docker unavailable"/) === 2, 15_000);
    await relay.open();
    await waitFor("connected again", () => count(d, /msg="docker connected"/) === 2, 20_000);
    assert.equal(count(d, /msg="docker unavailable"/), 2);
    assert.equal(count(d, /msg="catalog ready"/), 1);
    await stopWithin(d, STOP_MS);
  } finally {
    await d.cleanup();
    await relay.cut();
    await rm(dir, { recursive: true, force: true });
  }
});

test("daemon restart: the first revision's timestamp is above the last one before", async (t) => {
  if (!(await needDocker(t))) return;
  await ensureTestImage();
  const revisionTs = (line: string) => Number(/ ts=(\d+)/.exec(line)![1]);
  const d = await startDaemon({ ...ALL_OFF, config: 'log_level = "debug"' });
  try {
    await d.waitForLog(/msg="catalog ready"/);
    // a few quick changes push the clock ahead of the wall clock
    for (let i = 0; i < 3; i++) {
      await createMember(`cat-daemon-${RUN}-s-${i}`, `cat-daemon-${RUN}`, "s");
      await waitFor("a revision", () => count(d, /msg="catalog revision"/) >= i + 2, 15_000);
    }
    await stopWithin(d, STOP_MS);
    await waitFor("the last log line", () => d.logs.some((l) => /msg="stopped"/.test(l)), 10_000);
    // (other containers on the engine may make revisions too: take the last one logged)
    const last = Math.max(...d.logs.filter((l) => /msg="catalog revision"/.test(l)).map(revisionTs));
    assert.equal(Number((await readFile(join(d.stateDir, "revision"), "utf8")).trim()), last);
    await d.restart();
    const first = revisionTs(await d.waitForLog(/msg="catalog revision"/));
    assert.ok(first > last, `first ${first} after restart, last ${last} before`);
    await d.waitForLog(/msg="catalog ready" containers=\d+/);
    await stopWithin(d, STOP_MS);
  } finally {
    await d.cleanup();
  }
});
