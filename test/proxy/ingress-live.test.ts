// Ingress routes live through the bundled daemon and the real catalog: busybox httpd containers
// with stevedore.ingress.* labels.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { DOCKER_SOCKET, ensureTestImage, needDocker, removeLabeled, run, waitFor } from "../helpers/docker.js";
import { DockerClient } from "../../src/docker/index.js";
import { get } from "./helpers.js";

const RUN = randomBytes(3).toString("hex");
const GROUP = `stevedore.test.group=px-ingress-${RUN}`;
const engine = new DockerClient(DOCKER_SOCKET);
let daemon: TestDaemon | undefined;
after(async () => {
  await daemon?.cleanup();
  await removeLabeled(GROUP);
  engine.close();
});

/** A member container serving `text` on :8080 with ingress labels; not started. */
async function replica(name: string, subdomain: string, text: string, extra: Record<string, unknown> = {}): Promise<string> {
  const image = await ensureTestImage();
  const { Id } = await engine.createContainer(`px-${RUN}-${name}`, {
    Image: image,
    Cmd: ["/bin/sh", "-c", `mkdir -p /tmp/w && echo ${text} > /tmp/w/index.html && echo ok > /tmp/w/state && exec httpd -f -p 8080 -h /tmp/w`],
    Labels: {
      "stevedore.test": "proxy",
      [GROUP.split("=")[0]!]: GROUP.split("=")[1]!,
      "stevedore.deployment": `px-${RUN}`,
      "stevedore.service": subdomain,
      "stevedore.ingress.enabled": "true",
      "stevedore.ingress.subdomain": subdomain,
      "stevedore.ingress.port": "8080",
    },
    HostConfig: { NetworkMode: "bridge" },
    StopTimeout: 1,
    ...extra,
  } as never);
  return Id;
}

async function body(host: string): Promise<string | undefined> {
  const r = await get(daemon!.httpPort, host).catch(() => undefined);
  return r && r.status === 200 ? r.body.trim() : undefined;
}

async function status(host: string): Promise<number> {
  return (await get(daemon!.httpPort, host)).status;
}

/** Routing follows the container's start and stop: well under a second on a quiet machine (measured
 *  from the engine's answer, not including Docker's own start time); the bound leaves room for a
 *  loaded CI machine and is still far below the catalog's periodic resync (300 s). */
const FOLLOW_MS = 3000;

test("a started container is routed promptly; stopped → 503 promptly", async (t) => {
  if (!(await needDocker(t))) return;
  daemon = await startDaemon({ disable: ["query", "admin", "command", "core", "manager", "https"], config: 'ingress_domain = "px.test"\ncatalog_debounce_ms = 10' });
  await daemon.waitForLog(/msg="catalog ready"/, 20_000);
  const host = `web${RUN}.px.test`;
  const id = await replica("web", `web${RUN}`, "hello");
  await waitFor("created, not running: the route exists without backends (503)", async () => (await status(host)) === 503);
  await engine.startContainer(id);
  // The engine has answered: the container runs and its start event is out. httpd needs a moment
  // to bind after the start.
  const t0 = performance.now();
  await waitFor("routed", async () => (await body(host)) === "hello", 15_000, 10);
  const routedAfter = performance.now() - t0;
  t.diagnostic(`routed ${routedAfter.toFixed(0)} ms after the start call returned`);
  assert.ok(routedAfter < FOLLOW_MS, `routed ${routedAfter.toFixed(0)} ms after the start`);
  await engine.killContainer(id);
  const t1 = performance.now();
  await waitFor("503 after stop", async () => (await status(host)) === 503, 15_000, 10);
  const goneAfter = performance.now() - t1;
  t.diagnostic(`503 ${goneAfter.toFixed(0)} ms after the kill call returned`);
  assert.ok(goneAfter < FOLLOW_MS, `out of rotation ${goneAfter.toFixed(0)} ms after the stop`);
});

test("two replicas share the route; an unhealthy one leaves the rotation", async (t) => {
  if (!(await needDocker(t))) return;
  assert.ok(daemon, "the first test started the daemon");
  const host = `pair${RUN}.px.test`;
  const health = {
    Healthcheck: { Test: ["CMD-SHELL", '[ "$(cat /tmp/w/state)" = ok ]'], Interval: 200_000_000, Timeout: 1_000_000_000, Retries: 1, StartPeriod: 0 },
  };
  const a = await replica("a", `pair${RUN}`, "A", health);
  const b = await replica("b", `pair${RUN}`, "B", health);
  await engine.startContainer(a);
  await engine.startContainer(b);
  await waitFor("both replicas serve", async () => {
    const seen = new Set<string | undefined>();
    for (let i = 0; i < 6; i++) seen.add(await body(host));
    return seen.has("A") && seen.has("B");
  }, 30_000, 50);
  await run("docker", ["exec", b, "/bin/sh", "-c", "echo bad > /tmp/w/state"]);
  await waitFor("B out of rotation", async () => {
    for (let i = 0; i < 6; i++) if ((await body(host)) !== "A") return false;
    return true;
  }, 30_000, 50);
});
