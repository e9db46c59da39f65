// The hand-made DER: the CSR verifies with `openssl req -verify`, the TLS-ALPN-01 certificate
// parses with its SAN and the critical acmeIdentifier extension; JWS thumbprint per RFC 7638.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate, createHash } from "node:crypto";
import { buildAlpnCert, buildCsr, pem } from "../../src/proxy/acme/der.js";
import { newKey } from "../../src/proxy/acme/client.js";
import { thumbprint } from "../../src/proxy/acme/jws.js";

test("CSR verifies with openssl and names the host in CN and SAN", () => {
  const { privateKey, publicKey } = newKey();
  for (const host of ["a.example.test", `${"x".repeat(63)}.${"y".repeat(40)}.example.test`]) {
    const csr = pem("CERTIFICATE REQUEST", buildCsr([host], privateKey, publicKey));
    const out = execFileSync("openssl", ["req", "-verify", "-noout", "-text"], { input: csr, encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
    assert.match(out, new RegExp(`DNS:${host.replace(/\./g, "\\.")}`));
    if (host.length <= 64) assert.match(out, new RegExp(`CN ?= ?${host.replace(/\./g, "\\.")}`));
  }
});

test("TLS-ALPN-01 certificate: SAN and acmeIdentifier = SHA-256(key authorization)", () => {
  const { privateKey, publicKey } = newKey();
  const der = buildAlpnCert("b.example.test", "tok.thumb", privateKey, publicKey);
  const x = new X509Certificate(der);
  assert.equal(x.subjectAltName, "DNS:b.example.test");
  assert.ok(x.verify(publicKey));
  const text = execFileSync("openssl", ["x509", "-noout", "-text"], { input: pem("CERTIFICATE", der), encoding: "utf8" });
  assert.match(text, /1\.3\.6\.1\.5\.5\.7\.1\.31: critical/);
  const digest = createHash("sha256").update("tok.thumb").digest();
  assert.ok(der.includes(Buffer.concat([Buffer.from([0x04, 0x22, 0x04, 0x20]), digest])), "extnValue is OCTET STRING(OCTET STRING(digest))");
});

test("JWK thumbprint matches RFC 7638 §3.1 style canonical form", () => {
  const jwk = { crv: "P-256", kty: "EC", x: "a", y: "b" };
  assert.equal(thumbprint(jwk), createHash("sha256").update('{"crv":"P-256","kty":"EC","x":"a","y":"b"}').digest("base64url"));
});
