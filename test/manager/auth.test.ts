import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync, createPrivateKey, createPublicKey } from "node:crypto";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AuthBusyError, WorkerAuth, ensureKeyPair, hashSecret, loadUserKeys, mintUserToken, parseBasicAuth, userFromRequest, verifySecret,
  JWT_DIR, PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, SCRYPT,
} from "../../src/manager/auth.js";
import { signEs256 } from "../../src/tokens/index.js";
import { setLogSink } from "../../src/log.js";
import { intRng, mutate } from "../helpers/random.js";

const ID = "65a1b2c3d4e5f60718293a4b";
const basic = (s: string) => `Basic ${Buffer.from(s).toString("base64")}`;

async function tmp(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-auth-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A verifier the test completes by hand, counting calls. */
function manualVerifier() {
  const calls: { secret: string; stored: string; resolve: (ok: boolean) => void }[] = [];
  return { calls, fn: (secret: string, stored: string) => new Promise<boolean>((resolve) => calls.push({ secret, stored, resolve })) };
}

async function until(cond: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setImmediate(r));
  }
}

test("hashSecret: scrypt with parameters and a random salt in the string; verifySecret checks it", async () => {
  const a = await hashSecret("correct horse");
  const b = await hashSecret("correct horse");
  assert.match(a, new RegExp(`^scrypt\\$${SCRYPT.N}\\$${SCRYPT.r}\\$${SCRYPT.p}\\$[A-Za-z0-9+/]{22}==\\$[A-Za-z0-9+/]{43}=$`));
  assert.notEqual(a, b);
  assert.equal(await verifySecret("correct horse", a), true);
  assert.equal(await verifySecret("correct horse", b), true);
  assert.equal(await verifySecret("correct horsf", a), false);
  assert.equal(await verifySecret("", a), false);
  await assert.rejects(hashSecret(""), RangeError);
  await assert.rejects(hashSecret("x".repeat(1025)), RangeError);
  // Malformed or too costly stored hashes never match (and never allocate much).
  const [, , , , salt, hash] = a.split("$");
  for (const bad of ["", "x", a.replace("scrypt", "bcrypt"), a + "x", `scrypt$16383$8$1$${salt}$${hash}`, `scrypt$1048576$8$1$${salt}$${hash}`,
    `scrypt$16384$8$9$${salt}$${hash}`, `scrypt$16384$8$1$${salt}$AAAA`, `scrypt$16384$0$1$${salt}$${hash}`]) {
    assert.equal(await verifySecret("correct horse", bad), false, bad);
  }
});

test("WorkerAuth: a cache hit does not run scrypt and costs microseconds; a wrong secret fails every time", async (t) => {
  const auth = new WorkerAuth();
  const stored = await hashSecret("s3cret");
  let started = performance.now();
  assert.equal(await auth.verify(ID, "s3cret", stored), true);
  const uncachedMs = performance.now() - started;
  assert.equal(auth.slowChecks, 1);

  const rounds = 10_000;
  started = performance.now();
  for (let i = 0; i < rounds; i++) assert.equal(await auth.verify(ID, "s3cret", stored), true);
  const cachedMs = (performance.now() - started) / rounds;
  assert.equal(auth.slowChecks, 1, "cache hits never reach scrypt");
  t.diagnostic(`verify(): uncached ${uncachedMs.toFixed(1)} ms, cached ${(cachedMs * 1000).toFixed(1)} µs`);
  assert.ok(cachedMs * 20 < uncachedMs, `cached ${cachedMs} ms vs uncached ${uncachedMs} ms`);

  assert.equal(await auth.verify(ID, "s3creT", stored), false);
  assert.equal(await auth.verify(ID, "s3creT", stored), false);
  assert.equal(auth.slowChecks, 3, "failures are not cached");
  assert.equal(await auth.verify("65a1b2c3d4e5f60718293a4c", "s3cret", stored), true, "a different id with the same hash is checked afresh");
  assert.equal(auth.slowChecks, 4);
  assert.equal(await auth.verify(ID, "s3cret", stored), true);
  assert.equal(auth.slowChecks, 4, "the good pair is still cached");
});

test("WorkerAuth: re-registration (a new stored hash) or forget() invalidates the cached pair", async () => {
  const v = manualVerifier();
  const auth = new WorkerAuth({ verifySecret: v.fn });
  const check = async (secret: string, stored: string, answer: boolean) => {
    const p = auth.verify(ID, secret, stored);
    await until(() => v.calls.length > 0);
    const call = v.calls.shift()!;
    assert.deepEqual([call.secret, call.stored], [secret, stored]);
    call.resolve(answer);
    return p;
  };
  assert.equal(await check("old", "H1", true), true);
  assert.equal(await auth.verify(ID, "old", "H1"), true); // cached
  // Re-registered with a new secret: the old secret is checked against the new hash, and fails.
  assert.equal(await check("old", "H2", false), false);
  assert.equal(await check("new", "H2", true), true);
  assert.equal(await auth.verify(ID, "new", "H2"), true);
  auth.forget(ID);
  assert.equal(await check("new", "H2", true), true);
  assert.equal(v.calls.length, 0);

  // A check that was running while the worker re-registered caches only against the hash it checked.
  const racing = auth.verify(ID, "x", "H3");
  await until(() => v.calls.length === 1);
  auth.forget(ID);
  v.calls.shift()!.resolve(true);
  assert.equal(await racing, true);
  assert.equal(await check("x", "H4", false), false, "the entry for H3 does not vouch for H4");
});

test("WorkerAuth: the cache is bounded (least recently used out) and so is the queue of slow checks", async () => {
  const v = manualVerifier();
  const auth = new WorkerAuth({ verifySecret: v.fn, maxCached: 2, maxConcurrent: 1, maxWaiting: 1 });
  const ids = ["a", "b", "c"].map((c) => c.repeat(24));
  for (const id of ids) {
    const p = auth.verify(id, "s", "H");
    await until(() => v.calls.length === 1);
    v.calls.shift()!.resolve(true);
    assert.equal(await p, true);
  }
  assert.equal(auth.cached, 2);
  assert.equal(await auth.verify(ids[2]!, "s", "H"), true);
  assert.equal(await auth.verify(ids[1]!, "s", "H"), true);
  assert.equal(v.calls.length, 0);
  const evicted = auth.verify(ids[0]!, "s", "H");
  await until(() => v.calls.length === 1);
  // One running, one waiting, the third is refused at once.
  const waiting = auth.verify("d".repeat(24), "s", "H");
  await assert.rejects(auth.verify("e".repeat(24), "s", "H"), AuthBusyError);
  v.calls.shift()!.resolve(true);
  assert.equal(await evicted, true);
  await until(() => v.calls.length === 1);
  v.calls.shift()!.resolve(false);
  assert.equal(await waiting, false);
});

test("parseBasicAuth is strict", () => {
  assert.deepEqual(parseBasicAuth(basic(`${ID}:s3:cr:et`)), { id: ID, secret: "s3:cr:et" });
  assert.deepEqual(parseBasicAuth(`basic ${Buffer.from("i:").toString("base64")}`), { id: "i", secret: "" });
  for (const bad of [undefined, "", "Basic", "Basic ", "Bearer abc", basic("no-colon"), basic(":secret"), basic("a\nb:c"),
    `Basic ${Buffer.from("a:b").toString("base64url")}x`, "Basic YTpi=", "Basic YTpiYw", "Basic YTpiYw==x", "Basic YTpj YTpj",
    `Basic ${Buffer.from([0x61, 0x3a, 0xff]).toString("base64")}`, basic("a:" + "x".repeat(5000)), "Basic YTpiZX==" /* spare bits set */]) {
    assert.equal(parseBasicAuth(bad), undefined, String(bad));
  }
});

test("fuzz: parseBasicAuth on 10,000 mutated headers never throws; what it accepts is exactly what was encoded", () => {
  const rand = intRng(0xba51c);
  const good = basic(`${ID}:secret-value`);
  const pieces = ["=", "==", ":", " ", "Basic ", "+", "/", "-", "_", "\0", "Og"];
  for (let i = 0; i < 10_000; i++) {
    let buf: Buffer = Buffer.from(good, "latin1");
    for (let e = 1 + rand(3); e > 0; e--) buf = mutate(buf, rand, pieces);
    const header = buf.toString("latin1");
    const r = parseBasicAuth(header);
    if (r) {
      const encoded = header.trim().slice(6);
      assert.equal(Buffer.from(`${r.id}:${r.secret}`).toString("base64"), encoded, header);
      assert.ok(r.id.length > 0 && !r.id.includes(":"));
    }
  }
});

test("ensureKeyPair: a P-256 pair at first start, private 0600; kept later; a lost public key or loose mode is repaired", async (t) => {
  const state = await tmp(t);
  const restore = setLogSink(() => {});
  t.after(restore);
  const priv = join(state, JWT_DIR, PRIVATE_KEY_FILE);
  const pub = join(state, JWT_DIR, PUBLIC_KEY_FILE);
  assert.deepEqual(await ensureKeyPair(state), { created: true });
  assert.equal((await stat(priv)).mode & 0o777, 0o600);
  assert.equal((await stat(pub)).mode & 0o777, 0o644);
  const key = createPrivateKey(await readFile(priv));
  assert.equal(key.asymmetricKeyDetails?.namedCurve, "prime256v1");
  const pubPem = await readFile(pub, "utf8");
  assert.equal(createPublicKey(key).export({ type: "spki", format: "pem" }), pubPem);

  assert.deepEqual(await ensureKeyPair(state), { created: false });
  assert.equal(await readFile(pub, "utf8"), pubPem);
  await unlink(pub);
  await chmod(priv, 0o644);
  assert.deepEqual(await ensureKeyPair(state), { created: false });
  assert.equal(await readFile(pub, "utf8"), pubPem);
  assert.equal((await stat(priv)).mode & 0o777, 0o600);
  assert.deepEqual((await readdir(join(state, JWT_DIR))).sort(), [PRIVATE_KEY_FILE, PUBLIC_KEY_FILE].sort(), "no temp files left");
});

test("loadUserKeys: every *-public*.pem of the state dir and the extra dir; others and broken ones are skipped", async (t) => {
  const state = await tmp(t);
  const extra = await tmp(t);
  const lines: string[] = [];
  t.after(setLogSink((l) => lines.push(l)));
  await ensureKeyPair(state);
  const other = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  await writeFile(join(extra, "alice-public.pem"), other.publicKey.export({ type: "spki", format: "pem" }));
  await writeFile(join(extra, "bob-public-2024.pem"), "not a key");
  await writeFile(join(extra, "rsa-public.pem"), generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ type: "spki", format: "pem" }));
  await writeFile(join(extra, "carol.pem"), generateKeyPairSync("ec", { namedCurve: "prime256v1" }).publicKey.export({ type: "spki", format: "pem" }));
  await mkdir(join(extra, "dir-public.pem"));
  const keys = await loadUserKeys(state, extra);
  assert.equal(keys.length, 2);
  const token = signEs256({ sub: "alice", exp: Date.now() / 1000 + 60 }, other.privateKey);
  assert.deepEqual(userFromRequest(`Bearer ${token}`, undefined, keys), { ok: true, subject: "alice", via: "bearer" });
  assert.ok(lines.some((l) => /not ES256/.test(l) && /rsa-public/.test(l)));
  assert.ok(lines.some((l) => /cannot load/.test(l) && /bob-public-2024/.test(l)));
  assert.equal((await loadUserKeys(state, join(extra, "missing"))).length, 1);
  assert.equal((await loadUserKeys(state)).length, 1);
});

test("mintUserToken and userFromRequest: Bearer or cookie jwtToken; 401 missing/bad, 498 expired", async (t) => {
  const state = await tmp(t);
  t.after(setLogSink(() => {}));
  await assert.rejects(mintUserToken(state, { subject: "root", ttlSecs: 60 }), { code: "ENOENT" });
  await ensureKeyPair(state);
  const keys = await loadUserKeys(state);
  const now = Date.now();
  const token = await mintUserToken(state, { subject: "root@host", ttlSecs: 300, nowMs: now });
  const ok = { ok: true, subject: "root@host", via: "bearer" };
  const viaCookie = { ...ok, via: "cookie" }; // the manager CSRF-checks changes that ride on the cookie
  assert.deepEqual(userFromRequest(`Bearer ${token}`, undefined, keys, now), ok);
  assert.deepEqual(userFromRequest(`bearer  ${token}`, undefined, keys, now), ok);
  assert.deepEqual(userFromRequest(undefined, `a=b; jwtToken=${token}; c=d`, keys, now), viaCookie);
  assert.deepEqual(userFromRequest(undefined, `jwtToken="${token}"`, keys, now), viaCookie);
  assert.deepEqual(userFromRequest(basic("u:p"), `jwtToken=${token}`, keys, now), viaCookie, "another scheme falls through to the cookie");

  const status = (a: string | undefined, c: string | undefined, at = now) => {
    const r = userFromRequest(a, c, keys, at);
    return r.ok ? 200 : r.status;
  };
  assert.equal(status(undefined, undefined), 401);
  assert.equal(status(undefined, "other=1"), 401);
  assert.equal(status("Bearer", `jwtToken=${token}`), 401, "a Bearer header is final");
  assert.equal(status(`Bearer ${token}x`, `jwtToken=${token}`), 401);
  assert.equal(status(`Bearer ${token}`, undefined, now + 400_000), 498);
  assert.equal(status(undefined, `jwtToken=${token}`, now + 400_000), 498);
  const stranger = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  assert.equal(status(`Bearer ${signEs256({ sub: "eve", exp: now / 1000 + 60 }, stranger.privateKey)}`, undefined), 401);
  const priv = await readFile(join(state, JWT_DIR, PRIVATE_KEY_FILE), "utf8");
  for (const sub of [undefined, "", " ", "a\r\nX-Admin: 1", "é", 7, "x".repeat(257)]) {
    assert.equal(status(`Bearer ${signEs256({ sub: sub as string, exp: now / 1000 + 60 }, priv)}`, undefined), 401, JSON.stringify(sub));
  }
  await assert.rejects(mintUserToken(state, { subject: "a\nb", ttlSecs: 60 }), RangeError);
  await assert.rejects(mintUserToken(state, { subject: "root", ttlSecs: 0 }), RangeError);
  await assert.rejects(mintUserToken(state, { subject: "root", ttlSecs: 1.5 }), RangeError);
  await assert.rejects(mintUserToken(state, { subject: "root", ttlSecs: 400 * 86400 }), RangeError);
});
