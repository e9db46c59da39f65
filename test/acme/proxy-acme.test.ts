// In-process: stored ACME certificates are served at start; hand-installed certificates win over
// them (command socket and [[site]] tls_cert); the 308 redirect and its per-host switch (site key, ingress label); the challenge path ahead of routes; check-config.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, mkdir, copyFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:tls";
import { ConfigError, parseConfig } from "../../src/config/index.js";
import { startProxy, FakeState, FakeCatalog, container, get } from "../proxy/helpers.js";
import { parseIngress } from "../../src/catalog/ingress.js";
import { waitFor } from "../helpers/docker.js";
import { makeCert } from "../proxy/command/helpers.js";

/** SHA-256 fingerprint (lower hex, no colons) of the certificate served for `name` */
function servedFingerprint(port: number, name: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = connect({ port, host: "127.0.0.1", servername: name, rejectUnauthorized: false }, () => {
      resolve(s.getPeerCertificate().fingerprint256?.replace(/:/g, "").toLowerCase());
      s.end();
    });
    s.on("error", () => resolve(undefined));
  });
}

test("stored certificates served at start, hand-installed wins, 308 per host, challenge path not redirected", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-acme-proxy-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const certs = join(dir, "state", "acme", "certs");
  await mkdir(certs, { recursive: true });
  const stored: Record<string, string> = {};
  for (const h of ["a.acme.test", "b.acme.test", "c.acme.test"]) {
    const c = await makeCert(dir, [h], h);
    stored[h] = c.fingerprint;
    await copyFile(join(dir, `${h}.crt`), join(certs, `${h}.crt`));
    await copyFile(join(dir, `${h}.key`), join(certs, `${h}.key`));
  }
  const hand = await makeCert(dir, ["c.acme.test"], "hand");
  const state = new FakeState();
  state.certs.set(hand.fingerprint, { fingerprint: hand.fingerprint, certificate: hand.cert, chain: [], key: hand.key, names: ["c.acme.test"] });
  const site = (h: string, extra = "") => `[[site]]\nhostname = "${h}"\nbackends = ["127.0.0.1:9"]\ntls = "auto"\n${extra}\n`;
  const p = await startProxy({
    https: true,
    state,
    // the CA is unreachable: everything here comes from disk, before any ACME traffic
    config: `state_dir = "${join(dir, "state")}"\nacme = true\nacme_directory_url = "https://127.0.0.1:9/dir"\n${site("a.acme.test")}${site("b.acme.test", "https_redirect = false")}${site("c.acme.test")}`,
  });
  t.after(() => p.stop());
  assert.equal(await servedFingerprint(p.httpsPort, "a.acme.test"), stored["a.acme.test"]);
  assert.equal(await servedFingerprint(p.httpsPort, "b.acme.test"), stored["b.acme.test"]);
  assert.equal(await servedFingerprint(p.httpsPort, "c.acme.test"), hand.fingerprint, "the command socket's certificate wins");
  const a = await get(p.httpPort, "a.acme.test", "/p?q");
  assert.equal(a.status, 308);
  assert.equal(a.headers.location, `https://a.acme.test:${p.httpsPort}/p?q`);
  assert.notEqual((await get(p.httpPort, "b.acme.test")).status, 308, "https_redirect = false");
  assert.notEqual((await get(p.httpPort, "a.acme.test", "/.well-known/acme-challenge/x")).status, 308, "never the challenge path");
  const rows = p.proxy.certificates();
  assert.deepEqual(rows.filter((r) => r.host === "c.acme.test").map((r) => r.source), ["command"], "c is not an ACME host");
  assert.equal(rows.find((r) => r.host === "a.acme.test")?.source, "acme");
  const routes = p.proxy.routes();
  assert.deepEqual(routes.find((r) => r.hostname === "a.acme.test")?.protocols, ["http", "https"]);
});

test("ingress label https_redirect=false keeps HTTP; a [[site]] tls_cert on an ingress host wins over the stored ACME certificate", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-acme-proxy-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const certs = join(dir, "state", "acme", "certs");
  await mkdir(certs, { recursive: true });
  const stored: Record<string, string> = {};
  for (const h of ["web.apps.test", "plain.apps.test", "hand.apps.test"]) {
    stored[h] = (await makeCert(dir, [h], h)).fingerprint;
    await copyFile(join(dir, `${h}.crt`), join(certs, `${h}.crt`));
    await copyFile(join(dir, `${h}.key`), join(certs, `${h}.key`));
  }
  const site = await makeCert(dir, ["hand.apps.test"], "site");
  const catalog = new FakeCatalog();
  const p = await startProxy({
    https: true,
    catalog,
    config: `state_dir = "${join(dir, "state")}"\ningress_domain = "apps.test"\nacme = true\nacme_directory_url = "https://127.0.0.1:9/dir"\n` +
      `[[site]]\nhostname = "hand.apps.test"\npath = "/site"\nbackends = ["127.0.0.1:9"]\ntls_cert = "${join(dir, "site.crt")}"\ntls_key = "${join(dir, "site.key")}"\n`,
  });
  t.after(() => p.stop());
  // the labels as a container carries them, parsed by the catalog
  const labelled = (sub: string, extra: Record<string, string> = {}) =>
    container(sub, parseIngress({ "stevedore.ingress.enabled": "true", "stevedore.ingress.subdomain": sub, "stevedore.ingress.port": "9", ...extra }).ingress);
  catalog.set([labelled("web"), labelled("plain", { "stevedore.ingress.https_redirect": "false" }), labelled("hand")]);
  await waitFor("ingress routes", async () => (await get(p.httpPort, "web.apps.test")).status === 308, 5000, 20);
  assert.equal(await servedFingerprint(p.httpsPort, "plain.apps.test"), stored["plain.apps.test"]);
  assert.notEqual((await get(p.httpPort, "plain.apps.test")).status, 308, "https_redirect=false label keeps HTTP served");
  assert.equal(await servedFingerprint(p.httpsPort, "hand.apps.test"), site.fingerprint, "the site's tls_cert wins");
  assert.notEqual((await get(p.httpPort, "hand.apps.test")).status, 308, "no ACME redirect for a hand-installed host");
  const rows = p.proxy.certificates();
  assert.deepEqual(rows.filter((r) => r.host === "hand.apps.test").map((r) => r.source), ["config"]);
  assert.deepEqual(rows.filter((r) => r.source === "acme").map((r) => r.host).sort(), ["plain.apps.test", "web.apps.test"]);
});

test("check-config validates the acme keys", () => {
  const bad = [
    ['acme_directory_url = "ftp://x"', "acme_directory_url"],
    ['acme_email = "not an address"', "acme_email"],
    ['acme_ca_file = "relative.pem"', "acme_ca_file"],
    ['acme_hosts = ["*.wild.test"]', "acme_hosts"],
    ['acme_challenges = ["dns-01"]', "acme_challenges"],
    ["acme_renew_before_days = -1", "acme_renew_before_days"],
    ['acme = true\nproxy_https_listen = ""', "acme"],
    ['[[site]]\nhostname = "x.test"\nbackends = ["127.0.0.1:1"]\ntls = "yes"', "tls"],
    ['[[site]]\nhostname = "*.x.test"\nbackends = ["127.0.0.1:1"]\ntls = "auto"', "tls"],
  ];
  for (const [text, key] of bad) {
    assert.throws(() => parseConfig(text!, "t.conf", {}), (e: unknown) => e instanceof ConfigError && e.message.includes(key!), text);
  }
  const ok = parseConfig('acme = true\nacme_email = "a@b.org"\nacme_hosts = ["ingress", "x.example.org"]\n[[site]]\nhostname = "s.test"\nbackends = ["127.0.0.1:1"]\ntls = "auto"\nhttps_redirect = false', "t.conf", {});
  assert.equal(ok.dynamic.acme, true);
  assert.equal(ok.dynamic.sites[0]!.tls, "auto");
});
