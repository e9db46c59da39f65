// check-config warns about a [[site]] with tls = "auto" while acme is off (it would get no HTTPS).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parseConfig } from "../../src/config/index.js";
import { acmeWarnings } from "../../src/cli/check-config.js";
import { BUNDLE } from "../helpers/daemon.js";

const exec = promisify(execFile);
const SITES = '[[site]]\nhostname = "plain.test"\nbackends = ["127.0.0.1:1"]\n\n[[site]]\nhostname = "auto.test"\nbackends = ["127.0.0.1:1"]\ntls = "auto"\n';

test("acmeWarnings: tls = \"auto\" with acme off is named with its line; with acme on, nothing", () => {
  assert.deepEqual(acmeWarnings(parseConfig(SITES, "s.conf", {}), "s.conf"), [
    's.conf:5: [[site]] auto.test has tls = "auto" but acme is off: it gets no certificate (set acme = true)',
  ]);
  assert.deepEqual(acmeWarnings(parseConfig(`acme = true\n${SITES}`, "s.conf", {}), "s.conf"), []);
});

test("CLI: the warning goes to stderr, the config is still ok (exit 0)", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-acme-check-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const conf = join(dir, "s.conf");
  await writeFile(conf, SITES);
  const r = await exec(process.execPath, [BUNDLE, "check-config", "--config", conf], { env: { ...process.env, STEVEDORE_CONFIG: "" } });
  assert.equal(r.stdout, "ok\n");
  assert.match(r.stderr, /^stevedore: warning: \S+s\.conf:5: \[\[site\]\] auto\.test has tls = "auto" but acme is off/m);
});
