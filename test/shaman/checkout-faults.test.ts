// Shaman checkout creation under disk errors, over HTTP: a disk that runs out of room halfway
// through the symlink tree (a tmpfs with few inodes) and a file where a directory must go. Each
// answers an `ERROR` line, leaves nothing under checkouts/ or the temp dirs, keeps the blobs, and
// a later create succeeds.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import { createApiServer, HttpError } from "../../src/http/index.js";
import { setLogSink } from "../../src/log.js";
import { shamanRoutes } from "../../src/shaman/index.js";
import { ShamanStore } from "../../src/store/index.js";

const run = promisify(execFile);
const TOKEN = "Bearer test-user";
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const BLOBS = [Buffer.from("the scene"), Buffer.from("a texture")];

interface Served {
  store: ShamanStore;
  base: string;
  logs: string[];
}

/** A store at `root` (blobs uploaded) behind the Shaman routes on a loopback port. */
async function serve(t: { after(fn: () => Promise<void> | void): void }, root: string): Promise<Served> {
  const store = await ShamanStore.open(root);
  for (const b of BLOBS) await store.upload({ sha: sha(b), size: b.length }, () => Readable.from([b]), { encoding: "identity", canDefer: false });
  const logs: string[] = [];
  const restoreLog = setLogSink((l) => logs.push(l));
  const server = createApiServer({
    name: "shaman-faults",
    listen: "127.0.0.1:0",
    routes: shamanRoutes({ store, maxFileSize: () => 1024 * 1024, gc: (dryRun) => store.gc({ maxAgeMs: 86400_000, dryRun }), lastGc: () => undefined }),
    before: (req) => {
      if (req.header("authorization") !== TOKEN) throw new HttpError(401, "user token required");
      req.user = { kind: "user", subject: "tester" };
    },
    limits: () => ({ maxBodyBytes: 16 * 1024 * 1024, maxConnections: 100, headMs: 10_000, idleMs: 30_000, maxHeaderBytes: 16 * 1024 }),
  });
  await server.start();
  t.after(async () => {
    await server.stop(false, performance.now());
    restoreLog();
  });
  return { store, base: `http://${server.address}`, logs };
}

/** A CDF naming `n` files, alternately the two blobs, spread over a few directories. */
function cdf(n: number): string {
  return Array.from({ length: n }, (_, i) => {
    const b = BLOBS[i % 2]!;
    return `${sha(b)} ${b.length} dir${i % 7}/sub${i % 3}/file-${i}.dat`;
  }).join("\n");
}

async function create(s: Served, id: string, text: string): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(`${s.base}/checkout/create/${id}`, { method: "POST", headers: { Authorization: TOKEN, "Content-Type": "text/plain" }, body: text });
  return { status: res.status, type: res.headers.get("content-type") ?? "", body: await res.text() };
}

/** every path under dir (relative), directories with a trailing / */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      out.push(e.isDirectory() ? r + "/" : r);
      if (e.isDirectory()) await walk(join(d, e.name), r);
    }
  };
  await walk(dir, "");
  return out.sort();
}

/** Nothing of a failed create anywhere; the blobs whole and served; the store opens again as it was. */
async function assertUntouched(s: Served, checkoutsBefore: string[]): Promise<void> {
  assert.deepEqual(await tree(s.store.checkoutsDir), checkoutsBefore, "checkouts/ as before");
  assert.deepEqual(await readdir(s.store.buildingDir), [], "no half-built checkout");
  assert.deepEqual(await readdir(s.store.uploadingDir), [], "no temp upload");
  const sums = await readdir(join(s.store.root, "checkout-sums")).catch(() => []);
  assert.deepEqual(sums.filter((n) => n.endsWith(".tmp")), [], "no temp sum file");
  for (const b of BLOBS) {
    const res = await fetch(`${s.base}/files/${sha(b)}/${b.length}`, { headers: { Authorization: TOKEN } });
    assert.equal(res.status, 200);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), b, "blob content intact");
  }
  const reopened = await ShamanStore.open(s.store.root);
  for (const b of BLOBS) assert.equal(await reopened.state({ sha: sha(b), size: b.length }), "stored");
}

test("a disk that fills up halfway through the symlink tree: 507 with an ERROR line, nothing left, blobs intact, a smaller create then succeeds", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-shaman-full-"));
  const root = join(dir, "shaman");
  await mkdir(root);
  // a tmpfs with 40 inodes: the store and its blobs take about a dozen, so a tree of 120 links
  // runs out of room (ENOSPC) in the middle of the build; root may mount (tests run as root)
  await run("mount", ["-t", "tmpfs", "-o", "size=1m,nr_inodes=40,mode=0755", "tmpfs", root]).catch((err: Error) => {
    throw new Error(`this test mounts a small tmpfs and needs root with CAP_SYS_ADMIN: ${err.message}`);
  });
  t.after(async () => {
    await run("umount", [root]).catch(() => run("umount", ["-l", root]));
    await rm(dir, { recursive: true, force: true });
  });
  const s = await serve(t, root);
  const r = await create(s, "shot_full", cdf(120));
  assert.equal(r.status, 507, r.body);
  assert.match(r.type, /^text\/plain/);
  assert.equal(r.body, "ERROR cannot create checkout shot_full: no space left on the device\n");
  assert.ok(!r.body.includes(root), "no server path in the answer");
  assert.ok(s.logs.some((l) => l.includes("checkout creation failed") && l.includes("ENOSPC")), "the full error is logged");
  await assertUntouched(s, []);
  // the room the failed build took is free again
  assert.deepEqual(await create(s, "shot_full", cdf(6)), { status: 200, type: "text/plain; charset=utf-8", body: "ll/shot_full" });
  assert.equal((await tree(s.store.checkoutPath("shot_full"))).filter((p) => p.endsWith(".dat")).length, 6);
});

test("a file where a checkout's directory must go: 500 with an ERROR line (not 409), nothing left; once it is gone the create succeeds", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-shaman-blocked-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const s = await serve(t, join(dir, "shaman"));
  assert.equal((await create(s, "shot_ok", cdf(3))).status, 200);
  const before = await tree(s.store.checkoutsDir);
  // checkouts/<last two characters of the ID>/ is where shot_42 goes: make it a file
  const obstacle = join(s.store.checkoutsDir, "42");
  await writeFile(obstacle, "in the way");
  const r = await create(s, "shot_42", cdf(30));
  assert.equal(r.status, 500, r.body);
  assert.match(r.type, /^text\/plain/);
  assert.equal(r.body, "ERROR cannot create checkout shot_42: disk error (ENOTDIR)\n");
  await assertUntouched(s, [...before, "42"].sort());
  await rm(obstacle);
  assert.equal((await create(s, "shot_42", cdf(30))).body, "42/shot_42");
  assert.equal((await tree(s.store.checkoutPath("shot_42"))).filter((p) => p.endsWith(".dat")).length, 30);
});

test("the kept definition sum cannot be written (a directory in its place): the checkout is made all the same, no temp file stays", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-shaman-sum-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const s = await serve(t, join(dir, "shaman"));
  await mkdir(join(s.store.root, "checkout-sums", "shot_sum.sha256"), { recursive: true });
  assert.equal((await create(s, "shot_sum", cdf(4))).body, "um/shot_sum");
  assert.deepEqual(await readdir(join(s.store.root, "checkout-sums")), ["shot_sum.sha256"]);
  // listed instead: the same answer
  const res = await fetch(`${s.base}/checkout/files/shot_sum`, { headers: { Authorization: TOKEN } });
  assert.equal(res.status, 200);
  assert.equal((await res.text()).split("\n").filter(Boolean).length, 4);
});
