// `stevedore status`: the daemon's status over the admin socket.
import { ADMIN_OPTIONS, adminSocketPath, callAdmin } from "./admin-socket.js";
import { CommandError, parse, table, type Command } from "./command.js";

export const statusCommand: Command = {
  name: "status",
  summary: "show the daemon's status (admin socket)",
  usage: `usage: stevedore status [--json] [--config FILE] [--socket PATH]

Asks the running daemon over its admin socket (admin_socket_path of the config
file, or PATH) for its status: uptime, routed sites, deployments, services, the
Docker connection, each listener's state, the pending long-polls, and the
manager's workers and jobs by status.
--json prints the daemon's reply as it is.
Exits 1 when a configured listener is unavailable (its row says the address and
the cause), 0 when every one is listening or disabled.`,
  async run(args) {
    const { values } = parse(args, { ...ADMIN_OPTIONS, json: { type: "boolean" } }, false);
    const reply = await callAdmin(adminSocketPath(values), "status");
    if (reply.status !== "ok") throw new CommandError(`status failed: ${String(reply.message ?? "unknown error")}`);
    process.stdout.write(values.json ? JSON.stringify(reply) + "\n" : human(reply));
    // like a health check: 1 when a configured listener is down (each row says why)
    return unavailableRows(reply).length ? 1 : 0;
  },
};

function human(r: Record<string, unknown>): string {
  const lines = [
    `stevedore ${String(r.version ?? "?")}, up ${duration(Number(r.uptime_secs))}`,
    `sites:          ${String(r.sites)}`,
    `deployments:    ${String(r.deployments ?? "?")}`,
    `services:       ${String(r.services ?? "?")}`,
    `docker:         ${String(r.docker ?? "?")}`,
    `pending polls:  ${String(r.pending_polls ?? "?")}`,
  ];
  const listeners = (r.listeners && typeof r.listeners === "object" ? r.listeners : {}) as Record<string, Record<string, unknown>>;
  const manager = listeners.manager ?? {};
  if (manager.workers) lines.push(`workers:        ${counts(manager.workers)}`, `jobs:           ${counts(manager.jobs)}`);
  const rows = allRows(r);
  return `${lines.join("\n")}\n\n${table(["LISTENER", "STATE", "ADDRESS", "NOTE"], rows)}`;
}

function allRows(r: Record<string, unknown>): string[][] {
  const listeners = (r.listeners && typeof r.listeners === "object" ? r.listeners : {}) as Record<string, Record<string, unknown>>;
  return Object.entries(listeners).flatMap(([name, s]) => listenerRows(name, s ?? {}));
}

function unavailableRows(r: Record<string, unknown>): string[][] {
  return allRows(r).filter((row) => row[1] === "unavailable");
}

/** "3 (2 awake, 1 asleep)" from counts by status */
function counts(byStatus: unknown): string {
  const entries = Object.entries((byStatus ?? {}) as Record<string, number>);
  const total = entries.reduce((n, [, c]) => n + c, 0);
  return entries.length ? `${total} (${entries.map(([k, c]) => `${c} ${k}`).join(", ")})` : "0";
}

/** One row per listener; a component with several (the proxy's http and https) gets one row each. */
function listenerRows(name: string, s: Record<string, unknown>): string[][] {
  const nested = Object.entries(s).filter(([, v]) => v !== null && typeof v === "object" && "state" in (v as object));
  if (nested.length && s.address === undefined)
    return nested.map(([key, v]) => listenerRows(`${name} ${key}`, v as Record<string, unknown>)[0]!);
  return [[name, String(s.state ?? "?"), String(s.address ?? ""), String(s.reason ?? s.error ?? "")]];
}

function duration(secs: number): string {
  if (!Number.isFinite(secs)) return "?";
  const d = Math.floor(secs / 86400), h = Math.floor((secs % 86400) / 3600), m = Math.floor((secs % 3600) / 60), s = Math.floor(secs % 60);
  return [d && `${d}d`, (d || h) && `${h}h`, (d || h || m) && `${m}m`, `${s}s`].filter(Boolean).join(" ");
}
