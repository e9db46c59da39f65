// The admin commands: `reload` and `status`.
import type { DaemonContext } from "../daemon/context.js";
import { VERSION } from "../version.js";
import { INVALID_INPUT, type Handler, type Reply } from "./protocol.js";

export function adminHandlers(ctx: DaemonContext): Record<string, Handler> {
  return {
    reload: async (args) => {
      if (args.length) return INVALID_INPUT;
      const errors = await ctx.reload();
      return errors.length ? { status: "error", message: errors.join("; ") } : { status: "ok" };
    },
    status: (args) => (args.length ? INVALID_INPUT : statusReply(ctx)),
  };
}

/** The spec's three fields first (always present, always these names), then the extras. */
export function statusReply(ctx: DaemonContext): Reply {
  const rev = ctx.catalog.current();
  const services = new Set(rev.containers.map((c) => `${c.deployment}\0${c.service}`));
  const listeners: Record<string, Record<string, unknown>> = {};
  for (const c of ctx.components) {
    try {
      listeners[c.name] = c.status();
    } catch (err) {
      listeners[c.name] = { state: "unknown", error: (err as Error).message };
    }
  }
  return {
    status: "ok",
    uptime_secs: Math.max(0, Math.floor((performance.now() - ctx.startedAt) / 1000)),
    sites: countSites(ctx),
    version: VERSION,
    deployments: rev.deployments.length,
    services: services.size,
    docker: ctx.catalog.dockerState(),
    listeners,
    pending_polls: ctx.catalog.waiterCount(),
  };
}

/** Distinct host names routed right now: the proxy's merged table when a component provides
 *  one, else the config's [[site]] host names. Host names compare case-insensitively. */
export function countSites(ctx: DaemonContext): number {
  const hosts = new Set<string>();
  const providers = ctx.components.filter((c) => c.routedHostnames);
  if (providers.length) for (const p of providers) for (const h of p.routedHostnames!()) hosts.add(h.toLowerCase());
  else for (const s of ctx.dynamic().sites) hosts.add(s.hostname.toLowerCase());
  return hosts.size;
}
