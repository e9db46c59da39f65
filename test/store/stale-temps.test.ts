// removeStaleTemps: the leftovers of atomic writes a crash cut short, anywhere near the top of the
// state dir (ACME certs, Shaman checkout sums), whoever wrote them, within bounds, never via a link.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { removeStaleTemps, tempName } from "../../src/store/index.js";

const DEAD_PID = 2147483646; // above any pid_max: no such process

async function stateDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-stale-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function put(dir: string, rel: string, data = "x"): Promise<void> {
  await mkdir(dirname(join(dir, rel)), { recursive: true });
  await writeFile(join(dir, rel), data);
}

const exists = (p: string) => lstat(p).then(() => true, () => false);

test("temps below the top are found: ACME certs, Shaman checkout sums, three levels down", async (t) => {
  const dir = await stateDir(t);
  const stale = [
    `.revision.${DEAD_PID}.00ff00ff.tmp`,
    `acme/certs/.app.example.org.crt.${DEAD_PID}.0a1b2c3d.tmp`,
    `acme/certs/.app.example.org.key.${DEAD_PID}.0a1b2c3e.tmp`,
    `shaman/checkout-sums/.shot_1.sha256.${DEAD_PID}.deadbeef.tmp`,
    `a/b/c/.deep.${DEAD_PID}.12345678.tmp`,
  ];
  for (const rel of stale) await put(dir, rel);
  await put(dir, "acme/certs/app.example.org.crt", "keep");
  await put(dir, `a/b/c/d/.too-deep.${DEAD_PID}.12345678.tmp`); // below maxDepth 3
  const r = await removeStaleTemps(dir);
  assert.deepEqual(r.removed.sort(), [...stale].sort());
  assert.equal(r.complete, false, "a directory below the depth bound was left unread");
  for (const rel of stale) assert.equal(await exists(join(dir, rel)), false, rel);
  assert.equal(await readFile(join(dir, "acme/certs/app.example.org.crt"), "utf8"), "keep");
  assert.ok(await exists(join(dir, `a/b/c/d/.too-deep.${DEAD_PID}.12345678.tmp`)));
});

test("the walk is bounded by entries read, breadth first (shallow temps before a big store)", async (t) => {
  const dir = await stateDir(t);
  await put(dir, `.core-services.json.${DEAD_PID}.deadbeef.tmp`);
  for (let i = 0; i < 50; i++) await put(dir, `shaman/stored/${String(i).padStart(2, "0")}/${i}.blob`);
  await put(dir, `shaman/stored/zz/.late.${DEAD_PID}.deadbeef.tmp`);
  const r = await removeStaleTemps(dir, { maxDepth: 3, maxEntries: 20 });
  assert.deepEqual(r.removed, [`.core-services.json.${DEAD_PID}.deadbeef.tmp`]);
  assert.equal(r.complete, false);
  assert.deepEqual((await removeStaleTemps(dir)).removed, [`shaman/stored/zz/.late.${DEAD_PID}.deadbeef.tmp`]);
});

test("a temp named with our own pid is stale (nothing of ours is being written at start)", async (t) => {
  const dir = await stateDir(t);
  const rel = `acme/.account.key.${process.pid}.abcdef01.tmp`;
  await put(dir, rel);
  assert.deepEqual((await removeStaleTemps(dir)).removed, [rel]);
});

test("a live writer's temp is kept; the same pid reused by a process started after the temp is not the writer", async (t) => {
  const dir = await stateDir(t);
  const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
  t.after(() => void child.kill("SIGKILL"));
  await new Promise((resolve) => child.once("spawn", resolve));
  const live = `.proxy-state.json.${child.pid}.11111111.tmp`;
  const reused = `.tokens.${child.pid}.22222222.tmp`;
  await put(dir, live);
  await put(dir, reused);
  const hourAgo = new Date(Date.now() - 3600_000);
  await utimes(join(dir, reused), hourAgo, hourAgo); // written long before that process started
  assert.deepEqual((await removeStaleTemps(dir)).removed, [reused]);
  assert.ok(await exists(join(dir, live)));
});

test("symlinks are neither followed nor removed; other names and non-files are left", async (t) => {
  const dir = await stateDir(t);
  const outside = await stateDir(t);
  await put(outside, `.precious.${DEAD_PID}.0a1b2c3d.tmp`, "precious");
  await put(outside, "target.txt", "precious");
  await symlink(outside, join(dir, "linked-dir"));
  await symlink(join(outside, "target.txt"), join(dir, `.revision.${DEAD_PID}.22222222.tmp`));
  await mkdir(join(dir, `.dir.${DEAD_PID}.33333333.tmp`));
  await put(dir, "notes.tmp");
  await put(dir, `.x.${DEAD_PID}.nothex!!.tmp`);
  const r = await removeStaleTemps(dir);
  assert.deepEqual(r, { removed: [], complete: true });
  assert.equal(await readFile(join(outside, `.precious.${DEAD_PID}.0a1b2c3d.tmp`), "utf8"), "precious");
  assert.equal(await readFile(join(dir, `.revision.${DEAD_PID}.22222222.tmp`), "utf8"), "precious");
  assert.equal((await readdir(dir)).length, 5);
});

test("tempName makes names removeStaleTemps knows", async (t) => {
  const dir = await stateDir(t);
  const tmp = tempName(join(dir, "sub", "proxy-state.json"));
  await put(dir, join("sub", tmp.slice(tmp.lastIndexOf("/") + 1)));
  assert.equal((await removeStaleTemps(dir)).removed.length, 1);
});
