// systemd readiness (Type=notify) through the bundle: a test-owned datagram socket stands in for
// systemd's NOTIFY_SOCKET; the daemon's messages (sent by systemd-notify) are read by python3.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createServer, connect, type Server } from "node:net";
import { request } from "node:http";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUNDLE, startDaemon } from "../helpers/daemon.js";
import { NO_DOCKER, parseReply, viaSocat } from "../helpers/admin.js";
import { waitFor } from "../helpers/docker.js";
import { SystemdNotifier } from "../../src/daemon/notify.js";
import { setLogSink } from "../../src/log.js";

const RECEIVER = `
import socket, sys, json
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print(json.dumps("up"), flush=True)
while True:
    print(json.dumps(s.recv(65536).decode()), flush=True)
`;

interface Receiver {
  path: string;
  /** every datagram (its assignments), BARRIER=1 ones left out */
  messages: Record<string, string>[];
  /** called for each message as it arrives */
  onMessage?: (m: Record<string, string>) => void;
  proc: ChildProcess;
}

const haveTools = () => !spawnSync("python3", ["-c", "pass"]).error && !spawnSync("systemd-notify", ["--version"]).error;

async function receiver(dir: string): Promise<Receiver> {
  const path = join(dir, "notify.sock");
  const proc = spawn("python3", ["-c", RECEIVER, path], { stdio: ["ignore", "pipe", "inherit"] });
  const r: Receiver = { path, messages: [], proc };
  let buf = "";
  let up: () => void = () => {};
  const ready = new Promise<void>((res) => (up = res));
  proc.stdout!.setEncoding("utf8").on("data", (c: string) => {
    buf += c;
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const text = JSON.parse(buf.slice(0, nl)) as string;
      buf = buf.slice(nl + 1);
      if (text === "up") up();
      else if (text.trim() !== "BARRIER=1") {
        const m = Object.fromEntries(text.trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
        r.messages.push(m);
        r.onMessage?.(m);
      }
    }
  });
  await ready;
  return r;
}

const httpAnswers = (port: number) =>
  new Promise<boolean>((resolve) => request({ host: "127.0.0.1", port, path: "/", agent: false }, (res) => (res.resume(), resolve(true))).on("error", () => resolve(false)).end());
const unixAnswers = (path: string) =>
  new Promise<boolean>((resolve) => {
    const s = connect(path);
    s.once("connect", () => (s.destroy(), resolve(true)));
    s.once("error", () => resolve(false));
  });

test("READY=1 only once every listener is bound; RELOADING=1 then READY=1 around a reload; STOPPING=1 at the stop", async (t) => {
  if (!haveTools()) return t.skip("python3 or systemd-notify missing");
  const dir = await mkdtemp(join(tmpdir(), "stevedore-notify-"));
  const rx = await receiver(dir);
  t.after(async () => {
    rx.proc.kill();
    await rm(dir, { recursive: true, force: true });
  });
  const checks: Promise<boolean[]>[] = [];
  let d: Awaited<ReturnType<typeof startDaemon>> | undefined;
  rx.onMessage = (m) => {
    // at READY=1 every listener answers (the core port, the admin, query and command sockets)
    if (m.READY === "1" && checks.length === 0)
      checks.push(Promise.all([httpAnswers(d!.corePort), httpAnswers(d!.httpPort), unixAnswers(d!.adminSocket), unixAnswers(d!.querySocket), unixAnswers(d!.commandSocket)]));
  };
  const started = startDaemon({ env: { ...NO_DOCKER, NOTIFY_SOCKET: rx.path }, disable: ["manager", "https"] });
  d = await started.catch((e) => { throw e; });
  await waitFor("READY=1", () => rx.messages.some((m) => m.READY === "1"), 15_000);
  assert.ok(checks.length === 1, "checked at READY=1");
  // (startDaemon resolves on the "ready" log; the checks may have started slightly earlier)
  assert.deepEqual(await checks[0], [true, true, true, true, true]);
  const first = rx.messages.find((m) => m.READY === "1")!;
  assert.equal(first.MAINPID, String(d.proc.pid));
  assert.match(first.STATUS ?? "", /^ready: /);

  const from = rx.messages.length;
  assert.equal(parseReply(await viaSocat(d.adminSocket, "reload\n")).status, "ok");
  await waitFor("READY=1 after the reload", () => rx.messages.slice(from).some((m) => m.READY === "1"));
  const around = rx.messages.slice(from);
  assert.equal(around[0]!.RELOADING, "1", JSON.stringify(around));
  assert.match(around[0]!.MONOTONIC_USEC ?? "", /^\d+$/);
  assert.equal(around[1]!.READY, "1");

  const code = await d.stop();
  assert.equal(code, 0);
  await waitFor("STOPPING=1", () => rx.messages.some((m) => m.STOPPING === "1"));
  await d.cleanup();
});

test("a failed start sends no READY=1 (exit 1)", async (t) => {
  if (!haveTools()) return t.skip("python3 or systemd-notify missing");
  const dir = await mkdtemp(join(tmpdir(), "stevedore-notify-"));
  const rx = await receiver(dir);
  const held: Server = createServer();
  await new Promise<void>((r) => held.listen(0, "127.0.0.1", r));
  t.after(async () => {
    rx.proc.kill();
    held.close();
    await rm(dir, { recursive: true, force: true });
  });
  const port = (held.address() as { port: number }).port;
  const conf = join(dir, "s.conf");
  await writeFile(conf, [`state_dir = "${join(dir, "state")}"`, 'query_socket_path = ""', 'admin_socket_path = ""', 'command_socket_path = ""', `core_listen = "127.0.0.1:${port}"`, 'manager_listen = ""', 'proxy_http_listen = ""', 'proxy_https_listen = ""', ""].join("\n"));
  const p = spawn(process.execPath, [BUNDLE, "daemon", "--config", conf], { env: { ...process.env, ...NO_DOCKER, NOTIFY_SOCKET: rx.path, STEVEDORE_CONFIG: "" }, stdio: "ignore" });
  assert.equal(await new Promise((r) => p.once("exit", r)), 1);
  // STOPPING=1 is the last message the daemon sends; nothing said READY before it
  await waitFor("STOPPING=1", () => rx.messages.some((m) => m.STOPPING === "1"));
  assert.ok(!rx.messages.some((m) => m.READY === "1"), JSON.stringify(rx.messages));
});

test("without NOTIFY_SOCKET nothing is sent (no systemd-notify is run)", async () => {
  const lines: string[] = [];
  const restore = setLogSink((l) => lines.push(l));
  try {
    const n = new SystemdNotifier({}, "/nonexistent/systemd-notify");
    assert.equal(n.enabled, false);
    await n.send("READY=1");
    assert.deepEqual(lines, []);
    // with it, a missing tool is a warning, never a crash
    await new SystemdNotifier({ NOTIFY_SOCKET: "/nonexistent.sock" }, "/nonexistent/systemd-notify").send("READY=1");
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.ok(lines.some((l) => /level=warn msg="systemd notification not sent" what="READY=1" error="\/nonexistent\/systemd-notify not found"/.test(l)), lines.join("\n"));
  } finally {
    restore();
  }
});
