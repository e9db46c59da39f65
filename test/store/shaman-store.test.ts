// The Shaman store without HTTP: uploads (hashing, mismatch, concurrency), start-up cleanup,
// requirements, checkouts (atomic, nothing outside), GC (links, age, touched mid-scan, dry run).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { ShamanStore, CheckoutError, parseCdf, type CdfEntry } from "../../src/store/index.js";

const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");
const key = (b: Buffer) => ({ sha: sha(b), size: b.length });
const body = (b: Buffer) => () => Readable.from([b]);
const PLAIN = { encoding: "identity", canDefer: false } as const;

async function tempStore(t: { after(fn: () => Promise<void>): void }): Promise<{ dir: string; store: ShamanStore }> {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-shaman-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return { dir, store: await ShamanStore.open(join(dir, "shaman")) };
}

function cdf(lines: [Buffer, string][]): CdfEntry[] {
  const r = parseCdf(Buffer.from(lines.map(([b, p]) => `${sha(b)} ${b.length} ${p}`).join("\n")));
  assert.ok(r.ok);
  return r.entries;
}

/** every path under dir (relative), directories with a trailing / */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        out.push(r + "/");
        await walk(join(d, e.name), r);
      } else out.push(r);
    }
  };
  await walk(dir, "");
  return out.sort();
}

test("an upload is hashed, stored read-only at stored/<sha[0:2]>/<sha[2:]>/<size>.blob, and then answered exists without reading", async (t) => {
  const { store } = await tempStore(t);
  const data = Buffer.from("hello shaman");
  assert.equal(await store.state(key(data)), "unknown");
  assert.deepEqual(await store.upload(key(data), body(data), PLAIN), { outcome: "stored" });
  const path = store.blobPath(key(data));
  assert.ok(path.endsWith(`/stored/${sha(data).slice(0, 2)}/${sha(data).slice(2)}/${data.length}.blob`));
  assert.deepEqual(await readFile(path), data);
  assert.equal((await stat(path)).mode & 0o777, 0o444);
  assert.equal(await store.state(key(data)), "stored");
  let opened = false;
  assert.deepEqual(await store.upload(key(data), () => ((opened = true), Readable.from([])), PLAIN), { outcome: "exists" });
  assert.equal(opened, false);
  assert.deepEqual(await readdir(store.uploadingDir), []);
});

test("gzip uploads are decoded; size, checksum and gzip errors are mismatches that store nothing", async (t) => {
  const { store } = await tempStore(t);
  const data = Buffer.from("x".repeat(10_000));
  assert.deepEqual(await store.upload(key(data), body(gzipSync(data)), { encoding: "gzip", canDefer: false }), { outcome: "stored" });
  const other = Buffer.from("other content");
  const cases: [ReturnType<typeof key>, Buffer, "identity" | "gzip", RegExp][] = [
    [{ sha: sha(other), size: other.length + 1 }, other, "identity", /received 13 bytes, declared 14/],
    [{ sha: sha(other), size: other.length - 1 }, other, "identity", /more than the declared 12/],
    [{ sha: sha("nope"), size: other.length }, other, "identity", /SHA-256/],
    [key(other), Buffer.from("not gzip at all"), "gzip", /bad gzip/],
  ];
  for (const [k, b, encoding, reason] of cases) {
    const r = await store.upload(k, body(b), { encoding, canDefer: false });
    assert.equal(r.outcome, "mismatch");
    assert.match((r as { reason: string }).reason, reason);
    assert.equal(await store.state(k), "unknown");
  }
  assert.deepEqual(await readdir(store.uploadingDir), []);
});

test("concurrent uploads: a failed one leaves the others running; the first success ends them as exists", async (t) => {
  const { store } = await tempStore(t);
  const data = Buffer.alloc(64 * 1024, 7);
  const k = key(data);
  const streams = [new PassThrough(), new PassThrough(), new PassThrough()];
  const results = streams.map((s) => store.upload(k, () => s, PLAIN));
  // a fourth that may defer is told so at once; the state is "uploading"
  await waitFor(() => store.uploadsInFlight === 3);
  assert.equal(await store.state(k), "uploading");
  assert.deepEqual(await store.upload(k, body(data), { encoding: "identity", canDefer: true }), { outcome: "deferred" });
  // the first to finish sends wrong bytes: a mismatch, nobody else is told anything
  streams[0]!.end(Buffer.alloc(data.length, 8));
  assert.equal((await results[0]!).outcome, "mismatch");
  let othersSettled = false;
  void Promise.race([results[1], results[2]]).then(() => (othersSettled = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(othersSettled, false);
  assert.equal(await store.state(k), "uploading");
  // the second one half-sends, the third completes: stored, and the second is dropped as exists
  streams[1]!.write(data.subarray(0, 100));
  streams[2]!.end(data);
  assert.deepEqual(await results[2], { outcome: "stored" });
  assert.deepEqual(await results[1], { outcome: "exists" });
  assert.equal(store.uploadsInFlight, 0);
  assert.deepEqual(await readFile(store.blobPath(k)), data);
  assert.deepEqual(await readdir(store.uploadingDir), []);
});

test("a broken body (client gone) stores nothing and ends nobody", async (t) => {
  const { store } = await tempStore(t);
  const data = Buffer.from("abc");
  const s = new PassThrough();
  const r = store.upload(key(data), () => s, PLAIN);
  await waitFor(() => s.listenerCount("error") > 0);
  s.write("a");
  s.destroy(new Error("gone"));
  await assert.rejects(r, /gone/);
  assert.equal(await store.state(key(data)), "unknown");
  assert.deepEqual(await readdir(store.uploadingDir), []);
});

test("open removes temp uploads and half-built checkouts a crash left, and keeps stored blobs and checkouts", async (t) => {
  const { dir, store } = await tempStore(t);
  const data = Buffer.from("keep me");
  await store.upload(key(data), body(data), PLAIN);
  assert.equal(await store.createCheckout("keep", cdf([[data, "a/b"]])), "ep/keep");
  await writeFile(join(store.uploadingDir, `${sha(data)}-7-abc.tmp`), "partial");
  await mkdir(join(store.buildingDir, "half-123", "sub"), { recursive: true });
  await symlink(store.blobPath(key(data)), join(store.buildingDir, "half-123", "sub", "f"));
  const reopened = await ShamanStore.open(join(dir, "shaman"));
  assert.deepEqual(await readdir(reopened.uploadingDir), []);
  assert.deepEqual(await readdir(reopened.buildingDir), []);
  assert.equal(await reopened.state(key(data)), "stored");
  assert.deepEqual(await tree(reopened.checkoutsDir), ["ep/", "ep/keep/", "ep/keep/a/", "ep/keep/a/b"]);
});

test("requirements: unknown and uploading once per distinct file; stored ones are touched", async (t) => {
  const { store } = await tempStore(t);
  const [a, b, c] = [Buffer.from("a"), Buffer.from("b"), Buffer.from("c")];
  await store.upload(key(a), body(a), PLAIN);
  const old = new Date(Date.now() - 86400_000);
  await utimes(store.blobPath(key(a)), old, old);
  const s = new PassThrough();
  const pending = store.upload(key(c), () => s, PLAIN);
  await waitFor(() => store.uploadsInFlight === 1);
  const reqs = await store.requirements(cdf([[a, "a1"], [b, "b1"], [b, "b2"], [c, "c1"], [a, "a2"]]));
  assert.deepEqual(reqs, [{ status: "file-unknown", path: "b1" }, { status: "already-uploading", path: "c1" }]);
  assert.ok((await stat(store.blobPath(key(a)))).mtimeMs > Date.now() - 60_000);
  s.end(c);
  await pending;
});

test("a checkout is a symlink tree renamed into checkouts/<last 2>/<id>; exists → 409; missing files → 400 and nothing left", async (t) => {
  const { store } = await tempStore(t);
  const [a, b] = [Buffer.from("aaa"), Buffer.from("bbb")];
  await store.upload(key(a), body(a), PLAIN);
  const entries = cdf([[a, "scene.blend"], [a, "textures/a copy.png"], [b, "textures/deep/b.png"]]);
  await assert.rejects(store.createCheckout("job_1", entries), (err: CheckoutError) => err.status === 400 && err.lines.join() === "file-unknown textures/deep/b.png");
  assert.deepEqual(await tree(store.checkoutsDir), []);
  assert.deepEqual(await readdir(store.buildingDir), []);
  await store.upload(key(b), body(b), PLAIN);
  assert.equal(await store.createCheckout("job_1", entries), "_1/job_1");
  const root = store.checkoutPath("job_1");
  assert.deepEqual(await tree(root), ["scene.blend", "textures/", "textures/a copy.png", "textures/deep/", "textures/deep/b.png"]);
  assert.equal(await readlink(join(root, "textures/deep/b.png")), store.blobPath(key(b)));
  assert.deepEqual(await readFile(join(root, "scene.blend")), a);
  await assert.rejects(store.createCheckout("job_1", entries), (err: CheckoutError) => err.status === 409);
  const both = [store.createCheckout("twice", entries), store.createCheckout("twice", entries)];
  const settled = await Promise.allSettled(both);
  assert.deepEqual(settled.map((s) => s.status).sort(), ["fulfilled", "rejected"]);
  for (const bad of ["x", "a-b", "../xx", "a".repeat(65)]) await assert.rejects(store.createCheckout(bad, entries), (err: CheckoutError) => err.status === 400);
  await assert.rejects(store.createCheckout("empty", []), (err: CheckoutError) => err.status === 400);
  assert.deepEqual(await readdir(store.buildingDir), []);
});

test("path traversal never creates anything outside the checkout directory", async (t) => {
  const { dir, store } = await tempStore(t);
  const a = Buffer.from("payload");
  await store.upload(key(a), body(a), PLAIN);
  const line = (p: string) => Buffer.from(`${sha(a)} ${a.length} ${p}`);
  for (const p of ["../escape", "/tmp/abs", "a/../../b", "a/./../../c", "x/../../../etc/y", "./z", "d//e"]) {
    const r = parseCdf(line(p));
    assert.equal(r.ok, false, p);
  }
  // a file, then a path through it as if it were a directory (a symlinked parent)
  assert.equal(parseCdf(Buffer.concat([line("link"), Buffer.from("\n"), line("link/inside")])).ok, false);
  assert.equal(parseCdf(Buffer.concat([line("link/inside"), Buffer.from("\n"), line("link")])).ok, false);
  // an accepted path with dots inside names stays inside
  assert.equal(await store.createCheckout("dots", cdf([[a, "..x/y.."], [a, "a/...b"]])), "ts/dots");
  const outside = (await tree(dir)).filter((p) => !p.startsWith("shaman/"));
  assert.deepEqual(outside, ["shaman/"].filter(() => false));
  assert.deepEqual(await tree(join(dir, "shaman", "checkouts")), ["ts/", "ts/dots/", "ts/dots/..x/", "ts/dots/..x/y..", "ts/dots/a/", "ts/dots/a/...b"]);
});

test("GC deletes old unlinked blobs only; linked, recent and touched-mid-scan ones stay; dry run only counts", async (t) => {
  const { store } = await tempStore(t);
  const blobs = ["linked", "old", "recent", "touched"].map((s) => Buffer.from(s));
  for (const b of blobs) await store.upload(key(b), body(b), PLAIN);
  const [linked, old, recent, touched] = blobs as [Buffer, Buffer, Buffer, Buffer];
  await store.createCheckout("keep", cdf([[linked, "f"]]));
  const long = new Date(Date.now() - 40 * 86400_000);
  for (const b of [linked, old, touched]) await utimes(store.blobPath(key(b)), long, long);
  const maxAgeMs = 31 * 86400_000;

  const dry = await store.gc({ maxAgeMs, dryRun: true });
  assert.equal(dry.freed_blobs, 2);
  assert.equal(dry.freed_bytes, old.length + touched.length);
  assert.equal(dry.linked, 1);
  for (const b of blobs) assert.equal(await store.state(key(b)), "stored");

  // touch `touched` while the GC runs (after its scan started, before it reaches the blob)
  const r = await store.gc({
    maxAgeMs,
    dryRun: false,
    onLinksCollected: async () => {
      await store.touch(key(touched));
      await utimes(store.blobPath(key(touched)), long, long); // even with an old time again: touched since the scan
    },
  });
  assert.deepEqual([r.freed_blobs, r.freed_bytes, r.linked, r.kept_recent], [1, old.length, 1, 2]);
  assert.deepEqual(await Promise.all(blobs.map((b) => store.state(key(b)))), ["stored", "unknown", "stored", "stored"]);
  // the emptied directories went too; the old blob can be uploaded again
  await assert.rejects(stat(join(store.blobPath(key(old)), "..")));
  assert.deepEqual(await store.upload(key(old), body(old), PLAIN), { outcome: "stored" });
  assert.deepEqual(await store.stats(), { blobs: 4, bytes: blobs.reduce((n, b) => n + b.length, 0), checkouts: 1, uploads_in_flight: 0 });
});

test("GC and an upload of the same blob: the upload's blob survives", async (t) => {
  const { store } = await tempStore(t);
  const data = Buffer.from("racing");
  await store.upload(key(data), body(data), PLAIN);
  const long = new Date(Date.now() - 40 * 86400_000);
  await utimes(store.blobPath(key(data)), long, long);
  const r = await store.gc({
    maxAgeMs: 86400_000,
    dryRun: false,
    // stored → exists, which touches it: claimed during the GC, so kept
    onLinksCollected: async () => assert.deepEqual(await store.upload(key(data), body(data), PLAIN), { outcome: "exists" }),
  });
  assert.equal(r.freed_blobs, 0);
  assert.equal(await store.state(key(data)), "stored");
});

async function waitFor(cond: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}
