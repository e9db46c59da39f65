// Clients for the admin socket in tests: raw node sockets (exact bytes) and the real tools (socat, nc).
import { spawn } from "node:child_process";
import assert from "node:assert/strict";
import { connect } from "node:net";
import type { TestDaemon } from "./daemon.js";

export interface RawResult {
  /** everything the server sent */
  reply: string;
  /** ms from connect to the server closing the connection */
  ms: number;
}

/** Connect, send `data` (nothing when undefined), optionally half-close, read until the server closes. */
export function adminRaw(path: string, data?: string | Buffer, opts: { end?: boolean; timeoutMs?: number } = {}): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const sock = connect(path);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`admin socket did not close within ${opts.timeoutMs ?? 10_000} ms; got ${JSON.stringify(Buffer.concat(chunks).toString())}`));
    }, opts.timeoutMs ?? 10_000);
    sock.on("connect", () => {
      if (data !== undefined) sock.write(data, () => {}); // the server may close before reading it all
      if (opts.end) sock.end();
    });
    sock.on("data", (c: Buffer) => chunks.push(c));
    sock.on("error", (err: NodeJS.ErrnoException) => {
      // a server that closes while we still write gives EPIPE/ECONNRESET; the reply already read counts
      if (err.code === "EPIPE" || err.code === "ECONNRESET") return;
      clearTimeout(timer);
      reject(err);
    });
    sock.on("close", () => {
      clearTimeout(timer);
      resolve({ reply: Buffer.concat(chunks).toString("utf8"), ms: performance.now() - started });
    });
  });
}

/** Run a tool with `input` on stdin; resolve with its stdout. */
function tool(cmd: string, args: string[], input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
    p.stderr.setEncoding("utf8").on("data", (c: string) => (err += c));
    const timer = setTimeout(() => p.kill("SIGKILL"), 15_000);
    p.on("error", reject);
    p.on("close", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} exited ${code}: ${err}`));
    });
    p.stdin.end(input);
  });
}

/** `printf INPUT | socat -t 10 - UNIX-CONNECT:PATH` */
export const viaSocat = (path: string, input: string) => tool("socat", ["-t", "10", "-", `UNIX-CONNECT:${path}`], input);
/** `printf INPUT | nc -N -U PATH` (OpenBSD netcat) */
export const viaNc = (path: string, input: string) => tool("nc", ["-N", "-U", path], input);

/** Parse one reply: exactly one JSON object, terminated by a single newline. */
export function parseReply(text: string): Record<string, unknown> {
  if (!text.endsWith("\n") || text.indexOf("\n") !== text.length - 1) throw new Error(`not one newline-terminated line: ${JSON.stringify(text)}`);
  const v = JSON.parse(text) as unknown;
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error(`not a JSON object: ${text}`);
  return v as Record<string, unknown>;
}

/** Listeners other than the admin socket, off: admin tests need none of them. */
export const ONLY_ADMIN = ["query", "command", "core", "manager", "http", "https"] as const;
/** `sites` counts ingress routes too: daemons that count sites see no engine, so containers
 *  that other test runs start on the shared engine cannot change the count. */
export const NO_DOCKER = { DOCKER_HOST: "unix:///nonexistent/docker.sock" };

export async function waitForCount(daemon: TestDaemon, from: number, re: RegExp, n: number, timeoutMs = 20_000) {
  const deadline = performance.now() + timeoutMs;
  while (daemon.logs.slice(from).filter((l) => re.test(l)).length < n) {
    if (performance.now() > deadline) throw new Error(`fewer than ${n} log lines matching ${re}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** reload begin/end lines alternate, each end closing the begin before it. */
export function assertSerialized(lines: string[]) {
  let open: string | undefined;
  let count = 0;
  for (const line of lines) {
    const m = /msg="reload (begin|end)" seq=(\d+)/.exec(line);
    if (!m) continue;
    if (m[1] === "begin") {
      assert.equal(open, undefined, `reload ${m[2]} began while ${open} was running`);
      open = m[2];
      count++;
    } else {
      assert.equal(open, m[2], `reload end ${m[2]} without its begin`);
      open = undefined;
    }
  }
  return count;
}
