// DockerTransport's version negotiation against a fake engine on a Unix socket: a bad /version
// answer is a DockerError that says so, whatever its body; an engine too old is refused.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DockerTransport } from "../../src/docker/client.js";
import { DockerError } from "../../src/docker/errors.js";

test("version negotiation: non-JSON, error and old-engine answers are clear DockerErrors", async () => {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-negotiate-"));
  const path = join(dir, "docker.sock");
  let answer: { status: number; body: string } = { status: 200, body: "" };
  const server = createServer((_req, res) => {
    res.statusCode = answer.status;
    res.end(answer.body);
  });
  await new Promise<void>((r) => server.listen(path, r));
  try {
    const cases: [number, string, RegExp][] = [
      [500, "<html>proxy error</html>", /unexpected \/version answer/],
      [200, "not json", /unexpected \/version answer/],
      [404, '{"message":"page not found"}', /unexpected \/version answer/],
      [200, JSON.stringify({ ApiVersion: "1.12" }), /older than the oldest we support/],
    ];
    for (const [status, body, message] of cases) {
      answer = { status, body };
      const t = new DockerTransport(path);
      try {
        await assert.rejects(t.version(), (err: unknown) => err instanceof DockerError && message.test(err.message), `${status} ${body}`);
      } finally {
        t.close();
      }
    }
    answer = { status: 200, body: JSON.stringify({ ApiVersion: "1.43", MinAPIVersion: "1.12" }) };
    const t = new DockerTransport(path);
    assert.match(await t.version(), /^1\.\d+$/);
    t.close();
  } finally {
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
