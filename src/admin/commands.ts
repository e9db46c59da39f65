// The admin commands: `reload` and `status` (`help` and `config`: introspect.ts).
import type { DaemonContext } from "../component/index.js";
import type { DynamicConfig } from "../config/index.js";
import { VERSION } from "../version.js";
import { withIntrospection } from "./introspect.js";
import { INVALID_INPUT, type Handler, type Reply } from "./protocol.js";

export function adminHandlers(ctx: DaemonContext): Record<string, Handler> {
  return withIntrospection(ctx, {
    reload: async (args) => {
      if (args.length) return INVALID_INPUT;
      const { errors, restartRequired } = await ctx.reload();
      if (errors.length) return { status: "error", message: errors.join("; ") };
      // the spec's bare {"status":"ok"} when nothing waits for a restart
      return restartRequired.length ? { status: "ok", restart_required: restartRequired } : { status: "ok" };
    },
    status: (args) => (args.length ? INVALID_INPUT : statusReply(ctx)),
  });
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
  const providers = ctx.components.filter((c) => c.routedHostnames);
  if (!providers.length) return configSites(ctx.dynamic());
  const hosts = new Set<string>();
  for (const p of providers) for (const h of p.routedHostnames!()) hosts.add(h.toLowerCase());
  return hosts.size;
}

// A DynamicConfig is immutable, so its count is computed once per reload, not per `status`.
const siteCounts = new WeakMap<DynamicConfig, number>();
function configSites(dyn: DynamicConfig): number {
  let n = siteCounts.get(dyn);
  if (n === undefined) {
    n = new Set(dyn.sites.map((s) => s.hostname.toLowerCase())).size;
    siteCounts.set(dyn, n);
  }
  return n;
}
