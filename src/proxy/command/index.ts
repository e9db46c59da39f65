// The command-socket Component ("command", stopLast): owns the proxy's run-time state, loads it
// from <state_dir>/proxy-state at start, saves it after every change, serves the NUL-JSON protocol
// on command_socket_path (mode 0600; "" disables the socket, the state is still loaded).
import { lstat, rename } from "node:fs/promises";
import { join } from "node:path";
import type { Component, DaemonContext, LaunchResult, ListenerMap } from "../../component/index.js";
import { listenUnix } from "../../http/index.js";
import { Serializer } from "../../base/index.js";
import { log } from "../../log.js";
import type { HandlerHost } from "./handler.js";
import { mergeOrders, readStateFile } from "./persist.js";
import { Persister } from "./persister.js";
import { commandRoutes, type RoutesProvider } from "./routes.js";
import { CommandServer } from "./server.js";
import { ProxyState } from "./state.js";

export { ProxyState } from "./state.js";
export type { RouteInfo, RoutesProvider } from "./routes.js";
export { commandRoutes } from "./routes.js";

export const STATE_FILE = "proxy-state";

export class CommandComponent implements Component {
  readonly name = "command";
  readonly stopLast = true;
  readonly state = new ProxyState();
  private readonly persister: Persister;
  private server: CommandServer | undefined;
  private listenState: "listening" | "disabled" | "unavailable" | "stopped" = "disabled";
  private reason: string | undefined;
  private stopping = false;
  private readonly softStopOks: (() => void)[] = [];
  private routes: RoutesProvider = () => commandRoutes(this.state);
  private certs: () => unknown[] = () => [];
  private readonly fileOrders = new Serializer();

  /** a new master is starting, or has taken over: the state must not change here any more */
  private upgradeRunning = false;

  constructor(
    /** launchSuccessor starts the new master (tests replace it: the real one runs this process's argv again) */
    private readonly ctx: Pick<DaemonContext, "config" | "requestStop" | "inherit" | "handedOver" | "launchSuccessor" | "stopAccepting">,
  ) {
    this.persister = new Persister(this.state, join(ctx.config.static.state_dir, STATE_FILE));
  }

  /** The lead connects the data plane's merged table here (command > config > ingress). */
  setRoutesProvider(provider: RoutesProvider): void {
    this.routes = provider;
  }

  /** The lead connects the data plane's certificate list here (`stevedore certs`). */
  setCertsProvider(provider: () => unknown[]): void {
    this.certs = provider;
  }

  async start(): Promise<void> {
    await this.loadSavedState();
    const path = this.ctx.config.static.command_socket_path;
    if (path === "") {
      this.listenState = "disabled";
      return;
    }
    this.server = new CommandServer(this.ctx.config.static.command_max_frame_bytes, this.host());
    const r = await listenUnix(this.server.server, path, 0o600, "command", this.ctx);
    this.listenState = r.ok ? "listening" : "unavailable";
    if (!r.ok) this.reason = r.message;
    else log.info("command socket listening", { path });
  }

  async stop(_graceful: boolean, deadline: number): Promise<void> {
    this.stopping = true;
    for (const ok of this.softStopOks.splice(0)) ok();
    await this.server?.close(deadline);
    await this.persister.idle();
    this.listenState = "stopped";
  }

  listeners(): ListenerMap {
    const path = this.ctx.config.static.command_socket_path;
    return new Map(this.server && this.listenState === "listening" ? [["command", { server: this.server.server, address: path }]] : []);
  }

  status(): Record<string, unknown> {
    return {
      state: this.listenState,
      ...(this.listenState !== "disabled" && { address: this.ctx.config.static.command_socket_path }),
      ...(this.reason && { reason: this.reason }),
      connections: this.server?.connections ?? 0,
      applications: this.state.apps().size,
      fronts: this.state.httpFronts().length + this.state.httpsFronts().length,
      backends: this.state.backends().length,
      certificates: this.state.certificates().size,
    };
  }

  private host(): HandlerHost {
    return {
      state: this.state,
      stateDir: this.ctx.config.static.state_dir,
      persist: () => this.persister.request(),
      routes: () => this.routes(),
      certs: () => this.certs(),
      softStop: (sendOk) => {
        if (this.listenState === "stopped") return sendOk();
        this.softStopOks.push(sendOk);
        if (!this.stopping) {
          this.stopping = true;
          log.info("SOFT_STOP received, stopping");
          void this.ctx.requestStop(true);
        }
      },
      hardStop: () => {
        log.info("HARD_STOP received, stopping");
        this.stopping = true;
        // let the Ok reach the client before the listeners close
        setImmediate(() => void this.ctx.requestStop(false));
      },
      runState: () => (this.stopping ? "STOPPING" : "RUNNING"),
      upgrading: () => this.upgradeRunning,
      upgrade: () => this.upgrade(),
      exclusive: <T>(fn: () => Promise<T>): Promise<T> => this.fileOrders.run(fn),
    };
  }

  /** UPGRADE_MASTER. The state file is complete before the new master reads it, and stays so
   *  (state orders are refused) until this master either hands over or keeps serving. */
  private async upgrade(): Promise<LaunchResult> {
    this.upgradeRunning = true;
    try {
      await this.persister.idle();
      log.info("UPGRADE_MASTER received, starting a new master");
      const r = await this.ctx.launchSuccessor(); // on success the socket files are the new master's
      if (r.ok) {
        log.info("new master ready, handing over and draining", { pid: r.pid });
        this.stopping = true;
        // let the Ok reach the client first; the command socket closes last (stopLast)
        setImmediate(() => void this.ctx.stopAccepting().then(() => this.ctx.requestStop(true)));
      } else {
        this.upgradeRunning = false;
      }
      return r;
    } catch (err) {
      this.upgradeRunning = false;
      throw err;
    }
  }

  /** A restart keeps run-time routes. A bad file is moved aside (never overwritten by a smaller state). */
  private async loadSavedState(): Promise<void> {
    const path = this.persister.path;
    const exists = await lstat(path).then(() => true, (err: NodeJS.ErrnoException) => err.code !== "ENOENT");
    if (!exists) return;
    const parsed = await readStateFile(path);
    const merged = parsed.ok ? mergeOrders(this.state, parsed.orders) : parsed;
    if (!merged.ok) {
      const aside = `${path}.bad-${Date.now()}`;
      log.error("cannot load the proxy state; moved aside, starting empty", { path, error: merged.message, moved_to: aside });
      await rename(path, aside).catch(() => {});
      return;
    }
    this.state.replaceWith(merged.next);
    log.info("proxy state loaded", { path, messages: parsed.ok ? parsed.orders.length : 0 });
  }
}

export function commandComponent(ctx: DaemonContext): CommandComponent {
  return new CommandComponent(ctx);
}
