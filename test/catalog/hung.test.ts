// A Docker socket that accepts connections and never answers (a hung engine).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Socket } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Catalog } from "../../src/catalog/index.js";
import { DockerClient } from "../../src/docker/index.js";
import { startDaemon } from "../helpers/daemon.js";
import { dynamicConfig } from "./harness.js";

async function hungEngine() {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-hung-"));
  const path = join(dir, "docker.sock");
  const conns = new Set<Socket>();
  const server = createServer((c) => conns.add(c.on("error", () => {})));
  await new Promise<void>((r) => server.listen(path, r));
  return {
    path,
    async close() {
      for (const c of conns) c.destroy();
      await new Promise((r) => server.close(r));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

test("a hung engine: start() gives up waiting and serves an empty catalog; stop() is prompt", async () => {
  const engine = await hungEngine();
  const dir = await mkdtemp(join(tmpdir(), "stevedore-cat-"));
  const docker = new DockerClient(engine.path);
  const catalog = new Catalog({ docker, stateDir: dir, dynamic: dynamicConfig(), startTimeoutMs: 300 });
  try {
    const t0 = performance.now();
    await catalog.start();
    assert.ok(performance.now() - t0 < 5000, "gave up after startTimeoutMs (300 ms), with room for a loaded machine");
    assert.equal(catalog.current().seq, 1);
    assert.deepEqual(catalog.current().containers, []);
    assert.equal(catalog.dockerState(), "connecting");
  } finally {
    await catalog.stop();
    docker.close();
    await engine.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("the daemon stops with 0 promptly while Docker hangs at start-up", async () => {
  const engine = await hungEngine();
  const d = await startDaemon({
    disable: ["query", "admin", "command", "core", "manager", "http", "https"],
    env: { DOCKER_HOST: `unix://${engine.path}` },
    readyLog: /msg="starting"/,
  });
  try {
    const t0 = performance.now();
    assert.equal(await d.stop("SIGTERM"), 0);
    assert.ok(performance.now() - t0 < 5000, `${performance.now() - t0} ms (shutdown_timeout_secs is 30)`);
  } finally {
    await d.cleanup();
    await engine.close();
  }
});
