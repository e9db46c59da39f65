// The core API against the real engine, through the bundled daemon.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server, type ServerResponse } from "node:http";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile, copyFile, symlink } from "node:fs/promises";
import { createReadStream } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { needDocker, ensureTestImage, removeLabeled, run, waitFor, dockerReachable } from "../helpers/docker.js";
import { startDaemon, BUNDLE, type TestDaemon } from "../helpers/daemon.js";
import { CoreClient } from "./client.js";
import { RUN, RUN_LABEL, labels } from "./run.js";
import { tgz } from "./tarbuild.js";

const LABEL = RUN_LABEL;
let d: TestDaemon;
let api: CoreClient;
let image: string;
let files: Server;
let filesPort = 0;
const archives = new Map<string, (res: ServerResponse) => void>();

async function inspect(id: string): Promise<any> {
  const { stdout } = await run("docker", ["inspect", id]);
  return JSON.parse(stdout)[0];
}
async function containerExists(id: string): Promise<boolean> {
  return run("docker", ["inspect", "--type", "container", id]).then(() => true, () => false);
}
const bindsDir = () => join(d.stateDir, "binds");
const bindDir = (id: string) => join(bindsDir(), id);
async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}
/** nothing of a failed create is left: no container, no bind dir, no temp dir, no registry entry */
async function assertNothingLeft(id: string): Promise<void> {
  assert.equal(await containerExists(id), false, `container ${id} left behind`);
  assert.equal(await exists(bindDir(id)), false, `bind dir of ${id} left behind`);
  const left = (await readdir(bindsDir())).filter((n) => n.startsWith("."));
  assert.deepEqual(left, [], "temp dirs left behind");
  assert.equal((await api.call("GET", `/service/${id}`)).status, 404);
}
const url = (name: string) => `http://127.0.0.1:${filesPort}/${name}`;
function serve(name: string, body: Buffer): void {
  archives.set(name, (res) => res.writeHead(200, { "Content-Type": "application/gzip", "Content-Length": body.length }).end(body));
}

before(async () => {
  if (!(await dockerReachable())) return;
  image = await ensureTestImage();
  await removeLabeled(LABEL);
  files = createServer((req, res) => {
    const handler = archives.get((req.url ?? "/").slice(1));
    if (handler) handler(res);
    else res.writeHead(404).end("not found");
  });
  await new Promise<void>((r) => files.listen(0, "127.0.0.1", r));
  filesPort = (files.address() as { port: number }).port;
  d = await startDaemon({
    disable: ["query", "admin", "command", "manager", "http", "https"],
    config: ["core_max_body_bytes = 65536", "core_bind_contents_max_bytes = 1048576", "core_image_max_bytes = 8388608",
      // 2 s: short for the timeout cases, long enough that a loaded machine does not cut a good download
      "core_download_timeout_secs = 2", "core_stop_timeout_secs = 2"].join("\n"),
  });
  api = await CoreClient.forStateDir(d.corePort, d.stateDir);
});

after(async () => {
  await d?.cleanup();
  files?.closeAllConnections();
  files?.close();
  if (await dockerReachable()) {
    await removeLabeled(LABEL);
    await run("docker", ["rmi", "-f", `coretest-imported-${RUN}:v1`]).catch(() => {});
  }
});

test("core key: 32 bytes, mode 0600, printed in base64 by `stevedore core key`", async (t) => {
  if (!(await needDocker(t))) return;
  const file = join(d.stateDir, "corekey.bin");
  const st = await stat(file);
  assert.equal(st.mode & 0o777, 0o600);
  assert.equal(st.size, 32);
  const r = spawnSync(process.execPath, [BUNDLE, "core", "key", "--config", d.configPath], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, (await readFile(file)).toString("base64") + "\n");
  const missing = spawnSync(process.execPath, [BUNDLE, "core", "key"], { encoding: "utf8", env: { ...process.env, STEVEDORE_CONFIG: "", STEVEDORE_STATE_DIR: join(d.dir, "nope") } });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /^stevedore: no core key at .*nope\/corekey\.bin/);
  assert.equal(spawnSync(process.execPath, [BUNDLE, "core", "frob"], { encoding: "utf8" }).status, 2);
});

test("auth: missing, not base64, wrong key → 401 before routing; right key passes", async (t) => {
  if (!(await needDocker(t))) return;
  for (const key of [null, "!!!not base64!!!", Buffer.alloc(32, 1).toString("base64"), api.key.slice(0, -4)]) {
    for (const path of ["/service/nope", "/no/such/route"]) {
      const r = await api.call("GET", path, { key });
      assert.equal(r.status, 401, `key ${key} path ${path}`);
      assert.deepEqual(r.json, { error: "invalid core key" });
    }
  }
  const ok = await api.call("GET", "/service/nope");
  assert.equal(ok.status, 404);
  assert.match(ok.json.error, /no such service/);
  assert.equal((await api.call("GET", "/v1/service/nope")).status, 404);
});

test("bad input: JSON, content type, unknown keys, wrong types, bad ops, body limits, routes, methods", async (t) => {
  if (!(await needDocker(t))) return;
  const base = { id: `coretest-bad-${RUN}`, image, bind_dir: "/data", labels };
  const cases: [string, Parameters<CoreClient["call"]>, number, RegExp][] = [
    ["bad JSON", ["POST", "/service", { body: "{not json" }], 400, /invalid JSON/],
    ["text/plain", ["POST", "/service", { body: JSON.stringify({ type: "raw", params: base }), contentType: "text/plain" }], 415, /application\/json/],
    ["type", ["POST", "/service", { body: { type: "compose", params: base } }], 400, /type must be "raw"/],
    ["unknown params key", ["POST", "/service", { body: { type: "raw", params: { ...base, colour: "red", size: 1 } } }], 400, /unknown params keys: colour, size/],
    ["unknown top key", ["POST", "/service", { body: { type: "raw", params: base, extra: 1 } }], 400, /unknown keys: extra/],
    ["missing image", ["POST", "/service", { body: { type: "raw", params: { id: `coretest-bad-${RUN}`, bind_dir: "/data" } } }], 400, /params\.image is required/],
    ["cmd type", ["POST", "/service", { body: { type: "raw", params: { ...base, cmd: "ls" } } }], 400, /params\.cmd must be an array/],
    ["tty type", ["POST", "/service", { body: { type: "raw", params: { ...base, tty: "yes" } } }], 400, /params\.tty must be a boolean/],
    ["max_ram type", ["POST", "/service", { body: { type: "raw", params: { ...base, max_ram: "1G" } } }], 400, /params\.max_ram must be an integer/],
    ["port key", ["POST", "/service", { body: { type: "raw", params: { ...base, port_map: { "80": { HostPort: "1" } } } } }], 400, /params\.port_map/],
    ["HostPort type", ["POST", "/service", { body: { type: "raw", params: { ...base, port_map: { "80/tcp": { HostPort: 80 } } } } }], 400, /HostPort must be a string/],
    ["bind_dir relative", ["POST", "/service", { body: { type: "raw", params: { ...base, bind_dir: "data" } } }], 400, /bind_dir must be an absolute path/],
    ["bind_dir colon", ["POST", "/service", { body: { type: "raw", params: { ...base, bind_dir: "/data:ro" } } }], 400, /bind_dir must not contain/],
    ["id", ["POST", "/service", { body: { type: "raw", params: { ...base, id: "../x" } } }], 400, /params\.id must match/],
    ["own label", ["POST", "/service", { body: { type: "raw", params: { ...base, labels: { "stevedore.service": "x" } } } }], 400, /set by stevedore/],
    ["bind_contents scheme", ["POST", "/service", { body: { type: "raw", params: { ...base, bind_contents: "file:///etc/passwd" } } }], 400, /http or https/],
    ["body too large", ["POST", "/service", { body: { type: "raw", params: { ...base, cmd: ["x".repeat(70000)] } } }], 413, /larger than 65536/],
    ["body on GET too large", ["GET", `/service/coretest-none-${RUN}`, { body: "x".repeat(70000), contentType: null }], 413, /larger than/],
    ["unknown id ctl", ["POST", "/service/coretest-none/ctl", { body: { op: "start" } }], 404, /no such service/],
    ["bad op", ["POST", "/service/coretest-none/ctl", { body: { op: "explode" } }], 400, /op must be/],
    ["unknown id stats", ["GET", "/service/coretest-none/stats"], 404, /no such service/],
    ["unknown id delete", ["DELETE", `/service/coretest-none-${RUN}`], 404, /no such service/],
    ["unknown id env", ["PATCH", "/service/coretest-none/env", { body: { A: "b" } }], 404, /no such service/],
    ["env key with =", ["PATCH", "/service/coretest-none/env", { body: { "A=B": "c" } }], 400, /bad variable name/],
    ["env value type", ["PATCH", "/service/coretest-none/env", { body: { A: 1 } }], 400, /A must be a string/],
    ["env value NUL", ["PATCH", "/service/coretest-none/env", { body: { A: "x\u0000y" } }], 400, /NUL/],
    ["env empty key", ["PATCH", "/service/coretest-none/env", { body: { "": "x" } }], 400, /bad variable name/],
    ["unknown route", ["GET", "/services"], 404, /no such endpoint/],
    ["image bad repo", ["POST", "/docker/image?repo=UPPER%20case", { body: Buffer.alloc(0), contentType: "application/x-tar" }], 400, /repo/],
  ];
  for (const [what, args, status, re] of cases) {
    const r = await api.call(...args);
    assert.equal(r.status, status, `${what}: ${r.text}`);
    assert.match(r.json?.error ?? "", re, what);
  }
  const m = await api.call("PUT", `/service/coretest-none-${RUN}`);
  assert.equal(m.status, 405);
  assert.equal(m.headers.allow, "GET, DELETE");
  assert.equal(await containerExists(`coretest-bad-${RUN}`), false);
});

test("create with every parameter: docker inspect shows each mapped; ports reachable; bind mount served", async (t) => {
  if (!(await needDocker(t))) return;
  const id = `coretest-all-${RUN}`;
  const r = await api.create({
    id, image, bind_dir: "/srv/www", labels: { ...labels, "stevedore.ingress.enabled": "true" }, deployment: "core-all",
    cmd: ["httpd", "-f", "-p", "8080", "-h", "/srv/www"], shell: ["/bin/sh", "-c"], user: "nobody", working_dir: "/srv",
    open_stdin: false, tty: false, hostname: `coretest-host-${RUN}`,
    port_map: { "8080/tcp": [{ HostIp: "127.0.0.1", HostPort: String(d.httpPort) }, { HostPort: String(d.httpsPort) }] },
    max_cpu: 50000, max_ram: 64 * 1024 * 1024,
  });
  assert.equal(r.status, 204, r.text);
  const c = await inspect(id);
  assert.equal(c.Name, `/${id}`);
  assert.equal(c.State.Status, "created", "created, not started");
  assert.equal(c.Config.Image, image);
  assert.deepEqual(c.Config.Cmd, ["httpd", "-f", "-p", "8080", "-h", "/srv/www"]);
  assert.deepEqual(c.Config.Shell, ["/bin/sh", "-c"]);
  assert.equal(c.Config.User, "nobody");
  assert.equal(c.Config.WorkingDir, "/srv");
  assert.equal(c.Config.OpenStdin, false);
  assert.equal(c.Config.StdinOnce, false);
  assert.equal(c.Config.Tty, false);
  assert.equal(c.Config.Hostname, `coretest-host-${RUN}`);
  assert.deepEqual(Object.keys(c.Config.ExposedPorts), ["8080/tcp"]);
  assert.deepEqual(c.HostConfig.PortBindings["8080/tcp"], [{ HostIp: "127.0.0.1", HostPort: String(d.httpPort) }, { HostIp: "", HostPort: String(d.httpsPort) }]);
  assert.equal(c.HostConfig.CpuPeriod, 100000);
  assert.equal(c.HostConfig.CpuQuota, 50000);
  assert.equal(c.HostConfig.Memory, 64 * 1024 * 1024);
  assert.deepEqual(c.HostConfig.Binds, [`${bindDir(id)}:/srv/www`]);
  assert.equal(c.Config.Labels["stevedore.core.id"], id);
  assert.equal(c.Config.Labels["stevedore.deployment"], "core-all");
  assert.equal(c.Config.Labels["stevedore.service"], id);
  assert.equal(c.Config.Labels["stevedore.ingress.enabled"], "true");

  await writeFile(join(bindDir(id), "index.html"), "served from the bind dir\n");
  assert.equal((await api.ctl(id, "start")).status, 204);
  for (const port of [d.httpPort, d.httpsPort]) {
    const body = await waitFor(`curl :${port}`, async () => (await run("curl", ["-sf", `http://127.0.0.1:${port}/index.html`])).stdout, 30_000, 100);
    assert.equal(body, "served from the bind dir\n");
  }
  const running = await inspect(id);
  assert.equal(running.Config.Hostname, `coretest-host-${RUN}`);

  // network disabled, the defaults for tty/stdin, port_map object form
  const nd = `coretest-nonet-${RUN}`;
  assert.equal((await api.create({ id: nd, image, bind_dir: "/data", labels, network_disabled: true, cmd: ["sleep", "1000"] })).status, 204);
  const n = await inspect(nd);
  assert.equal(n.Config.NetworkDisabled, true);
  assert.equal(n.Config.Tty, true);
  assert.equal(n.Config.OpenStdin, true);
  assert.equal(n.Config.Labels["stevedore.deployment"], "core", "core_deployment is the default deployment");
  const obj = `coretest-objport-${RUN}`;
  assert.equal((await api.create({ id: obj, image, bind_dir: "/data", labels, port_map: { "8080/tcp": { HostPort: "" } } })).status, 204);
  assert.deepEqual((await inspect(obj)).HostConfig.PortBindings["8080/tcp"], [{ HostIp: "", HostPort: "" }]);
  for (const x of [nd, obj]) assert.equal((await api.call("DELETE", `/service/${x}`)).status, 204);
});

test("duplicate id → 409; missing image → 502 with Docker's message and nothing left", async (t) => {
  if (!(await needDocker(t))) return;
  const r = await api.create({ id: `coretest-all-${RUN}`, image, bind_dir: "/data", labels });
  assert.equal(r.status, 409);
  assert.match(r.json.error, /already exists/);
  const m = await api.create({ id: `coretest-noimage-${RUN}`, image: "coretest-missing/none:1", bind_dir: "/data", labels });
  assert.equal(m.status, 502, m.text);
  assert.match(m.json.error, /pull of coretest-missing\/none:1 failed: .+/);
  await assertNothingLeft(`coretest-noimage-${RUN}`);
  // a container of that name outside the registry: Docker's conflict → 409, nothing of ours left
  await run("docker", ["create", "--name", `coretest-squatter-${RUN}`, "--label", LABEL, "--label", "stevedore.test=core", image]);
  const s = await api.create({ id: `coretest-squatter-${RUN}`, image, bind_dir: "/data", labels });
  assert.equal(s.status, 409, s.text);
  assert.match(s.json.error, /docker: .*already in use/);
  assert.equal(await exists(bindDir(`coretest-squatter-${RUN}`)), false);
  await run("docker", ["rm", "-f", `coretest-squatter-${RUN}`]);
});

test("ctl: start/stop/kill/restart transitions, each idempotent; stats shape; inspect as Docker gives it", async (t) => {
  if (!(await needDocker(t))) return;
  const id = `coretest-ctl-${RUN}`;
  assert.equal((await api.create({ id, image, bind_dir: "/data", labels, cmd: ["sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"] })).status, 204);
  const state = async () => (await inspect(id)).State;
  for (const [op, running] of [["start", true], ["start", true], ["stop", false], ["stop", false], ["kill", false], ["start", true], ["kill", false], ["restart", true], ["restart", true]] as const) {
    const r = await api.call("POST", `/v1/service/${id}/ctl`, { body: { op } });
    assert.equal(r.status, 204, `${op}: ${r.text}`);
    assert.equal((await state()).Running, running, `after ${op}`);
  }
  const stats = await api.call("GET", `/service/${id}/stats`);
  assert.equal(stats.status, 200);
  for (const key of ["cpu_stats", "memory_stats", "networks", "precpu_stats", "pids_stats", "read"]) assert.ok(key in stats.json, `stats has ${key}`);
  assert.equal(stats.json.name, `/${id}`);
  const got = await api.call("GET", `/service/${id}`);
  assert.equal(got.status, 200);
  const docker = await inspect(id);
  assert.equal(got.json.Id, docker.Id);
  assert.deepEqual(Object.keys(got.json).sort(), Object.keys(docker).sort());
  assert.deepEqual(got.json.HostConfig, docker.HostConfig);
});

test("env PATCH replaces the set and is applied at the next restart by recreation", async (t) => {
  if (!(await needDocker(t))) return;
  const id = `coretest-env-${RUN}`;
  assert.equal((await api.create({ id, image, bind_dir: "/data", labels, cmd: ["sh", "-c", "env > /data/env.txt; trap 'exit 0' TERM; sleep 100000 & wait"] })).status, 204);
  assert.equal((await api.ctl(id, "start")).status, 204);
  const envFile = join(bindDir(id), "env.txt");
  await waitFor("env.txt", () => exists(envFile));
  const before = await inspect(id);
  assert.equal((await api.call("PATCH", `/service/${id}/env`, { body: { GREETING: "hello world", EMPTY: "" } })).status, 204);
  assert.equal((await api.call("PATCH", `/service/${id}/env`, { body: { GREETING: "hello=again", OTHER: "2" } })).status, 204);
  assert.equal((await inspect(id)).Id, before.Id, "not applied before a restart");
  await rm(envFile);
  assert.equal((await api.ctl(id, "restart")).status, 204);
  const text = await waitFor("env.txt again", () => readFile(envFile, "utf8").catch(() => undefined));
  assert.match(text, /^GREETING=hello=again$/m);
  assert.match(text, /^OTHER=2$/m);
  assert.doesNotMatch(text, /^EMPTY=/m, "the set was replaced");
  const after = await inspect(id);
  assert.notEqual(after.Id, before.Id, "recreated");
  assert.deepEqual(after.HostConfig.Binds, before.HostConfig.Binds);
  assert.equal(after.Name, before.Name);
  assert.equal(after.State.Running, true);
  // a stop + start also applies a change
  assert.equal((await api.call("PATCH", `/service/${id}/env`, { body: { GREETING: "third" } })).status, 204);
  assert.equal((await api.ctl(id, "stop")).status, 204);
  assert.equal((await api.ctl(id, "start")).status, 204);
  assert.ok((await inspect(id)).Config.Env.includes("GREETING=third"));
});

test("delete removes the container, the bind dir and the registry entry", async (t) => {
  if (!(await needDocker(t))) return;
  const id = `coretest-env-${RUN}`;
  assert.equal(await exists(bindDir(id)), true);
  const r = await api.call("DELETE", `/service/${id}`);
  assert.equal(r.status, 204, r.text);
  assert.equal(await containerExists(id), false);
  assert.equal(await exists(bindDir(id)), false);
  assert.equal((await api.call("GET", `/service/${id}`)).status, 404);
  assert.equal((await api.call("DELETE", `/service/${id}`)).status, 404);
  const reg = JSON.parse(await readFile(join(d.stateDir, "core-services.json"), "utf8"));
  assert.equal(reg.services[id], undefined);
  assert.equal((await stat(join(d.stateDir, "core-services.json"))).mode & 0o777, 0o600);
});

test("delete never follows a symlink out of the binds dir", async (t) => {
  if (!(await needDocker(t))) return;
  const id = `coretest-symdel-${RUN}`;
  assert.equal((await api.create({ id, image, bind_dir: "/data", labels })).status, 204);
  const outside = await mkdtemp(join(tmpdir(), `coretest-outside--${RUN}`));
  try {
    await writeFile(join(outside, "precious"), "keep");
    await symlink(outside, join(bindDir(id), "escape"));
    assert.equal((await api.call("DELETE", `/service/${id}`)).status, 204);
    assert.equal(await readFile(join(outside, "precious"), "utf8"), "keep");
    assert.equal(await exists(bindDir(id)), false);
  } finally {
    await rm(outside, { recursive: true, force: true });
  }
});

test("POST /docker/image imports a rootfs tar; a service from the returned id runs; limit → 413", async (t) => {
  if (!(await needDocker(t))) return;
  const root = await mkdtemp(join(tmpdir(), `coretest-rootfs--${RUN}`));
  try {
    const fs = join(root, "fs");
    for (const dir of ["bin", "data"]) await mkdir(join(fs, dir), { recursive: true });
    await copyFile("/bin/busybox", join(fs, "bin/busybox"));
    for (const a of ["sh", "sleep", "echo"]) await symlink("busybox", join(fs, "bin", a));
    const tarPath = join(root, "rootfs.tar");
    await run("tar", ["-C", fs, "-cf", tarPath, "."]);
    const r = await api.call("POST", `/docker/image?repo=coretest-imported-${RUN}&tag=v1`, {
      stream: createReadStream(tarPath), headers: { "Content-Type": "application/x-tar", "Content-Length": String((await stat(tarPath)).size) },
    });
    assert.equal(r.status, 200, r.text);
    assert.match(r.json.image_id, /^sha256:[0-9a-f]{64}$/);
    const named = JSON.parse((await run("docker", ["image", "inspect", `coretest-imported-${RUN}:v1`])).stdout)[0];
    assert.equal(named.Id, r.json.image_id);
    const id = `coretest-imported-${RUN}`;
    const c = await api.create({ id, image: r.json.image_id, bind_dir: "/data", labels, cmd: ["/bin/sh", "-c", "echo imported > /data/ok; exec sleep 100000"] });
    assert.equal(c.status, 204, c.text);
    assert.equal((await api.ctl(id, "start")).status, 204);
    assert.equal(await waitFor("ok file", () => readFile(join(bindDir(id), "ok"), "utf8").catch(() => undefined), 10_000), "imported\n");
    assert.equal((await api.call("DELETE", `/service/${id}`)).status, 204);

    const big = await api.call("POST", "/docker/image", { body: Buffer.alloc(9 * 1024 * 1024), contentType: "application/x-tar" });
    assert.equal(big.status, 413, big.text);
    // chunked, no Content-Length: counted while streaming
    const { Readable } = await import("node:stream");
    const chunks = (function* () { for (let i = 0; i < 10; i++) yield Buffer.alloc(1024 * 1024); })();
    const streamed = await api.call("POST", "/docker/image", { stream: Readable.from(chunks), headers: { "Content-Type": "application/x-tar" } });
    assert.equal(streamed.status, 413, streamed.text);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test("bind_contents: nested dirs, a safe symlink and pax long names are visible inside the container", async (t) => {
  if (!(await needDocker(t))) return;
  const long = `${"l".repeat(110)}/${"n".repeat(120)}.txt`;
  serve("good.tar.gz", tgz([
    { name: "site/", type: "5" },
    { name: "site/a/b/c/deep.txt", data: "deep\n" },
    { name: "site/current", type: "2", linkname: "a/b/c" },
    { name: "x", pax: { path: `site/${long}` }, data: "long name\n" },
  ]));
  archives.set("redirect-good", (res) => res.writeHead(302, { Location: "/good.tar.gz" }).end());
  const id = `coretest-contents-${RUN}`;
  const r = await api.create({ id, image, bind_dir: "/data", labels, bind_contents: url("redirect-good"), cmd: ["sleep", "100000"] });
  assert.equal(r.status, 204, r.text);
  assert.equal((await api.ctl(id, "start")).status, 204);
  const exec = async (...cmd: string[]) => (await run("docker", ["exec", id, ...cmd])).stdout;
  assert.equal(await exec("cat", "/data/site/a/b/c/deep.txt"), "deep\n");
  assert.equal(await exec("cat", "/data/site/current/deep.txt"), "deep\n");
  assert.equal(await exec("cat", `/data/site/${long}`), "long name\n");
  assert.deepEqual((await readdir(bindsDir())).filter((n) => n.startsWith(".")), []);
  assert.equal((await api.call("DELETE", `/service/${id}`)).status, 204);
});

test("bind_contents: hostile archives → 400/413 and nothing left behind", async (t) => {
  if (!(await needDocker(t))) return;
  const good = tgz([{ name: "f", data: "x".repeat(4000) }]);
  const cases: [string, Buffer, number, RegExp][] = [
    ["dotdot", tgz([{ name: "../x", data: "x" }]), 400, /"\.\."/],
    ["absolute", tgz([{ name: "/etc/x", data: "x" }]), 400, /absolute/],
    ["symlink-root", tgz([{ name: "r", type: "2", linkname: "/" }, { name: "r/etc/x", data: "x" }]), 400, /outside the tree/],
    ["hardlink-passwd", tgz([{ name: "pw", type: "1", linkname: "/etc/passwd" }]), 400, /absolute/],
    ["device", tgz([{ name: "dev", type: "3" }]), 400, /character device/],
    ["fifo", tgz([{ name: "fifo", type: "6" }]), 400, /FIFO/],
    ["truncated-gzip", good.subarray(0, good.length - 30), 400, /gzip|truncated/],
    ["declared-2gib", tgz([{ name: "big", size: 2 * 1024 ** 3, data: "x" }]), 413, /larger than 1048576/],
  ];
  for (const [name, body, status, re] of cases) {
    serve(`${name}.tar.gz`, body);
    const id = `coretest-hostile-${name}-${RUN}`;
    const r = await api.create({ id, image, bind_dir: "/data", labels, bind_contents: url(`${name}.tar.gz`) });
    assert.equal(r.status, status, `${name}: ${r.text}`);
    assert.match(r.json.error, re, name);
    await assertNothingLeft(id);
  }
});

test("bind_contents: download 404, redirect loop, timeout, too large → 502/413 and nothing left behind", async (t) => {
  if (!(await needDocker(t))) return;
  archives.set("loop", (res) => res.writeHead(302, { Location: "/loop" }).end());
  archives.set("hang", () => {}); // never answers
  const incompressible = tgz([{ name: "f", data: randomBytes(200_000) }]);
  archives.set("stall", (res) => {
    res.writeHead(200, { "Content-Length": incompressible.length });
    res.write(incompressible.subarray(0, 20_000)); // a valid start, then nothing
  });
  // valid gzip, larger than the limit (random data does not compress)
  const huge = tgz(Array.from({ length: 5 }, (_, i) => ({ name: `f${i}`, data: randomBytes(300_000) })));
  archives.set("huge-declared", (res) => res.writeHead(200, { "Content-Length": huge.length }).end(huge));
  archives.set("huge-chunked", (res) => {
    res.writeHead(200);
    res.end(huge);
  });
  const cases: [string, number, RegExp][] = [
    ["missing", 502, /HTTP 404/],
    ["loop", 502, /more than 5 redirects/],
    ["hang", 502, /no data for 2000 ms/],
    ["stall", 502, /no data for 2000 ms|aborted/],
    ["huge-declared", 413, /larger than 1048576/],
    ["huge-chunked", 413, /larger than 1048576/],
  ];
  for (const [name, status, re] of cases) {
    const id = `coretest-dl-${name}-${RUN}`;
    const started = performance.now();
    const r = await api.create({ id, image, bind_dir: "/data", labels, bind_contents: url(name) });
    assert.equal(r.status, status, `${name}: ${r.text}`);
    assert.match(r.json.error, re, name);
    assert.ok(performance.now() - started < 15_000, `${name} bounded in time`);
    await assertNothingLeft(id);
  }
  const refused = await api.create({ id: `coretest-dl-refused-${RUN}`, image, bind_dir: "/data", labels, bind_contents: "http://127.0.0.1:1/x.tar.gz" });
  assert.equal(refused.status, 502);
  await assertNothingLeft(`coretest-dl-refused-${RUN}`);
});

test("a daemon restart between create and ctl/delete: every endpoint works for services made before", async (t) => {
  if (!(await needDocker(t))) return;
  const id = `coretest-restart-${RUN}`;
  assert.equal((await api.create({ id, image, bind_dir: "/data", labels, cmd: ["sh", "-c", "env > /data/env.txt; trap 'exit 0' TERM; sleep 100000 & wait"] })).status, 204);
  assert.equal((await api.call("PATCH", `/service/${id}/env`, { body: { AFTER_RESTART: "yes" } })).status, 204);
  const keyBefore = api.key;
  await d.restart();
  api = await CoreClient.forStateDir(d.corePort, d.stateDir);
  assert.equal(api.key, keyBefore, "the key survives restarts");
  assert.equal((await api.ctl(id, "start")).status, 204);
  const text = await waitFor("env.txt", () => readFile(join(bindDir(id), "env.txt"), "utf8").catch(() => undefined));
  assert.match(text, /^AFTER_RESTART=yes$/m, "stored env applied after the restart");
  assert.equal((await api.call("GET", `/service/${id}`)).status, 200);
  assert.equal((await api.call("GET", `/service/${id}/stats`)).status, 200);
  assert.equal((await api.create({ id, image, bind_dir: "/data", labels })).status, 409);
  assert.equal((await api.call("DELETE", `/service/${id}`)).status, 204);
  assert.equal(await containerExists(id), false);
  assert.equal((await api.call("DELETE", `/service/coretest-all-${RUN}`)).status, 204);
  assert.equal((await api.call("DELETE", `/service/coretest-ctl-${RUN}`)).status, 204);
});

test("hostile clients: 2x the cap (512) of silent connections never keep keyed requests out; malformed requests get JSON", async (t) => {
  if (!(await needDocker(t))) return;
  const { connect } = await import("node:net");
  const silent = Array.from({ length: 512 }, () => {
    const s = connect(d.corePort, "127.0.0.1");
    s.on("error", () => {});
    return s;
  });
  try {
    await Promise.all(silent.map((s) => new Promise<void>((r) => (s.readyState === "open" ? r() : s.once("connect", () => r()).once("close", () => r())))));
    const statuses = await Promise.all(Array.from({ length: 60 }, (_, i) => api.call("GET", `/service/coretest-nosuch-${RUN}-${i}`).then((r) => r.status, (e: Error) => e.message)));
    assert.deepEqual(statuses, Array(60).fill(404));
    // Node's own parser used to answer these with an empty 400, or close without an answer
    for (const bytes of [`GET /service/x HTTP/1.1\r\nHost: x\r\nX-Duxcore-CoreKey: ${api.key}\r\nX-Bad: a\x01b\r\n\r\n`, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"]) {
      const text = await new Promise<string>((resolve) => {
        let got = "";
        const s = connect(d.corePort, "127.0.0.1", () => s.write(Buffer.from(bytes, "latin1")));
        s.setEncoding("latin1").on("data", (c: string) => (got += c));
        s.on("error", () => {});
        s.on("close", () => resolve(got));
        setTimeout(() => s.destroy(), 15_000).unref();
      });
      assert.match(text, /^HTTP\/1.1 400 [^]*Content-Type: application\/json[^]*\r\n\r\n\{"error":"[^"]+"\}$/, JSON.stringify(text));
    }
  } finally {
    for (const s of silent) s.destroy();
  }
});
