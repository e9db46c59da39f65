// `stevedore check-config`, `status`, `reload` through the bundle.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUNDLE, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { ONLY_ADMIN, NO_DOCKER } from "../helpers/admin.js";

function cli(args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BUNDLE, ...args], { env: { ...process.env, STEVEDORE_CONFIG: "", ...env } });
    let stdout = "";
    let stderr = "";
    p.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    p.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    p.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

let d: TestDaemon;
let dir: string;
before(async () => {
  d = await startDaemon({ env: NO_DOCKER, disable: [...ONLY_ADMIN], config: '[[site]]\nhostname = "a.example.com"\nbackends = ["127.0.0.1:9"]' });
  dir = await mkdtemp(join(tmpdir(), "stevedore-cfg-"));
});
after(async () => {
  await d.cleanup();
  await rm(dir, { recursive: true, force: true });
});

test("check-config: ok and exit 0; every error on its own stevedore: line and exit 1", async () => {
  const good = await cli(["check-config", "--config", d.configPath]);
  assert.deepEqual([good.status, good.stdout, good.stderr], [0, "ok\n", ""]);
  const bad = join(dir, "bad.conf");
  await writeFile(bad, 'log_level = "loud"\nnope = 1\n[[site]]\nhostname = "x"\n');
  const r = await cli(["check-config", "--config", bad]);
  assert.equal(r.status, 1);
  assert.equal(r.stdout, "");
  const lines = r.stderr.trimEnd().split("\n");
  assert.deepEqual(lines, [
    `stevedore: ${bad}:1: log_level must be debug, info, warn or error`,
    `stevedore: ${bad}:2: unknown key nope`,
    `stevedore: ${bad}:3: [[site]] needs at least one backend`,
  ]);
  // STEVEDORE_CONFIG is used when --config is not given; a missing named file is an error
  assert.equal((await cli(["check-config"], { STEVEDORE_CONFIG: bad })).status, 1);
  const missing = await cli(["check-config", "--config", join(dir, "none.conf")]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /^stevedore: .*none\.conf: cannot read: no such file\n$/);
  assert.equal((await cli(["check-config", "extra"])).status, 2);
});

test("status: human summary by default, the daemon's JSON with --json", async () => {
  const human = await cli(["status", "--config", d.configPath]);
  assert.equal(human.status, 0, human.stderr);
  assert.match(human.stdout, /^stevedore \S+, up \d+s\n/);
  assert.match(human.stdout, /^sites: +1$/m);
  assert.match(human.stdout, /^admin +listening +\S+admin\.sock/m);
  // a component with several listeners gets one row each
  assert.match(human.stdout, /^proxy http +disabled/m);
  assert.match(human.stdout, /^proxy https +disabled/m);
  const json = await cli(["status", "--json"], { STEVEDORE_CONFIG: d.configPath });
  assert.equal(json.status, 0);
  const r = JSON.parse(json.stdout) as Record<string, unknown>;
  assert.equal(r.status, "ok");
  assert.equal(r.sites, 1);
  const viaSocket = await cli(["status", "--json", "--socket", d.adminSocket]);
  assert.equal(JSON.parse(viaSocket.stdout).sites, 1);
});

test("reload: reloaded and exit 0; the daemon's errors and exit 1 on failure (the socket is still found in a broken file)", async () => {
  const ok = await cli(["reload", "--config", d.configPath]);
  assert.deepEqual([ok.status, ok.stdout], [0, "reloaded\n"]);
  const { readFile } = await import("node:fs/promises");
  const good = await readFile(d.configPath, "utf8");
  await writeFile(d.configPath, "nope = 1\nlog_level = 3\n" + good);
  try {
    const bad = await cli(["reload", "--config", d.configPath]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^stevedore: reload failed: \S+stevedore\.conf:\d+: unknown key nope; \S+stevedore\.conf:\d+: log_level must be a string\n$/);
  } finally {
    await writeFile(d.configPath, good);
  }
});

test("a clear message and exit 1 when the daemon is not running or the socket is disabled", async () => {
  const conf = join(dir, "off.conf");
  await writeFile(conf, `admin_socket_path = "${join(dir, "nobody.sock")}"\n`);
  for (const cmd of ["status", "reload"]) {
    const r = await cli([cmd, "--config", conf]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^stevedore: the daemon is not running \(nothing listens on the admin socket \S+nobody\.sock\): is the daemon running\? start it .*or pass --socket\n$/);
  }
  await writeFile(conf, 'admin_socket_path = ""\n');
  const off = await cli(["status", "--config", conf]);
  assert.equal(off.status, 1);
  assert.match(off.stderr, /^stevedore: the admin socket is disabled \(admin_socket_path = "" in \S+off\.conf\): set it, or pass --socket\n$/);
  // a config that is a FIFO does not hang the client
  const { execFileSync } = await import("node:child_process");
  execFileSync("mkfifo", [join(dir, "fifo.conf")]);
  const fifo = await cli(["status", "--config", join(dir, "fifo.conf")], { });
  assert.equal(fifo.status, 1);
  // a stale socket file (nobody listening) is "not running" too
  const stale = await cli(["status", "--socket", join(dir, "off.conf")]);
  assert.equal(stale.status, 1);
  assert.match(stale.stderr, /^stevedore: /);
});

test("help lists the new commands", async () => {
  const r = await cli(["help"]);
  for (const c of ["check-config", "status", "reload"]) assert.match(r.stdout, new RegExp(`^  ${c} `, "m"));
  for (const c of ["check-config", "status", "reload"]) assert.match((await cli([c, "--help"])).stdout, new RegExp(`^usage: stevedore ${c}`));
});

test("the installed example config passes check-config", async () => {
  const r = await cli(["check-config", "--config", "packaging/stevedore.conf.example"]);
  assert.deepEqual([r.status, r.stdout, r.stderr], [0, "ok\n", ""]);
});
