// The commands a task is made of: echo, sleep, exec (a process, no shell) and docker-run. Each
// runner resolves when the command succeeded, rejects with the reason when it failed, and stops
// promptly (rejecting with CommandStopped) when its signal aborts.
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { StringDecoder } from "node:string_decoder";
import type { Readable } from "node:stream";
import type { DockerClient } from "../docker/index.js";

export interface TaskInfo {
  id: string;
  job: string;
  name: string;
}

export interface CommandContext {
  /** aborted when the task must stop (may-i-run said no, the worker shuts down) */
  signal: AbortSignal;
  /** one line of task log (without the timestamp; the reporter adds it) */
  log(line: string): void;
  /** this command's progress, 0-100 */
  progress(percent: number): void;
  killGraceMs: number;
  docker(): DockerClient;
  task: TaskInfo;
  commandIdx: number;
  /** a Shaman checkout as a fresh directory of real files (fetched through the worker's cache) */
  checkout(id: string): Promise<{ dir: string; dispose(): Promise<void> }>;
}

export type CommandRunner = (settings: Record<string, unknown>, ctx: CommandContext) => Promise<void>;

/** The command was stopped on request; not a failure of the command itself. */
export class CommandStopped extends Error {
  constructor() {
    super("stopped on request");
  }
}

/** Wrong settings for a command: the task fails with this message. */
export class BadSettings extends Error {}

export const MAX_SLEEP_SECS = 7 * 86400;
/** longer output lines are cut into pieces of this many characters */
export const MAX_LINE_CHARS = 16 * 1024;

export async function runEcho(settings: Record<string, unknown>, ctx: CommandContext): Promise<void> {
  const message = settings.message;
  if (typeof message !== "string") throw new BadSettings("echo needs a string 'message'");
  for (const line of message.split("\n")) ctx.log(line);
  ctx.progress(100);
}

export async function runSleep(settings: Record<string, unknown>, ctx: CommandContext): Promise<void> {
  const secs = settings.time_in_seconds;
  if (typeof secs !== "number" || !Number.isFinite(secs) || secs < 0 || secs > MAX_SLEEP_SECS)
    throw new BadSettings(`sleep needs 'time_in_seconds' from 0 to ${MAX_SLEEP_SECS}`);
  ctx.log(`sleeping ${secs} s`);
  const total = secs * 1000;
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const tick = setInterval(() => ctx.progress(Math.min(99, Math.floor(((performance.now() - started) / Math.max(1, total)) * 100))), 1000);
    const done = (err?: Error) => {
      clearTimeout(timer);
      clearInterval(tick);
      ctx.signal.removeEventListener("abort", stopped);
      if (err) reject(err);
      else resolve();
    };
    const stopped = () => done(new CommandStopped());
    const timer = setTimeout(() => done(), total);
    if (ctx.signal.aborted) return stopped();
    ctx.signal.addEventListener("abort", stopped, { once: true });
  });
  ctx.progress(100);
}

function stringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === "string");
}

/** {K: V} or ["K=V"] → {K: V}; undefined when absent. */
export function envSettings(v: unknown, command: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (stringArray(v)) {
    const out: Record<string, string> = {};
    for (const kv of v) {
      const eq = kv.indexOf("=");
      if (eq <= 0) throw new BadSettings(`${command}: env entry ${JSON.stringify(kv)} is not NAME=VALUE`);
      out[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    return out;
  }
  if (typeof v === "object" && !Array.isArray(v) && Object.values(v).every((s) => typeof s === "string")) return v as Record<string, string>;
  throw new BadSettings(`${command}: 'env' must be an object of strings or a list of NAME=VALUE`);
}

/** exec, with `checkout: ID`: in a fresh copy of that Shaman checkout (cwd relative to it; its path
 *  also in $STEVEDORE_CHECKOUT), removed when the command ends */
export async function runExec(settings: Record<string, unknown>, ctx: CommandContext): Promise<void> {
  const { cmd, cwd, checkout } = settings;
  if (!stringArray(cmd) || cmd.length === 0 || !cmd[0]) throw new BadSettings("exec needs 'cmd': a non-empty list of strings");
  if (cwd !== undefined && typeof cwd !== "string") throw new BadSettings("exec: 'cwd' must be a string");
  if (checkout !== undefined && typeof checkout !== "string") throw new BadSettings("exec: 'checkout' must be a checkout ID");
  const env = envSettings(settings.env, "exec");
  if (ctx.signal.aborted) throw new CommandStopped();
  if (checkout === undefined) return spawnExec(cmd, cwd, env, ctx);
  const co = await ctx.checkout(checkout);
  try {
    await spawnExec(cmd, cwd === undefined ? co.dir : resolve(co.dir, cwd), { ...env, STEVEDORE_CHECKOUT: co.dir }, ctx);
  } finally {
    await co.dispose();
  }
}

async function spawnExec(cmd: string[], cwd: string | undefined, env: Record<string, string> | undefined, ctx: CommandContext): Promise<void> {
  if (ctx.signal.aborted) throw new CommandStopped();
  ctx.log(`exec ${JSON.stringify(cmd)}${cwd ? ` in ${cwd}` : ""}`);
  // its own process group, so a stop reaches the children it started too
  const child = spawn(cmd[0]!, cmd.slice(1), { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], detached: true });
  const outputs = [pipeLines(child.stdout, ctx.log), pipeLines(child.stderr, ctx.log)];
  let killTimer: NodeJS.Timeout | undefined;
  const signalGroup = (sig: NodeJS.Signals) => {
    try {
      if (child.pid) process.kill(-child.pid, sig);
    } catch {
      /* already gone */
    }
  };
  const stop = () => {
    signalGroup("SIGTERM");
    killTimer = setTimeout(() => signalGroup("SIGKILL"), ctx.killGraceMs);
  };
  ctx.signal.addEventListener("abort", stop, { once: true });
  try {
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once("error", reject);
      child.once("exit", (c, s) => resolve([c, s]));
    });
    await Promise.all(outputs);
    if (ctx.signal.aborted) throw new CommandStopped();
    if (signal) throw new Error(`exec: ${cmd[0]} was killed by ${signal}`);
    if (code !== 0) throw new Error(`exec: ${cmd[0]} exited with status ${code}`);
  } finally {
    ctx.signal.removeEventListener("abort", stop);
    clearTimeout(killTimer);
  }
  ctx.progress(100);
}

/** Every line of a text stream to `log`; resolves at its end. Over-long lines are cut. */
export function pipeLines(stream: Readable, log: (line: string) => void): Promise<void> {
  const lines = new LineBuffer(log);
  const decoder = new StringDecoder("utf8");
  return new Promise((resolve) => {
    stream.on("data", (chunk: Buffer) => lines.push(decoder.write(chunk)));
    stream.once("close", () => {
      lines.push(decoder.end());
      lines.end();
      resolve();
    });
  });
}

/** Splits text into lines ("\n", an optional "\r" before it dropped), cutting lines over MAX_LINE_CHARS. */
export class LineBuffer {
  private partial = "";

  constructor(private readonly emit: (line: string) => void, private readonly maxChars = MAX_LINE_CHARS) {}

  push(text: string): void {
    let start = 0;
    for (let nl = text.indexOf("\n"); nl !== -1; nl = text.indexOf("\n", start)) {
      this.append(text.slice(start, nl));
      this.emitLine(this.partial);
      this.partial = "";
      start = nl + 1;
    }
    this.append(text.slice(start));
  }

  /** the unfinished last line, if any */
  end(): void {
    if (this.partial) this.emitLine(this.partial);
    this.partial = "";
  }

  private append(text: string): void {
    this.partial += text;
    while (this.partial.length > this.maxChars) {
      this.emit(this.partial.slice(0, this.maxChars));
      this.partial = this.partial.slice(this.maxChars);
    }
  }

  private emitLine(line: string): void {
    this.emit(line.endsWith("\r") ? line.slice(0, -1) : line);
  }
}
