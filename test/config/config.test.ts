import { test } from "node:test";
import assert from "node:assert/strict";
import { parseConfig, ConfigError, KEYS } from "../../src/config/index.js";

test("an empty file gives every default", () => {
  const c = parseConfig("", "x.conf", {});
  assert.equal(c.static.state_dir, KEYS.state_dir.default);
  assert.equal(c.dynamic.poll_max_waiters, 10000);
  assert.deepEqual(c.dynamic.sites, []);
});

test("values, comments, sites and env overrides", () => {
  const c = parseConfig(
    `# comment\nstate_dir = "/tmp/s" # trailing\ningress_domain = "example.com"\n[[site]]\nhostname = "a.example.com"\nbackends = ["127.0.0.1:9000", "[::1]:9001"]\n`,
    "x.conf",
    { STEVEDORE_QUERY_SOCKET: "/tmp/q.sock", DOCKER_HOST: "unix:///tmp/d.sock" },
  );
  assert.equal(c.static.state_dir, "/tmp/s");
  assert.equal(c.static.query_socket_path, "/tmp/q.sock");
  assert.equal(c.static.docker_socket, "/tmp/d.sock");
  assert.equal(c.dynamic.sites[0]?.hostname, "a.example.com");
  assert.equal(c.dynamic.sites[0]?.path, "/");
});

test("every error is collected with file and line", () => {
  try {
    parseConfig(`nope = 1\npoll_max_waiters = "x"\nstate_dir = relative\n[[site]]\nhostname = "bad host"\n`, "f.conf", { DOCKER_HOST: "tcp://x:1" });
    assert.fail("should throw");
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    const text = err.errors.join("\n");
    assert.match(text, /f\.conf:1: unknown key nope/);
    assert.match(text, /f\.conf:2: poll_max_waiters must be an integer/);
    assert.match(text, /f\.conf:3: state_dir: unsupported value/);
    assert.match(text, /f\.conf:4: \[\[site\]\] hostname/);
    assert.match(text, /f\.conf:4: \[\[site\]\] needs at least one backend/);
    assert.match(text, /DOCKER_HOST=tcp:\/\/x:1/);
  }
});

import { loadConfig, loadConfigAsync, MAX_CONFIG_BYTES } from "../../src/config/load.js";
import { mkdtempSync, writeFileSync, mkdirSync, rmSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";

const errorsOf = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.errors;
  }
  assert.fail("expected a ConfigError");
};

test("files: missing default = all defaults; missing explicit, directory, FIFO, too large, non-UTF-8 = one clear error", async () => {
  const dir = mkdtempSync(join(tmpdir(), "stevedore-cfg-"));
  try {
    assert.equal(loadConfig(join(dir, "none.conf"), false, {}).file, "");
    assert.equal((await loadConfigAsync(join(dir, "none.conf"), false, {})).static.state_dir, "/var/lib/stevedore");
    assert.deepEqual(errorsOf(() => loadConfig(join(dir, "none.conf"), true, {})), [`${dir}/none.conf: cannot read: no such file`]);
    mkdirSync(join(dir, "d"));
    assert.match(errorsOf(() => loadConfig(join(dir, "d"), true, {}))[0]!, /not a regular file|is a directory/);
    execFileSync("mkfifo", [join(dir, "fifo")]);
    assert.deepEqual(errorsOf(() => loadConfig(join(dir, "fifo"), true, {})), [`${dir}/fifo: not a regular file`]);
    await assert.rejects(loadConfigAsync(join(dir, "fifo"), true, {}), /not a regular file/);
    writeFileSync(join(dir, "big"), Buffer.alloc(MAX_CONFIG_BYTES + 1, 0x23));
    assert.match(errorsOf(() => loadConfig(join(dir, "big"), true, {}))[0]!, /larger than/);
    await assert.rejects(loadConfigAsync(join(dir, "big"), true, {}), /larger than/);
    writeFileSync(join(dir, "latin1"), Buffer.from([0x6b, 0x3d, 0x22, 0xe9, 0x22]));
    assert.deepEqual(errorsOf(() => loadConfig(join(dir, "latin1"), true, {})), [`${dir}/latin1: not valid UTF-8`]);
    writeFileSync(join(dir, "ok.conf"), 'log_level = "debug"\n');
    assert.equal((await loadConfigAsync(join(dir, "ok.conf"), true, {})).dynamic.log_level, "debug");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("validation: socket paths absolute and short, listen ports 1-65535, duplicate routes, env sources named", () => {
  const errors = errorsOf(() =>
    parseConfig(
      [
        'admin_socket_path = "relative.sock"',
        `command_socket_path = "/${"x".repeat(120)}"`,
        'core_listen = "127.0.0.1:x"',
        'proxy_http_listen = "127.0.0.1:65536"',
        '[[site]]\nhostname = "a.example.com"\nbackends = ["127.0.0.1:0"]',
        '[[site]]\nhostname = "A.example.com"\nbackends = ["127.0.0.1:1"]',
      ].join("\n"),
      "v.conf",
      { STEVEDORE_STATE_DIR: "relative/state" },
    ),
  ).join("\n");
  assert.match(errors, /v\.conf:1: admin_socket_path must be an absolute path or ""/);
  assert.match(errors, /v\.conf:2: command_socket_path is longer than 107 bytes/);
  assert.match(errors, /v\.conf:3: core_listen must be host:port/);
  assert.match(errors, /v\.conf:4: proxy_http_listen must be host:port/);
  assert.match(errors, /v\.conf:5: \[\[site\]\] backend "127\.0\.0\.1:0" must be host:port/);
  assert.match(errors, /v\.conf:8: \[\[site\]\] A\.example\.com \/ repeats the route of line 5/);
  assert.match(errors, /STEVEDORE_STATE_DIR="relative\/state": state_dir must be an absolute path/);
});

test("hints: a [[site]] key at the top level, [site] instead of [[site]]", () => {
  const errors = errorsOf(() => parseConfig('hostname = "x"\n[site]\n', "h.conf", {})).join("\n");
  assert.match(errors, /h\.conf:1: unknown key hostname \(hostname belongs in a \[\[site\]\] table\)/);
  assert.match(errors, /h\.conf:2: unknown table \[site\] \(static routes are \[\[site\]\]\)/);
});

test("a loaded config is frozen: readers cannot change what other requests see", () => {
  const c = parseConfig('[[site]]\nhostname = "a.example.com"\nbackends = ["127.0.0.1:1"]\n', "f.conf", {});
  assert.ok(Object.isFrozen(c.dynamic) && Object.isFrozen(c.static) && Object.isFrozen(c.dynamic.sites));
  assert.ok(Object.isFrozen(c.dynamic.sites[0]) && Object.isFrozen(c.dynamic.sites[0]!.backends));
});

test("the error list is bounded", () => {
  const errors = errorsOf(() => parseConfig(Array.from({ length: 500 }, (_, i) => `k${i} = 1`).join("\n"), "b.conf", {}));
  assert.ok(errors.length <= 102, String(errors.length));
  assert.match(errors.at(-1)!, /more errors not listed|too many errors/);
});

test("a key that needs its pair is reported on the line of the one given", () => {
  assert.deepEqual(errorsOf(() => parseConfig('\n\ncore_tls_key = "/k.pem"\n', "p.conf", {})), ["p.conf:3: core_tls_key needs core_tls_cert too"]);
  assert.deepEqual(errorsOf(() => parseConfig('proxy_default_cert = "/c.pem"\n', "p.conf", {})), ["p.conf:1: proxy_default_cert needs proxy_default_key too"]);
});
