import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { BUNDLE } from "../helpers/daemon.js";

const cli = (...args: string[]) => spawnSync(process.execPath, [BUNDLE, ...args], { encoding: "utf8", env: { ...process.env, STEVEDORE_CONFIG: "" } });

test("version prints the version and exits 0", () => {
  const r = cli("version");
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^stevedore \d+\.\d+\.\d+/);
});

test("help lists commands; help COMMAND and COMMAND --help print its usage", () => {
  const all = cli("help");
  assert.equal(all.status, 0);
  assert.match(all.stdout, /daemon/);
  const one = cli("help", "daemon");
  assert.equal(one.status, 0);
  assert.match(one.stdout, /usage: stevedore daemon/);
  assert.equal(cli("daemon", "--help").stdout, one.stdout);
});

test("usage errors exit 2 with one stevedore: line on stderr", () => {
  for (const args of [["no-such-command"], ["daemon", "--no-such-flag"], ["version", "extra"], []]) {
    const r = cli(...args);
    assert.equal(r.status, 2, `args ${args.join(" ")}`);
    if (args.length) assert.match(r.stderr, /^stevedore: /);
  }
});

test("the bundle needs only node built-ins", async () => {
  const { readFile } = await import("node:fs/promises");
  const { builtinModules } = await import("node:module");
  const src = await readFile(BUNDLE, "utf8");
  assert.ok(src.startsWith("#!/usr/bin/env node\n"));
  const required = [...src.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]!);
  const foreign = required.filter((r) => !r.startsWith("node:") && !builtinModules.includes(r));
  assert.deepEqual(foreign, []);
});
