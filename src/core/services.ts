// The operations behind the core API: one container + one bind dir per service, a registry entry each.
import type { Readable } from "node:stream";
import type { DockerClient, ContainerInspect } from "../docker/index.js";
import { DockerError, isNotFound } from "../docker/index.js";
import { HttpError } from "../http/index.js";
import { KeyedLock } from "../base/index.js";
import { log } from "../log.js";
import { BindDirs } from "./binds.js";
import { createBody, type ServiceParams } from "./params.js";
import { Registry, type ServiceRecord } from "./registry.js";

export type CtlOp = "start" | "stop" | "restart" | "kill";

export interface ServiceLimits {
  deployment: string;
  bindContentsMaxBytes: number;
  downloadTimeoutMs: number;
  stopTimeoutSecs: number;
}

const sameEnv = (a: Record<string, string>, b: Record<string, string>) => {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && b[k] === a[k]);
};

export class CoreServices {
  readonly registry: Registry;
  readonly binds: BindDirs;
  /** one operation per service at a time */
  private readonly lock = new KeyedLock();
  /** ids whose create is in progress (a second create of the same id is a 409 at once) */
  private readonly creating = new Set<string>();

  constructor(private readonly docker: DockerClient, stateDir: string, private readonly limits: () => ServiceLimits, private readonly changed: () => void) {
    this.registry = new Registry(stateDir);
    this.binds = new BindDirs(stateDir);
  }

  async init(): Promise<void> {
    await this.registry.load();
    await this.binds.init();
    for (const id of this.registry.pendingIds()) {
      try {
        await this.rollBack(id);
      } catch (err) {
        // Docker away: the intent stays (invisible to the API); the next create of the id retries
        log.warn("core service: interrupted create not rolled back yet", { id, error: (err as Error).message });
      }
    }
  }

  /**
   * Undo a create that a crash interrupted (its intent is still pending): its container (if it was
   * made) and bind dir go, then the intent. The client never got its 204, so the service never
   * existed for it; rolling back rather than adopting keeps "acknowledged = exists" exact, and its
   * retry then creates the service afresh instead of meeting a 409.
   */
  private async rollBack(id: string): Promise<void> {
    await this.erase(id);
    log.info("core service: interrupted create rolled back", { id });
  }

  /** container (if any), bind directory, registry record: gone, in that order */
  private async erase(id: string): Promise<void> {
    try {
      await this.docker.removeContainer(id, { force: true });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    await this.binds.remove(id);
    await this.registry.set(id, undefined);
  }

  /** a service the API knows (an intent of a create in progress is not one yet) */
  private record(id: string): ServiceRecord {
    const rec = this.registry.get(id);
    if (!rec || rec.pending) throw new HttpError(404, `no such service: ${id}`);
    return rec;
  }

  async create(params: ServiceParams): Promise<void> {
    const id = params.id;
    const known = this.registry.get(id);
    if ((known && !known.pending) || this.creating.has(id)) throw new HttpError(409, `service ${id} already exists`);
    this.creating.add(id);
    try {
      await this.lock.run(id, async () => {
        // an intent left by a crash whose roll-back at start could not reach Docker
        if (this.registry.get(id)?.pending) await this.rollBack(id);
        const limits = this.limits();
        await this.ensureImage(params.image);
        await this.binds.create(id, params.bind_contents, {
          maxBytes: limits.bindContentsMaxBytes, timeoutMs: limits.downloadTimeoutMs, maxRedirects: 5,
        });
        const rec: ServiceRecord = { params, deployment: params.deployment ?? limits.deployment, env: {}, containerEnv: {}, created: new Date().toISOString() };
        let containerMade = false;
        try {
          // the intent is durable before the container exists: a kill -9 from here on leaves
          // nothing the registry does not know (rolled back at the next start)
          await this.registry.set(id, { ...rec, pending: true });
          await this.docker.createContainer(id, createBody(params, rec.containerEnv, this.binds.path(id), rec.deployment));
          containerMade = true;
          await this.registry.set(id, rec);
        } catch (err) {
          if (containerMade) await this.docker.removeContainer(id, { force: true }).catch(() => {});
          if (this.registry.has(id)) await this.registry.set(id, undefined).catch(() => {});
          await this.binds.remove(id).catch(() => {});
          throw err;
        }
        log.info("core service created", { id, image: params.image, deployment: rec.deployment });
      });
    } finally {
      this.creating.delete(id);
    }
    this.changed();
  }

  private async ensureImage(image: string): Promise<void> {
    if (await this.docker.imageExists(image)) return;
    log.info("pulling image for a core service", { image });
    try {
      await this.docker.pullImage(image);
    } catch (err) {
      if (err instanceof DockerError) throw new HttpError(502, `pull of ${image} failed: ${err.dockerMessage}`);
      throw err;
    }
  }

  async ctl(id: string, op: CtlOp): Promise<void> {
    this.record(id);
    await this.lock.run(id, async () => {
      const rec = this.record(id);
      const stopSecs = this.limits().stopTimeoutSecs;
      const state = await this.inspectOrNull(id);
      const stale = state === null || !sameEnv(rec.env, rec.containerEnv);
      switch (op) {
        case "start":
          if (state?.State.Running) return; // already started; a changed env waits for the next restart
          if (stale) await this.recreate(rec);
          await this.docker.startContainer(id);
          return;
        case "restart":
          if (stale) {
            if (state?.State.Running) await this.docker.stopContainer(id, stopSecs);
            await this.recreate(rec);
            await this.docker.startContainer(id);
          } else await this.docker.restartContainer(id, stopSecs);
          return;
        case "stop":
          if (state === null || !state.State.Running) return;
          await this.docker.stopContainer(id, stopSecs);
          return;
        case "kill":
          if (state === null || !state.State.Running) return;
          try {
            await this.docker.killContainer(id);
          } catch (err) {
            if (err instanceof DockerError && err.status === 409) return; // stopped meanwhile
            throw err;
          }
      }
    });
  }

  /** Replace the container with one made from the stored params and env (same name, config, bind dir). */
  private async recreate(rec: ServiceRecord): Promise<void> {
    const id = rec.params.id;
    try {
      await this.docker.removeContainer(id, { force: true });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (!(await this.binds.exists(id))) await this.binds.create(id, undefined, { maxBytes: 0, timeoutMs: 0, maxRedirects: 0 });
    await this.ensureImage(rec.params.image);
    const env = { ...rec.env };
    await this.docker.createContainer(id, createBody(rec.params, env, this.binds.path(id), rec.deployment));
    await this.registry.set(id, { ...rec, containerEnv: env });
    log.info("core service container recreated", { id });
  }

  private async inspectOrNull(id: string): Promise<ContainerInspect | null> {
    try {
      return await this.docker.inspectContainer(id);
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async stats(id: string): Promise<Record<string, unknown>> {
    this.record(id);
    return this.docker.stats(id);
  }

  async inspect(id: string): Promise<ContainerInspect> {
    this.record(id);
    return this.docker.inspectContainer(id);
  }

  async remove(id: string): Promise<void> {
    this.record(id);
    await this.lock.run(id, async () => {
      this.record(id);
      await this.erase(id);
      log.info("core service deleted", { id });
    });
    this.changed();
  }

  async setEnv(id: string, env: Record<string, string>): Promise<void> {
    this.record(id);
    await this.lock.run(id, async () => {
      const rec = this.record(id);
      await this.registry.set(id, { ...rec, env });
    });
  }

  importImage(body: Readable, repo: string | undefined, tag: string | undefined): Promise<string> {
    return this.docker.importImage(body, repo, tag);
  }
}
