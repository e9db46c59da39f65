// Reading Shaman checkouts without the store instance: the listing and the copy the core API makes
// (real files, never a link; only links into the store count as files of a checkout).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink } from "node:fs/promises";
import { createRequire, syncBuiltinESMExports } from "node:module";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { Readable } from "node:stream";
import { ShamanStore, CheckoutNotFound, CheckoutTooLarge, cdfText, checkoutFiles, copyCheckout, definitionSha, parseCdf, readCheckoutSum, removeStaleTemps, shamanRoot, writeCheckoutSum } from "../../src/store/index.js";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

async function setup(t: { after(fn: () => Promise<void>): void }) {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-checkout-read-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const root = shamanRoot(join(dir, "state"));
  const store = await ShamanStore.open(root);
  const a = Buffer.from("alpha\n");
  const b = Buffer.alloc(5000, 1);
  for (const data of [a, b]) {
    const r = await store.upload({ sha: sha(data), size: data.length }, () => Readable.from([data]), { encoding: "identity", canDefer: false });
    assert.equal(r.outcome, "stored");
  }
  const text = `${sha(b)} 5000 z/deep/b.bin\n${sha(a)} 6 a.txt\n${sha(a)} 6 z/again.txt`;
  const parsed = parseCdf(Buffer.from(text));
  assert.ok(parsed.ok);
  await store.createCheckout("shot_1", parsed.entries);
  return { dir, root, store, a, b };
}

test("checkoutFiles lists a checkout sorted by path; cdfText gives its definition back", async (t) => {
  const { root, a, b } = await setup(t);
  const files = await checkoutFiles(root, "shot_1");
  assert.deepEqual(files.map((f) => [f.path, f.sha, f.size]), [["a.txt", sha(a), 6], ["z/again.txt", sha(a), 6], ["z/deep/b.bin", sha(b), 5000]]);
  assert.equal(cdfText(files), `${sha(a)} 6 a.txt\n${sha(a)} 6 z/again.txt\n${sha(b)} 5000 z/deep/b.bin\n`);
  for (const id of ["nope_1", "a", "../x", ""]) await assert.rejects(checkoutFiles(root, id), CheckoutNotFound);
});

test("copyCheckout makes regular files 0644 and dirs 0755, bounded by maxBytes", async (t) => {
  const { dir, root, a } = await setup(t);
  const dest = join(dir, "dest");
  await mkdir(dest);
  assert.deepEqual(await copyCheckout(root, "shot_1", dest), { files: 3, bytes: 5012 });
  for (const p of ["a.txt", "z/again.txt", "z/deep/b.bin"]) {
    const st = await lstat(join(dest, p));
    assert.ok(st.isFile(), p);
    assert.equal(st.mode & 0o777, 0o644);
  }
  assert.equal((await lstat(join(dest, "z", "deep"))).mode & 0o777, 0o755);
  assert.deepEqual(await readFile(join(dest, "z/again.txt")), a);
  const small = join(dir, "small");
  await mkdir(small);
  await assert.rejects(copyCheckout(root, "shot_1", small, 5011), CheckoutTooLarge);
});

test("a link in a checkout that does not point into the store is an error, never followed", async (t) => {
  const { dir, root, store } = await setup(t);
  await symlink("/etc/passwd", join(store.checkoutPath("shot_1"), "z", "evil"));
  await assert.rejects(checkoutFiles(root, "shot_1"), /does not link into the store/);
  const dest = join(dir, "dest");
  await mkdir(dest);
  await assert.rejects(copyCheckout(root, "shot_1", dest), /does not link into the store/);
});

test("the definition's SHA-256 is kept at creation and ignored once the directory is another", async (t) => {
  const { root, store } = await setup(t);
  const files = await checkoutFiles(root, "shot_1");
  assert.equal(await readCheckoutSum(root, "shot_1"), definitionSha(files));
  assert.equal(definitionSha(files), sha(Buffer.from(cdfText(files))));
  assert.equal(await readCheckoutSum(root, "nope_1"), undefined);
  await rm(store.checkoutPath("shot_1"), { recursive: true });
  await mkdir(join(dir0(store.checkoutPath("shot_1")), "shot_1_other"), { recursive: true }); // take the inode
  await mkdir(store.checkoutPath("shot_1"));
  assert.equal(await readCheckoutSum(root, "shot_1"), undefined);
});

const dir0 = (p: string) => join(p, "..");

test("a checkout sum's temp has the floor's name: a crash's leftover is removed at start, a failed rename leaves none", async (t) => {
  const { dir, root } = await setup(t);
  const sums = join(root, "checkout-sums");
  // a crash between write and rename: the rename never comes
  const fsp = createRequire(import.meta.url)("node:fs/promises") as typeof import("node:fs/promises");
  const renamed = new Promise<string>((resolve) => {
    t.mock.method(fsp, "rename", (from: string) => {
      resolve(from);
      return new Promise(() => {});
    });
    syncBuiltinESMExports();
  });
  void writeCheckoutSum(root, "shot_1", "0".repeat(64));
  const tmp = await renamed;
  t.mock.restoreAll();
  syncBuiltinESMExports();
  assert.ok((await readdir(sums)).includes(basename(tmp)));
  const r = await removeStaleTemps(join(dir, "state"));
  assert.deepEqual(r.removed, [join("shaman", "checkout-sums", basename(tmp))]);
  // a rename that fails (a directory in the way) takes its temp away
  await rm(join(sums, "shot_1.sha256"));
  await mkdir(join(sums, "shot_1.sha256", "x"), { recursive: true });
  await writeCheckoutSum(root, "shot_1", "0".repeat(64));
  assert.deepEqual(await readdir(sums), ["shot_1.sha256"]);
});
