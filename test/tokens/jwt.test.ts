import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHmac, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { signEs256, signHs256, verifyEs256, verifyHs256, MAX_TOKEN_BYTES, CLOCK_SKEW_SECS, type JwtResult } from "../../src/tokens/index.js";
import { intRng, mutate } from "../helpers/random.js";

const NOW = Date.UTC(2026, 0, 1);
const nowSecs = NOW / 1000;
const b64 = (v: unknown) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");
const hsToken = (header: unknown, claims: unknown, secret: string) => {
  const input = `${b64(header)}.${b64(claims)}`;
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
};
const p256 = () => generateKeyPairSync("ec", { namedCurve: "prime256v1" });

function assertInvalid(r: JwtResult, re?: RegExp) {
  assert.equal(r.ok, false, JSON.stringify(r));
  if (!r.ok) {
    assert.equal(r.reason, "invalid");
    if (re) assert.match(r.message, re);
  }
}

test("HS256: a known token from another implementation verifies; float exp and iat are accepted", () => {
  // jwt.io's example, signed with "your-256-bit-secret" (it has no exp).
  const known = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
  const r = verifyHs256(known, "your-256-bit-secret", NOW, { requireExp: false });
  assert.deepEqual(r, { ok: true, claims: { sub: "1234567890", name: "John Doe", iat: 1516239022 } });
  assertInvalid(verifyHs256(known, "your-256-bit-secret", NOW), /no exp/);
  assertInvalid(verifyHs256(known, "another-secret", NOW, { requireExp: false }), /bad signature/);

  const floats = hsToken({ alg: "HS256", typ: "JWT" }, { exp: nowSecs + 1.5, iat: nowSecs - 0.25 }, "s3cret");
  assert.equal(verifyHs256(floats, "s3cret", NOW).ok, true);
  assert.equal(verifyHs256(signHs256({ exp: nowSecs + 10 }, "s3cret"), "s3cret", NOW).ok, true);
  assertInvalid(verifyHs256(floats, "", NOW), /no secret/);
});

test("HS256: the MAC matches openssl's", () => {
  const token = signHs256({ exp: nowSecs + 60, sub: "w" }, "k3y");
  const input = token.slice(0, token.lastIndexOf("."));
  const mac = execFileSync("openssl", ["dgst", "-sha256", "-hmac", "k3y", "-binary"], { input });
  assert.equal(token.slice(token.lastIndexOf(".") + 1), mac.toString("base64url"));
});

test("the alg header is checked strictly: no none, no other case, no algorithm confusion", () => {
  const claims = { exp: nowSecs + 60 };
  const { privateKey, publicKey } = p256();
  const pem = publicKey.export({ type: "spki", format: "pem" }) as string;
  assertInvalid(verifyHs256(`${b64({ alg: "none" })}.${b64(claims)}.`, "s", NOW), /algorithm/);
  assertInvalid(verifyHs256(`${b64({ alg: "none" })}.${b64(claims)}.${b64("x")}`, "s", NOW), /algorithm/);
  assertInvalid(verifyHs256(hsToken({ alg: "hs256" }, claims, "s"), "s", NOW), /algorithm/);
  assertInvalid(verifyHs256(hsToken({ typ: "JWT" }, claims, "s"), "s", NOW), /algorithm/);
  assertInvalid(verifyHs256(hsToken({ alg: ["HS256"] }, claims, "s"), "s", NOW), /algorithm/);
  // The classic confusion: an HS256 token MACed with the public key's PEM, offered as a user token.
  assertInvalid(verifyEs256(hsToken({ alg: "HS256" }, claims, pem), [publicKey], NOW), /algorithm/);
  assertInvalid(verifyEs256(`${b64({ alg: "none" })}.${b64(claims)}.`, [publicKey], NOW), /algorithm/);
  // And an ES256 token is no registration token.
  assertInvalid(verifyHs256(signEs256(claims, privateKey), "s", NOW), /algorithm/);
  // typ, when present, says JWT; crit is refused.
  assertInvalid(verifyHs256(hsToken({ alg: "HS256", typ: "JOSE+JSON" }, claims, "s"), "s", NOW), /typ/);
  assert.equal(verifyHs256(hsToken({ alg: "HS256", typ: "jwt" }, claims, "s"), "s", NOW).ok, true);
  assertInvalid(verifyHs256(hsToken({ alg: "HS256", crit: ["b64"], b64: false }, claims, "s"), "s", NOW), /critical/);
});

test("time claims: expired is its own outcome (after the skew), nbf and iat in the future are invalid", () => {
  const t = (claims: Record<string, unknown>) => verifyHs256(hsToken({ alg: "HS256" }, claims, "s"), "s", NOW);
  assert.equal(t({ exp: nowSecs - CLOCK_SKEW_SECS + 1 }).ok, true); // within the allowance
  assert.deepEqual(t({ exp: nowSecs - CLOCK_SKEW_SECS }), { ok: false, reason: "expired", message: "token expired" });
  assert.deepEqual(t({ exp: nowSecs - 3600.5 }), { ok: false, reason: "expired", message: "token expired" });
  assertInvalid(t({ exp: nowSecs + 60, nbf: nowSecs + CLOCK_SKEW_SECS + 1 }), /nbf/);
  assert.equal(t({ exp: nowSecs + 60, nbf: nowSecs + CLOCK_SKEW_SECS - 1 }).ok, true);
  assertInvalid(t({ exp: nowSecs + 600, iat: nowSecs + 300 }), /iat/);
  for (const bad of ["1", null, true, [1], {}]) assertInvalid(t({ exp: bad }), /exp must be a number/);
  assertInvalid(t({ exp: nowSecs + 60, nbf: "0" }), /nbf must be a number/);
  assertInvalid(t({ exp: nowSecs + 60, sub: 7 }), /sub must be a string/);
  // A forged expired token is "invalid", never "expired": the signature is checked first.
  assertInvalid(verifyHs256(hsToken({ alg: "HS256" }, { exp: 1 }, "other"), "s", NOW), /signature/);
});

test("structure: bounded length, three parts, strict canonical base64url, JSON objects", () => {
  const ok = signHs256({ exp: nowSecs + 60 }, "s");
  assert.equal(verifyHs256(ok, "s", NOW).ok, true);
  assertInvalid(verifyHs256(signHs256({ exp: nowSecs + 60, pad: "x".repeat(MAX_TOKEN_BYTES) }, "s"), "s", NOW), /longer/);
  for (const bad of [undefined, "", 42, "a.b", "a.b.c.d", ok + ".", `${ok}=`, ok.replace(".", ".."), ` ${ok}`]) assertInvalid(verifyHs256(bad, "s", NOW));
  // A last character whose spare bits are set decodes to the same bytes in lenient decoders; refused here.
  const sig = ok.slice(ok.lastIndexOf(".") + 1); // 43 chars: the last carries 2 spare bits
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const last = alphabet.indexOf(sig.at(-1)!);
  const sloppy = ok.slice(0, -1) + alphabet[last | 1];
  assert.notEqual(sloppy, ok);
  assert.deepEqual(Buffer.from(sloppy.slice(sloppy.lastIndexOf(".") + 1), "base64url"), Buffer.from(sig, "base64url"));
  assertInvalid(verifyHs256(sloppy, "s", NOW), /base64url/);
  const input = (payload: string) => { const h = b64({ alg: "HS256" }); const i = `${h}.${payload}`; return `${i}.${createHmac("sha256", "s").update(i).digest("base64url")}`; };
  assertInvalid(verifyHs256(input(b64("[1]")), "s", NOW), /JSON object/);
  assertInvalid(verifyHs256(input(b64("{")), "s", NOW), /JSON object/);
  assertInvalid(verifyHs256(input(Buffer.from([0x7b, 0xff, 0x7d]).toString("base64url")), "s", NOW), /JSON object/);
});

test("ES256: sign and verify with several trusted keys; wrong and non-P-256 keys do not verify", () => {
  const a = p256();
  const b = p256();
  const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 });
  const p384 = generateKeyPairSync("ec", { namedCurve: "secp384r1" });
  const token = signEs256({ sub: "alice", exp: nowSecs + 60 }, a.privateKey);
  const sig = Buffer.from(token.split(".")[2]!, "base64url");
  assert.equal(sig.length, 64); // raw r||s, not DER
  assert.deepEqual(verifyEs256(token, [rsa.publicKey, p384.publicKey, b.publicKey, a.publicKey], NOW), { ok: true, claims: { sub: "alice", exp: nowSecs + 60 } });
  assertInvalid(verifyEs256(token, [b.publicKey, rsa.publicKey, p384.publicKey], NOW), /signature/);
  assertInvalid(verifyEs256(token, [], NOW), /signature/);
  // Also from a PEM string.
  const pem = a.privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  assert.equal(verifyEs256(signEs256({ exp: nowSecs + 60 }, pem), [a.publicKey], NOW).ok, true);
  assert.throws(() => signEs256({}, p384.privateKey), /P-256/);
  assert.throws(() => signEs256({}, a.publicKey), /P-256/);
  const expired = signEs256({ sub: "alice", exp: nowSecs - 3600 }, a.privateKey);
  assert.equal((verifyEs256(expired, [a.publicKey], NOW) as { reason: string }).reason, "expired");
  assertInvalid(verifyEs256(expired, [b.publicKey], NOW), /signature/);
});

// ---- openssl cross-checks: DER <-> JOSE raw signatures ----

function derToRaw(der: Buffer): Buffer {
  // SEQUENCE { INTEGER r, INTEGER s }, short lengths (P-256 signatures are < 128 bytes).
  assert.equal(der[0], 0x30);
  let at = 2;
  const ints: Buffer[] = [];
  for (let i = 0; i < 2; i++) {
    assert.equal(der[at], 0x02);
    const len = der[at + 1]!;
    let n = der.subarray(at + 2, at + 2 + len);
    while (n.length > 32 && n[0] === 0) n = n.subarray(1);
    ints.push(Buffer.concat([Buffer.alloc(32 - n.length), n]));
    at += 2 + len;
  }
  return Buffer.concat(ints);
}

function rawToDer(raw: Buffer): Buffer {
  const int = (b: Buffer) => {
    let n = b;
    while (n.length > 1 && n[0] === 0 && n[1]! < 0x80) n = n.subarray(1);
    if (n[0]! >= 0x80) n = Buffer.concat([Buffer.from([0]), n]);
    return Buffer.concat([Buffer.from([0x02, n.length]), n]);
  };
  const body = Buffer.concat([int(raw.subarray(0, 32)), int(raw.subarray(32))]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

test("ES256 against openssl: our tokens verify with openssl, openssl's signatures verify with us", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-jwt-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const keyFile = join(dir, "key.pem");
  const pubFile = join(dir, "pub.pem");
  execFileSync("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", keyFile]);
  execFileSync("openssl", ["ec", "-in", keyFile, "-pubout", "-out", pubFile], { stdio: "ignore" });
  const keyPem = await readFile(keyFile, "utf8");
  const publicKey: KeyObject = createPublicKey(await readFile(pubFile, "utf8"));

  for (let i = 0; i < 5; i++) {
    // Ours, checked by openssl.
    const token = signEs256({ sub: `user${i}`, exp: nowSecs + 60 }, keyPem);
    const [h, p, s] = token.split(".") as [string, string, string];
    await writeFile(join(dir, "in"), `${h}.${p}`);
    await writeFile(join(dir, "sig.der"), rawToDer(Buffer.from(s, "base64url")));
    const out = execFileSync("openssl", ["dgst", "-sha256", "-verify", pubFile, "-signature", join(dir, "sig.der"), join(dir, "in")]).toString();
    assert.match(out, /Verified OK/);
    assert.equal(verifyEs256(token, [publicKey], NOW).ok, true);

    // openssl's, checked by us.
    const input = `${b64({ alg: "ES256", typ: "JWT" })}.${b64({ sub: `o${i}`, exp: nowSecs + 60 })}`;
    await writeFile(join(dir, "in"), input);
    const der = execFileSync("openssl", ["dgst", "-sha256", "-sign", keyFile, join(dir, "in")]);
    const raw = derToRaw(der);
    assert.deepEqual(rawToDer(raw), der);
    const theirs = `${input}.${raw.toString("base64url")}`;
    assert.deepEqual(verifyEs256(theirs, [publicKey], NOW), { ok: true, claims: { sub: `o${i}`, exp: nowSecs + 60 } });
    // The DER form itself is not a JOSE signature.
    assertInvalid(verifyEs256(`${input}.${der.toString("base64url")}`, [publicKey], NOW), /signature/);
  }
});

test("fuzz: 10,000+ mutated tokens per algorithm never throw and are never accepted", () => {
  const rand = intRng(0x5eed);
  const { privateKey, publicKey } = p256();
  const pieces = [".", "..", "=", "+", "/", "-", "_", "A", "eyJ", "\0", "%2E", "e30", "bm9uZQ", " "];
  const cases: [string, (tok: string) => JwtResult][] = [
    [signHs256({ sub: "w", exp: nowSecs + 60, iat: nowSecs }, "s3cret"), (tok) => verifyHs256(tok, "s3cret", NOW)],
    [signEs256({ sub: "alice", exp: nowSecs + 60 }, privateKey), (tok) => verifyEs256(tok, [publicKey], NOW)],
  ];
  for (const [good, check] of cases) {
    assert.equal(check(good).ok, true);
    let tried = 0;
    while (tried < 10_000) {
      let buf: Buffer = Buffer.from(good, "latin1");
      for (let edits = 1 + rand(3); edits > 0; edits--) buf = mutate(buf, rand, pieces);
      const tok = buf.toString("latin1");
      if (tok === good) continue;
      tried++;
      let r: JwtResult;
      try {
        r = check(tok);
      } catch (err) {
        assert.fail(`threw on ${JSON.stringify(tok)}: ${String(err)}`);
      }
      assert.equal(r.ok, false, `accepted mutated token ${JSON.stringify(tok)}`);
    }
  }
});
