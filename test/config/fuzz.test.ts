// Fuzz the config parser in-process: 10,000 random and mutated files (seeded, so a failure
// reproduces). Every input either parses or throws a ConfigError whose every line names the
// file and a line number inside the file; nothing hangs, nothing else is thrown.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseConfig, ConfigError } from "../../src/config/index.js";
import { intRng as prng } from "../helpers/random.js";

const SAMPLE = `# sample
state_dir = "/var/lib/stevedore"
admin_socket_path = "/run/stevedore/admin.sock"
query_max_connections = 20_000
log_level = 'debug'
ingress_domain = "example.com" # trailing
proxy_idle_timeout_secs = 60
[[site]]
hostname = "static.example.com"
path = "/"
backends = ["127.0.0.1:9000", "[::1]:9001",]
tls_cert = "/etc/stevedore/certs/static.pem"
tls_key  = "/etc/stevedore/certs/static.key"
[[site]]
hostname = "*.wild.example.com"
backends = ["10.0.0.1:80"]
`;
const TOKENS = ["=", '"', "'", "[", "]", "[[", "]]", "#", ",", "\\", "\\u", "\n", "\r", "\t", " ", "\0", "\x7f", "é", "😀", "true", "-1", "99999999999999999999", "site", "hostname", "x.y", "\ncore_tls_key = \"/k\"\n", "\n[[site]]\ntls_cert = \"/c\"\n", '"""', "\ufeff"];


function mutate(rand: (n: number) => number, text: string): string {
  const lines = text.split("\n");
  for (let k = 1 + rand(4); k > 0; k--) {
    const i = rand(lines.length);
    const line = lines[i] ?? "";
    const p = rand(line.length + 1);
    switch (rand(7)) {
      case 0: lines.splice(i, 1); break;
      case 1: lines.splice(i, 0, lines[rand(lines.length)] ?? ""); break;
      case 2: lines[i] = line.slice(0, p) + TOKENS[rand(TOKENS.length)] + line.slice(p); break;
      case 3: lines[i] = line.slice(0, p) + line.slice(p + 1 + rand(5)); break;
      case 4: lines[i] = line.slice(0, p) + String.fromCharCode(rand(0x3000)) + line.slice(p + 1); break;
      case 5: lines[i] = line.repeat(1 + rand(3)); break;
      default: lines[i] = line.toUpperCase();
    }
  }
  return lines.join("\n");
}

function random(rand: (n: number) => number): string {
  let out = "";
  for (let k = rand(40); k > 0; k--) out += rand(3) ? TOKENS[rand(TOKENS.length)] : String.fromCharCode(rand(128));
  return out;
}

test("fuzz: 10,000 random and mutated config files", () => {
  const rand = prng(0xc0ff1e);
  const started = performance.now();
  let parsed = 0;
  for (let i = 0; i < 10_000; i++) {
    const text = i % 4 === 0 ? random(rand) : mutate(rand, SAMPLE);
    const lineCount = text.split("\n").length;
    try {
      parseConfig(text, "fuzz.conf", {});
      parsed++;
    } catch (err) {
      if (!(err instanceof ConfigError)) assert.fail(`input ${i} threw ${(err as Error)?.stack}\n${JSON.stringify(text)}`);
      assert.ok(err.errors.length > 0);
      for (const e of err.errors) {
        const m = /^fuzz\.conf:(\d+): \S/.exec(e);
        assert.ok(m, `input ${i}: error without file:line: ${JSON.stringify(e)}`);
        const line = Number(m[1]);
        assert.ok(line >= 1 && line <= lineCount + 1, `input ${i}: line ${line} outside 1..${lineCount}: ${e}`);
      }
    }
  }
  assert.ok(parsed > 500, `some mutations stay valid (${parsed})`);
  assert.ok(performance.now() - started < 20_000, "no pathological slowness");
});
