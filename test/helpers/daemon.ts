// Start the bundled daemon (dist/stevedore.js) with a private config: every path in a temp dir,
// every TCP listener on a free loopback port. Tests talk to it through real sockets.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, writeFile, rm } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { waitFor } from "./docker.js";

export const BUNDLE = resolve("dist/stevedore.js");

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once("error", rej);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
  });
}

/** A loopback port where nothing listens (connection refused). Not a released ephemeral port: a test
 *  file running in parallel may bind that one again at any moment. A low port is never handed out by
 *  the kernel; the connect check makes sure no service uses it on this machine. */
export async function closedPort(): Promise<number> {
  for (const port of [1, 3, 5, 7, 11, 13]) {
    const refused = await new Promise<boolean>((res) => {
      const s = connect(port, "127.0.0.1");
      s.once("connect", () => (s.destroy(), res(false)));
      s.once("error", (e: NodeJS.ErrnoException) => res(e.code === "ECONNREFUSED"));
    });
    if (refused) return port;
  }
  throw new Error("no closed low port on 127.0.0.1");
}

export interface TestDaemon {
  dir: string;
  configPath: string;
  stateDir: string;
  querySocket: string;
  adminSocket: string;
  commandSocket: string;
  corePort: number;
  managerPort: number;
  httpPort: number;
  httpsPort: number;
  proc: ChildProcess;
  /** every stderr line so far */
  logs: string[];
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>;
  /** rewrite the config file with extra lines (keeps the paths/ports) */
  writeConfig(extra?: string): Promise<void>;
  /** SIGTERM and wait for exit; resolves with the exit code */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** stop and remove the temp dir */
  cleanup(): Promise<void>;
  /** a fresh daemon process on the same dir/config (after stop) */
  restart(): Promise<void>;
}

export interface DaemonOptions {
  /** extra config lines appended to the generated file */
  config?: string;
  /** disable listeners the test does not need (default: all enabled) */
  disable?: ("query" | "admin" | "command" | "core" | "manager" | "http" | "https")[];
  env?: Record<string, string>;
  /** wait for this log line before resolving (default: msg="ready") */
  readyLog?: RegExp;
  dir?: string;
  /** extra node options for the daemon process (e.g. --cpu-prof for a bench) */
  nodeArgs?: string[];
}

export async function startDaemon(opts: DaemonOptions = {}): Promise<TestDaemon> {
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), "stevedore-test-")));
  const [corePort, managerPort, httpPort, httpsPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const off = new Set(opts.disable ?? []);
  const d = {
    dir,
    configPath: join(dir, "stevedore.conf"),
    stateDir: join(dir, "state"),
    querySocket: join(dir, "query.sock"),
    adminSocket: join(dir, "admin.sock"),
    commandSocket: join(dir, "command.sock"),
    corePort, managerPort, httpPort, httpsPort,
    logs: [] as string[],
  } as TestDaemon;
  const base = () => [
    `state_dir = "${d.stateDir}"`,
    `query_socket_path = "${off.has("query") ? "" : d.querySocket}"`,
    `admin_socket_path = "${off.has("admin") ? "" : d.adminSocket}"`,
    `command_socket_path = "${off.has("command") ? "" : d.commandSocket}"`,
    `core_listen = "${off.has("core") ? "" : `127.0.0.1:${corePort}`}"`,
    `manager_listen = "${off.has("manager") ? "" : `127.0.0.1:${managerPort}`}"`,
    `proxy_http_listen = "${off.has("http") ? "" : `127.0.0.1:${httpPort}`}"`,
    `proxy_https_listen = "${off.has("https") ? "" : `127.0.0.1:${httpsPort}`}"`,
  ].join("\n");
  d.writeConfig = async (extra = opts.config ?? "") => writeFile(d.configPath, `${base()}\n${extra}\n`);
  await d.writeConfig();

  const listeners: ((line: string) => void)[] = [];
  let exited: Promise<number | null>;
  const spawnIt = async () => {
    const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), "--enable-source-maps", BUNDLE, "daemon", "--config", d.configPath], {
      env: { ...process.env, STEVEDORE_CONFIG: "", STEVEDORE_QUERY_SOCKET: "", STEVEDORE_STATE_DIR: "", INVOCATION_ID: "", ...opts.env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    d.proc = proc;
    exited = new Promise((res) => proc.once("exit", (code) => res(code)));
    let buf = "";
    proc.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        d.logs.push(line);
        if (process.env.STEVEDORE_TEST_VERBOSE) process.stderr.write(`[daemon] ${line}\n`);
        for (const l of listeners) l(line);
      }
    });
    await d.waitForLog(opts.readyLog ?? /msg="ready"/, 30_000);
  };
  d.waitForLog = (re, timeoutMs = 15_000) => {
    const seen = d.logs.find((l) => re.test(l));
    if (seen) return Promise.resolve(seen);
    return new Promise((res, rej) => {
      const timer = setTimeout(() => {
        listeners.splice(listeners.indexOf(check), 1);
        rej(new Error(`no log line matching ${re} within ${timeoutMs} ms; last lines:\n${d.logs.slice(-15).join("\n")}`));
      }, timeoutMs);
      const check = (line: string) => {
        if (!re.test(line)) return;
        clearTimeout(timer);
        listeners.splice(listeners.indexOf(check), 1);
        res(line);
      };
      listeners.push(check);
    });
  };
  d.stop = async (signal = "SIGTERM") => {
    if (d.proc.exitCode !== null || d.proc.signalCode !== null) return d.proc.exitCode;
    d.proc.kill(signal);
    return exited;
  };
  d.restart = async () => {
    await d.stop();
    d.logs.length = 0;
    await spawnIt();
  };
  d.cleanup = async () => {
    await d.stop();
    if (!opts.dir) await rm(dir, { recursive: true, force: true });
  };
  await spawnIt();
  return d;
}

/** `stevedore ARGS` from the bundle as a real process (no config unless env names one): exit code and output. */
export function runBundle(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = spawn(process.execPath, [BUNDLE, ...args], { env: { ...process.env, STEVEDORE_CONFIG: "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  proc.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
  proc.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
  return new Promise((resolve, reject) => {
    proc.once("error", reject);
    proc.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * The bundled CLI on a terminal: util-linux script(1) runs it on a pseudo-terminal (standard
 * output and error both), and `out` is what the terminal got, with its \r\n line ends back to \n.
 */
export function runBundleOnTty(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string }> {
  const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, BUNDLE, ...args].map(quote).join(" ");
  const proc = spawn("script", ["-qec", command, "/dev/null"], { env: { ...process.env, STEVEDORE_CONFIG: "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
  proc.stderr.setEncoding("utf8").on("data", (c: string) => (out += c));
  return new Promise((resolve, reject) => {
    proc.once("error", reject);
    proc.once("close", (code) => resolve({ code, out: out.replace(/\r\n/g, "\n") }));
  });
}

/** control characters other than the newline (a terminal's \r and escapes among them) */
export const CONTROL_CHARS = /[\x00-\x09\x0b-\x1f\x7f]/;

export { waitFor };
