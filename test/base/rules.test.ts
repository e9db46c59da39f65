// The base rules: deployment names and host:port.
import { test } from "node:test";
import assert from "node:assert/strict";
import { deploymentNameError, formatHostPort, isDeploymentName, isHostPattern, parseHostPort } from "../../src/base/index.js";

test("deployment names: 1-63 of a-z 0-9 _ -, starting with a letter or digit", () => {
  for (const ok of ["a", "web", "home_page-1", "0", "a".repeat(63)]) assert.equal(isDeploymentName(ok), true, ok);
  for (const bad of ["", "-a", "_a", "A", "a.b", "a b", "a".repeat(64)]) {
    assert.equal(isDeploymentName(bad), false, bad);
    assert.match(deploymentNameError(bad)!, /invalid deployment name/);
  }
  assert.equal(deploymentNameError("web"), undefined);
});

test("host:port parses and formats, IPv6 in brackets", () => {
  assert.deepEqual(parseHostPort("example.com:80"), { host: "example.com", port: 80 });
  assert.deepEqual(parseHostPort("[::1]:443"), { host: "::1", port: 443 });
  for (const bad of ["example.com", ":80", "a:b", "a:65536", "::1:80", "[x]:1"]) assert.equal(parseHostPort(bad), undefined, bad);
  assert.equal(formatHostPort("::1", 443), "[::1]:443");
  assert.equal(formatHostPort("a.b", 1), "a.b:1");
  for (const v of ["a.b:1", "[::1]:443"]) {
    const p = parseHostPort(v)!;
    assert.equal(formatHostPort(p.host, p.port), v);
  }
});

test("host patterns: DNS names, one leading wildcard", () => {
  for (const ok of ["example.com", "*.example.com", "a", "x-1.y"]) assert.equal(isHostPattern(ok), true, ok);
  for (const bad of ["", "a..b", "-a.b", "a.*.b", "*", "a_b.c", `${"a".repeat(64)}.b`]) assert.equal(isHostPattern(bad), false, bad);
});
