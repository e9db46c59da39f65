// Reload concurrency through the bundled daemon: 10 concurrent admin reloads while the file is
// rewritten, SIGHUP and admin reload during each other, a SIGHUP with a broken file.
// Reloads never overlap: the daemon logs `reload begin seq=N` / `reload end seq=N` at debug level.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { rename, writeFile } from "node:fs/promises";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { adminRaw, assertSerialized, parseReply, viaSocat, waitForCount, ONLY_ADMIN, NO_DOCKER } from "../helpers/admin.js";

let d: TestDaemon;
let base = "";

/** Version `v` of the config: 2000 routes (so one reload takes a while) over v+1 distinct host names. */
function version(v: number, extra = ""): string {
  let text = `log_level = "debug"\n${extra}`;
  for (let j = 0; j < 2000; j++) text += `[[site]]\nhostname = "h${j % (v + 1)}.example.com"\npath = "/p${j}"\nbackends = ["127.0.0.1:9000"]\n`;
  return text;
}

/** Replace the config atomically (write + rename), as config management does. */
async function install(text: string) {
  const tmp = `${d.configPath}.tmp`;
  await writeFile(tmp, `${base}\n${text}`);
  await rename(tmp, d.configPath);
}

const status = async () => parseReply((await adminRaw(d.adminSocket, "status\n")).reply);

before(async () => {
  d = await startDaemon({ env: NO_DOCKER, disable: [...ONLY_ADMIN], config: 'log_level = "debug"' });
  const { readFile } = await import("node:fs/promises");
  base = (await readFile(d.configPath, "utf8")).replace(/log_level.*\n/, "");
});
after(() => d.cleanup());

test("10 concurrent reloads while the file is rewritten: well-formed answers, no overlap, the last version wins", async () => {
  const from = d.logs.length;
  const replies: Promise<{ reply: string }>[] = [];
  for (let v = 0; v < 10; v++) {
    await install(version(v));
    replies.push(adminRaw(d.adminSocket, "reload\n", { timeoutMs: 60_000 }));
  }
  for (const r of await Promise.all(replies)) assert.deepEqual(parseReply(r.reply), { status: "ok" });
  await waitForCount(d, from, /msg="reload end"/, 10);
  assert.equal(assertSerialized(d.logs.slice(from)), 10);
  assert.equal((await status()).sites, 10, "the config in force is the file's last version");
});

test("SIGHUP and admin reload during each other are serialized", async () => {
  const from = d.logs.length;
  const replies: Promise<string>[] = [];
  for (let i = 0; i < 3; i++) {
    const hups = d.logs.slice(from).filter((l) => /SIGHUP received/.test(l)).length;
    replies.push(viaSocat(d.adminSocket, "reload\n"));
    d.proc.kill("SIGHUP");
    await waitForCount(d, from, /SIGHUP received/, hups + 1); // one signal at a time: signals coalesce
    replies.push(viaSocat(d.adminSocket, "reload\n"));
  }
  for (const r of await Promise.all(replies)) assert.deepEqual(parseReply(r), { status: "ok" });
  await waitForCount(d, from, /msg="reload end"/, 9);
  assert.equal(assertSerialized(d.logs.slice(from)), 9);
});

test("a SIGHUP with a broken file logs every error with its line and changes nothing", async () => {
  await install(version(2));
  assert.deepEqual(parseReply((await adminRaw(d.adminSocket, "reload\n")).reply), { status: "ok" });
  assert.equal((await status()).sites, 3);

  const from = d.logs.length;
  await install(`log_level = "info"\nproxy_idle_timeout_secs = -1\n[[site]]\nhostname = "new.example.com"\nbackends = ["nope"]\nwhat = 1\n`);
  d.proc.kill("SIGHUP");
  await waitForCount(d, from, /msg="reload failed, config unchanged"/, 1);
  const errors = d.logs.slice(from).filter((l) => /level=error msg="reload error"/.test(l));
  assert.equal(errors.length, 3, errors.join("\n"));
  for (const re of [/stevedore\.conf:\d+: proxy_idle_timeout_secs must be between 1 and 3600/, /stevedore\.conf:\d+: \[\[site\]\] backend \\"nope\\" must be host:port/, /stevedore\.conf:\d+: unknown key what in \[\[site\]\]/])
    assert.ok(errors.some((l) => re.test(l)), `${re} in\n${errors.join("\n")}`);
  assert.equal((await status()).sites, 3, "sites unchanged");
  // log_level = "info" was not applied: debug lines still appear
  const mark = d.logs.length;
  assert.deepEqual(parseReply((await adminRaw(d.adminSocket, "reload\n")).reply).status, "error");
  await waitForCount(d, mark, /level=debug msg="reload end"/, 1);
});

test("a changed static key logs restart required and keeps its running value", async () => {
  const from = d.logs.length;
  const moved = `${d.dir}/elsewhere.sock`;
  await writeFile(d.configPath, `${base.replace(/admin_socket_path = .*\n/, `admin_socket_path = "${moved}"\n`)}\nquery_max_connections = 7\n`);
  assert.deepEqual(parseReply((await adminRaw(d.adminSocket, "reload\n")).reply), { status: "ok", restart_required: ["query_max_connections", "admin_socket_path"] });
  await d.waitForLog(/level=warn msg="restart required" key=admin_socket_path/);
  await d.waitForLog(/level=warn msg="restart required" key=query_max_connections/);
  assert.ok(!d.logs.slice(from).some((l) => l.includes(moved)), "values are not logged");
  // still served on the old path; the dynamic part (no sites now) was applied
  assert.equal((await status()).sites, 0);
});
