// What each decoded order does. Answers go through `send` (several per request for long orders:
// Processing first, then Ok/Error with the same id).
import { stat } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import { log } from "../../log.js";
import { answer, isStateOrder, type Answer, type Order } from "./messages.js";
import { mergeOrders, readStateFile, saveState } from "./persist.js";
import type { ProxyState } from "./state.js";
import type { RoutesProvider } from "./routes.js";
import type { LaunchResult } from "../../component/index.js";

export const UNDER_SYSTEMD = "UPGRADE_MASTER is refused under systemd, which would stop the new master with the service; use systemctl restart stevedore";
const UPGRADING = "an upgrade is in progress (the new master has read the state); retry in a moment";

export type Send = (a: Answer) => void;

export interface HandlerHost {
  readonly state: ProxyState;
  readonly stateDir: string;
  /** resolves once the change is in the state file; the string is an error */
  persist(): Promise<string | undefined>;
  routes: RoutesProvider;
  /** CERTS: the certificates the HTTPS listener serves (ACME, config, command socket) */
  certs?: () => unknown[];
  /** SOFT_STOP: the final Ok is sent by the component's stop() */
  softStop(sendOk: () => void): void;
  /** HARD_STOP, after its Ok was written */
  hardStop(): void;
  runState(): "RUNNING" | "STOPPING";
  /** UPGRADE_MASTER: start the new master and hand it the sockets; on success this one drains and exits */
  upgrade(): Promise<LaunchResult>;
  /** true while a new master is starting: it has read the state file, so the state must not change */
  upgrading(): boolean;
  /** runs file orders (SAVE_STATE, LOAD_STATE) one at a time: a state file may be large */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
}

export async function handleOrder(host: HandlerHost, id: string, order: Order, send: Send): Promise<void> {
  if (isStateOrder(order)) {
    if (host.upgrading()) return send(answer(id, "Error", UPGRADING));
    const out = host.state.apply(order);
    let message = out.message;
    if (out.changed) {
      const err = await host.persist();
      if (err) message += ` (not saved to the state file: ${err})`;
    }
    send(answer(id, out.ok ? "Ok" : "Error", message, out.data));
    return;
  }
  switch (order.type) {
    case "DUMP_STATE":
      return send(answer(id, "Ok", "state", host.state.dump()));
    case "STATUS":
      return send(answer(id, "Ok", "workers", [{ id: 0, pid: process.pid, run_state: host.runState() }]));
    case "ROUTES":
      return send(answer(id, "Ok", "routes", host.routes()));
    case "CERTS":
      return send(answer(id, "Ok", "certificates", host.certs?.() ?? []));
    case "SAVE_STATE":
    case "LOAD_STATE":
      if (order.type === "LOAD_STATE" && host.upgrading()) return send(answer(id, "Error", UPGRADING));
      return host.exclusive(() => fileOrder(host, id, order, send));
    case "SOFT_STOP":
      send(answer(id, "Processing", "soft stop: draining in-flight requests"));
      host.softStop(() => send(answer(id, "Ok", "soft stop done")));
      return;
    case "HARD_STOP":
      send(answer(id, "Ok", "hard stop"));
      host.hardStop();
      return;
    case "UPGRADE_MASTER": {
      if (host.upgrading()) return send(answer(id, "Error", "an upgrade is already in progress"));
      if (host.runState() === "STOPPING") return send(answer(id, "Error", "the daemon is stopping"));
      // systemd (Type=simple) takes the old master's exit for the end of the service and would
      // kill the new one with the cgroup: refuse rather than take the host's traffic down.
      if (process.env.INVOCATION_ID) return send(answer(id, "Error", UNDER_SYSTEMD));
      send(answer(id, "Processing", "upgrade: starting a new master process"));
      const r = await host.upgrade();
      if (!r.ok) return send(answer(id, "Error", `upgrade failed: ${r.reason}; this master keeps serving`));
      return send(answer(id, "Ok", `new master process launched with pid ${r.pid}`));
    }
  }
}

async function fileOrder(host: HandlerHost, id: string, order: Extract<Order, { type: "SAVE_STATE" | "LOAD_STATE" }>, send: Send): Promise<void> {
  switch (order.type) {
    case "SAVE_STATE": {
      const path = resolvePath(host.stateDir, order.path);
      // the directory must exist: no directories are created on a client's behalf
      const dir = await stat(dirname(path)).catch(() => undefined);
      if (!dir?.isDirectory()) return send(answer(id, "Error", `cannot save the state to ${path}: directory ${dirname(path)} does not exist`));
      try {
        const n = await saveState(host.state, path);
        return send(answer(id, "Ok", `saved ${n} messages to ${path}`));
      } catch (err) {
        return send(answer(id, "Error", `cannot save the state to ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`));
      }
    }
    case "LOAD_STATE": {
      const path = resolvePath(host.stateDir, order.path);
      send(answer(id, "Processing", `loading ${path}`));
      const parsed = await readStateFile(path);
      if (!parsed.ok) return send(answer(id, "Error", `${parsed.message}; nothing loaded`));
      const merged = mergeOrders(host.state, parsed.orders);
      if (!merged.ok) return send(answer(id, "Error", `${path}: ${merged.message}; nothing loaded`));
      let message = `loaded ${parsed.orders.length} messages, ${merged.changes} changes`;
      if (merged.changes > 0) {
        host.state.replaceWith(merged.next);
        const err = await host.persist();
        if (err) message += ` (not saved to the state file: ${err})`;
      }
      log.info("proxy state loaded", { path, messages: parsed.orders.length, changes: merged.changes });
      return send(answer(id, "Ok", message));
    }
  }
}

/** Relative paths resolve against the state dir (the daemon's cwd is "/" under systemd). */
export function resolvePath(stateDir: string, path: string): string {
  return isAbsolute(path) ? path : resolve(stateDir, path);
}
