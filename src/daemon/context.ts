import type { Config, DynamicConfig } from "../config/index.js";
import type { DockerClient } from "../docker/index.js";
import type { CatalogView } from "../catalog/types.js";
import type { ListenerMap } from "./handover.js";

/** What the daemon hands every component. */
export interface DaemonContext {
  /** the config as loaded at start; its static part stays in force until restart */
  readonly config: Config;
  /** the dynamic config in force now; take one reference per request/connection */
  dynamic(): DynamicConfig;
  readonly docker: DockerClient;
  readonly catalog: CatalogView;
  /** performance.now() at start */
  readonly startedAt: number;
  /** every component, for status reports */
  readonly components: readonly Component[];
  /** Ask the daemon to stop (SIGTERM, SOFT_STOP, HARD_STOP). Resolves once every component
   *  that is not `stopLast` has stopped (drained, when graceful); `stopLast` ones stop after. */
  requestStop(graceful: boolean): Promise<void>;
  /** the one reload path (SIGHUP and admin `reload`); resolves with the errors, [] on success */
  reload(): Promise<string[]>;
}

/** One interface of the daemon (query socket, admin socket, proxy, core API, ...). */
export interface Component {
  readonly name: string;
  /** bind listeners; a listener that cannot bind (in use) is reported in status(), not thrown */
  start(): Promise<void>;
  /** stop accepting; when graceful, let in-flight work finish until `deadline` (performance.now() ms) */
  stop(graceful: boolean, deadline: number): Promise<void>;
  /** for admin `status`: at least {state: "listening"|"disabled"|"unavailable"|"stopped", address?} */
  status(): Record<string, unknown>;
  /** stopped after all others have drained (the command socket answers SOFT_STOP's final Ok) */
  readonly stopLast?: boolean;
  /** before a reload swaps the config: prepare (e.g. load certificate files); errors fail the reload */
  prepareReload?(next: DynamicConfig): Promise<string[]>;
  /** the proxy's merged routed host names (admin `status` counts them as `sites`) */
  routedHostnames?(): Iterable<string>;
  /** the listening sockets UPGRADE_MASTER hands to a new master, by name (see handover.ts) */
  listeners?(): ListenerMap;
  /** after a reload swapped the dynamic config */
  reloaded?(dynamic: DynamicConfig): void;
}

export type ComponentFactory = (ctx: DaemonContext) => Component;
