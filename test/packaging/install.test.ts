import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, statSync, readFileSync, writeFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** where the unit goes by default: pkg-config's systemdsystemunitdir, else Debian's */
const UNITDIR = (() => {
  const r = spawnSync("pkg-config", ["--variable=systemdsystemunitdir", "systemd"], { encoding: "utf8" });
  return (r.status === 0 && r.stdout.trim()) || "/lib/systemd/system";
})();

test("make install puts the bundle, launcher, man pages, unit and example config into DESTDIR", () => {
  const dest = mkdtempSync(join(tmpdir(), "stevedore-install-"));
  try {
    execFileSync("make", ["-s", "install", `DESTDIR=${dest}`, "PREFIX=/usr/local"], { stdio: "pipe" });
    const want = [
      "usr/local/lib/stevedore/stevedore.js", "usr/local/bin/stevedore", "usr/local/share/man/man8/stevedore.8",
      "usr/local/share/man/man5/stevedore.conf.5", `${UNITDIR.slice(1)}/stevedore.service`, "etc/stevedore/stevedore.conf",
    ];
    for (const f of want) assert.ok(existsSync(join(dest, f)), `${f} installed`);
    assert.equal(statSync(join(dest, "usr/local/bin/stevedore")).mode & 0o111, 0o111);
    const unit = readFileSync(join(dest, UNITDIR.slice(1), "stevedore.service"), "utf8");
    assert.match(unit, /^ExecStart=\/usr\/local\/bin\/stevedore daemon$/m);
    assert.match(unit, /^ExecReload=\/usr\/local\/bin\/stevedore reload$/m, "systemctl reload fails when the reload fails");
    assert.match(unit, /^Type=notify$/m);
    assert.match(unit, /^NotifyAccess=all$/m, "the readiness comes from systemd-notify, a child");
    assert.doesNotMatch(unit, /^MemoryDenyWriteExecute/m);
    // the launcher runs the installed bundle (not the build tree) with the node found at install time
    const launcher = readFileSync(join(dest, "usr/local/bin/stevedore"), "utf8");
    const node = execFileSync("sh", ["-c", "command -v node"], { encoding: "utf8" }).trim();
    assert.match(launcher, new RegExp(`^NODE='${node.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}'$`, "m"));
    assert.match(launcher, /^exec "\$NODE" '\/usr\/local\/lib\/stevedore\/stevedore\.js' "\$@"$/m);
    const v = spawnSync(process.execPath, [join(dest, "usr/local/lib/stevedore/stevedore.js"), "version"], { encoding: "utf8" });
    assert.equal(v.status, 0, v.stderr);

    // a second install never overwrites the user's config
    writeFileSync(join(dest, "etc/stevedore/stevedore.conf"), "# mine\n");
    execFileSync("make", ["-s", "install", `DESTDIR=${dest}`], { stdio: "pipe" });
    assert.equal(readFileSync(join(dest, "etc/stevedore/stevedore.conf"), "utf8"), "# mine\n");

    execFileSync("make", ["-s", "uninstall", `DESTDIR=${dest}`], { stdio: "pipe" });
    assert.ok(!existsSync(join(dest, "usr/local/bin/stevedore")));
    assert.ok(existsSync(join(dest, "etc/stevedore/stevedore.conf")), "uninstall keeps the config");
  } finally {
    rmSync(dest, { recursive: true, force: true });
  }
});

test("the systemd unit passes systemd-analyze verify where it is available", (t) => {
  const probe = spawnSync("systemd-analyze", ["--version"]);
  if (probe.error) return t.skip("systemd-analyze not installed");
  const dir = mkdtempSync(join(tmpdir(), "stevedore-unit-"));
  try {
    const unit = readFileSync("packaging/stevedore.service", "utf8").replace(/@BINDIR@/g, "/bin");
    writeFileSync(join(dir, "stevedore.service"), unit.replaceAll("/bin/stevedore ", "/bin/true "));
    const r = spawnSync("systemd-analyze", ["verify", join(dir, "stevedore.service")], { encoding: "utf8" });
    const problems = (r.stderr + r.stdout).split("\n").filter((l) => l.includes("stevedore.service") && !/Command 'man /.test(l)); // man pages are not installed here
    assert.deepEqual(problems, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** the bundle built by the first test (or by `make build` before the run) is not built again */
const NO_REBUILD = ["-s", "-o", "dist/stevedore.js", "-o", "node_modules/.installed"];

test("UNITDIR puts the unit elsewhere; a node that is missing at install time fails the install, at run time the launcher says so", () => {
  const dest = mkdtempSync(join(tmpdir(), "stevedore-install-"));
  try {
    execFileSync("make", [...NO_REBUILD, "install", `DESTDIR=${dest}`, "PREFIX=/opt/sd", "UNITDIR=/etc/systemd/system"], { stdio: "pipe" });
    assert.ok(existsSync(join(dest, "etc/systemd/system/stevedore.service")));
    assert.match(readFileSync(join(dest, "etc/systemd/system/stevedore.service"), "utf8"), /^ExecStart=\/opt\/sd\/bin\/stevedore daemon$/m);

    for (const node of ["/nonexistent/node", "node"]) {
      const again = mkdtempSync(join(tmpdir(), "stevedore-install-"));
      const r = spawnSync("make", [...NO_REBUILD, "install", `DESTDIR=${again}`, `NODE=${node}`], { encoding: "utf8" });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, new RegExp(`stevedore: node not found \\(NODE='${node}'\\): install Node.js >= 20 or pass NODE=/absolute/path/to/node`));
      assert.ok(!existsSync(join(again, "usr/local/bin/stevedore")), "nothing half-installed");
      rmSync(again, { recursive: true, force: true });
    }

    // the node the launcher was written for disappears: a clear message and 127 (command not found)
    const gone = join(dest, "node-that-was");
    writeFileSync(gone, "");
    execFileSync("make", [...NO_REBUILD, "install", `DESTDIR=${dest}`, "PREFIX=/opt/sd", "UNITDIR=/etc/systemd/system", `NODE=${process.execPath}`], { stdio: "pipe" });
    const launcher = join(dest, "opt/sd/bin/stevedore");
    writeFileSync(launcher, readFileSync(launcher, "utf8").replace(`NODE='${process.execPath}'`, `NODE='${gone}'`));
    const run = spawnSync(launcher, ["version"], { encoding: "utf8" });
    assert.equal(run.status, 127);
    assert.equal(run.stderr, `stevedore: node not found at ${gone} (where it was at install time): install Node.js >= 20 there, or run make install NODE=/path/to/node again\n`);
  } finally {
    rmSync(dest, { recursive: true, force: true });
  }
});

test("systemd-analyze security rates the unit 4.0 or better (offline)", (t) => {
  const probe = spawnSync("systemd-analyze", ["security", "--help"], { encoding: "utf8" });
  if (probe.error || !/--offline/.test(probe.stdout)) return t.skip("systemd-analyze with security --offline not installed");
  const dir = mkdtempSync(join(tmpdir(), "stevedore-unit-"));
  try {
    const path = join(dir, "stevedore.service");
    writeFileSync(path, readFileSync("packaging/stevedore.service", "utf8").replace(/@BINDIR@/g, "/usr/bin"));
    const r = spawnSync("systemd-analyze", ["security", "--offline=true", "--no-pager", path], { encoding: "utf8" });
    const m = /Overall exposure level for stevedore\.service: (\d+\.\d+)/.exec(r.stdout);
    assert.ok(m, r.stdout + r.stderr);
    assert.ok(Number(m[1]) <= 4.0, `exposure ${m[1]} > 4.0`);
    // (writable+executable memory stays allowed: V8's JIT needs it)
    assert.match(r.stdout, /MemoryDenyWriteExecute=.*\n?/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Directories the unit lets the daemon write under ProtectSystem=strict. */
function writableUnder(unit: string): string[] {
  const dirs: string[] = [];
  const base: Record<string, string> = { RuntimeDirectory: "/run", StateDirectory: "/var/lib", LogsDirectory: "/var/log", CacheDirectory: "/var/cache" };
  for (const [, key = "", value = ""] of unit.matchAll(/^(\w+)=(.*)$/gm)) {
    const words = value.trim().split(/\s+/).filter(Boolean);
    if (key === "ReadWritePaths") dirs.push(...words.map((w) => w.replace(/^[-+]/, "")));
    else if (base[key]) dirs.push(...words.map((w) => `${base[key]}/${w}`));
  }
  return dirs;
}

test("every path the docs and defaults have the daemon write is writable under the unit's ProtectSystem=strict", () => {
  const unit = readFileSync("packaging/stevedore.service", "utf8");
  assert.match(unit, /^ProtectSystem=strict$/m);
  const writable = writableUnder(unit);
  const paths = new Set<string>();
  // access_log files the README and man pages suggest (the man pages write quotes as \(dq)
  for (const f of ["README.md", "man/stevedore.8", "man/stevedore.conf.5"]) {
    for (const m of readFileSync(f, "utf8").matchAll(/access_log\s*=\s*(?:"|\\\(dq)(\/[^"\\]+)/g)) paths.add(m[1]!);
  }
  assert.ok(paths.has("/var/log/stevedore/access.log"), "the README's access_log example is checked");
  // the state and socket paths of the example config
  for (const m of readFileSync("packaging/stevedore.conf.example", "utf8").matchAll(/^#?\s*(\w+(?:_dir|_path))\s*=\s*"(\/[^"]+)"/gm)) paths.add(m[2]!);
  assert.ok(paths.has("/var/lib/stevedore") && paths.has("/run/stevedore/admin.sock"));
  const inside = (p: string) => writable.some((d) => p === d || p.startsWith(d + "/"));
  assert.deepEqual([...paths].filter((p) => !inside(p)), [], `writable: ${writable.join(" ")}`);
});
