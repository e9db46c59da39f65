// State file semantics: SAVE_STATE / LOAD_STATE (merge, validate-all-then-apply), automatic
// persistence and load at start, relative paths under the state dir, no private keys in dumps.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, writeFile, stat, readdir, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { startCommand, makeCert } from "./helpers.js";
import type { CommandClient } from "../../../src/proxy/command/client.js";

const req = (id: string, type: string, data?: unknown) => ({ id, version: 0, data: data === undefined ? { type } : { type, data } });

async function populate(c: CommandClient, cert: { cert: string; key: string; fingerprint: string }) {
  const orders = [
    req("p1", "ADD_CERTIFICATE", { certificate: cert.cert, key: cert.key, certificate_chain: [] }),
    req("p2", "ADD_APPLICATION", { app_id: "web", sticky_session: true, load_balancing_policy: "random" }),
    req("p3", "ADD_HTTP_FRONT", { app_id: "web", hostname: "web.example.com", path_begin: "/" }),
    req("p4", "ADD_HTTPS_FRONT", { app_id: "web", hostname: "web.example.com", path_begin: "", fingerprint: cert.fingerprint }),
    req("p5", "ADD_BACKEND", { app_id: "web", ip_address: "127.0.0.1", port: 8080 }),
    req("p6", "ADD_BACKEND", { app_id: "api", backend_id: "api-1", address: "[::1]:9090" }),
    req("p7", "ADD_HTTP_FRONT", { app_id: "api", hostname: "*.api.example.com" }),
  ];
  for (const o of orders) assert.equal((await c.request(o)).status, "Ok", o.id);
}

test("SAVE_STATE writes \\n\\0 request lines with SAVE-<n> ids under the state dir; LOAD into a fresh state gives an identical DUMP", async (t) => {
  const a = await startCommand();
  t.after(() => a.close());
  const cert = await makeCert(a.dir, ["web.example.com"], "web");
  const ca = await a.client();
  await populate(ca, cert);
  await mkdir(join(a.stateDir, "snap"));
  const saved = await ca.request({ id: "s", version: 0, type: "SAVE_STATE", data: { path: "snap/one.state" } });
  const path = join(a.stateDir, "snap/one.state");
  assert.deepEqual(saved, { id: "s", version: 0, status: "Ok", message: `saved 8 messages to ${path}` });
  const text = await readFile(path, "utf8");
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  const lines = text.split("\n\0");
  assert.equal(lines.pop(), "");
  assert.equal(lines.length, 8);
  assert.deepEqual(lines.map((l) => JSON.parse(l).id), ["SAVE-1", "SAVE-2", "SAVE-3", "SAVE-4", "SAVE-5", "SAVE-6", "SAVE-7", "SAVE-8"]);
  assert.ok(!(await readdir(join(a.stateDir, "snap"))).some((f) => f.endsWith(".tmp")));

  const dumpA = await ca.request(req("d", "DUMP_STATE"));
  assert.ok(!JSON.stringify(dumpA).includes("PRIVATE KEY"), "DUMP_STATE never shows private keys");
  assert.deepEqual((dumpA.data as { certificates: unknown }).certificates, { [cert.fingerprint]: ["web.example.com"] });

  const b = await startCommand();
  t.after(() => b.close());
  const cb = await b.client();
  const answers: string[] = [];
  const loaded = await cb.request({ id: "l", version: 0, data: { type: "LOAD_STATE", data: { path } } }, { onAnswer: (x) => answers.push(x.status) });
  assert.deepEqual(answers, ["Processing", "Ok"]);
  assert.deepEqual(loaded, { id: "l", version: 0, status: "Ok", message: "loaded 8 messages, 8 changes" });
  assert.deepEqual((await cb.request(req("d", "DUMP_STATE"))).data, dumpA.data);
  // loading the same file again changes nothing
  assert.equal((await cb.request(req("l2", "LOAD_STATE", { path }))).message, "loaded 8 messages, 0 changes");
});

test("LOAD_STATE is a merge: items not in the file stay", async (t) => {
  const h = await startCommand();
  t.after(() => h.close());
  const c = await h.client();
  await c.request(req("1", "ADD_BACKEND", { app_id: "keep", ip_address: "10.0.0.1", port: 1 }));
  await writeFile(join(h.stateDir, "extra"), JSON.stringify(req("SAVE-1", "ADD_BACKEND", { app_id: "new", ip_address: "10.0.0.2", port: 2 })) + "\n\0");
  assert.equal((await c.request(req("l", "LOAD_STATE", { path: "extra" }))).message, "loaded 1 messages, 1 changes");
  assert.deepEqual(h.comp.state.backends().map((b) => b.appId), ["keep", "new"]);
});

test("a state file with one bad record applies nothing and names its line", async (t) => {
  const h = await startCommand();
  t.after(() => h.close());
  const c = await h.client();
  const good = (n: number) => JSON.stringify(req(`SAVE-${n}`, "ADD_BACKEND", { app_id: "x", ip_address: "10.0.0.1", port: n })) + "\n\0";
  const files: [string, string][] = [
    [good(1) + good(2) + '{"id":"SAVE-3","data":{"type":"ADD_BACKEND","data":{"app_id":"x"}}}\n\0' + good(4), "line 3: ADD_BACKEND: missing field ip_address (or address)"],
    [good(1) + "{oops\n\0", "line 2: not a JSON command: not a state file"],
    // issue 16: a file that is not a state file (like /etc/shadow) is not echoed back
    ["root:*:20200:0:99999:7:::\ndaemon:*:20200:0:99999:7:::\n", "line 1: not a JSON command: not a state file"],
    [good(1) + JSON.stringify(req("SAVE-2", "SOFT_STOP")) + "\n\0", "line 2: SOFT_STOP is not a state change"],
    [good(1) + JSON.stringify(req("SAVE-2", "ADD_HTTPS_FRONT", { app_id: "x", hostname: "a.b", fingerprint: "0".repeat(64) })) + "\n\0", `line 2: ADD_HTTPS_FRONT: No such certificate ${"0".repeat(64)}`],
    [good(1) + JSON.stringify(req("SAVE-2", "REMOVE_BACKEND", { app_id: "x", ip_address: "10.0.0.9", port: 9 })) + "\n\0", "line 2: REMOVE_BACKEND: No such backend"],
  ];
  for (const [i, [content, want]] of files.entries()) {
    await writeFile(join(h.stateDir, `bad${i}`), content);
    const a = await c.request(req(`l${i}`, "LOAD_STATE", { path: `bad${i}` }));
    assert.equal(a.status, "Error");
    assert.ok(a.message.startsWith(`${join(h.stateDir, `bad${i}`)}: ${want}`), a.message);
    assert.ok(a.message.endsWith("; nothing loaded"));
    assert.ok(!/root|20200|oops/.test(a.message), `no file content in ${a.message}`);
    assert.equal(h.comp.state.backends().length, 0, "nothing applied");
  }
  const missing = await c.request(req("m", "LOAD_STATE", { path: "/nonexistent/file" }));
  assert.deepEqual([missing.status, missing.message], ["Error", "cannot read /nonexistent/file: ENOENT; nothing loaded"]);
  const unwritable = await c.request(req("w", "SAVE_STATE", { path: "no-dir/x" }));
  assert.deepEqual([unwritable.status, unwritable.message], ["Error", `cannot save the state to ${h.stateDir}/no-dir/x: directory ${h.stateDir}/no-dir does not exist`]);
});

test("every change is saved to <state_dir>/proxy-state and loaded at start", async (t) => {
  const h = await startCommand();
  t.after(() => h.close());
  const cert = await makeCert(h.dir, ["web.example.com"], "web");
  const c = await h.client();
  await populate(c, cert);
  const dump = (await c.request(req("d", "DUMP_STATE"))).data;
  const file = await readFile(join(h.stateDir, "proxy-state"), "utf8");
  assert.equal(file.split("\n\0").length - 1, 8);
  await h.close(true);
  // remove after restart too
  const again = await startCommand({ dir: h.dir });
  const c2 = await again.client();
  assert.deepEqual((await c2.request(req("d", "DUMP_STATE"))).data, dump);
  assert.equal((await c2.request(req("r", "REMOVE_BACKEND", { app_id: "web", ip_address: "127.0.0.1", port: 8080 }))).status, "Ok");
  await again.close(true);
  const third = await startCommand({ dir: h.dir });
  assert.deepEqual(third.comp.state.backends().map((b) => b.backendId), ["api-1"]);
  await third.close();
  const { rm } = await import("node:fs/promises");
  await rm(h.dir, { recursive: true, force: true });
});

test("a corrupt proxy-state is moved aside at start, never overwritten", async () => {
  const h = await startCommand();
  await h.close(true);
  await writeFile(join(h.stateDir, "proxy-state"), "{garbage\n\0");
  const again = await startCommand({ dir: h.dir });
  assert.equal(again.comp.state.backends().length, 0);
  const names = await readdir(h.stateDir);
  assert.ok(names.some((n) => n.startsWith("proxy-state.bad-")), names.join(","));
  await again.close();
  const { rm } = await import("node:fs/promises");
  await rm(h.dir, { recursive: true, force: true });
});

test("state store rules: change events, implicit apps, snapshots stay consistent", async () => {
  const { ProxyState } = await import("../../../src/proxy/command/state.js");
  const s = new ProxyState();
  let changes = 0;
  s.on("change", () => changes++);
  const add = { type: "ADD_BACKEND" as const, backend: { appId: "a", backendId: undefined, ip: "127.0.0.1", port: 1 } };
  const snapshot = s.backends();
  assert.equal(s.apply(add).message, "backend 127.0.0.1:1 (127.0.0.1:1) added to application a");
  assert.equal(changes, 1);
  assert.equal(snapshot.length, 0, "an old snapshot is not mutated");
  assert.deepEqual(s.apps().get("a"), { appId: "a", stickySession: false, httpsRedirect: false, loadBalancing: "roundrobin" });
  assert.equal(s.apply(add).message, "already present");
  assert.equal(changes, 1, "an idempotent add emits nothing");
  assert.equal(s.apply({ type: "REMOVE_BACKEND", backend: { appId: "a", backendId: "nope", ip: "127.0.0.1", port: 1 } }).ok, false);
  assert.equal(changes, 1);
  assert.equal(s.apply({ type: "ADD_BACKEND", backend: { appId: "a", backendId: "other", ip: "127.0.0.1", port: 1 } }).message, "address 127.0.0.1:1 is already backend 127.0.0.1:1 of application a");
});

test("state limits: implicit applications count against the application limit", async () => {
  const { ProxyState, LIMITS } = await import("../../../src/proxy/command/state.js");
  const saved = LIMITS.apps;
  LIMITS.apps = 2;
  try {
    const s = new ProxyState();
    const add = (app: string) => s.apply({ type: "ADD_BACKEND", backend: { appId: app, backendId: undefined, ip: "10.0.0.1", port: 1 } });
    assert.equal(add("a").ok, true);
    assert.equal(add("b").ok, true);
    assert.deepEqual([add("c").ok, add("c").message], [false, "too many applications (limit 2)"]);
    assert.equal(s.apply({ type: "ADD_HTTP_FRONT", front: { appId: "d", hostname: "d.example", pathBegin: "" } }).message, "too many applications (limit 2)");
    assert.equal(s.apps().size, 2);
  } finally {
    LIMITS.apps = saved;
  }
});
