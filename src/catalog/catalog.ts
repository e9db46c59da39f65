// The live catalog: the in-memory view of stevedore's containers that every read interface
// serves from. Subscribe to Docker's events first, then list, so no change is lost; re-inspect
// a container on each of its events (bursts coalesced); relist after every reconnect and as a
// periodic safety net. A new revision is made only when a public view changed.
import { EventEmitter } from "node:events";
import { DockerEventStream, DockerUnavailable, isNotFound, type DockerClient, type DockerEvent } from "../docker/index.js";
import type { DynamicConfig } from "../config/index.js";
import { isDeploymentName, mapLimit } from "../base/index.js";
import { log } from "../log.js";
import { untilDeadline } from "../deadline.js";
import { RevisionClock } from "./clock.js";
import { compareContainers, publicProjection, toContainerInfo } from "./container.js";
import { membershipOf } from "./membership.js";
import type { CatalogEvents, CatalogView, ContainerInfo, DockerState, Revision } from "./types.js";
import { WaiterList, type WaitResult, type WaitOutcome } from "./waiters.js";
import { metrics } from "../metrics/index.js";

/** seconds between Docker stamping the last container event and our receiving it */
const eventLag = metrics.gauge("stevedore_docker_event_lag_seconds", "Seconds between Docker stamping the last container event and the catalog receiving it.");

export interface CatalogOptions {
  docker: DockerClient;
  stateDir: string;
  dynamic: () => DynamicConfig;
  /** how long start() waits for the first complete listing before serving an empty catalog */
  startTimeoutMs?: number;
}

/** The container events that can change what the catalog shows ("health_status: healthy" → "health_status"). */
const RELEVANT = new Set([
  "create", "start", "restart", "die", "stop", "kill", "pause", "unpause", "destroy", "rename", "update", "health_status", "oom",
]);
const INSPECT_CONCURRENCY = 8;
const RETRY_AFTER_ERROR_MS = 1_000;

export class Catalog extends EventEmitter<CatalogEvents> implements CatalogView {
  private rev: Revision = Object.freeze({ seq: 0, ts: 0, containers: [], deployments: [] });
  private projection = "";
  private members = new Map<string, ContainerInfo>();
  /** containers whose ingress problems were logged (once per container) */
  private warned = new Set<string>();
  private pending = new Set<string>();
  private needRelist = false;
  /** the return of Docker counts as a change */
  private forceRevision = false;
  private working = false;
  private stopped = true;
  private debounceTimer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private state: DockerState = "connecting";
  private lastOkAt = performance.now();
  private ready = false;
  private firstOutcome: (() => void) | undefined;
  private sources = new Map<string, () => Iterable<string>>();
  private clock: RevisionClock | undefined;
  private readonly stream: DockerEventStream;
  private readonly waiters = new WaiterList(() => this.rev);

  constructor(readonly opts: CatalogOptions) {
    super();
    this.stream = new DockerEventStream(opts.docker.transport, {
      onEvent: (e) => this.onEvent(e),
      onUp: () => this.onUp(),
      onDown: (err, retryInMs) => this.onDown(err, retryInMs),
      onDropped: (reason, bytes) => {
        // A lost event may have been ours: relist rather than wait for the periodic resync.
        log.warn("docker event dropped, relisting", { reason, bytes });
        this.requestRelist("dropped event");
      },
    });
  }

  // ---- lifecycle -------------------------------------------------------------------------

  /** Resolves once the first complete listing is in, or Docker was found unreachable (the
   *  catalog then starts empty and fills when Docker answers), or after startTimeoutMs. */
  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    this.clock = new RevisionClock(this.opts.stateDir);
    const first = new Promise<void>((resolve) => (this.firstOutcome = resolve));
    const deadline = performance.now() + (this.opts.startTimeoutMs ?? 10_000);
    this.stream.start();
    this.scheduleResync();
    await untilDeadline(first, deadline);
    this.firstOutcome = undefined;
    if (this.rev.seq === 0 && !this.stopped) this.publish();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.firstOutcome?.(); // a start() still waiting for Docker returns now
    this.stream.stop();
    for (const t of [this.debounceTimer, this.resyncTimer, this.retryTimer]) clearTimeout(t);
    this.debounceTimer = this.resyncTimer = this.retryTimer = undefined;
    await this.clock?.flushed();
  }

  // ---- CatalogView -----------------------------------------------------------------------

  current(): Revision {
    return this.rev;
  }

  dockerState(): DockerState {
    return this.state;
  }

  lastConfirmedAt(): number {
    return this.state === "ok" ? performance.now() : this.lastOkAt;
  }

  addRegisteredSource(name: string, list: () => Iterable<string>): void {
    this.sources.set(name, list);
    this.refreshRegistered();
  }

  refreshRegistered(): void {
    if (this.rev.seq > 0 && !this.stopped) this.publish();
  }

  wait(since: number | undefined, timeoutMs: number, done: (r: WaitResult) => void): WaitOutcome {
    return this.waiters.wait(since, timeoutMs, this.opts.dynamic().poll_max_waiters, done);
  }

  waiterCount(): number {
    return this.waiters.size;
  }

  releaseWaiters(): void {
    this.waiters.releaseAll();
  }

  // ---- Docker's side ---------------------------------------------------------------------

  private onEvent(e: DockerEvent): void {
    if (this.stopped || (e.Type !== undefined && e.Type !== "container")) return;
    if (e.timeNano) eventLag.set(Math.max(0, Date.now() / 1000 - e.timeNano / 1e9));
    const action = e.Action.split(":", 1)[0]!.trim();
    if (!RELEVANT.has(action)) return;
    const id = e.Actor.ID;
    // Labels never change and Docker puts them in the event's attributes: a container that is
    // not ours (and was not) needs no inspect.
    const attrs = e.Actor.Attributes;
    if (!this.members.has(id) && attrs && !membershipOf(attrs)) return;
    this.pending.add(id);
    this.kick();
  }

  private onUp(): void {
    this.requestRelist("connected");
  }

  private requestRelist(reason: string): void {
    log.debug("catalog relist", { reason });
    this.needRelist = true;
    this.kick(true);
  }

  private onDown(err: Error, retryInMs: number): void {
    log.debug("docker event stream down", { error: err.message, retry_ms: retryInMs });
    if (this.state !== "unavailable") {
      if (this.state === "ok") this.lastOkAt = performance.now();
      this.state = "unavailable";
      log.warn("docker unavailable", { socket: this.opts.docker.socketPath, error: err.message, retry_ms: retryInMs });
      this.emit("docker", this.state);
    }
    this.firstOutcome?.();
  }

  /** Docker answered a complete listing: the catalog is confirmed. */
  private confirmed(): void {
    if (this.state !== "ok") {
      if (this.state === "unavailable") this.forceRevision = true;
      this.state = "ok";
      log.info("docker connected", { socket: this.opts.docker.socketPath });
      this.emit("docker", this.state);
    }
  }

  /** Start the worker after the debounce window (bursts of events make one new view). */
  private kick(now = false): void {
    if (this.stopped || this.working) return; // a running worker picks the work up
    if (now) {
      clearTimeout(this.debounceTimer);
      this.debounceTimer = undefined;
      void this.work();
      return;
    }
    if (this.debounceTimer) return;
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      void this.work();
    }, this.opts.dynamic().catalog_debounce_ms);
  }

  /** One worker at a time, so an older inspect never overwrites a newer one. */
  private async work(): Promise<void> {
    if (this.working) return;
    this.working = true;
    try {
      while (!this.stopped && (this.needRelist || this.pending.size > 0)) {
        let ok: boolean;
        if (this.needRelist) {
          this.needRelist = false;
          ok = await this.relist();
        } else {
          const ids = [...this.pending];
          this.pending.clear();
          ok = await this.reinspect(ids);
        }
        if (this.stopped) return;
        if (!ok) break;
        this.publish();
      }
    } finally {
      this.working = false;
    }
  }

  /** Full listing and diff. Events pending before it are covered by it; events arriving
   *  meanwhile stay pending and are re-inspected after. */
  private async relist(): Promise<boolean> {
    this.pending.clear();
    try {
      const list = await this.opts.docker.listContainers();
      const ids = list.filter((s) => membershipOf(s.Labels)).map((s) => s.Id);
      const infos = await mapLimit(ids, INSPECT_CONCURRENCY, (id) => this.inspect(id));
      const next = new Map<string, ContainerInfo>();
      for (const info of infos) if (info) next.set(info.id, info);
      for (const id of this.warned) if (!next.has(id)) this.warned.delete(id);
      this.members = next;
      this.confirmed();
      if (!this.ready) {
        this.ready = true;
        log.info("catalog ready", { containers: next.size });
        this.firstOutcome?.();
      }
      return true;
    } catch (err) {
      this.needRelist = true;
      this.failed("relist", err);
      return false;
    }
  }

  private async reinspect(ids: string[]): Promise<boolean> {
    const done = new Set<string>();
    try {
      await mapLimit(ids, INSPECT_CONCURRENCY, async (id) => {
        const info = await this.inspect(id);
        if (info) this.members.set(id, info);
        else {
          this.members.delete(id);
          this.warned.delete(id);
        }
        done.add(id);
      });
      return true;
    } catch (err) {
      for (const id of ids) if (!done.has(id)) this.pending.add(id);
      this.failed("inspect", err);
      return false;
    }
  }

  /** undefined when the container is gone or not a member */
  private async inspect(id: string): Promise<ContainerInfo | undefined> {
    try {
      const converted = toContainerInfo(await this.opts.docker.inspectContainer(id));
      if (!converted) return undefined;
      const { info, problems } = converted;
      if (problems.length && !this.warned.has(id)) {
        this.warned.add(id);
        log.warn("invalid ingress labels", { container: info.name, deployment: info.deployment, problems: problems.join("; ") });
      }
      return info;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Docker unreachable: the event stream notices too and relists when it is back. Other
   *  errors: retry the whole listing soon. */
  private failed(what: string, err: unknown): void {
    if (this.stopped || (err instanceof DockerUnavailable && !this.stream.up)) return;
    log.warn("catalog update failed, retrying", { what, error: (err as Error).message, retry_ms: RETRY_AFTER_ERROR_MS });
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.requestRelist("retry");
    }, RETRY_AFTER_ERROR_MS);
  }

  private scheduleResync(): void {
    if (this.stopped) return;
    this.resyncTimer = setTimeout(() => {
      if (this.stream.up) this.requestRelist("resync");
      this.scheduleResync();
    }, this.opts.dynamic().catalog_resync_secs * 1000);
    this.resyncTimer.unref();
  }

  // ---- revisions -------------------------------------------------------------------------

  /** Make a new revision when a public view changed (or Docker came back, or none exists yet). */
  private publish(): void {
    const containers = [...this.members.values()].sort(compareContainers);
    const names = new Set(containers.map((c) => c.deployment));
    for (const [source, list] of this.sources) {
      try {
        for (const n of list()) if (isDeploymentName(n)) names.add(n);
      } catch (err) {
        log.warn("registered deployment source failed", { source, error: (err as Error).message });
      }
    }
    const deployments = [...names].sort(); // code-point order
    const projection = publicProjection(containers, deployments);
    if (this.rev.seq > 0 && projection === this.projection && !this.forceRevision) return;
    this.forceRevision = false;
    this.projection = projection;
    this.rev = Object.freeze({
      seq: this.rev.seq + 1,
      ts: this.clock!.next(),
      containers: Object.freeze(containers),
      deployments: Object.freeze(deployments),
    });
    log.debug("catalog revision", { seq: this.rev.seq, ts: this.rev.ts, containers: containers.length });
    this.waiters.notify(this.rev);
    this.emit("revision", this.rev);
  }
}
