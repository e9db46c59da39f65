// The admin socket's `help` and `config` (secrets redacted), over the real socket with socat and nc,
// and `stevedore admin` through the bundle.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { BUNDLE, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { parseReply, viaNc, viaSocat, ONLY_ADMIN, NO_DOCKER } from "../helpers/admin.js";
import { redact, REDACTED } from "../../src/admin/index.js";

const SECRET = "s3cr3t-registration-value-9f8e7d";
let d: TestDaemon;
before(async () => {
  d = await startDaemon({
    env: NO_DOCKER,
    disable: [...ONLY_ADMIN],
    config: `log_level = "debug"\nmanager_registration_secret = "${SECRET}"\n[[site]]\nhostname = "a.example.com"\nbackends = ["127.0.0.1:9"]\n`,
  });
});
after(() => d.cleanup());

test("help lists every command of the socket, each with a description", async () => {
  for (const raw of [await viaSocat(d.adminSocket, "help\n"), await viaNc(d.adminSocket, "help\n")]) {
    const r = parseReply(raw);
    assert.equal(r.status, "ok");
    const commands = r.commands as Record<string, string>;
    assert.deepEqual(Object.keys(commands), ["config", "help", "reload", "status"]);
    for (const [name, text] of Object.entries(commands)) assert.ok(text.length > 10, name);
  }
  assert.deepEqual(parseReply(await viaSocat(d.adminSocket, "help me\n")), { status: "error", message: "invalid input" });
});

test("config: the effective config with every default, the live dynamic part, secrets redacted", async () => {
  const raw = await viaSocat(d.adminSocket, "config\n");
  assert.ok(!raw.includes(SECRET), "the registration secret leaks");
  const r = parseReply(raw) as { status: string; file: string; static: Record<string, unknown>; dynamic: Record<string, unknown> };
  assert.equal(r.status, "ok");
  assert.equal(r.file, d.configPath);
  assert.equal(r.static.manager_registration_secret, REDACTED);
  assert.equal(r.static.admin_socket_path, d.adminSocket);
  assert.equal(r.static.core_tls_key, "", "an unset key stays empty");
  assert.equal(r.dynamic.log_level, "debug");
  assert.equal(r.dynamic.shutdown_timeout_secs, 30, "defaults are filled in");
  assert.deepEqual(r.dynamic.sites, [{ hostname: "a.example.com", path: "/", backends: ["127.0.0.1:9"], tls_cert: "", tls_key: "", tls: "", https_redirect: true }]);
  // the answer follows a reload
  await d.writeConfig(`log_level = "warn"\nmanager_registration_secret = "${SECRET}"\n`);
  assert.deepEqual(parseReply(await viaNc(d.adminSocket, "reload\n")), { status: "ok" });
  const after = parseReply(await viaNc(d.adminSocket, "config\n")) as { dynamic: Record<string, unknown> };
  assert.equal(after.dynamic.log_level, "warn");
  assert.deepEqual(after.dynamic.sites, []);
});

test("redact: secret keys and inline secrets go, paths to key files and empty values stay", () => {
  const pemKey = "-----BEGIN PRIVATE KEY-----\nMIG...\n-----END PRIVATE KEY-----\n";
  assert.deepEqual(
    redact({ manager_registration_secret: "x", jwt_secret: "y", some_token: "z", manager_jwt_keys_dir: "/etc/k", core_tls_key: "/etc/k.pem", core_key_file: "", inline: pemKey, list: [pemKey, "ok"], n: 3 }),
    { manager_registration_secret: REDACTED, jwt_secret: REDACTED, some_token: REDACTED, manager_jwt_keys_dir: "/etc/k", core_tls_key: "/etc/k.pem", core_key_file: "", inline: REDACTED, list: [REDACTED, "ok"], n: 3 },
  );
});

test("stevedore admin help|config over the same socket; an unknown one exits 1 with the daemon's message", () => {
  const run = (...args: string[]) => spawnSync(process.execPath, [BUNDLE, "admin", ...args, "--socket", d.adminSocket], { encoding: "utf8" });
  const help = run("help");
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /^COMMAND +DESCRIPTION\nconfig +.*\nhelp +.*\nreload +.*\nstatus +/);
  const config = run("config");
  assert.equal(config.status, 0, config.stderr);
  assert.ok(!config.stdout.includes(SECRET));
  assert.equal(JSON.parse(config.stdout).static.manager_registration_secret, REDACTED);
  const bad = run("frob");
  assert.equal(bad.status, 1);
  assert.equal(bad.stderr, "stevedore: admin frob failed: unknown command: frob\n");
  assert.equal(spawnSync(process.execPath, [BUNDLE, "admin"], { encoding: "utf8" }).status, 2);
});
