// The docker-run command: one container per command through our Docker client — create (labelled so
// the catalog lists it under deployment job-<job id>), start, follow its logs, wait, remove.
import { randomBytes } from "node:crypto";
import { StringDecoder } from "node:string_decoder";
import type { IncomingMessage } from "node:http";
import { isDeploymentName } from "../base/index.js";
import { BadSettings, CommandStopped, LineBuffer, envSettings, type CommandContext, type TaskInfo } from "./commands.js";

const MAX_IMAGE_CHARS = 512;
/** after the container stopped, its log stream gets this long to drain */
const LOG_DRAIN_MS = 5_000;

/** Labels of a task's containers: the task and job for the worker, deployment and service for the catalog. */
export function taskLabels(task: TaskInfo): Record<string, string> {
  const deployment = `job-${task.job}`.toLowerCase();
  const service = task.name.toLowerCase().replace(/[^a-z0-9_.-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 255);
  return {
    "stevedore.worker.task": task.id,
    "stevedore.worker.job": task.job,
    "stevedore.deployment": isDeploymentName(deployment) ? deployment : "worker-jobs",
    "stevedore.service": service || `task-${task.id}`.slice(0, 255),
  };
}

/** A Docker-valid, unique name: stevedore-task-<task id>-<command index>-<random>. */
export function containerName(task: TaskInfo, commandIdx: number): string {
  const id = task.id.replace(/[^a-zA-Z0-9_.-]/g, "-").slice(0, 64);
  return `stevedore-task-${id}-${commandIdx}-${randomBytes(3).toString("hex")}`;
}

export async function runDockerCommand(settings: Record<string, unknown>, ctx: CommandContext): Promise<void> {
  const { image, cmd } = settings;
  if (typeof image !== "string" || !image || image.length > MAX_IMAGE_CHARS) throw new BadSettings("docker-run needs a string 'image'");
  if (cmd !== undefined && !(Array.isArray(cmd) && cmd.every((s) => typeof s === "string"))) throw new BadSettings("docker-run: 'cmd' must be a list of strings");
  const env = envSettings(settings.env, "docker-run");
  const docker = ctx.docker();
  if (!(await docker.imageExists(image))) {
    ctx.log(`pulling ${image}`);
    await docker.pullImage(image);
  }
  if (ctx.signal.aborted) throw new CommandStopped();
  const body: Record<string, unknown> = { Image: image, Labels: taskLabels(ctx.task), Tty: false, AttachStdout: false, AttachStderr: false };
  if (cmd) body.Cmd = cmd;
  if (env) body.Env = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const { Id } = await docker.createContainer(containerName(ctx.task, ctx.commandIdx), body);
  ctx.log(`container ${Id.slice(0, 12)} from ${image}`);
  const graceSecs = Math.max(1, Math.ceil(ctx.killGraceMs / 1000));
  const stop = () => void docker.stopContainer(Id, graceSecs).catch(() => {});
  ctx.signal.addEventListener("abort", stop, { once: true });
  try {
    await docker.startContainer(Id);
    if (ctx.signal.aborted) stop(); // aborted while starting: the listener's stop came too early
    const logs = await docker.containerLogs(Id, true);
    const drained = demuxLines(logs, ctx.log);
    const code = await docker.waitContainer(Id);
    await Promise.race([drained, new Promise((r) => setTimeout(r, LOG_DRAIN_MS).unref())]);
    logs.destroy();
    if (ctx.signal.aborted) throw new CommandStopped();
    if (code !== 0) throw new Error(`docker-run: the container exited with status ${code}`);
  } finally {
    ctx.signal.removeEventListener("abort", stop);
    await docker.removeContainer(Id, { force: true, volumes: true }).catch(() => {});
  }
  ctx.progress(100);
}

/** Docker's multiplexed log stream → lines of stdout and stderr, each through its own line buffer. */
function demuxLines(res: IncomingMessage, log: (line: string) => void): Promise<void> {
  const streams = [0, 1, 2].map(() => ({ decoder: new StringDecoder("utf8"), lines: new LineBuffer(log) }));
  const demux = new LogDemuxer((stream, bytes) => {
    const s = streams[stream] ?? streams[1]!;
    s.lines.push(s.decoder.write(bytes));
  });
  return new Promise((resolve) => {
    res.on("data", (chunk: Buffer) => demux.push(chunk));
    res.once("error", () => {});
    res.once("close", () => {
      for (const s of streams) {
        s.lines.push(s.decoder.end());
        s.lines.end();
      }
      resolve();
    });
  });
}

/**
 * Docker's stream framing (containers without a TTY): an 8-byte header — stream type (0 stdin,
 * 1 stdout, 2 stderr), three zero bytes, the payload size (uint32 big-endian) — then the payload.
 * Payloads are passed on as they arrive, never buffered whole. A header that is not valid framing
 * (a TTY container, a broken stream) switches to passing everything on as stdout.
 */
export class LogDemuxer {
  private header = Buffer.alloc(8);
  private headerFill = 0;
  private remaining = 0;
  private stream = 1;
  private raw = false;

  constructor(private readonly emit: (stream: number, bytes: Buffer) => void) {}

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.raw) {
        this.emit(1, chunk.subarray(at));
        return;
      }
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - at);
        this.emit(this.stream, chunk.subarray(at, at + n));
        this.remaining -= n;
        at += n;
        continue;
      }
      const n = Math.min(8 - this.headerFill, chunk.length - at);
      chunk.copy(this.header, this.headerFill, at, at + n);
      this.headerFill += n;
      at += n;
      if (this.headerFill < 8) return;
      this.headerFill = 0;
      const type = this.header[0]!;
      if (type > 2 || this.header[1] !== 0 || this.header[2] !== 0 || this.header[3] !== 0) {
        this.raw = true;
        this.emit(1, Buffer.from(this.header));
        continue;
      }
      this.stream = type;
      this.remaining = this.header.readUInt32BE(4);
    }
  }
}
