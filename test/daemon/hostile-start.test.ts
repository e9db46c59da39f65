// Start-up against a hostile state and socket directory (issue 16 items 2 and 5), with the bundle:
// stale temps of atomic writes are removed (only ours, only regular files, writer gone; a symlink
// with a temp-like name is left and its target untouched), and sockets in a directory others may
// write to are refused with a clear error (and, as every configured listener that cannot be made, fail the start); the
// proxy HTTPS listener under handshake-stalled clients (item 1).
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, lstat, mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect as netConnect, type Socket } from "node:net";
import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import { waitFor } from "../helpers/docker.js";
import { BUNDLE, startDaemon } from "../helpers/daemon.js";

const DEAD_PID = 2147483646; // above any pid_max: no such process

function httpStatus(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/", agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end();
  });
}

test("stale temps are removed at start; symlinks, live writers' temps and other files are not", async () => {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-hostile-"));
  const state = join(dir, "state");
  for (const sub of ["jwt", "acme/certs", "shaman/checkout-sums"]) await mkdir(join(state, sub), { recursive: true, mode: 0o700 });
  const outside = join(dir, "outside.txt");
  await writeFile(outside, "precious\n");
  const stale = [
    `.proxy-state.json.${DEAD_PID}.0a1b2c3d.tmp`,
    `.core-services.json.${DEAD_PID}.deadbeef.tmp`,
    `.revision.${DEAD_PID}.00ff00ff.tmp`,
    `.tokens.${DEAD_PID}.12345678.tmp`,
    join("jwt", `.es256-private.pem.${DEAD_PID}.abcdef01.tmp`),
    join("acme", "certs", `.app.example.org.crt.${DEAD_PID}.0a1b2c3d.tmp`),
    join("shaman", "checkout-sums", `.shot_1.sha256.${DEAD_PID}.deadbeef.tmp`),
  ];
  for (const name of stale) await writeFile(join(state, name), "x".repeat(44_000));
  const kept = [`.revision.${process.pid}.11111111.tmp`, "notes.tmp", `.x.${DEAD_PID}.nothex!!.tmp`];
  for (const name of kept) await writeFile(join(state, name), "keep");
  const link = join(state, `.revision.${DEAD_PID}.22222222.tmp`);
  await symlink(outside, link);
  const d = await startDaemon({ dir, disable: ["core", "manager", "https"] });
  try {
    for (const name of stale) await assert.rejects(lstat(join(state, name)), `${name} removed`);
    for (const name of kept) assert.equal(await readFile(join(state, name), "utf8"), "keep");
    assert.equal(await readlink(link), outside);
    assert.equal(await readFile(outside, "utf8"), "precious\n");
    assert.ok(d.logs.some((l) => l.includes("removed stale temp files") && l.includes("count=7")));
  } finally {
    await d.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
});

test("sockets in a directory writable by others (no sticky bit) are refused: one clear line, exit 1, no socket made", async () => {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-hostile-"));
  await chmod(dir, 0o777);
  const config = join(dir, "stevedore.conf");
  const sock = join(dir, "query.sock");
  await writeFile(config, `state_dir = "${join(dir, "state")}"\nquery_socket_path = "${sock}"\nadmin_socket_path = ""\ncommand_socket_path = ""\ncore_listen = ""\nmanager_listen = ""\nproxy_http_listen = ""\nproxy_https_listen = ""\n`);
  try {
    // a configured listener that cannot be made fails the start (stevedore(8), EXIT STATUS)
    const p = spawn(process.execPath, [BUNDLE, "daemon", "--config", config], { env: { ...process.env, STEVEDORE_CONFIG: "", STEVEDORE_QUERY_SOCKET: "", STEVEDORE_STATE_DIR: "", DOCKER_HOST: "unix:///nonexistent/docker.sock" } });
    let stderr = "";
    p.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    const code = await new Promise<number | null>((r) => p.once("exit", (c) => r(c)));
    assert.equal(code, 1, stderr);
    assert.match(stderr, /query disabled: socket directory .* \(mode 0777, owner uid \d+\) is writable by group or others/);
    assert.doesNotMatch(stderr, /msg="ready"/);
    await assert.rejects(lstat(sock));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("proxy HTTPS: 2× proxy_max_connections stalled handshakes neither lock clients out nor stay open", async () => {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-hostile-"));
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  await promisify(execFile)("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost", "-days", "1", "-keyout", keyFile, "-out", certFile]);
  const LIMIT = 20;
  const d = await startDaemon({ dir, disable: ["core", "manager"], config: `proxy_max_connections = ${LIMIT}\ntls_handshake_timeout_secs = 4\nproxy_default_cert = "${certFile}"\nproxy_default_key = "${keyFile}"` });
  const socks: Socket[] = [];
  let closed = 0;
  try {
    // The timeout (4 s) leaves room for the stalled clients and the legitimate requests below on a
    // loaded machine: they must all be answered before the first stalled client could have timed out.
    const firstStalled = performance.now();
    for (let i = 0; i < 2 * LIMIT; i++) {
      const s = netConnect(d.httpsPort, "127.0.0.1");
      s.on("error", () => {});
      s.on("close", () => closed++);
      await new Promise<void>((resolve) => s.once("connect", resolve).once("close", resolve));
      if (i % 4 === 0) s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc]));
      socks.push(s);
    }
    for (let i = 0; i < 5; i++) {
      assert.ok((await httpsStatus(d.httpsPort)) >= 200, "a legitimate HTTPS request is answered");
      assert.ok(performance.now() - firstStalled < 4000, "without waiting for the stalled ones");
    }
    await waitFor("every stalled socket closed by the daemon", () => closed === socks.length, 20_000);
  } finally {
    for (const s of socks) s.destroy();
    await d.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
});

function httpsStatus(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: "127.0.0.1", port, path: "/", agent: false, rejectUnauthorized: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end();
  });
}
