// The spec's twelve acceptance criteria (specs/admin-socket.md), over the real socket of the
// bundled daemon, with socat and nc as clients. Numbered as in the spec: 1-6 and 10-12 here,
// 7 (stale socket), 8 (live socket of another process), 9 ("" disables) in lifecycle.test.ts;
// more of 5 in limits.test.ts, more of 10 in concurrency.test.ts.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { stat, writeFile, rename } from "node:fs/promises";
import { connect } from "node:net";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { adminRaw, assertSerialized, parseReply, viaNc, viaSocat, waitForCount, ONLY_ADMIN, NO_DOCKER } from "../helpers/admin.js";

let d: TestDaemon;
const site = (host: string) => `[[site]]\nhostname = "${host}"\nbackends = ["127.0.0.1:9"]\n`;

before(async () => {
  d = await startDaemon({ env: NO_DOCKER, disable: [...ONLY_ADMIN], config: `log_level = "debug"\n${site("a.example.com")}${site("b.example.com")}` });
});
after(() => d.cleanup());

async function rewrite(extra: string) {
  await d.writeConfig(extra);
}

test("1. a Unix socket is bound at admin_socket_path, mode 0600", async () => {
  const st = await stat(d.adminSocket);
  assert.ok(st.isSocket());
  assert.equal(st.mode & 0o777, 0o600);
});

test("2 + 11. reload (socat): re-reads the file and answers {status: ok}; an invalid file answers every error", async () => {
  await rewrite(`log_level = "debug"\n${site("a.example.com")}${site("b.example.com")}${site("c.example.com")}`);
  assert.deepEqual(parseReply(await viaSocat(d.adminSocket, "reload\n")), { status: "ok" });
  assert.equal(parseReply(await viaSocat(d.adminSocket, "status\n")).sites, 3);

  await rewrite(`log_level = "loud"\nnope = 1\n${site("d.example.com")}`);
  const bad = parseReply(await viaSocat(d.adminSocket, "reload\n"));
  assert.equal(bad.status, "error");
  assert.deepEqual(Object.keys(bad).sort(), ["message", "status"]);
  const message = String(bad.message);
  assert.match(message, /stevedore\.conf:\d+: log_level must be debug, info, warn or error/);
  assert.match(message, /stevedore\.conf:\d+: unknown key nope/);
  assert.equal(message.split("; ").length, 2, message);
  // nothing changed
  assert.equal(parseReply(await viaSocat(d.adminSocket, "status\n")).sites, 3);
});

test("3 + 12. status (nc and socat): uptime_secs and sites, plus the design's extra fields", async () => {
  for (const reply of [await viaNc(d.adminSocket, "status\n"), await viaSocat(d.adminSocket, "status\n")]) {
    const r = parseReply(reply);
    assert.equal(r.status, "ok");
    assert.ok(Number.isInteger(r.uptime_secs) && (r.uptime_secs as number) >= 0);
    assert.ok(Number.isInteger(r.sites));
    assert.equal(typeof r.version, "string");
    assert.ok(Number.isInteger(r.deployments) && Number.isInteger(r.services) && Number.isInteger(r.pending_polls));
    assert.ok(["ok", "unavailable", "connecting"].includes(r.docker as string));
    const listeners = r.listeners as Record<string, { state: string; address?: string }>;
    assert.deepEqual(listeners.admin?.state, "listening");
    assert.equal(listeners.admin?.address, d.adminSocket);
    assert.deepEqual(Object.keys(r).slice(0, 3), ["status", "uptime_secs", "sites"]);
  }
});

test("sites counts distinct host names of [[site]] (case-insensitive), not routes", async () => {
  const api = `[[site]]\nhostname = "X.EXAMPLE.COM"\npath = "/api"\nbackends = ["127.0.0.1:9"]\n`;
  await rewrite(`log_level = "debug"\n${site("x.example.com")}${api}${site("y.example.com")}`);
  assert.deepEqual(parseReply(await viaSocat(d.adminSocket, "reload\n")), { status: "ok" });
  assert.equal(parseReply(await viaSocat(d.adminSocket, "status\n")).sites, 2);
});

test("4. unknown commands answer unknown command: <first word>", async () => {
  assert.deepEqual(parseReply(await viaSocat(d.adminSocket, "restart now please\n")), { status: "error", message: "unknown command: restart" });
  assert.deepEqual(parseReply(await viaNc(d.adminSocket, "STATUS\n")), { status: "error", message: "unknown command: STATUS" });
  assert.deepEqual(parseReply(await viaNc(d.adminSocket, "constructor\n")), { status: "error", message: "unknown command: constructor" });
});

test("5. empty and invalid input answer invalid input", async () => {
  for (const input of ["\n", "   \n", "\r\n", "sta\x00tus\n", "status\x1b[0m\n", "\t\n"])
    assert.deepEqual(parseReply(await viaSocat(d.adminSocket, input)), { status: "error", message: "invalid input" }, JSON.stringify(input));
  assert.deepEqual(parseReply((await adminRaw(d.adminSocket, Buffer.from([0xc3, 0x28, 0x0a]))).reply), { status: "error", message: "invalid input" });
  // nothing at all, then end of input
  assert.deepEqual(parseReply((await adminRaw(d.adminSocket, undefined, { end: true })).reply), { status: "error", message: "invalid input" });
});

test("6. one command per connection: the server closes after the reply and answers nothing else", async () => {
  const r = await adminRaw(d.adminSocket, "status\nreload\nstatus\n");
  assert.equal(parseReply(r.reply).status, "ok");
  assert.ok("uptime_secs" in parseReply(r.reply), "the first command was the one answered");
  // the connection closes without the client closing its side
  const closedByServer = await new Promise<boolean>((resolve) => {
    const s = connect(d.adminSocket, () => s.write("status\n"));
    let ended = false;
    s.resume();
    s.on("end", () => (ended = true));
    s.on("close", () => resolve(ended));
  });
  assert.ok(closedByServer);
});

test("6b. a command ended by end of input instead of a newline is answered too", async () => {
  assert.equal(parseReply(await viaNc(d.adminSocket, "status")).status, "ok");
});

test("10. reload is serialized with SIGHUP (the same mutex): begin/end never interleave", async () => {
  const from = d.logs.length;
  const replies: Promise<string>[] = [];
  for (let i = 0; i < 4; i++) {
    replies.push(viaSocat(d.adminSocket, "reload\n"));
    d.proc.kill("SIGHUP");
  }
  for (const r of await Promise.all(replies)) assert.equal(parseReply(r).status, "ok");
  // signals sent back to back may coalesce: count the SIGHUPs the daemon saw
  await waitForCount(d, from, /msg="SIGHUP received/, 1);
  const hups = d.logs.slice(from).filter((l) => /msg="SIGHUP received/.test(l)).length;
  await waitForCount(d, from, /msg="reload end"/, 4 + hups);
  assert.ok(assertSerialized(d.logs.slice(from)) >= 4 + hups);
});

test("the config file can be replaced by rename between reloads", async () => {
  const tmp = `${d.configPath}.new`;
  await writeFile(tmp, (await import("node:fs")).readFileSync(d.configPath, "utf8") + site("z.example.com"));
  await rename(tmp, d.configPath);
  assert.deepEqual(parseReply(await viaSocat(d.adminSocket, "reload\n")), { status: "ok" });
});

