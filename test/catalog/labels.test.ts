import { test } from "node:test";
import assert from "node:assert/strict";
import { membershipOf } from "../../src/catalog/membership.js";
import { isDeploymentName } from "../../src/base/index.js";
import { parseIngress, labelBool, parsePort } from "../../src/catalog/ingress.js";

test("membership: stevedore labels first, then the compose project stevedore-<D>", () => {
  assert.deepEqual(membershipOf({ "stevedore.deployment": "web", "stevedore.service": "app" }), { deployment: "web", service: "app" });
  assert.deepEqual(membershipOf({ "com.docker.compose.project": "stevedore-home_page-1", "com.docker.compose.service": "db" }), { deployment: "home_page-1", service: "db" });
  // labels win over compose
  assert.deepEqual(
    membershipOf({ "stevedore.deployment": "a", "stevedore.service": "s", "com.docker.compose.project": "stevedore-b", "com.docker.compose.service": "t" }),
    { deployment: "a", service: "s" },
  );
  // invalid label name falls back to compose
  assert.deepEqual(
    membershipOf({ "stevedore.deployment": "Bad", "stevedore.service": "s", "com.docker.compose.project": "stevedore-b", "com.docker.compose.service": "t" }),
    { deployment: "b", service: "t" },
  );
  for (const labels of <(Record<string, string> | null)[]>[
    null, {}, { "stevedore.deployment": "a" }, { "stevedore.service": "s" }, { "stevedore.deployment": "a", "stevedore.service": "" },
    { "com.docker.compose.project": "other", "com.docker.compose.service": "x" },
    { "com.docker.compose.project": "stevedore-", "com.docker.compose.service": "x" },
    { "com.docker.compose.project": "stevedore-ok" },
    { "com.docker.compose.project": "stevedore-UPPER", "com.docker.compose.service": "x" },
  ]) assert.equal(membershipOf(labels), undefined, JSON.stringify(labels));
});

test("deployment names", () => {
  for (const ok of ["a", "0", "a-b_c", "a".repeat(63)]) assert.ok(isDeploymentName(ok), ok);
  for (const bad of ["", "-a", "_a", "A", "a.b", "a b", "a".repeat(64), "é", "a\n"]) assert.ok(!isDeploymentName(bad), bad);
});

test("ingress: absent without labels, booleans, port range, healthcheck path", () => {
  assert.equal(parseIngress({ other: "1" }).ingress, undefined);
  assert.deepEqual(parseIngress({ "stevedore.ingress.subdomain": "www" }), { ingress: { enabled: false, subdomain: "www" }, problems: [] });
  assert.deepEqual(
    parseIngress({
      "stevedore.ingress.enabled": "YES", "stevedore.ingress.subdomain": "www", "stevedore.ingress.port": "8080",
      "stevedore.ingress.websocket": "1", "stevedore.ingress.healthcheck": "/health",
    }).ingress,
    { enabled: true, subdomain: "www", port: 8080, websocket: true, healthcheck: "/health" },
  );
  for (const v of ["true", "TRUE", "1", "yes", " Yes "]) assert.ok(labelBool(v), v);
  for (const v of [undefined, "", "on", "0", "no", "false", "y", "truee"]) assert.ok(!labelBool(v), String(v));
  for (const [v, n] of [["1", 1], ["65535", 65535], ["080", 80]] as const) assert.equal(parsePort(v), n);
  for (const v of ["0", "65536", "-1", "1.5", "8080x", "", "1e3", "0x50", "999999"]) assert.equal(parsePort(v), undefined, v);
  const bad = parseIngress({ "stevedore.ingress.enabled": "true", "stevedore.ingress.port": "http", "stevedore.ingress.healthcheck": "health" });
  assert.deepEqual(bad.ingress, { enabled: true });
  assert.equal(bad.problems.length, 2);
});

test("ingress: https_redirect label (false keeps HTTP served; absent leaves the default)", () => {
  const base = { "stevedore.ingress.enabled": "true", "stevedore.ingress.subdomain": "www" };
  assert.equal(parseIngress({ ...base, "stevedore.ingress.https_redirect": "false" }).ingress?.httpsRedirect, false);
  assert.equal(parseIngress({ ...base, "stevedore.ingress.https_redirect": "0" }).ingress?.httpsRedirect, false);
  assert.equal(parseIngress({ ...base, "stevedore.ingress.https_redirect": "true" }).ingress?.httpsRedirect, true);
  assert.ok(!("httpsRedirect" in parseIngress(base).ingress!));
});

test("fuzz: label parsing never throws and keeps its invariants (seeded)", () => {
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
  const keys = ["stevedore.ingress.enabled", "stevedore.ingress.port", "stevedore.ingress.subdomain", "stevedore.ingress.websocket",
    "stevedore.ingress.healthcheck", "stevedore.deployment", "stevedore.service", "com.docker.compose.project", "com.docker.compose.service"];
  const values = ["", "1", "true", "65536", "80", "/x", "stevedore-a", "stevedore-", "A", "a", " ", "\u0000", "😀", "x".repeat(300)];
  for (let i = 0; i < 5000; i++) {
    const labels: Record<string, string> = {};
    for (let k = rnd(6); k > 0; k--) labels[keys[rnd(keys.length)]!] = values[rnd(values.length)]! + values[rnd(values.length)]!;
    const { ingress } = parseIngress(labels);
    if (ingress?.port !== undefined) assert.ok(Number.isInteger(ingress.port) && ingress.port >= 1 && ingress.port <= 65535);
    if (ingress?.healthcheck !== undefined) assert.ok(ingress.healthcheck.startsWith("/"));
    const m = membershipOf(labels);
    if (m) assert.ok(isDeploymentName(m.deployment) && m.service.length > 0);
  }
});
