import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureDir, writeFileAtomic } from "../../src/store/index.js";

test("ensureDir makes missing parents with the mode; an existing dir is fine; a file in the way is an error", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-store-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const deep = join(dir, "a", "b", "c");
  await ensureDir(deep, 0o700);
  assert.equal((await stat(deep)).mode & 0o777, 0o700 & ~process.umask());
  await ensureDir(deep, 0o700);
  await writeFile(join(dir, "file"), "");
  await assert.rejects(ensureDir(join(dir, "file"), 0o700), { code: "ENOTDIR" });
  await assert.rejects(ensureDir(join(dir, "file", "sub"), 0o700), { code: "ENOTDIR" });
});

test("under /proc, where node's recursive mkdir never returns, the error comes at once", async () => {
  const started = performance.now();
  await assert.rejects(ensureDir("/proc/stevedore-nope/x", 0o700), { code: "ENOENT" });
  await assert.rejects(writeFileAtomic("/proc/stevedore-nope/x/file", "data"), { code: "ENOENT" });
  assert.ok(performance.now() - started < 1000);
});

test("writeFileAtomic replaces the content with the mode and leaves no temp file", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-store-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, "sub", "f.json");
  await writeFileAtomic(path, "one", 0o600);
  await writeFileAtomic(path, "two", 0o600);
  assert.equal(await readFile(path, "utf8"), "two");
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  assert.deepEqual(await readdir(join(dir, "sub")), ["f.json"]);
});
