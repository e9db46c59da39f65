// Membership through Debian's real docker-compose (v1) with a -p stevedore-<name> project.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureTestImage, needDocker, removeLabeled, run, TEST_IMAGE } from "../helpers/docker.js";
import { engine, RUN, startCatalog, waitFor } from "./harness.js";

const D = `cat-comp${RUN}`;

after(async () => {
  await removeLabeled(`stevedore.test.group=${D}`);
  engine.close();
});

const composeFile = (healthcheck: boolean) => `
services:
  web:
    image: ${TEST_IMAGE}
    pull_policy: never
    labels:
      stevedore.test: catalog
      stevedore.test.group: ${D}
      stevedore.ingress.enabled: "true"
      stevedore.ingress.port: "8080"
${healthcheck ? `    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/health"]
      interval: 1s
      timeout: 2s
      retries: 3
` : ""}  worker:
    image: ${TEST_IMAGE}
    pull_policy: never
    command: ["sleep", "3600"]
    labels:
      stevedore.test: catalog
      stevedore.test.group: ${D}
`;

test("docker-compose -p stevedore-<name>: members by compose labels; other projects ignored", async (t) => {
  if (!(await needDocker(t))) return;
  await ensureTestImage();
  const dir = await mkdtemp(join(tmpdir(), "stevedore-compose-"));
  const ours = ["-p", `stevedore-${D}`, "-f", join(dir, "ours.yml")];
  const theirs = ["-p", `${D}-foreign`, "-f", join(dir, "theirs.yml")];
  await writeFile(join(dir, "ours.yml"), composeFile(true));
  await writeFile(join(dir, "theirs.yml"), composeFile(false));
  const rec = await startCatalog();
  try {
    await run("docker-compose", [...ours, "up", "-d", "--no-build"], { cwd: dir });
    await run("docker-compose", [...theirs, "up", "-d", "--no-build"], { cwd: dir });
    const cs = await waitFor("the compose services healthy", () => {
      const c = rec.of(D);
      return c.length === 2 && c[0]!.health === "healthy" && c.every((x) => x.running) && c;
    }, 40_000);
    assert.deepEqual(cs.map((c) => `${c.deployment}/${c.service}/${c.name}`), [
      `${D}/web/stevedore-${D}_web_1`, `${D}/worker/stevedore-${D}_worker_1`,
    ]);
    assert.equal(cs[0]!.hasHealthcheck, true);
    assert.deepEqual(cs[0]!.ingress, { enabled: true, port: 8080 });
    assert.equal(cs[1]!.health, "none");
    assert.ok(cs[0]!.networks[0]?.name.startsWith(`stevedore-${D}`));
    assert.ok(rec.catalog.current().deployments.includes(D));
    assert.ok(!rec.catalog.current().containers.some((c) => c.name.startsWith(`${D}-foreign`)), "other projects ignored");
    assert.ok(!rec.catalog.current().deployments.some((d) => d.includes("foreign")));
    await run("docker-compose", [...ours, "down", "-t", "0"], { cwd: dir });
    await waitFor("the deployment gone", () => !rec.catalog.current().deployments.includes(D), 20_000);
  } finally {
    await rec.close();
    await run("docker-compose", [...ours, "down", "-t", "0"], { cwd: dir }).catch(() => {});
    await run("docker-compose", [...theirs, "down", "-t", "0"], { cwd: dir }).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
});
