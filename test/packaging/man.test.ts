import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { KEYS, SITE_KEYS } from "../../src/config/index.js";

for (const page of ["man/stevedore.8", "man/stevedore.conf.5"]) {
  test(`${page} renders without groff warnings`, () => {
    const r = spawnSync("groff", ["-man", "-ww", "-z", page], { encoding: "utf8" });
    assert.equal(r.error, undefined, "groff must be installed");
    assert.equal(r.stderr, "");
    assert.equal(r.status, 0);
  });
}

test("stevedore.conf(5) documents every config key with its default and group", () => {
  const page = readFileSync("man/stevedore.conf.5", "utf8");
  for (const [key, spec] of Object.entries(KEYS)) {
    const m = new RegExp(`^\\.B ${key}\\n(.*)$`, "m").exec(page);
    assert.ok(m, `${key} documented`);
    assert.match(m[1]!, new RegExp(`${spec.group}\\.$`), `${key} group`);
    const quote = (v: string) => `\\(dq${v.replace(/-/g, "\\-")}\\(dq`;
    const def = typeof spec.default === "string" ? quote(spec.default) : Array.isArray(spec.default) ? `[${spec.default.map(quote).join(", ")}]` : String(spec.default);
    assert.ok(m[1]!.includes(`default ${def}`), `${key} default ${def} in: ${m[1]}`);
  }
  for (const key of Object.keys(SITE_KEYS)) assert.match(page, new RegExp(`\\.BR? ${key}\\b`), `site key ${key}`);
});

test("stevedore(8) says how the proxy treats odd request targets, bad chunk sizes and refused HEADs", () => {
  const page = readFileSync("man/stevedore.8", "utf8").replace(/\\-/g, "-").replace(/\n\.B /g, "\n").replace(/\n/g, " ");
  assert.match(page, /A request target with a control byte, a space or a byte outside ASCII .* gets 400 and is never forwarded/);
  assert.match(page, /a chunk size that is not hexadecimal digits \(such as \\fB-1\\fR\) or too large/);
  assert.match(page, /\\\(dq < > \\e \^ \\\(ga \{ \| \} are accepted raw in the request target/);
  assert.match(page, /A refused HEAD request gets its status line and headers without a body/);
});
