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
