// DockerEventStream against a fake engine on a Unix socket: chunked events, reconnect with
// capped backoff, version renegotiation after a reconnect.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type ServerResponse } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DockerTransport } from "../../src/docker/client.js";
import { DockerEventStream } from "../../src/docker/events.js";
import type { DockerEvent } from "../../src/docker/types.js";
import { waitFor } from "../helpers/docker.js";

const ev = (action: string, id: string) => JSON.stringify({ Type: "container", Action: action, Actor: { ID: id, Attributes: {} }, time: 1, timeNano: 1 }) + "\n";

test("events split across chunks, reconnect with capped backoff, renegotiation", async () => {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-events-"));
  const path = join(dir, "docker.sock");
  let versions = 0;
  let eventsRequests = 0;
  let mode: "serve" | "fail" = "serve";
  const open = new Set<ServerResponse>();
  const paths: string[] = [];
  const server = createServer((req, res) => {
    paths.push(req.url ?? "");
    if (req.url === "/version") {
      versions++;
      res.end(JSON.stringify({ ApiVersion: "1.41", MinAPIVersion: "1.12" }));
      return;
    }
    eventsRequests++;
    if (mode === "fail") {
      res.statusCode = 500;
      res.end('{"message":"boom"}');
      return;
    }
    res.writeHead(200, { "Content-Type": "application/json" });
    res.flushHeaders();
    open.add(res);
    const bytes = Buffer.from(ev("start", "a") + ev("die", "b-é😀") + "x".repeat(3000) + "\n" + ev("stop", "c"));
    const cut1 = 17; // half an event
    const cut2 = bytes.indexOf(Buffer.from("😀")) + 1; // inside a UTF-8 character
    res.write(bytes.subarray(0, cut1));
    setTimeout(() => res.write(bytes.subarray(cut1, cut2)), 5);
    setTimeout(() => res.write(bytes.subarray(cut2)), 10);
  });
  await new Promise<void>((r) => server.listen(path, r));
  const got: DockerEvent[] = [];
  const downs: number[] = [];
  const dropped: string[] = [];
  let ups = 0;
  const stream = new DockerEventStream(
    new DockerTransport(path),
    { onEvent: (e) => got.push(e), onUp: () => ups++, onDown: (_e, ms) => downs.push(ms), onDropped: (r) => dropped.push(r) },
    { minBackoffMs: 10, maxBackoffMs: 40, maxLine: 1024 },
  );
  try {
    stream.start();
    await waitFor("three events", () => got.length === 3);
    assert.deepEqual(got.map((e) => `${e.Action}:${e.Actor.ID}`), ["start:a", "die:b-é😀", "stop:c"]);
    assert.deepEqual(dropped, ["over-long line"]);
    assert.equal(ups, 1);
    assert.match(paths.find((p) => p.startsWith("/v1.41/events"))!, /filters=.*container/);
    // the engine goes away mid-stream and then refuses for a while: backoff doubles up to the cap
    mode = "fail";
    for (const r of open) r.destroy();
    open.clear();
    await waitFor("five failures", () => downs.length >= 5);
    assert.deepEqual(downs.slice(0, 5), [10, 20, 40, 40, 40]);
    assert.ok(versions >= 5, `version renegotiated on every reconnect (${versions})`);
    mode = "serve";
    await waitFor("up again", () => ups === 2);
    await waitFor("events again", () => got.length === 6);
    for (const r of open) r.destroy();
    await waitFor("one more down", () => downs.length >= 6 && ups === 3);
    assert.equal(downs.at(-1), 10, "backoff resets after a successful subscription");
  } finally {
    stream.stop();
    for (const r of open) r.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true });
  }
  assert.ok(eventsRequests >= 3);
});
