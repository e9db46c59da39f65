// Start-up against a hostile state and socket directory (issue 16 items 2 and 5), with the bundle:
// stale temps of atomic writes are removed (only ours, only regular files, writer gone; a symlink
// with a temp-like name is left and its target untouched), and sockets in a directory others may
// write to are refused with a clear error while the daemon keeps running its other listeners.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, lstat, mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "node:http";
import { startDaemon } from "../helpers/daemon.js";

const DEAD_PID = 2147483646; // above any pid_max: no such process

function httpStatus(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/", agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end();
  });
}

test("stale temps are removed at start; symlinks, live writers' temps and other files are not", async () => {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-hostile-"));
  const state = join(dir, "state");
  await mkdir(join(state, "jwt"), { recursive: true, mode: 0o700 });
  const outside = join(dir, "outside.txt");
  await writeFile(outside, "precious\n");
  const stale = [
    `.proxy-state.json.${DEAD_PID}.0a1b2c3d.tmp`,
    `.core-services.json.${DEAD_PID}.deadbeef.tmp`,
    `.revision.${DEAD_PID}.00ff00ff.tmp`,
    `.tokens.${DEAD_PID}.12345678.tmp`,
    join("jwt", `.es256-private.pem.${DEAD_PID}.abcdef01.tmp`),
  ];
  for (const name of stale) await writeFile(join(state, name), "x".repeat(44_000));
  const kept = [`.revision.${process.pid}.11111111.tmp`, "notes.tmp", `.x.${DEAD_PID}.nothex!!.tmp`];
  for (const name of kept) await writeFile(join(state, name), "keep");
  const link = join(state, `.revision.${DEAD_PID}.22222222.tmp`);
  await symlink(outside, link);
  const d = await startDaemon({ dir, disable: ["core", "manager", "https"] });
  try {
    for (const name of stale) await assert.rejects(lstat(join(state, name)), `${name} removed`);
    for (const name of kept) assert.equal(await readFile(join(state, name), "utf8"), "keep");
    assert.equal(await readlink(link), outside);
    assert.equal(await readFile(outside, "utf8"), "precious\n");
    assert.ok(d.logs.some((l) => l.includes("removed stale temp files") && l.includes("count=5")));
  } finally {
    await d.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
});

test("sockets in a directory writable by others (no sticky bit) are refused; the daemon keeps running", async () => {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-hostile-"));
  await chmod(dir, 0o777);
  const d = await startDaemon({ dir, disable: ["core", "manager", "https"] });
  try {
    const line = await d.waitForLog(/level=error .*query disabled: socket directory .* writable by group or others/);
    assert.match(line, /mode 0777/);
    await assert.rejects(lstat(d.querySocket));
    await assert.rejects(lstat(d.adminSocket));
    // still running: the proxy answers
    assert.ok((await httpStatus(d.httpPort)) >= 400);
    assert.equal(d.proc.exitCode, null);
  } finally {
    await d.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
});
