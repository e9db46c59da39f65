import { test } from "node:test";
import assert from "node:assert/strict";
import { BadRequest, parseAuthorization, parseIngressParam, parsePollParams, parseQuery } from "../../src/query/request.js";
import { rng } from "../helpers/random.js";

/** small seeded PRNG (mulberry32) so failures reproduce */

const ALPHABET = ["a", "=", "&", "%", "%2", "%zz", "since", "timeout", "ingress", "0", "9", "-", ".", " ", "\t", "Bearer", "bearer", "+", "?", "\u00e9", "\u0000", "1", "true", "yes"];
function randomText(r: () => number, max = 40): string {
  let s = "";
  const n = Math.floor(r() * max);
  for (let i = 0; i < n; i++) s += r() < 0.7 ? ALPHABET[Math.floor(r() * ALPHABET.length)]! : String.fromCharCode(Math.floor(r() * 0x3000));
  return s;
}

test("parseAuthorization accepts Bearer tokens only", () => {
  assert.deepEqual(parseAuthorization("Bearer abc"), { token: "abc" });
  assert.deepEqual(parseAuthorization("  bEaReR \t abc  "), { token: "abc" });
  for (const bad of [undefined, "", "Bearer", "Bearer ", "Basic abc", "Bearerabc", "Bearer a b", "x".repeat(2000)])
    assert.ok("error" in parseAuthorization(bad), String(bad));
});

test("poll parameters: defaults, bounds, integers only", () => {
  assert.deepEqual(parsePollParams(new Map(), 60), { since: undefined, timeoutSecs: 60 });
  assert.deepEqual(parsePollParams(new Map([["since", "0"], ["timeout", "290"]]), 60), { since: 0, timeoutSecs: 290 });
  assert.deepEqual(parsePollParams(new Map([["timeout", "1"]]), 60), { since: undefined, timeoutSecs: 1 });
  for (const [k, v] of [["since", "-1"], ["since", "1.0"], ["timeout", "0"], ["timeout", "291"], ["timeout", "01x"]] as const)
    assert.throws(() => parsePollParams(new Map([[k, v]]), 60), BadRequest);
});

test("fuzz: the request parsers never throw anything but BadRequest and never return out-of-range values", () => {
  const r = rng(20261121);
  const deadline = performance.now() + 1500;
  let runs = 0;
  while (runs < 50_000 && performance.now() < deadline) {
    runs++;
    const text = randomText(r);
    const auth = parseAuthorization(r() < 0.5 ? `Bearer ${text}` : text);
    if ("token" in auth) assert.ok(auth.token.length > 0 && !/\s/.test(auth.token));
    let params: Map<string, string>;
    try {
      params = parseQuery(text);
    } catch (err) {
      assert.ok(err instanceof BadRequest, `${JSON.stringify(text)}: ${(err as Error).message}`);
      continue;
    }
    for (const fn of [() => parseIngressParam(params), () => parsePollParams(params, 60)]) {
      try {
        const v = fn();
        if (typeof v === "object") {
          assert.ok(Number.isInteger(v.timeoutSecs) && v.timeoutSecs >= 1 && v.timeoutSecs <= 290);
          if (v.since !== undefined) assert.ok(Number.isSafeInteger(v.since) && v.since >= 0);
        }
      } catch (err) {
        assert.ok(err instanceof BadRequest, `${JSON.stringify(text)}: ${(err as Error).message}`);
      }
    }
  }
  assert.ok(runs > 1000);
});
