// Docker unreachable → 503: the daemon talks to Docker through a relay socket the test cuts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, connect, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { needDocker, ensureTestImage, removeLabeled, DOCKER_SOCKET } from "../helpers/docker.js";
import { startDaemon } from "../helpers/daemon.js";
import { CoreClient } from "./client.js";
import { RUN, RUN_LABEL, labels } from "./run.js";

const LABEL = RUN_LABEL;

function relay(path: string): Promise<{ cut(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(DOCKER_SOCKET);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
    }
    client.pipe(upstream).pipe(client);
  });
  return new Promise((resolve) => server.listen(path, () => resolve({
    cut: () => new Promise<void>((r) => {
      server.close(() => r());
      for (const s of sockets) s.destroy();
    }),
  })));
}

test("Docker unreachable → 503 with the cause; back to normal when it returns", async (t) => {
  if (!(await needDocker(t))) return;
  const image = await ensureTestImage();
  const dir = await mkdtemp(join(tmpdir(), `coretest-relay--${RUN}`));
  const relayPath = join(dir, "docker-relay.sock");
  let r = await relay(relayPath);
  const d = await startDaemon({ dir, disable: ["query", "admin", "command", "manager", "http", "https"], config: `docker_socket = "${relayPath}"` });
  const api = await CoreClient.forStateDir(d.corePort, d.stateDir);
  const id = `coretest-relay-${RUN}`;
  try {
    assert.equal((await api.create({ id, image, bind_dir: "/data", labels })).status, 204);
    await r.cut();
    const calls: [string, string, unknown?][] = [
      ["GET", `/service/${id}`], ["GET", `/service/${id}/stats`], ["POST", `/service/${id}/ctl`, { op: "start" }], ["DELETE", `/service/${id}`],
      ["POST", "/service", { type: "raw", params: { id: `coretest-relay2-${RUN}`, image, bind_dir: "/data" } }],
    ];
    for (const [method, path, body] of calls) {
      const res = await api.call(method, path, body === undefined ? {} : { body });
      assert.equal(res.status, 503, `${method} ${path}: ${res.text}`);
      assert.match(res.json.error, /^docker unavailable: /);
    }
    r = await relay(relayPath);
    assert.equal((await api.call("GET", `/service/${id}`)).status, 200);
    assert.equal((await api.call("DELETE", `/service/${id}`)).status, 204);
  } finally {
    await r.cut().catch(() => {});
    await d.cleanup();
    await rm(dir, { recursive: true, force: true });
    await removeLabeled(LABEL);
  }
});
