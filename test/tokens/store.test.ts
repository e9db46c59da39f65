import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, stat, writeFile, readdir, readFile } from "node:fs/promises";
import { spawn, spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getToken, regenerateToken, revokeToken, listTokens, readTokens, tokensPath, acquireLock, LockTimeout, TokenStoreError } from "../../src/tokens/index.js";
import { processStartTime } from "../../src/tokens/lock.js";

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-q-tokens-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return join(dir, "state");
}

function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(r.stdout);
}

test("get makes a token once (file 0600), regenerate replaces it, revoke removes it, list never shows tokens", async (t) => {
  const dir = await tempDir(t);
  const a = await getToken(dir, "web");
  assert.match(a, /^[0-9a-f]{64}$/);
  assert.equal(await getToken(dir, "web"), a);
  assert.equal((await stat(tokensPath(dir))).mode & 0o777, 0o600);
  const b = await regenerateToken(dir, "web");
  assert.notEqual(b, a);
  assert.equal(await getToken(dir, "web"), b);
  await getToken(dir, "api");
  assert.deepEqual((await listTokens(dir)).map((x) => x.deployment), ["api", "web"]);
  assert.ok(!JSON.stringify(await listTokens(dir)).includes(b));
  assert.equal(await revokeToken(dir, "web"), true);
  assert.equal(await revokeToken(dir, "web"), false);
  assert.deepEqual([...(await readTokens(dir)).keys()], ["api"]);
  assert.equal((await stat(tokensPath(dir))).mode & 0o777, 0o600);
  // no lock or temp files left behind
  assert.deepEqual(await readdir(dir), ["tokens.json"]);
});

test("invalid deployment names and unparsable files are clear errors; nothing is overwritten", async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(getToken(dir, "Bad Name"), (e: Error) => e instanceof TokenStoreError && /invalid deployment name/.test(e.message));
  await getToken(dir, "web");
  await writeFile(tokensPath(dir), "{broken");
  await assert.rejects(regenerateToken(dir, "api"), (e: Error) => e instanceof TokenStoreError && /not valid JSON/.test(e.message));
  assert.equal(await readFile(tokensPath(dir), "utf8"), "{broken");
});

test("lock: a lock left by a dead process is broken; a live holder makes others wait", async (t) => {
  const dir = await tempDir(t);
  await getToken(dir, "web");
  const lock = `${tokensPath(dir)}.lock`;
  await writeFile(lock, `${deadPid()} 123\n`);
  const t0 = performance.now();
  await regenerateToken(dir, "web");
  assert.ok(performance.now() - t0 < 2000);
  assert.deepEqual(await readdir(dir), ["tokens.json"]);

  // a live holder (another process with its real start time)
  const sleeper = spawn("sleep", ["30"]);
  t.after(() => sleeper.kill());
  await new Promise((r) => sleeper.once("spawn", r));
  await writeFile(lock, `${sleeper.pid} ${processStartTime(sleeper.pid!)}\n`);
  await assert.rejects(acquireLock(lock, 150), LockTimeout);
  // a reused pid (same pid, other start time) is not the holder
  await writeFile(lock, `${sleeper.pid} 1\n`);
  const release = await acquireLock(lock, 1000);
  await release();
  await assert.rejects(readFile(lock), { code: "ENOENT" });
});

test("lock: concurrent editors in separate processes never lose each other's tokens", async (t) => {
  const dir = await tempDir(t);
  await getToken(dir, "seed");
  const script = `
    const { regenerateToken } = await import(${JSON.stringify(new URL("../../src/tokens/index.ts", `file://${process.cwd()}/test/tokens/`).pathname)});
    const [dir, name] = process.argv.slice(-2);
    for (let i = 0; i < 5; i++) await regenerateToken(dir, name);
  `;
  const procs = Array.from({ length: 6 }, (_, i) =>
    new Promise<number | null>((resolve) => spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script, dir, `d${i}`], { stdio: "inherit" }).once("exit", resolve)));
  assert.deepEqual(await Promise.all(procs), [0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...(await readTokens(dir)).keys()], ["d0", "d1", "d2", "d3", "d4", "d5", "seed"]);
});
