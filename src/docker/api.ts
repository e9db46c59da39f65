// The Docker Engine API calls stevedore makes (containers, images, events, version).
import type { Readable } from "node:stream";
import { DockerTransport, readAll } from "./client.js";
import { DockerError, isNotFound } from "./errors.js";
import type { ContainerInspect, ContainerSummary, CreateContainerBody } from "./types.js";

const id = (s: string) => encodeURIComponent(s);

/** The Docker Engine calls stevedore makes (catalog reads, core API reads and writes). */
export class DockerClient {
  readonly transport: DockerTransport;

  constructor(socketPath: string) {
    this.transport = new DockerTransport(socketPath);
  }

  get socketPath(): string {
    return this.transport.socketPath;
  }

  async ping(): Promise<void> {
    const res = await this.transport.raw("GET", "/_ping", { timeoutMs: 5_000 }, "ping");
    await readAll(res);
    if (res.statusCode !== 200) throw new DockerError(res.statusCode ?? 0, "ping failed", "ping");
  }

  /** All containers, running or not. */
  listContainers(): Promise<ContainerSummary[]> {
    return this.transport.json("list containers", "/containers/json", { query: { all: 1 } });
  }

  inspectContainer(ref: string): Promise<ContainerInspect> {
    return this.transport.json("inspect container", `/containers/${id(ref)}/json`);
  }

  async createContainer(name: string, body: CreateContainerBody): Promise<{ Id: string; Warnings: string[] }> {
    return this.transport.json("create container", "/containers/create", { method: "POST", query: { name }, body });
  }

  /** Start; already running is success. */
  async startContainer(ref: string): Promise<void> {
    await this.drain("start container", `/containers/${id(ref)}/start`, { method: "POST", accept: [304] });
  }

  /** Stop with a grace period in seconds; already stopped is success. */
  async stopContainer(ref: string, timeoutSecs = 10): Promise<void> {
    await this.drain("stop container", `/containers/${id(ref)}/stop`, {
      method: "POST", query: { t: timeoutSecs }, accept: [304], timeoutMs: (timeoutSecs + 30) * 1000,
    });
  }

  async restartContainer(ref: string, timeoutSecs = 10): Promise<void> {
    await this.drain("restart container", `/containers/${id(ref)}/restart`, {
      method: "POST", query: { t: timeoutSecs }, timeoutMs: (timeoutSecs + 30) * 1000,
    });
  }

  /** Send a signal; Docker answers 409 when the container is not running. */
  async killContainer(ref: string, signal = "SIGKILL"): Promise<void> {
    await this.drain("kill container", `/containers/${id(ref)}/kill`, { method: "POST", query: { signal } });
  }

  async pauseContainer(ref: string): Promise<void> {
    await this.drain("pause container", `/containers/${id(ref)}/pause`, { method: "POST" });
  }

  async unpauseContainer(ref: string): Promise<void> {
    await this.drain("unpause container", `/containers/${id(ref)}/unpause`, { method: "POST" });
  }

  async removeContainer(ref: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    await this.drain("remove container", `/containers/${id(ref)}`, {
      method: "DELETE", query: { force: opts.force ? 1 : undefined, v: opts.volumes ? 1 : undefined },
    });
  }

  /** Block until the container exits; resolves with its exit code. Docker answers the headers at
   *  once and the body at exit, so only the connect and header phase is timed out here. */
  async waitContainer(ref: string): Promise<number> {
    const res = await this.transport.call("wait container", `/containers/${id(ref)}/wait`, { method: "POST", timeoutMs: 60_000 });
    const body = JSON.parse((await readAll(res, 1024 * 1024)).toString("utf8") || "{}") as { StatusCode?: number; Error?: { Message?: string } | null };
    if (body.Error?.Message) throw new DockerError(500, body.Error.Message, "wait container");
    return typeof body.StatusCode === "number" ? body.StatusCode : -1;
  }

  /** The container's stdout and stderr as Docker's multiplexed stream (no TTY); with `follow`
   *  it ends when the container stops. Demultiplex with `demuxLogs`. */
  containerLogs(ref: string, follow: boolean): Promise<import("node:http").IncomingMessage> {
    return this.transport.call("container logs", `/containers/${id(ref)}/logs`, { query: { follow, stdout: 1, stderr: 1 } });
  }

  /** One stats sample in Docker's own shape. */
  stats(ref: string): Promise<Record<string, unknown>> {
    return this.transport.json("container stats", `/containers/${id(ref)}/stats`, { query: { stream: false, "one-shot": true } });
  }

  /** Import a root filesystem tar from a stream; resolves with the new image id ("sha256:..."). */
  async importImage(tar: Readable, repo?: string, tag?: string): Promise<string> {
    const res = await this.transport.call("import image", "/images/create", {
      method: "POST", query: { fromSrc: "-", repo: repo || undefined, tag: repo ? tag || undefined : undefined }, stream: tar, timeoutMs: 30 * 60_000,
    });
    const messages = await progressMessages(res, "import image");
    const last = messages.reverse().find((m) => typeof m.status === "string" && /^sha256:[0-9a-f]{64}$/.test(m.status as string));
    if (!last) throw new DockerError(500, "import finished without an image id", "import image");
    return last.status as string;
  }

  /** Pull an image by reference; Docker reports failures inside the progress stream. */
  async pullImage(image: string): Promise<void> {
    const { name, tag } = splitImageRef(image);
    const res = await this.transport.call("pull image", "/images/create", { method: "POST", query: { fromImage: name, tag }, timeoutMs: 30 * 60_000 });
    await progressMessages(res, "pull image");
  }

  inspectImage(ref: string): Promise<Record<string, unknown> & { Id: string }> {
    return this.transport.json("inspect image", `/images/${id(ref)}/json`);
  }

  async imageExists(ref: string): Promise<boolean> {
    try {
      await this.inspectImage(ref);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  close(): void {
    this.transport.close();
  }

  private async drain(operation: string, path: string, opts: Parameters<DockerTransport["call"]>[2]): Promise<void> {
    await readAll(await this.transport.call(operation, path, opts));
  }
}

/** "repo/name:tag" / "name@sha256:..." → fromImage and tag for a pull. */
export function splitImageRef(ref: string): { name: string; tag: string | undefined } {
  if (ref.includes("@")) return { name: ref, tag: undefined };
  const slash = ref.lastIndexOf("/");
  const colon = ref.lastIndexOf(":");
  if (colon > slash) return { name: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { name: ref, tag: "latest" };
}

/** Read a JSON-lines progress stream; an `error` message in it becomes a DockerError. */
async function progressMessages(res: import("node:http").IncomingMessage, operation: string): Promise<Record<string, unknown>[]> {
  const text = (await readAll(res)).toString("utf8");
  const out: Record<string, unknown>[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (!line.trim()) continue;
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (typeof msg.error === "string") throw new DockerError(500, msg.error, operation);
    out.push(msg);
  }
  return out;
}
