// Signed-out user tokens: refused by the user check, kept until expiry across restarts, bounded, and
// a fuzz of the list's file parser.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureKeyPair, loadUserKeys, mintUserToken, userFromRequest, JWT_DIR } from "../../src/manager/auth.js";
import { MAX_REVOKED, RevokedTokens, parseRevoked, tokenId } from "../../src/manager/revoked.js";
import { setLogSink } from "../../src/log.js";
import { intRng, mutate } from "../helpers/random.js";

async function tmp(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-revoked-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test("sign-out: a revoked token is refused (401) as Bearer and as cookie until it expires; the list is bounded", async (t) => {
  const state = await tmp(t);
  await ensureKeyPair(state);
  const keys = await loadUserKeys(state);
  const now = Date.now();
  const token = await mintUserToken(state, { subject: "ann", ttlSecs: 300, nowMs: now });
  const other = await mintUserToken(state, { subject: "ann", ttlSecs: 301, nowMs: now });
  const list = new RevokedTokens();
  const revoked = (tok: string) => list.has(tokenId(tok), now);
  assert.equal(userFromRequest(undefined, `jwtToken=${token}`, keys, now, revoked).ok, true);
  list.add(tokenId(token), (now / 1000 + 300) * 1000, now);
  for (const [a, c] of [[`Bearer ${token}`, undefined], [undefined, `jwtToken=${token}`]] as const)
    assert.deepEqual(userFromRequest(a, c, keys, now, revoked), { ok: false, status: 401, message: "signed out: this token was revoked" });
  assert.equal(userFromRequest(`Bearer ${other}`, undefined, keys, now, revoked).ok, true, "another token of the same user");
  assert.equal(list.has(tokenId(token), now + 301_000), false, "past its expiry the entry is dropped (the token is expired anyway)");
  list.add("gone", now - 1, now);
  assert.equal(list.size, 1, "an expired token is not kept");
  const full = new RevokedTokens();
  for (let i = 0; i < MAX_REVOKED; i++) full.add(`old${i}`, now + 1000, now);
  full.add("new", now + 60_000, now + 2000);
  assert.equal(full.size, 1, "when full, the expired entries are swept first");
  const big = new RevokedTokens();
  for (let i = 0; i <= MAX_REVOKED; i++) big.add(`id${i}`, now + 60_000, now);
  assert.equal(big.size, MAX_REVOKED);
  assert.equal(big.has("id0", now), false, "the oldest goes first");
  assert.equal(big.has(`id${MAX_REVOKED}`, now), true);
});

test("sign-out: the revoked list survives a restart (0600 file); expired entries are dropped; a corrupt file is logged, not fatal", async (t) => {
  const state = await tmp(t);
  const lines: string[] = [];
  t.after(setLogSink((l) => lines.push(l)));
  const file = join(state, JWT_DIR, "revoked.json");
  const now = Date.now();
  assert.equal((await RevokedTokens.load(file, now)).size, 0, "missing: empty");
  const list = await RevokedTokens.load(file, now);
  const a = tokenId("token-a"), b = tokenId("token-b");
  await Promise.all([list.revoke(a, now + 60_000, now), list.revoke(b, now + 1_000, now)]);
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  const again = await RevokedTokens.load(file, now + 2_000);
  assert.equal(again.has(a, now + 2_000), true);
  assert.equal(again.has(b, now + 2_000), false);
  assert.equal(again.size, 1, "the expired one is not loaded");
  for (const bad of ["{", '{"revoked":[1]}', "null"]) {
    await writeFile(file, bad);
    assert.equal((await RevokedTokens.load(file, now)).size, 0, bad);
  }
  assert.ok(lines.filter((l) => /signed-out token list is corrupt/.test(l)).length === 3, lines.join("\n"));
  await writeFile(file, JSON.stringify({ revoked: { [a]: now + 60_000, "not an id": now + 60_000, [b]: "soon" } }));
  assert.equal((await RevokedTokens.load(file, now)).size, 1, "only well-formed entries");
});

test("parseRevoked: 10,000 mutated files give entries or undefined, never a throw, never a malformed entry", () => {
  const now = Date.now();
  const seed = JSON.stringify({ revoked: { [tokenId("a")]: now + 1000, [tokenId("b")]: now + 2000 } });
  const rand = intRng(15);
  const pieces = ['"', "{", "}", "[", "]", ",", ":", "null", '"revoked"', "1e999", "-", tokenId("c"), "\\u0000", "__proto__"];
  let buf: Buffer = Buffer.from(seed);
  let parsed = 0;
  for (let i = 0; i < 10_000; i++) {
    buf = i % 20 === 0 ? Buffer.from(seed) : mutate(buf, rand, pieces);
    const r = parseRevoked(buf.toString("utf8"));
    if (r === undefined) continue;
    parsed++;
    for (const [id, exp] of r) {
      assert.match(id, /^[A-Za-z0-9_-]{43}$/);
      assert.ok(Number.isFinite(exp));
    }
  }
  assert.ok(parsed > 500, `some mutations still parse (${parsed})`);
});
