// The contract between the daemon and its interfaces: Component, DaemonContext, the listener
// hand-over (UPGRADE_MASTER, see stevedore(8)) as the components see it.
import type { Server } from "node:net";
import type { Config, DynamicConfig } from "../config/index.js";
import type { DockerClient } from "../docker/index.js";
import type { CatalogView } from "../catalog/index.js";

/** Every listening socket of a component, by hand-over name, with the address it listens on.
 *  Names: "query", "admin", "command", "core", "proxy-http", "proxy-https", "metrics". */
export type ListenerMap = Map<string, { server: Server; address: string }>;

/** How starting a new master (UPGRADE_MASTER) ended. */
export type LaunchResult = { ok: true; pid: number } | { ok: false; reason: string };

/** Listen `server` on the socket the old master handed over under `name`, when it listened on the
 *  same `address`. False: nothing inherited, bind as usual. A failure throws (the new master then
 *  reports it instead of "ready", and the old one keeps serving). */
export type InheritFn = (server: Server, name: string, address: string) => Promise<boolean>;

/** How a reload ended: every error ([] on success), and the static keys whose new value waits
 *  for a restart (they differ from the running ones; [] when none). */
export interface ReloadResult {
  errors: string[];
  restartRequired: string[];
}

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
  /** the one reload path (SIGHUP and admin `reload`); never rejects */
  reload(): Promise<ReloadResult>;
  // ---- UPGRADE_MASTER (each a plain function: components pass them on unbound) ----
  /** the new master's side: take a listener over from the old master (see InheritFn) */
  readonly inherit: InheritFn;
  /** the old master's side: true once a new master took the listening sockets; the socket files
   *  are the new master's then (keep them on close) */
  readonly handedOver: () => boolean;
  /** the old master's side: start a new master from the binary on disk, hand it every
   *  component's listeners, wait until it is ready; on success handedOver() turns true */
  readonly launchSuccessor: () => Promise<LaunchResult>;
  /** the old master after the hand-over: stop accepting on every listener (without touching the
   *  connections), then give the connections accepted last a grace to send their request */
  readonly stopAccepting: () => Promise<void>;
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
  /** the listening sockets UPGRADE_MASTER hands to a new master, by name */
  listeners?(): ListenerMap;
  /** SIGUSR1: reopen log files (logrotate renamed them) */
  reopenLogs?(): void;
  /** after a reload swapped the dynamic config */
  reloaded?(dynamic: DynamicConfig): void;
}

export type ComponentFactory = (ctx: DaemonContext) => Component;
