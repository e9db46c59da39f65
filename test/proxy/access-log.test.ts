// The proxy's access log through the bundled daemon: one line per request with its fields, time=
// on every line (not under journald), JSON format, reopen on SIGUSR1, off; no secret in any log line.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFile, rename } from "node:fs/promises";
import { existsSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { waitFor } from "../helpers/docker.js";
import { backend, get, type Backend } from "./helpers.js";
import { formatAccess, loggedPath } from "../../src/proxy/access-log.js";
import { intRng } from "../helpers/random.js";

const OFF = ["query", "admin", "command", "core"] as const;
const SECRETS = {
  query: "qs-secret-7f3a9c",
  bearer: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhY2Nlc3MtbG9nIn0.c2lnbmF0dXJlLXNlY3JldA",
  basic: Buffer.from("alice:basic-secret-91b2").toString("base64"),
  cookie: "cookie-secret-44d1",
  registration: "registration-secret-5e6f7a8b",
  apiKey: "apikey-secret-0c0d",
};
const TIME = /^time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /;
let b: Backend;
let d: TestDaemon;
const site = (port: number) => `[[site]]\nhostname = "access.test"\nbackends = ["127.0.0.1:${port}"]\n`;
const baseConf = () => `manager_registration_secret = "${SECRETS.registration}"\n`;

before(async () => {
  b = await backend("access-backend", (req, res) => {
    req.resume();
    res.end("hello access");
  });
  d = await startDaemon({ disable: [...OFF, "https"], config: baseConf() + site(b.port) });
});
after(async () => {
  await d?.cleanup();
  await b?.close();
});

const secretHeaders = { authorization: `Bearer ${SECRETS.bearer}`, cookie: `sid=${SECRETS.cookie}`, "x-api-key": SECRETS.apiKey };
const accessLines = (from: number) => d.logs.slice(from).filter((l) => / msg=access |"msg":"access"/.test(l));
const field = (line: string, key: string) => new RegExp(`(?:^| )${key}=("(?:[^"\\\\]|\\\\.)*"|\\S*)`).exec(line)?.[1];

async function reload(conf: string): Promise<void> {
  const from = d.logs.length;
  await d.writeConfig(conf);
  d.proc.kill("SIGHUP");
  await waitFor("reload", () => d.logs.slice(from).some((l) => /config reloaded/.test(l)));
}

test("a routed request and a no-route 404 each give one access line with every field; every line has time=", async () => {
  const from = d.logs.length;
  const ok = await get(d.httpPort, "access.test", `/hello/world?token=${SECRETS.query}&x=1`, secretHeaders);
  assert.equal(ok.status, 200);
  const miss = await get(d.httpPort, "nowhere.test", `/missing?access_token=${SECRETS.query}`, { authorization: `Basic ${SECRETS.basic}` });
  assert.equal(miss.status, 404);
  const lines = await waitFor("two access lines", () => accessLines(from).length >= 2 && accessLines(from));
  assert.equal(lines.length, 2);
  const [routed, none] = lines as [string, string];
  assert.match(routed, TIME);
  assert.equal(field(routed, "level"), "info");
  assert.equal(field(routed, "client"), "127.0.0.1");
  assert.equal(field(routed, "host"), "access.test");
  assert.equal(field(routed, "method"), "GET");
  assert.equal(field(routed, "path"), "/hello/world");
  assert.equal(field(routed, "status"), "200");
  assert.equal(field(routed, "bytes"), String("hello access".length));
  assert.equal(field(routed, "upstream"), `127.0.0.1:${b.port}`);
  assert.match(field(routed, "upstream_ms")!, /^\d+\.\d{3}$/);
  assert.match(field(routed, "total_ms")!, /^\d+\.\d{3}$/);
  assert.equal(field(routed, "source"), "config");
  assert.equal(field(none, "host"), "nowhere.test");
  assert.equal(field(none, "path"), "/missing");
  assert.equal(field(none, "status"), "404");
  assert.equal(field(none, "upstream"), "-");
  assert.equal(field(none, "upstream_ms"), "-");
  assert.equal(field(none, "source"), "none");
  for (const l of d.logs) assert.match(l, TIME, l);
});

test("a request the HTTP server refuses (a bad request line) gives an access line too", async () => {
  const from = d.logs.length;
  await new Promise<void>((resolve, reject) => {
    const s = connect(d.httpPort, "127.0.0.1", () => s.end("NOT A REQUEST\r\n\r\n"));
    s.on("error", reject).on("close", () => resolve()).resume();
  });
  const [line] = await waitFor("refused access line", () => accessLines(from).length >= 1 && accessLines(from));
  assert.equal(field(line!, "status"), "400");
  assert.equal(field(line!, "method"), "-");
  assert.equal(field(line!, "path"), "-");
  assert.equal(field(line!, "source"), "none");
});

test("log_format json with access_log_query: the query is kept, secret-looking values redacted", async () => {
  await reload(baseConf() + `log_format = "json"\naccess_log_query = true\n` + site(b.port));
  const from = d.logs.length;
  await get(d.httpPort, "access.test", `/q?page=2&api_key=${SECRETS.apiKey}&token=${SECRETS.query}`, secretHeaders);
  const [line] = await waitFor("json access line", () => accessLines(from).length >= 1 && accessLines(from));
  const j = JSON.parse(line!) as Record<string, unknown>;
  assert.match(String(j.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(j.msg, "access");
  assert.equal(j.path, "/q?page=2&api_key=REDACTED&token=REDACTED");
  assert.equal(j.status, 200);
  assert.equal(j.source, "config");
  for (const l of d.logs.slice(from)) assert.doesNotThrow(() => JSON.parse(l), l);
  await reload(baseConf() + site(b.port));
});

test("access_log to a file: rename, SIGUSR1, the next line lands in a new file; off writes nothing", async () => {
  const file = join(d.dir, "access.log");
  await reload(baseConf() + `access_log = "${file}"\n` + site(b.port));
  await get(d.httpPort, "access.test", "/first");
  await waitFor("first line in the file", async () => existsSync(file) && (await readFile(file, "utf8")).includes("path=/first"));
  await rename(file, `${file}.1`);
  const from = d.logs.length;
  d.proc.kill("SIGUSR1");
  await waitFor("reopen", () => d.logs.slice(from).some((l) => /SIGUSR1/.test(l)));
  await get(d.httpPort, "access.test", "/second");
  await waitFor("second line in a new file", async () => existsSync(file) && (await readFile(file, "utf8")).includes("path=/second"));
  assert.doesNotMatch(await readFile(`${file}.1`, "utf8"), /path=\/second/);
  assert.equal(accessLines(from).length, 0, "a file access log writes nothing to stderr");

  // a file that cannot be opened fails the reload: the old destination stays
  const bad = d.logs.length;
  await d.writeConfig(baseConf() + `access_log = "${join(d.dir, "no-such-dir", "a.log")}"\n` + site(b.port));
  d.proc.kill("SIGHUP");
  await waitFor("failed reload", () => d.logs.slice(bad).some((l) => /reload failed/.test(l)));
  assert.ok(d.logs.slice(bad).some((l) => /access_log: cannot open .*ENOENT/.test(l)));
  await reload(baseConf() + `access_log = "off"\n` + site(b.port));
  const from2 = d.logs.length;
  await get(d.httpPort, "access.test", "/third");
  await get(d.httpPort, "nowhere.test", "/third");
  // the marker: a later line proves the access lines would have been written by now
  await reload(baseConf() + `access_log = "off"\n` + site(b.port));
  assert.equal(accessLines(from2).length, 0);
  assert.doesNotMatch(await readFile(file, "utf8"), /path=\/third/);
});

test("no secret in any log line of the daemon", async () => {
  await reload(baseConf() + `log_level = "debug"\naccess_log_query = true\n` + site(b.port));
  await get(d.httpPort, "access.test", `/s?token=${SECRETS.query}&password=${SECRETS.query}`, { ...secretHeaders, authorization: `Basic ${SECRETS.basic}` });
  await get(d.httpPort, "nowhere.test", `/s?jwt=${SECRETS.bearer}`, secretHeaders);
  await get(d.managerPort, "127.0.0.1", `/api/jobs?token=${SECRETS.query}`, { authorization: `Bearer ${SECRETS.bearer}` });
  await reload(baseConf() + site(b.port));
  const all = d.logs.join("\n") + (existsSync(join(d.dir, "access.log")) ? await readFile(join(d.dir, "access.log"), "utf8") : "");
  for (const [name, secret] of Object.entries(SECRETS)) assert.ok(!all.includes(secret), `${name} appears in the logs`);
  assert.ok(!all.includes("alice:basic"), "decoded basic auth appears");
});

test("loggedPath and formatAccess: query dropped by default, secret parameters redacted when kept", () => {
  assert.equal(loggedPath("/a?token=x", false), "/a");
  assert.equal(loggedPath("/a?b=1&Token=x&my_secret=y&%6Aw%74=z", true), "/a?b=1&Token=REDACTED&my_secret=REDACTED&%6Aw%74=REDACTED");
  const line = formatAccess({ client: "::1", host: "h\"x", method: "GET", url: "/p q", status: 502, bytes: 0, upstream: "", upstreamMs: -1, totalMs: 1.23456, source: "none" }, false);
  assert.match(line, / host="h\\"x" method=GET path="\/p q" status=502 bytes=0 upstream=- upstream_ms=- total_ms=1\.235 source=none$/);
});

test("loggedPath fuzz: 10,000 random targets, never throws, never keeps a secret parameter's value", () => {
  const rand = intRng(14);
  const names = ["token", "access_token", "Password", "api_key", "jwt", "sig", "page", "q", "auth", "x", "%74oken", "session_id", ""];
  const pieces = ["=", "&", "?", "%", "%zz", "/", "#", " ", "\u00e9", "a", "SECRETVALUE"];
  for (let i = 0; i < 10_000; i++) {
    let url = "/p";
    const n = rand(6);
    for (let k = 0; k < n; k++) url += (k === 0 ? "?" : "&") + names[rand(names.length)] + (rand(4) ? "=" : "") + (rand(3) ? "SECRETVALUE" : pieces[rand(pieces.length)]);
    const kept = loggedPath(url, true);
    const dropped = loggedPath(url, false);
    assert.ok(!dropped.includes("?"), url);
    for (const part of kept.slice(kept.indexOf("?") + 1).split("&")) {
      const eq = part.indexOf("=");
      if (eq < 0) continue;
      let name = part.slice(0, eq);
      try { name = decodeURIComponent(name); } catch { /* raw */ }
      if (/token|passw|jwt|^sig$|^auth|key$|^session/i.test(name)) assert.equal(part.slice(eq + 1), "REDACTED", url);
    }
  }
});

test("under journald (JOURNAL_STREAM set) lines carry no time=", () => {
  const script = `import("./src/log.ts").then((m) => process.stdout.write(m.formatLine("info", "x") + "\\n"))`;
  const run = (env: Record<string, string>) => execFileSync(process.execPath, ["--import", "tsx", "-e", script], { env: { ...process.env, ...env }, encoding: "utf8" });
  assert.match(run({ JOURNAL_STREAM: "8:12345" }), /^level=info msg="x"\n$/);
  const env = { ...process.env };
  delete env.JOURNAL_STREAM;
  assert.match(execFileSync(process.execPath, ["--import", "tsx", "-e", script], { env, encoding: "utf8" }), /^time=\S+ level=info msg="x"\n$/);
});
