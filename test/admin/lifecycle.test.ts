// Socket lifecycle: stale socket, live socket of another process or a regular file (no start), "" disables, mode 0600.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDaemon } from "../helpers/daemon.js";
import { adminRaw, parseReply, viaSocat, ONLY_ADMIN } from "../helpers/admin.js";

/** Another process listening on `path`; kill it with SIGKILL to leave a stale socket file behind. */
async function foreignListener(path: string) {
  const proc = spawn(process.execPath, ["-e", `require("net").createServer((s)=>{s.on("error",()=>{});s.end("foreign\\n")}).listen(${JSON.stringify(path)},()=>console.log("up"))`], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    proc.stdout.once("data", () => resolve());
    proc.once("exit", (c) => reject(new Error(`listener exited ${c}`)));
  });
  return proc;
}

function exited(d: { proc: import("node:child_process").ChildProcess }): Promise<number | null> {
  if (d.proc.exitCode !== null) return Promise.resolve(d.proc.exitCode);
  return new Promise((r) => d.proc.once("exit", (code) => r(code)));
}

async function tempDir() {
  return mkdtemp(join(tmpdir(), "stevedore-cfg-"));
}

test("7. a stale socket (nobody listening) is removed and replaced at start", async () => {
  const dir = await tempDir();
  const path = join(dir, "admin.sock");
  const other = await foreignListener(path);
  other.kill("SIGKILL");
  await new Promise((r) => other.once("exit", r));
  assert.ok((await stat(path)).isSocket(), "stale socket left behind");
  const d = await startDaemon({ dir, disable: [...ONLY_ADMIN] });
  try {
    await d.waitForLog(/msg="removing stale socket"/);
    assert.equal(parseReply(await viaSocat(path, "status\n")).status, "ok");
  } finally {
    await d.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
});

test("8. a live socket of another process: the socket is left alone, the daemon does not start (exit 1, the cause logged)", async () => {
  const dir = await tempDir();
  const path = join(dir, "admin.sock");
  const other = await foreignListener(path);
  const d = await startDaemon({ dir, disable: [...ONLY_ADMIN], readyLog: /msg="cannot start"/ });
  try {
    await d.waitForLog(/level=error msg="admin socket .* is in use by another process"/);
    assert.match(await d.waitForLog(/msg="cannot start"/), /cause="admin: admin socket \S+ is in use by another process"/);
    assert.equal(await exited(d), 1);
    assert.equal((await adminRaw(path)).reply, "foreign\n", "the other process still owns it");
  } finally {
    await d.cleanup();
    other.kill();
    await rm(dir, { recursive: true, force: true });
  }
});

test("a regular file at the path is kept untouched; the daemon does not start", async () => {
  const dir = await tempDir();
  const path = join(dir, "admin.sock");
  await writeFile(path, "precious\n");
  const d = await startDaemon({ dir, disable: [...ONLY_ADMIN], readyLog: /msg="cannot start"/ });
  try {
    await d.waitForLog(/level=error msg="admin path .* exists and is not a socket; refusing to replace it"/);
    assert.equal(await exited(d), 1);
    assert.equal(await readFile(path, "utf8"), "precious\n", "still there after the daemon gave up");
  } finally {
    await d.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
});

test('9. admin_socket_path = "" disables the admin socket', async () => {
  const d = await startDaemon({ disable: ["admin", ...ONLY_ADMIN] });
  try {
    assert.match(await d.waitForLog(/msg="ready"/), /components="?[^"]*\badmin:disabled\b/);
    await assert.rejects(stat(d.adminSocket), { code: "ENOENT" });
  } finally {
    await d.cleanup();
  }
});

test("1. the socket is mode 0600 and removed at stop", async () => {
  const d = await startDaemon({ disable: [...ONLY_ADMIN] });
  try {
    const st = await stat(d.adminSocket);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(await d.stop(), 0);
    await assert.rejects(stat(d.adminSocket), { code: "ENOENT" });
  } finally {
    await d.cleanup();
  }
});

test("a stop does not wait for an admin client that never sends its line", async () => {
  const d = await startDaemon({ disable: [...ONLY_ADMIN] });
  try {
    const idle = adminRaw(d.adminSocket, "sta");
    // the daemon has accepted it once status counts two connections (the idle one and its own)
    const deadline = performance.now() + 15_000;
    for (;;) {
      const r = parseReply((await adminRaw(d.adminSocket, "status\n")).reply) as { listeners: { admin: { connections: number } } };
      if (r.listeners.admin.connections >= 2) break;
      assert.ok(performance.now() < deadline, "idle connection accepted");
    }
    const t = performance.now();
    assert.equal(await d.stop(), 0);
    assert.ok(performance.now() - t < 3000, `stopped in ${performance.now() - t} ms`);
    assert.equal((await idle).reply, "", "dropped without an answer");
  } finally {
    await d.cleanup();
  }
});
