// Fuzz of the parsing of CA answers: 10,000 mutated directory/order/authorization/problem answers
// give a parsed value or an AcmeError, never another exception.
import { test } from "node:test";
import assert from "node:assert/strict";
import { AcmeError, parseAuthorization, parseDirectory, parseJson, parseOrder, parseProblem, parseAccount, parseRetryAfter } from "../../src/proxy/acme/parse.js";

const SEEDS = [
  '{"newNonce":"https://ca/nonce","newAccount":"https://ca/acct","newOrder":"https://ca/order","meta":{"termsOfService":"x"}}',
  '{"status":"pending","expires":"2030-01-01T00:00:00Z","identifiers":[{"type":"dns","value":"a.test"}],"authorizations":["https://ca/authz/1"],"finalize":"https://ca/fin/1"}',
  '{"status":"valid","authorizations":["https://ca/authz/1"],"finalize":"https://ca/fin/1","certificate":"https://ca/cert/1"}',
  '{"status":"pending","identifier":{"type":"dns","value":"a.test"},"challenges":[{"type":"http-01","url":"https://ca/c/1","token":"abc_-1","status":"pending"},{"type":"dns-01","url":"https://ca/c/2","token":"x","status":"pending"},{"type":"tls-alpn-01","url":"https://ca/c/3","token":"t","status":"invalid","error":{"type":"urn:ietf:params:acme:error:connection","detail":"no"}}]}',
  '{"type":"urn:ietf:params:acme:error:badNonce","detail":"JWS has an invalid anti-replay nonce","status":400,"subproblems":[{"type":"x","detail":"y"}]}',
  '{"status":"valid","contact":["mailto:a@b"]}',
];
const PARSERS = [parseDirectory, parseOrder, parseAuthorization, parseProblem, parseAccount];

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

function mutate(text: string, r: () => number): string {
  const b = Buffer.from(text);
  const n = 1 + Math.floor(r() * 4);
  let out = b;
  for (let i = 0; i < n; i++) {
    const k = Math.floor(r() * out.length);
    const op = Math.floor(r() * 5);
    if (op === 0) out[k] = Math.floor(r() * 256);
    else if (op === 1) out = Buffer.concat([out.subarray(0, k), out.subarray(k + 1 + Math.floor(r() * 10))]);
    else if (op === 2) out = Buffer.concat([out.subarray(0, k), Buffer.from(['"', "{", "}", "[", "]", "null", "1e999", "-1", '""', ","][Math.floor(r() * 10)]!), out.subarray(k)]);
    else if (op === 3) out = out.subarray(0, k);
    else out = Buffer.concat([out.subarray(0, k), out.subarray(k, k + 20), out.subarray(k)]);
  }
  return out.toString("latin1");
}

test("10,000 mutated CA answers: parsed or AcmeError, nothing else", () => {
  const r = rng(15);
  let parsed = 0;
  for (let i = 0; i < 10_000; i++) {
    const text = mutate(SEEDS[i % SEEDS.length]!, r);
    for (const p of PARSERS) {
      try {
        p(parseJson(text));
        parsed++;
      } catch (err) {
        assert.ok(err instanceof AcmeError, `${p.name} threw ${String(err)} for ${JSON.stringify(text)}`);
      }
    }
    parseRetryAfter(text.slice(0, 30));
  }
  assert.ok(parsed > 100, `some mutations still parse (${parsed})`);
});
