// HTTPS: SNI selection (exact, wildcard, default, none), certificates from the command state,
// config sites and the default; a mismatched key fails the reload.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash, X509Certificate } from "node:crypto";
import { connect, createSecureContext } from "node:tls";
import type { SniIndex } from "../../src/proxy/tls.js";
import { request } from "node:https";
import { backend, startProxy, FakeState, type Backend } from "./helpers.js";
import { run } from "../helpers/docker.js";

let dir = "";
let ok: Backend;
const pem: Record<string, { cert: string; key: string; certPath: string; keyPath: string }> = {};

/** A self-signed certificate made by openssl for `name`. */
async function makeCert(id: string, name: string): Promise<void> {
  const certPath = join(dir, `${id}.crt`);
  const keyPath = join(dir, `${id}.key`);
  await run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", keyPath, "-out", certPath, "-days", "2", "-subj", `/CN=${id}`, "-addext", `subjectAltName=DNS:${name}`]);
  pem[id] = { cert: await readFile(certPath, "utf8"), key: await readFile(keyPath, "utf8"), certPath, keyPath };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "stevedore-tls-"));
  await Promise.all([makeCert("exact", "a.tls.test"), makeCert("wild", "*.tls.test"), makeCert("default", "default.test")]);
  ok = await backend("ok", (req, res) => {
    req.resume();
    res.end(`proto=${req.headers["x-forwarded-proto"]}`);
  });
});
after(async () => {
  await ok.close();
  await rm(dir, { recursive: true, force: true });
});

function fingerprint(certPem: string): string {
  return createHash("sha256").update(new X509Certificate(certPem).raw).digest("hex");
}

/** The CN of the certificate the server presents for `servername` (and the ALPN answer, if asked), or the handshake error. */
function presented(port: number, servername: string | undefined, tls: { ALPNProtocols?: string[]; maxVersion?: "TLSv1.2" } = {}): Promise<string> {
  return new Promise((resolve) => {
    // to an IP address without a servername, node sends no SNI
    const s = connect({ host: "127.0.0.1", port, ...(servername !== undefined ? { servername } : {}), rejectUnauthorized: false, ...tls }, () => {
      const cn = s.getPeerCertificate().subject?.CN;
      const alpn = tls.ALPNProtocols ? ` ${s.alpnProtocol}` : "";
      s.destroy();
      resolve(String(cn) + alpn);
    });
    s.on("error", (e) => resolve(`error: ${e.message}`));
  });
}

function httpsGet(port: number, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, servername: host, headers: { host }, rejectUnauthorized: false, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (c) => (body += c)).on("end", () => resolve({ status: res.statusCode!, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

function stateWithExact(): FakeState {
  const state = new FakeState();
  const fp = fingerprint(pem.exact!.cert);
  state.certs.set(fp, { fingerprint: fp, certificate: pem.exact!.cert, chain: [], key: pem.exact!.key, names: ["a.tls.test"] });
  state.https.push({ appId: "app", hostname: "a.tls.test", pathBegin: "", fingerprint: fp });
  state.backend("app", ok.port);
  return state;
}

const site = (certId: string, keyId = certId) =>
  `[[site]]\nhostname = "*.tls.test"\nbackends = ["127.0.0.1:${ok.port}"]\ntls_cert = "${pem[certId]!.certPath}"\ntls_key = "${pem[keyId]!.keyPath}"\n`;

test("SNI picks the exact certificate, then the wildcard, then the default", async () => {
  const p = await startProxy({
    https: true,
    state: stateWithExact(),
    config: `proxy_default_cert = "${pem.default!.certPath}"\nproxy_default_key = "${pem.default!.keyPath}"\n${site("wild")}`,
  });
  try {
    assert.equal(await presented(p.httpsPort, "a.tls.test"), "exact");
    assert.equal(await presented(p.httpsPort, "A.TLS.test"), "exact");
    assert.equal(await presented(p.httpsPort, "b.tls.test"), "wild");
    assert.equal(await presented(p.httpsPort, "x.b.tls.test"), "default", "a wildcard covers one label");
    assert.equal(await presented(p.httpsPort, "elsewhere.test"), "default");
    const r = await httpsGet(p.httpsPort, "a.tls.test");
    assert.deepEqual(r, { status: 200, body: "proto=https" });
    assert.equal((await httpsGet(p.httpsPort, "b.tls.test")).body, "proto=https", "config site over HTTPS");
  } finally {
    await p.stop();
  }
});

test("a pending TLS-ALPN-01 challenge is served to validators only (TLS 1.3 and 1.2); a renewal keeps the host's certificate for clients", async () => {
  await makeCert("challenge", "a.tls.test");
  await makeCert("challenge-new", "new.tls.test");
  const p = await startProxy({ https: true, state: stateWithExact(), config: `acme = true\nacme_challenges = ["tls-alpn-01"]\n` });
  const contexts = new Map(["a.tls.test", "new.tls.test"].map((h, i) => {
    const id = i ? "challenge-new" : "challenge";
    return [h, createSecureContext({ cert: pem[id]!.cert, key: pem[id]!.key })];
  }));
  (p.proxy as unknown as { sni: SniIndex }).sni.challenge = (name) => contexts.get(name);
  const acme = { ALPNProtocols: ["acme-tls/1"] };
  const http11 = { ALPNProtocols: ["http/1.1"] };
  const tls12 = { maxVersion: "TLSv1.2" as const };
  try {
    // renewal: a.tls.test has its own certificate
    assert.equal(await presented(p.httpsPort, "a.tls.test", acme), "challenge acme-tls/1", "TLS 1.3 validator");
    assert.equal(await presented(p.httpsPort, "a.tls.test", http11), "exact http/1.1", "TLS 1.3 client");
    assert.equal(await presented(p.httpsPort, "a.tls.test"), "exact", "client without ALPN");
    assert.equal(await presented(p.httpsPort, "a.tls.test", { ...http11, ...tls12 }), "exact http/1.1", "TLS 1.2 client");
    assert.match(await presented(p.httpsPort, "a.tls.test", { ...acme, ...tls12 }), /^error: /, "TLS 1.2 validator: refused, never answered with the host's certificate");
    // a first order: nothing else to serve for the host
    assert.equal(await presented(p.httpsPort, "new.tls.test", acme), "challenge-new acme-tls/1");
    assert.equal(await presented(p.httpsPort, "new.tls.test", { ...acme, ...tls12 }), "challenge-new acme-tls/1", "TLS 1.2 validator of a new host");
    assert.match(await presented(p.httpsPort, "new.tls.test", http11), /^error: /, "TLS 1.3 client of a new host: no certificate yet");
    assert.match(await presented(p.httpsPort, "a.tls.test", { ALPNProtocols: ["h2"] }), /^error: /, "no common protocol: a fatal alert, as before");
  } finally {
    await p.stop();
  }
});

test("acme-tls/1 is refused when TLS-ALPN-01 is off", async () => {
  const p = await startProxy({ https: true, state: stateWithExact() });
  (p.proxy as unknown as { sni: SniIndex }).sni.challenge = () => createSecureContext({ cert: pem.exact!.cert, key: pem.exact!.key });
  try {
    assert.match(await presented(p.httpsPort, "a.tls.test", { ALPNProtocols: ["acme-tls/1"] }), /^error: /);
    assert.equal(await presented(p.httpsPort, "a.tls.test", { ALPNProtocols: ["http/1.1"] }), "exact http/1.1");
  } finally {
    await p.stop();
  }
});

test("without a default certificate an unknown name fails the handshake", async () => {
  const p = await startProxy({ https: true, state: stateWithExact() });
  try {
    assert.equal(await presented(p.httpsPort, "a.tls.test"), "exact");
    assert.match(await presented(p.httpsPort, "other.test"), /^error: /);
  } finally {
    await p.stop();
  }
});

test("a reload with a mismatched key fails and changes nothing; a good reload swaps certificates", async () => {
  const p = await startProxy({ https: true, state: new FakeState(), config: site("wild") });
  try {
    assert.equal(await presented(p.httpsPort, "b.tls.test"), "wild");
    const errors = await p.reload(site("wild", "default"));
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /private key does not match the certificate/);
    assert.doesNotMatch(errors[0]!, /BEGIN/, "no key material in errors");
    assert.equal(await presented(p.httpsPort, "b.tls.test"), "wild");
    const missing = await p.reload(`[[site]]\nhostname = "x.test"\nbackends = ["127.0.0.1:1"]\ntls_cert = "${dir}/nope.crt"\ntls_key = "${dir}/nope.key"\n`);
    assert.match(missing.join(";"), /ENOENT/);
    assert.deepEqual(await p.reload(`proxy_default_cert = "${pem.default!.certPath}"\nproxy_default_key = "${pem.default!.keyPath}"\n`), []);
    assert.equal(await presented(p.httpsPort, "b.tls.test"), "default", "the site and its certificate are gone");
    assert.equal(await presented(p.httpsPort, undefined), "default", "a client without SNI gets the default");
    assert.deepEqual(await p.reload(""), []);
    assert.match(await presented(p.httpsPort, "b.tls.test"), /^error: /, "the default is gone");
    assert.match(await presented(p.httpsPort, undefined), /^error: /, "also for a client without SNI");
  } finally {
    await p.stop();
  }
});
