import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, statSync, readFileSync, writeFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

test("make install puts the bundle, launcher, man pages, unit and example config into DESTDIR", () => {
  const dest = mkdtempSync(join(tmpdir(), "stevedore-install-"));
  try {
    execFileSync("make", ["-s", "install", `DESTDIR=${dest}`, "PREFIX=/usr/local"], { stdio: "pipe" });
    const want = [
      "usr/local/lib/stevedore/stevedore.js", "usr/local/bin/stevedore", "usr/local/share/man/man8/stevedore.8",
      "usr/local/share/man/man5/stevedore.conf.5", "lib/systemd/system/stevedore.service", "etc/stevedore/stevedore.conf",
    ];
    for (const f of want) assert.ok(existsSync(join(dest, f)), `${f} installed`);
    assert.equal(statSync(join(dest, "usr/local/bin/stevedore")).mode & 0o111, 0o111);
    const unit = readFileSync(join(dest, "lib/systemd/system/stevedore.service"), "utf8");
    assert.match(unit, /^ExecStart=\/usr\/local\/bin\/stevedore daemon$/m);
    assert.match(unit, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    assert.doesNotMatch(unit, /^MemoryDenyWriteExecute/m);
    // the launcher runs the installed bundle (not the build tree)
    const launcher = readFileSync(join(dest, "usr/local/bin/stevedore"), "utf8");
    assert.match(launcher, /exec node \/usr\/local\/lib\/stevedore\/stevedore\.js/);
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
    writeFileSync(join(dir, "stevedore.service"), unit.replace("/bin/stevedore daemon", "/bin/true daemon"));
    const r = spawnSync("systemd-analyze", ["verify", join(dir, "stevedore.service")], { encoding: "utf8" });
    const problems = (r.stderr + r.stdout).split("\n").filter((l) => l.includes("stevedore.service") && !/Command 'man /.test(l)); // man pages are not installed here
    assert.deepEqual(problems, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
