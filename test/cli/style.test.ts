// One CLI style: unknown commands with "did you mean", help for unknown commands, errors without raw
// errnos, --socket/--config everywhere a client talks to a socket, and the bash completion.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUNDLE } from "../helpers/daemon.js";

let dir: string;
before(() => (dir = mkdtempSync(join(tmpdir(), "stevedore-style-"))));
after(() => rmSync(dir, { recursive: true, force: true }));

/** root opens every file: permission tests run the CLI as nobody (setpriv, util-linux) */
const AS_NOBODY = process.getuid?.() === 0 ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : [];

function cli(args: string[], env: Record<string, string> = {}, prefix: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const argv = [...prefix, process.execPath, BUNDLE, ...args];
    // as nobody: no coverage file (c8's directory is root's, and its EACCES would be in stderr);
    // node hands NODE_V8_COVERAGE to children unless the child's env sets it: empty turns it off
    const p = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, STEVEDORE_CONFIG: "", ...(prefix.length ? { NODE_V8_COVERAGE: "" } : {}), ...env } });
    let stdout = "", stderr = "";
    p.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    p.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    p.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

test("a mistyped command: unknown command with the closest name, exit 2; help for an unknown command says so, exit 2", async () => {
  const r = await cli(["statuss"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^stevedore: unknown command "statuss"; did you mean status\?\n/);
  const far = await cli(["frobnicate"]);
  assert.equal(far.code, 2);
  assert.equal(far.stderr, "stevedore: unknown command \"frobnicate\"; run 'stevedore help' for the commands\n");
  const h = await cli(["help", "frob"]);
  assert.equal(h.code, 2);
  assert.equal(h.stderr, "stevedore: unknown command \"frob\"; run 'stevedore help' for the commands\n");
  assert.equal(h.stdout, "");
  assert.match((await cli(["help", "reloda"])).stderr, /did you mean reload\?/);
});

test("every client command takes --socket and --config; errors are lowercase stevedore: lines without raw errnos", async () => {
  const none = join(dir, "none.sock");
  const conf = join(dir, "c.conf");
  writeFileSync(conf, `state_dir = "${dir}"\n`);
  for (const args of [["status"], ["reload"], ["proxy", "status"], ["services"], ["deployments"], ["deployment", "x"], ["admin", "config"]]) {
    const r = await cli([...args, "--config", conf, "--socket", none], { STEVEDORE_QUERY_TOKEN: "t" });
    assert.equal(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, /^stevedore: [a-z].*is the daemon running\? .*--socket\n$/, args.join(" "));
    assert.doesNotMatch(r.stderr, /E[A-Z]{4,}/, args.join(" "));
  }
});

test("core key reads the config as leniently as status: an unrelated error does not hide core_key_file", async () => {
  const key = join(dir, "core.key");
  writeFileSync(key, Buffer.alloc(32, 7));
  const conf = join(dir, "broken.conf");
  writeFileSync(conf, `core_key_file = "${key}"\nlog_level = "loud"\n`);
  const r = await cli(["core", "key", "--config", conf]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, Buffer.alloc(32, 7).toString("base64") + "\n");
});

test("a permission error says what to do, not EACCES", async () => {
  chmodSync(dir, 0o755); // nobody may reach the config, not the key
  const d = join(dir, "locked");
  mkdirSync(d);
  const key = join(d, "core.key");
  writeFileSync(key, "x");
  chmodSync(key, 0o000);
  const conf = join(dir, "locked.conf");
  writeFileSync(conf, `core_key_file = "${key}"\n`);
  const r = await cli(["core", "key", "--config", conf], {}, AS_NOBODY);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^stevedore: cannot read the core key: permission denied on \S+core\.key: run as root/);
  assert.doesNotMatch(r.stderr, /EACCES/);
});

test("completion bash: generated from the command table; bash accepts it and completes commands and options", async () => {
  const r = await cli(["completion", "bash"]);
  assert.equal(r.code, 0, r.stderr);
  const help = (await cli(["help"])).stdout;
  for (const m of help.matchAll(/^ {2}([a-z-]+) /gm)) assert.match(r.stdout, new RegExp(`\\b${m[1]}\\b`), m[1]);
  const script = join(dir, "completion.bash");
  writeFileSync(script, r.stdout);
  const complete = (line: string) => {
    const words = line.split(" ");
    return execFileSync("bash", ["-c", `source ${script}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _stevedore; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: "utf8" }).trim().split("\n");
  };
  assert.deepEqual(complete("stevedore sta"), ["status"]);
  assert.deepEqual(complete("stevedore help sta"), ["status"]);
  assert.ok(complete("stevedore proxy ").includes("routes"));
  assert.ok(complete("stevedore check-config --").includes("--print"));
  assert.ok(complete("stevedore status --").includes("--socket"));
  assert.equal((await cli(["completion", "zsh"])).code, 2);
});

test("describeError: EACCES, ENOENT and ECONNREFUSED become a sentence that says what to do", async () => {
  const { describeError } = await import("../../src/cli/command.js");
  const err = (code: string, extra: object) => Object.assign(new Error(`${code}: raw`), { code, ...extra });
  assert.equal(describeError(err("EACCES", { path: "/etc/stevedore/k.pem" })), "permission denied on /etc/stevedore/k.pem: run as root or as a user that may use it");
  assert.match(describeError(err("ENOENT", { address: "/run/stevedore/x.sock" })), /^\/run\/stevedore\/x\.sock does not exist: is the daemon running\?/);
  assert.match(describeError(err("ECONNREFUSED", { address: "/run/x.sock" })), /^nothing listens on \/run\/x\.sock: is the daemon running\?/);
  assert.equal(describeError(new Error("Something broke")), "something broke");
});

test("a missing job file is a sentence, not an errno", async () => {
  const r = await cli(["jobs", "submit", join(dir, "nope.json"), "--manager", "http://127.0.0.1:1"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^stevedore: cannot read the job file: \S+nope\.json does not exist\n$/);
});

test("usage errors of every kind, in several commands: one lowercase line saying where the usage is, exit 2", async () => {
  const cases: [string[], string][] = [
    [["status", "--bogus"], "unknown option --bogus; run 'stevedore status --help' for usage"],
    [["status", "--socket"], "option --socket needs a value; run 'stevedore status --help' for usage"],
    [["status", "--json=yes"], "option --json takes no value; run 'stevedore status --help' for usage"],
    [["reload", "-x"], "unknown option -x; run 'stevedore reload --help' for usage"],
    [["proxy", "routes", "--bogus"], "unknown option --bogus; run 'stevedore proxy --help' for usage"],
    [["services", "--config"], "option --config needs a value; run 'stevedore services --help' for usage"],
    [["check-config", "--frob"], "unknown option --frob; run 'stevedore check-config --help' for usage"],
    [["help", "a", "b"], "help takes at most one command; run 'stevedore help' for usage"],
  ];
  await Promise.all(cases.map(async ([args, want]) => {
    const r = await cli(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.equal(r.stderr, `stevedore: ${want}\n`, args.join(" "));
    assert.equal(r.stdout, "");
  }));
});
