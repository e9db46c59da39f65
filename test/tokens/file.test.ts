import { test } from "node:test";
import assert from "node:assert/strict";
import { parseTokens, serializeTokens, newToken, hashToken, TokensFileError, type Tokens } from "../../src/tokens/index.js";
import { deploymentNameError } from "../../src/base/index.js";

test("tokens are 64 lowercase hex characters from 32 random bytes, all different", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 100; i++) {
    const t = newToken();
    assert.match(t, /^[0-9a-f]{64}$/);
    seen.add(t);
  }
  assert.equal(seen.size, 100);
  assert.match(hashToken("x"), /^[0-9a-f]{64}$/);
});

test("the file round-trips and is sorted", () => {
  const tokens: Tokens = new Map([["zeta", { token: newToken(), created: "2026-01-01T00:00:00Z" }], ["alpha", { token: newToken(), created: "" }]]);
  const text = serializeTokens(tokens);
  assert.ok(text.indexOf("alpha") < text.indexOf("zeta"));
  assert.deepEqual(parseTokens(text), tokens);
});

test("bad files are errors naming the problem, never an empty set", () => {
  const t = newToken();
  const cases: [string, RegExp][] = [
    ["", /not valid JSON/],
    ["[]", /not a JSON object/],
    [`{"version":2,"tokens":{}}`, /unsupported version/],
    [`{"version":1}`, /"tokens" is not an object/],
    [`{"version":1,"tokens":{"Bad":{"token":"${t}"}}}`, /invalid deployment name/],
    [`{"version":1,"tokens":{"ok":{"token":"${t.toUpperCase()}"}}}`, /64 lowercase hex/],
    [`{"version":1,"tokens":{"ok":"${t}"}}`, /64 lowercase hex/],
    [`{"version":1,"tokens":{"ok":{"token":"${t}"}`, /not valid JSON/],
  ];
  for (const [text, re] of cases) assert.throws(() => parseTokens(text), (e: Error) => e instanceof TokensFileError && re.test(e.message), text);
});

test("deployment names are validated with a clear error", () => {
  for (const ok of ["a", "web", "my-app_2", "0", "a".repeat(63)]) assert.equal(deploymentNameError(ok), undefined, ok);
  for (const bad of ["", "-a", "_a", "A", "a.b", "a/b", "a b", "a".repeat(64), "é"]) assert.match(deploymentNameError(bad)!, /invalid deployment name .*a-z, 0-9/, bad);
});

test("fuzz: parseTokens throws only TokensFileError on mangled files", () => {
  let seed = 7;
  const r = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const good = serializeTokens(new Map([["a", { token: newToken(), created: "x" }], ["b", { token: newToken(), created: "y" }]]));
  const deadline = performance.now() + 1500;
  for (let i = 0; i < 20_000 && performance.now() < deadline; i++) {
    const chars = [...good];
    const edits = 1 + Math.floor(r() * 4);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(r() * chars.length);
      const kind = r();
      if (kind < 0.33) chars.splice(at, 1);
      else if (kind < 0.66) chars.splice(at, 0, String.fromCharCode(Math.floor(r() * 128)));
      else chars.length = at;
    }
    const text = chars.join("");
    try {
      const t = parseTokens(text);
      for (const [name, e] of t) assert.match(name + e.token, /^[a-z0-9][a-z0-9_-]*[0-9a-f]{64}$/);
    } catch (err) {
      assert.ok(err instanceof TokensFileError, `${(err as Error).message} for ${JSON.stringify(text)}`);
    }
  }
});
