// One path style for run-time files (/run/..., not /var/run/...) in the docs and defaults, and a dev
// banner (make run) that prints commands which work from the build tree.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { KEYS } from "../../src/config/index.js";

test("README, man pages, example config and defaults say /run/..., never /var/run/...", () => {
  for (const f of ["README.md", "man/stevedore.8", "man/stevedore.conf.5", "packaging/stevedore.conf.example"])
    assert.doesNotMatch(readFileSync(f, "utf8"), /\/var\/run\//, f);
  for (const [k, spec] of Object.entries(KEYS)) if (typeof spec.default === "string") assert.ok(!spec.default.startsWith("/var/run/"), k);
});

test("the make run banner prints node dist/stevedore.js ... --config .run/stevedore.conf, not a command that is not on PATH", () => {
  const dir = mkdtempSync(join(tmpdir(), "stevedore-devcfg-"));
  try {
    const banner = execFileSync("sh", [resolve("packaging/dev-config.sh")], { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    const r = execFileSync("sh", ["-c", `sh ${resolve("packaging/dev-config.sh")} 2>&1 >/dev/null`], { cwd: dir, encoding: "utf8" });
    assert.equal(banner, "");
    assert.match(r, /\(node dist\/stevedore\.js status --config \.run\/stevedore\.conf\)/);
    for (const line of r.split("\n")) assert.doesNotMatch(line, /[(;] ?stevedore /, line);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
