// check-config's file checks (certificates and keys as the daemon loads them, ACME roots and account key), line order, -t and --print.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { generateKeyPairSync } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { caProblems, checkFiles, checkAcmeState, parseConfig, printConfig, ConfigError, KEYS } from "../../src/config/index.js";
import { BUNDLE } from "../helpers/daemon.js";
import { intRng, mutate } from "../helpers/random.js";

let dir: string;
const pem = (tag: string) => ({ cert: join(dir, `${tag}.crt`), key: join(dir, `${tag}.key`) });
before(() => {
  dir = mkdtempSync(join(tmpdir(), "stevedore-check-"));
  for (const tag of ["a", "b"])
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", pem(tag).key, "-out", pem(tag).cert, "-days", "2", "-subj", `/CN=${tag}.example.com`], { stdio: "ignore" });
  writeFileSync(join(dir, "garbage.pem"), "not pem\n");
});
after(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BUNDLE, ...args], { env: { ...process.env, STEVEDORE_CONFIG: "" } });
    let stdout = "", stderr = "";
    p.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    p.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    p.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

test("checkFiles: matching pair ok; missing, not PEM, mismatched key are errors with their line; expiry is a warning", () => {
  const a = pem("a"), b = pem("b");
  assert.deepEqual(checkFiles(`core_tls_cert = "${a.cert}"\ncore_tls_key = "${a.key}"\n`, "f.conf"), { errors: [], warnings: [] });
  const text = [
    `manager_tls_cert = "${a.cert}"`,
    `manager_tls_key = "${b.key}"`,
    `proxy_default_cert = "${join(dir, "none.crt")}"`,
    `proxy_default_key = "${join(dir, "garbage.pem")}"`,
    "[[site]]",
    'hostname = "x.example.com"',
    'backends = ["127.0.0.1:1"]',
    `tls_cert = "${join(dir, "garbage.pem")}"`,
    `tls_key = "${a.key}"`,
  ].join("\n");
  const r = checkFiles(text, "f.conf");
  assert.deepEqual(r.errors, [
    `f.conf:2: manager_tls_key ${b.key} does not match the certificate ${a.cert}`,
    `f.conf:3: proxy_default_cert ${join(dir, "none.crt")} does not exist`,
    `f.conf:4: proxy_default_key ${join(dir, "garbage.pem")} is not a PEM private key`,
    `f.conf:8: tls_cert ${join(dir, "garbage.pem")} is not a PEM certificate`,
  ]);
  assert.deepEqual(r.warnings, []);
  const later = checkFiles(`core_tls_cert = "${a.cert}"\ncore_tls_key = "${a.key}"\n`, "f.conf", Date.now() + 10 * 86400_000);
  assert.deepEqual(later.errors, []);
  assert.match(later.warnings[0]!, /^f\.conf:1: core_tls_cert \S+a\.crt expired on \d{4}-.*: renew it$/);
});

test("checkFiles: a directory or a FIFO named as a certificate is an error at once (never a hang)", () => {
  const fifo = join(dir, "fifo.pem");
  execFileSync("mkfifo", [fifo]);
  const r = checkFiles(`core_tls_cert = "${dir}"\ncore_tls_key = "${fifo}"\n`, "f.conf");
  assert.deepEqual(r.errors, [`f.conf:1: core_tls_cert ${dir} is not a regular file`, `f.conf:2: core_tls_key ${fifo} is not a regular file`]);
});

test("check-config: an unreadable key file says permission denied and what to do", async () => {
  // root reads every file: the check runs as nobody (setpriv, util-linux) when we are root
  const asNobody = process.getuid?.() === 0 ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : [];
  chmodSync(dir, 0o755);
  const f = join(dir, "secret.key");
  writeFileSync(f, "x");
  chmodSync(f, 0o000);
  const conf = join(dir, "unreadable.conf");
  writeFileSync(conf, `core_tls_cert = "${pem("a").cert}"\ncore_tls_key = "${f}"\n`, { mode: 0o644 });
  chmodSync(pem("a").cert, 0o644);
  const argv = [...asNobody, process.execPath, BUNDLE, "check-config", "--config", conf];
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    // as nobody: no coverage file (c8's directory is root's); empty turns node's hand-down off
    const p = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, STEVEDORE_CONFIG: "", NODE_V8_COVERAGE: "" } });
    let stderr = "";
    p.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    p.stdout.resume();
    p.once("close", (code) => resolve({ code, stderr }));
  });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /:2: core_tls_key \S+ is not readable \(permission denied: run as root/);
});

test("a port out of range says the range; errors come in line order", () => {
  try {
    parseConfig(['proxy_https_listen = "0.0.0.0:70000"', "nope = 1", 'core_listen = "127.0.0.1:99999"', "[[site]]", 'hostname = "a.example.com"', 'backends = ["10.0.0.1:0"]', 'log_level = "x"'].join("\n"), "p.conf", {});
    assert.fail("should throw");
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.deepEqual(err.errors, [
      'p.conf:1: proxy_https_listen must be host:port or "" (port 70000 is out of range: use 1–65535, or 0 for any free port)',
      "p.conf:2: unknown key nope",
      'p.conf:3: core_listen must be host:port or "" (port 99999 is out of range: use 1–65535, or 0 for any free port)',
      'p.conf:4: [[site]] backend "10.0.0.1:0" must be host:port (port 0 is out of range: use 1–65535)',
      "p.conf:7: unknown key log_level in [[site]]",
    ]);
  }
});

test("printConfig: every key with its default, sites as [[site]]; the output parses back to the same config", () => {
  const c = parseConfig('log_level = "debug"\n[[site]]\nhostname = "a.example.com"\nbackends = ["127.0.0.1:1"]\n', "x.conf", {});
  const text = printConfig(c);
  for (const key of Object.keys(KEYS)) assert.match(text, new RegExp(`^${key} = `, "m"));
  assert.match(text, /^log_level = "debug"$/m);
  assert.match(text, /^state_dir = "\/var\/lib\/stevedore"$/m);
  const again = parseConfig(text, "x.conf", {});
  const noLines = (x: typeof c) => ({ ...x, file: "", dynamic: { ...x.dynamic, sites: x.dynamic.sites.map((s) => ({ ...s, line: 0 })) } });
  assert.deepEqual(noLines(again), noLines(c));
});

test("CLI: -t is check-config; cert errors exit 1 in line order; --print prints the effective config", async () => {
  const a = pem("a"), b = pem("b");
  const bad = join(dir, "bad.conf");
  writeFileSync(bad, `nope = 1\ncore_tls_cert = "${a.cert}"\ncore_tls_key = "${b.key}"\nmanager_listen = "127.0.0.1:65536"\n`);
  const r = await cli(["-t", "--config", bad]);
  assert.equal(r.status, 1);
  assert.deepEqual(r.stderr.trimEnd().split("\n"), [
    `stevedore: ${bad}:1: unknown key nope`,
    `stevedore: ${bad}:3: core_tls_key ${b.key} does not match the certificate ${a.cert}`,
    `stevedore: ${bad}:4: manager_listen must be host:port or "" (port 65536 is out of range: use 1–65535, or 0 for any free port)`,
  ]);
  const good = join(dir, "good.conf");
  writeFileSync(good, `core_tls_cert = "${a.cert}"\ncore_tls_key = "${a.key}"\n`);
  assert.deepEqual(await cli(["-t", "--config", good]), { status: 0, stdout: "ok\n", stderr: "" });
  const p = await cli(["check-config", "--print", "--config", good]);
  assert.equal(p.status, 0, p.stderr);
  assert.match(p.stdout, new RegExp(`^core_tls_key = "${a.key.replace(/[.]/g, "\\.")}"$`, "m"));
  assert.match(p.stdout, /^admin_socket_path = "\/run\/stevedore\/admin\.sock"$/m);
  assert.match(p.stdout, /^shaman_gc_period_secs = 86400$/m);
});

test("acme_ca_file: missing, not PEM, a broken certificate are errors with the line; an expired root a warning", () => {
  const a = pem("a"), b = pem("b");
  const both = join(dir, "roots.pem");
  writeFileSync(both, readFileSync(a.cert, "utf8") + readFileSync(b.cert, "utf8"));
  assert.deepEqual(checkFiles(`acme_ca_file = "${both}"\n`, "f.conf"), { errors: [], warnings: [] });
  assert.deepEqual(checkFiles('acme_ca_file = ""\n', "f.conf"), { errors: [], warnings: [] });
  const broken = join(dir, "broken-ca.pem");
  writeFileSync(broken, readFileSync(a.cert, "utf8") + "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
  const at = (f: string) => `log_level = "info"\nacme_ca_file = "${f}"\n`;
  assert.deepEqual(checkFiles(at(join(dir, "none.pem")), "f.conf").errors, [`f.conf:2: acme_ca_file ${join(dir, "none.pem")} does not exist`]);
  assert.deepEqual(checkFiles(at(join(dir, "garbage.pem")), "f.conf").errors, [`f.conf:2: acme_ca_file ${join(dir, "garbage.pem")} holds no PEM certificate`]);
  assert.deepEqual(checkFiles(at(a.key), "f.conf").errors, [`f.conf:2: acme_ca_file ${a.key} holds no PEM certificate`]);
  assert.deepEqual(checkFiles(at(broken), "f.conf").errors, [`f.conf:2: acme_ca_file ${broken}: certificate 2 is not a valid PEM certificate`]);
  assert.deepEqual(checkFiles(at(dir), "f.conf").errors, [`f.conf:2: acme_ca_file ${dir} is not a regular file`]);
  const later = checkFiles(at(both), "f.conf", Date.now() + 10 * 86400_000);
  assert.deepEqual(later.errors, []);
  assert.equal(later.warnings.length, 2);
  assert.match(later.warnings[0]!, /^f\.conf:2: acme_ca_file \S+: certificate 1 \(CN=a\.example\.com\) expired on \d{4}-/);
});

test("acme_directory_url: https, or http only to this host", () => {
  const url = (u: string) => parseConfig(`acme_directory_url = "${u}"\n`, "u.conf", {}).dynamic.acme_directory_url;
  for (const ok of ["https://acme.example.org/directory", "https://127.0.0.1:14000/dir", "http://127.0.0.1:4001/dir", "http://localhost/dir", "http://[::1]:4001/dir"])
    assert.equal(url(ok), ok);
  for (const bad of ["http://acme.example.org/directory", "http://127.0.0.2/dir", "ftp://x/", "https://", "acme.example.org", "https://u:p@acme.example.org/", "https://a b/"])
    assert.throws(() => url(bad), (e: unknown) => e instanceof ConfigError && e.errors[0] === 'u.conf:1: acme_directory_url must be an https:// URL (http:// only on 127.0.0.1, [::1] or localhost)', bad);
});

test("checkAcmeState: with acme on, a corrupt or non-P-256 account key is an error; a missing one is fine", () => {
  const state = join(dir, "state");
  mkdirSync(join(state, "acme"), { recursive: true });
  const keyFile = join(state, "acme", "account.key");
  const conf = (acme: boolean) => parseConfig(`state_dir = "${state}"\nacme = ${acme}\nproxy_https_listen = "127.0.0.1:0"\n`, "s.conf", {});
  const run = (acme = true) => { const out = { errors: [] as string[], warnings: [] as string[] }; checkAcmeState(conf(acme), out); return out; };
  assert.deepEqual(run(), { errors: [], warnings: [] }, "missing: made at the first order");
  writeFileSync(keyFile, readFileSync(pem("a").key));
  assert.deepEqual(run(), { errors: [], warnings: [] }, "a P-256 key");
  const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({ format: "pem", type: "pkcs8" });
  for (const bad of ["garbage\n", rsa]) {
    writeFileSync(keyFile, bad);
    assert.deepEqual(run().errors, [`the ACME account key ${keyFile} is not a PEM P-256 private key: move it away and a new account is made at the first order`]);
    assert.deepEqual(run(false), { errors: [], warnings: [] }, "acme off: not loaded");
  }
});

test("CLI: -t reports a bad acme_ca_file with its line", async () => {
  const conf = join(dir, "acme.conf");
  writeFileSync(conf, `log_level = "info"\n\nacme_ca_file = "${join(dir, "garbage.pem")}"\n`);
  const r = await cli(["-t", "--config", conf]);
  assert.equal(r.status, 1);
  assert.equal(r.stderr, `stevedore: ${conf}:3: acme_ca_file ${join(dir, "garbage.pem")} holds no PEM certificate\n`);
});

test("caProblems: 10,000 mutated PEM bundles give errors or none, never a throw", () => {
  const seed = Buffer.concat([readFileSync(pem("a").cert), readFileSync(pem("b").cert)]);
  const rand = intRng(14);
  const pieces = ["-----BEGIN CERTIFICATE-----\n", "-----END CERTIFICATE-----\n", "-", "\n", "=", "MII", "\0"];
  let buf: Buffer = seed;
  const seen = { ok: 0, bad: 0 };
  for (let i = 0; i < 10_000; i++) {
    buf = i % 10 === 0 ? seed : mutate(buf, rand, pieces);
    const r = caProblems(buf, Date.now());
    seen[r.errors.length ? "bad" : "ok"]++;
    for (const e of r.errors) assert.match(e, /^( holds no PEM certificate|: certificate \d+ is not a valid PEM certificate)$/);
  }
  assert.ok(seen.ok > 100 && seen.bad > 100, JSON.stringify(seen));
});
