// The real catalog against the real engine, in process (clean revision counting).
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DockerEventStream, type DockerEvent } from "../../src/docker/index.js";
import { ensureTestImage, needDocker, removeLabeled, run } from "../helpers/docker.js";
import { setLogLevel, setLogSink } from "../../src/log.js";
import { createMember, engine, Relay, RUN, startCatalog, view, waitFor, type Recorder } from "./harness.js";
import { publicProjection } from "../../src/catalog/container.js";

const GROUPS = [`cat-members-${RUN}`, `cat-ops-${RUN}`, `cat-relay-${RUN}`, `cat-burst-${RUN}`, `cat-other-${RUN}`, `cat-waiters-${RUN}`, `cat-resync-${RUN}`, `cat-startup-${RUN}`];
const cleanup = () => Promise.all(GROUPS.map((g) => removeLabeled(`stevedore.test.group=${g}`)));
before(cleanup);
after(async () => {
  await cleanup();
  engine.close();
});

/** The bound on the latency of one change (docker event, debounce, inspect, revision). */
const LATENCY_MS = 3000;

/** Every revision after `from` differs from the one before in some public view. */
function assertNoSpurious(rec: Recorder, from: number) {
  const p = (r: Recorder["revisions"][number]) => publicProjection(r.containers, r.deployments);
  for (let i = Math.max(from, 2); i < rec.revisions.length; i++)
    assert.notEqual(p(rec.revisions[i]!), p(rec.revisions[i - 1]!), `revision ${rec.revisions[i]!.seq} changed nothing public`);
}

/** Run `op`; the public view of deployment `d` must change in exactly one revision, promptly: well
 *  under a second on a quiet machine; the bound leaves room for a loaded CI machine and is still far
 *  below the periodic resync (300 s), the only other way the change could show up. */
async function exactlyOne(rec: Recorder, d: string, what: string, op: () => Promise<unknown>, done: (cs: ReturnType<Recorder["of"]>) => boolean) {
  const from = rec.revisions.length;
  await op();
  const t0 = performance.now();
  await waitFor(`${what} in the catalog`, () => done(rec.of(d)), LATENCY_MS, 2);
  const latency = performance.now() - t0;
  // a short quiet period: a duplicate revision for the same change would show up here
  await new Promise((r) => setTimeout(r, 200));
  const changes = rec.changesOf(d, from);
  assert.equal(changes.length, 1, `${what}: ${changes.length} revisions changed ${d}`);
  assert.ok(latency <= LATENCY_MS, `${what}: ${latency} ms`);
  for (let i = from; i < rec.revisions.length; i++) assert.ok(rec.revisions[i]!.ts > rec.revisions[i - 1]!.ts);
}

test("membership: stevedore labels; other containers ignored; ingress, order, networks", async (t) => {
  if (!(await needDocker(t))) return;
  await ensureTestImage();
  const d = `cat-members-${RUN}`;
  await createMember(`cat-members-${RUN}-web-2`, d, "web", {}, { "stevedore.ingress.enabled": "true", "stevedore.ingress.port": "8080", "stevedore.ingress.subdomain": "www" });
  await createMember(`cat-members-${RUN}-web-1`, d, "web");
  await createMember(`cat-members-${RUN}-db-1`, d, "db", {}, { "stevedore.ingress.port": "none" });
  const running = await createMember(`cat-members-${RUN}-api-1`, d, "api");
  await engine.startContainer(running);
  // not members: no labels, an invalid deployment name, a foreign compose project
  await engine.createContainer(`cat-other-${RUN}-1`, { Image: "stevedore-test/busybox:latest", Labels: { "stevedore.test": "catalog", "stevedore.test.group": `cat-other-${RUN}` } });
  await engine.createContainer(`cat-other-${RUN}-2`, { Image: "stevedore-test/busybox:latest", Labels: { "stevedore.test.group": `cat-other-${RUN}`, "stevedore.deployment": "Cat-Bad", "stevedore.service": "x" } });
  await engine.createContainer(`cat-other-${RUN}-3`, { Image: "stevedore-test/busybox:latest", Labels: { "stevedore.test.group": `cat-other-${RUN}`, "com.docker.compose.project": `cat-other-${RUN}`, "com.docker.compose.service": "x" } });
  const lines: string[] = [];
  const restore = setLogSink((l) => lines.push(l));
  const rec = await startCatalog();
  try {
    // the invalid port is logged once per container, not on every re-inspect
    await engine.startContainer((await engine.inspectContainer(`cat-members-${RUN}-db-1`)).Id);
    await waitFor("db running", () => rec.of(d).find((c) => c.service === "db")?.running, 15_000);
    await engine.stopContainer(`cat-members-${RUN}-db-1`, 0);
    await waitFor("db exited", () => rec.of(d).find((c) => c.service === "db")?.state === "exited", 15_000);
    restore();
    assert.equal(lines.filter((l) => /invalid ingress labels/.test(l) && l.includes(`${d}-db-1`)).length, 1);
    assert.ok(lines.some((l) => /msg="catalog ready" containers=\d+/.test(l)));
    const mine = rec.of(d);
    assert.deepEqual(mine.map((c) => `${c.service}/${c.name}`), [`api/${d}-api-1`, `db/${d}-db-1`, `web/${d}-web-1`, `web/${d}-web-2`]);
    assert.ok(rec.catalog.current().deployments.includes(d));
    assert.ok(!rec.catalog.current().containers.some((c) => c.name.startsWith(`cat-other-${RUN}`)));
    const [api, db, web1, web2] = mine;
    assert.equal(db!.exitCode, 137);
    assert.equal(api!.running, true);
    assert.equal(api!.state, "running");
    assert.match(api!.startedAt ?? "", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(api!.networks[0]?.name, "bridge");
    assert.match(api!.networks[0]?.ip ?? "", /^\d+\.\d+\.\d+\.\d+$/);
    assert.equal(web1!.state, "created");
    assert.equal(web1!.startedAt, null);
    assert.equal(web1!.ingress, undefined);
    assert.deepEqual(web2!.ingress, { enabled: true, port: 8080, subdomain: "www" });
    assert.deepEqual(db!.ingress, { enabled: false }); // invalid port: no port
    assert.equal(web1!.image, "stevedore-test/busybox:latest");
    assert.equal(web1!.restartPolicy, "no");
    assert.equal(rec.catalog.dockerState(), "ok");
    // registered deployments are listed without containers
    let registered = ["cat-registered"];
    rec.catalog.addRegisteredSource("test", () => registered);
    assert.ok(rec.catalog.current().deployments.includes("cat-registered"));
    registered = [];
    rec.catalog.refreshRegistered();
    assert.ok(!rec.catalog.current().deployments.includes("cat-registered"));
  } finally {
    restore();
    await rec.close();
    await removeLabeled(`stevedore.test.group=${d}`);
  }
});

test("each change makes exactly one revision promptly; an invisible change makes none", async (t) => {
  if (!(await needDocker(t))) return;
  await ensureTestImage();
  const d = `cat-ops-${RUN}`;
  const rec = await startCatalog();
  const seen: DockerEvent[] = [];
  const events = new DockerEventStream(engine.transport, { onEvent: (e) => seen.push(e), onUp: () => {}, onDown: () => {} });
  events.start();
  await waitFor("test event stream", () => events.up);
  try {
    const one = (what: string, op: () => Promise<unknown>, done: (cs: ReturnType<Recorder["of"]>) => boolean) => exactlyOne(rec, d, what, op, done);
    let id = "";
    await one("create", async () => (id = await createMember(`cat-ops-${RUN}-web-1`, d, "web")), (cs) => cs[0]?.state === "created");
    await one("start", () => engine.startContainer(id), (cs) => cs[0]?.state === "running");
    await one("pause", () => engine.pauseContainer(id), (cs) => cs[0]?.state === "paused");
    await one("unpause", () => engine.unpauseContainer(id), (cs) => cs[0]?.state === "running");
    await one("stop", () => engine.stopContainer(id, 0), (cs) => cs[0]?.state === "exited");
    await one("start again", () => engine.startContainer(id), (cs) => cs[0]?.state === "running");
    await one("kill", () => engine.killContainer(id), (cs) => cs[0]?.state === "exited" && cs[0].exitCode === 137);

    // A change Docker reports but no public view shows: no revision.
    const from = rec.revisions.length;
    await run("docker", ["update", "--cpu-shares", "512", id]);
    await waitFor("the update event", () => seen.some((e) => e.Action === "update" && e.Actor.ID === id), 15_000);
    await new Promise((r) => setTimeout(r, 300)); // debounce + inspect time: a revision would have shown up
    // (other tests may change the engine meanwhile: only revisions without a public change count)
    assert.equal(rec.changesOf(d, from).length, 0, "an update that changes no public view changed the deployment");
    assertNoSpurious(rec, from);

    await one("remove", () => engine.removeContainer(id), (cs) => cs.length === 0);

    // health: starting → unhealthy (the check file is missing) → healthy (one revision for that transition)
    const hc = { Test: ["CMD", "cat", "/tmp/ok"], Interval: 100_000_000, Timeout: 1_000_000_000, Retries: 1 };
    let hid = "";
    await one("create with healthcheck", async () => (hid = await createMember(`cat-ops-${RUN}-health-1`, d, "health", { Healthcheck: hc })), (cs) => cs.length === 1);
    await engine.startContainer(hid);
    await waitFor("unhealthy", () => rec.of(d)[0]?.health === "unhealthy", 20_000);
    assert.equal(rec.of(d)[0]?.hasHealthcheck, true);
    await one("health transition", () => run("docker", ["exec", hid, "touch", "/tmp/ok"]), (cs) => cs[0]?.health === "healthy");
    assertNoSpurious(rec, 1);
  } finally {
    events.stop();
    await rec.close();
  }
});

test("relay cut mid-stream, changes while cut, restore: equal to a fresh listing, with new revisions", async (t) => {
  if (!(await needDocker(t))) return;
  await ensureTestImage();
  const d = `cat-relay-${RUN}`;
  const dir = await mkdtemp(join(tmpdir(), "stevedore-relay-"));
  const relay = new Relay(dir);
  await relay.open();
  const rec = await startCatalog(relay.path);
  try {
    const a = await createMember(`cat-relay-${RUN}-a-1`, d, "a");
    const b = await createMember(`cat-relay-${RUN}-b-1`, d, "b");
    await engine.startContainer(a);
    await waitFor("a running, b created", () => rec.of(d).map((c) => c.state).join() === "running,created", 15_000);
    assert.ok(relay.connections > 0, "the event stream goes through the relay");
    const before = rec.catalog.current();

    await relay.cut();
    await waitFor("docker unavailable", () => rec.catalog.dockerState() === "unavailable", 10_000);
    const lastConfirmed = rec.catalog.lastConfirmedAt();
    await engine.killContainer(a);
    await engine.removeContainer(b, { force: true });
    const c = await createMember(`cat-relay-${RUN}-c-1`, d, "c");
    await engine.startContainer(c);
    assert.equal(rec.catalog.current(), before, "no revision while Docker is unreachable");
    assert.ok(rec.catalog.lastConfirmedAt() === lastConfirmed && performance.now() >= lastConfirmed);

    await relay.open();
    await waitFor("docker back", () => rec.catalog.dockerState() === "ok", 20_000);
    const fresh = await startCatalog();
    try {
      await waitFor("the catalog equals a fresh listing", () => view(rec.of(d)) === view(fresh.of(d)), 15_000);
    } finally {
      await fresh.close();
    }
    assert.deepEqual(rec.of(d).map((c) => `${c.service}:${c.state}`), ["a:exited", "c:running"]);
    const now = rec.catalog.current();
    assert.ok(now.seq > before.seq && now.ts > before.ts, "new revisions for what changed");

    // The return of Docker alone (nothing changed meanwhile) is a change: pollers refetch.
    const quiet = rec.catalog.current();
    const mineBefore = view(rec.of(d));
    await relay.cut();
    await waitFor("docker unavailable again", () => rec.catalog.dockerState() === "unavailable", 10_000);
    await relay.open();
    await waitFor("a revision after Docker's return", () => rec.catalog.dockerState() === "ok" && rec.catalog.current().seq > quiet.seq, 20_000);
    assert.equal(view(rec.of(d)), mineBefore);
  } finally {
    await rec.close();
    await relay.cut();
    await rm(dir, { recursive: true, force: true });
  }
});

test("20 changes inside one second get strictly increasing timestamps", async (t) => {
  if (!(await needDocker(t))) return;
  await ensureTestImage();
  const d = `cat-burst-${RUN}`;
  const rec = await startCatalog(undefined, { catalog_debounce_ms: 0 });
  try {
    const from = rec.revisions.length;
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) {
      await createMember(`cat-burst-${RUN}-s-${i}`, d, "s");
      await waitFor("the container in the catalog", () => rec.of(d).length === i + 1, 10_000, 1);
    }
    const elapsed = performance.now() - t0;
    const revs = rec.revisions.slice(from - 1);
    assert.ok(revs.length >= 21, `${revs.length - 1} revisions`);
    for (let i = 1; i < revs.length; i++) assert.ok(revs[i]!.ts > revs[i - 1]!.ts, `ts ${revs[i]!.ts} after ${revs[i - 1]!.ts}`);
    t.diagnostic(`20 changes in ${elapsed.toFixed(0)} ms; timestamps ${revs[1]!.ts}..${revs.at(-1)!.ts}`);
  } finally {
    await rec.close();
  }
});

test("waiters on the real catalog: 1,000 answered by a revision, 1,000 abandoned; none left", async (t) => {
  if (!(await needDocker(t))) return;
  await ensureTestImage();
  const rec = await startCatalog();
  try {
    const since = rec.catalog.current().ts;
    let answered = 0;
    for (let i = 0; i < 1000; i++) {
      const o = rec.catalog.wait(since, 30_000, (r) => r.changed && r.revision.ts > since && answered++);
      assert.equal(o.kind, "waiting");
    }
    for (let i = 0; i < 1000; i++) {
      const o = rec.catalog.wait(undefined, 30_000, () => assert.fail("abandoned waiter answered"));
      if (o.kind === "waiting") o.cancel();
    }
    assert.equal(rec.catalog.waiterCount(), 1000);
    await createMember(`cat-waiters-${RUN}-s-1`, `cat-waiters-${RUN}`, "s");
    await waitFor("all answered", () => answered === 1000, 15_000);
    assert.equal(rec.catalog.waiterCount(), 0);
    assert.equal(rec.catalog.wait(since, 1000, () => {}).kind, "now");
  } finally {
    await rec.close();
  }
});

test("periodic resync repairs a change whose event was lost", async (t) => {
  if (!(await needDocker(t))) return;
  await ensureTestImage();
  const d = `cat-resync-${RUN}`;
  const dir = await mkdtemp(join(tmpdir(), "stevedore-relay-"));
  const relay = new Relay(dir);
  await relay.open();
  const rec = await startCatalog(relay.path, { catalog_resync_secs: 1 });
  try {
    const id = await createMember(`cat-resync-${RUN}-s-1`, d, "s");
    await waitFor("created", () => rec.of(d).length === 1, 15_000);
    const lines: string[] = [];
    const restore = setLogSink((l) => lines.push(l));
    setLogLevel("debug");
    relay.muteEvents = true; // Docker "drops" the next events
    try {
      await engine.startContainer(id);
      // Without events only a relist can show the start (the periodic one, every second here).
      await waitFor("the resync shows it running", () => rec.of(d)[0]?.running, 15_000);
      // A resync may already have been under way when the log sink was set: its line would be
      // missing although it did the repair. The next one comes within a second anyway.
      await waitFor("a periodic resync logged", () => lines.some((l) => /reason=resync/.test(l)), 15_000);
    } finally {
      setLogLevel("info");
      restore();
    }
    assert.equal(rec.catalog.dockerState(), "ok");
  } finally {
    await rec.close();
    await relay.cut();
    await rm(dir, { recursive: true, force: true });
  }
});

test("start-up: events during the first listing are not lost (subscribe first, then list)", async (t) => {
  if (!(await needDocker(t))) return;
  await ensureTestImage();
  const d = `cat-startup-${RUN}`;
  const dir = await mkdtemp(join(tmpdir(), "stevedore-relay-"));
  const relay = new Relay(dir);
  await relay.open();
  relay.holdListings = true;
  const id = await createMember(`cat-startup-${RUN}-s-1`, d, "s");
  const starting = startCatalog(relay.path);
  let rec: Recorder | undefined;
  try {
    await waitFor("the first listing requested", () => relay.listings > 0, 15_000);
    // Docker has answered the listing (held in the relay) before these changes happen.
    await engine.startContainer(id);
    const late = await createMember(`cat-startup-${RUN}-late-1`, d, "late");
    await waitFor("both events through the relay", () => relay.eventText.includes(id) && relay.eventText.includes(late), 15_000, 2);
    assert.ok(relay.eventText.includes(`"${id}"`), "the start event reached the catalog before the listing");
    relay.release();
    rec = await starting;
    const r = rec;
    await waitFor("both changes in the catalog", () => r.of(d).map((c) => `${c.service}:${c.state}`).join() === "late:created,s:running", 10_000);
    assert.ok(late);
  } finally {
    relay.release();
    await (rec ?? (await starting)).close();
    await relay.cut();
    await rm(dir, { recursive: true, force: true });
  }
});
