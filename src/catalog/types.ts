// The catalog's public shape: what every read interface (query, proxy, admin, core) consumes.
import type { EventEmitter } from "node:events";

export interface Ingress {
  enabled: boolean;
  subdomain?: string;
  port?: number;
  websocket?: boolean;
  healthcheck?: string;
  /** `https_redirect` label: false keeps HTTP answering when the host has a certificate */
  httpsRedirect?: boolean;
}

export type Health = "healthy" | "unhealthy" | "starting" | "none";

/** One member container, as the catalog knows it after inspecting it. */
export interface ContainerInfo {
  /** full 64-hex id */
  id: string;
  /** without the leading "/" */
  name: string;
  deployment: string;
  service: string;
  /** the image reference the container was created with (Config.Image) */
  image: string;
  /** Docker's State.Status */
  state: string;
  running: boolean;
  health: Health;
  /** the container has a health check (Config.Healthcheck with a test other than NONE) */
  hasHealthcheck: boolean;
  exitCode: number;
  /** RFC 3339 UTC, null when never started */
  startedAt: string | null;
  /** HostConfig.RestartPolicy.Name ("no" when unset) */
  restartPolicy: string;
  /** present when any stevedore.ingress.* label exists */
  ingress?: Ingress;
  /** networks in Docker's order, with the container's address on each ("" when none) */
  networks: { name: string; ip: string }[];
  labels: Readonly<Record<string, string>>;
}

/** An immutable snapshot. A new one is made only when a public view changed. */
export interface Revision {
  /** 1, 2, 3, ... within this process */
  seq: number;
  /** Unix seconds, strictly greater than the previous revision's (also across restarts) */
  ts: number;
  /** sorted by deployment, service, container name */
  containers: readonly ContainerInfo[];
  /** sorted names: deployments with containers ∪ registered deployments */
  deployments: readonly string[];
}

export type DockerState = "ok" | "unavailable" | "connecting";

export interface CatalogEvents {
  revision: [Revision];
  docker: [DockerState];
}

export interface CatalogView extends EventEmitter<CatalogEvents> {
  /** the current revision (always defined once started) */
  current(): Revision;
  dockerState(): DockerState;
  /** monotonic ms (performance.now()) when Docker last confirmed the catalog */
  lastConfirmedAt(): number;
  /** Registered deployments (tokens, core services) are listed even without containers.
   *  A source calls `refreshRegistered()` after its set changes. */
  addRegisteredSource(name: string, list: () => Iterable<string>): void;
  refreshRegistered(): void;
  /** Long-poll support: see WaiterList.wait. The limit is the dynamic `poll_max_waiters`. */
  wait(since: number | undefined, timeoutMs: number, done: (r: WaitResult) => void): WaitOutcome;
  waiterCount(): number;
  /** answer every pending wait `changed` (daemon stop) */
  releaseWaiters(): void;
}

/** How a wait ended: a newer revision (changed), the deadline (not changed), or the daemon stopping (changed). */
export type WaitResult = { changed: boolean; revision: Revision };

export type WaitOutcome =
  | { kind: "now"; revision: Revision } // a newer revision already exists: answer at once
  | { kind: "full" } // the waiter limit is reached
  | { kind: "waiting"; cancel: () => void }; // registered; `done` fires exactly once unless cancelled
