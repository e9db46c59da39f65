// The /status/<name> semantics: status strings, the healthy rule, the message.
import type { ContainerInfo } from "../catalog/index.js";

/** "2h" from a duration: floor in the largest unit among s, m, h, d that is at least 1. */
export function humanDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** The part of a status string that depends on the time of the request, or a fixed string. */
export type StatusText = { fixed: string } | { upSinceMs: number; suffix: string };

export function statusText(c: ContainerInfo): StatusText {
  const since = c.startedAt ? Date.parse(c.startedAt) : NaN;
  const upSinceMs = Number.isFinite(since) ? since : Date.now();
  switch (c.state) {
    case "running":
      return { upSinceMs, suffix: c.hasHealthcheck ? ` (${c.health})` : "" };
    case "paused":
      return { upSinceMs, suffix: " (paused)" };
    case "restarting":
      return { fixed: `Restarting (${c.exitCode})` };
    case "created":
      return { fixed: "Created" };
    case "exited":
    case "dead":
      return { fixed: `Exited (${c.exitCode})` };
    default:
      return { fixed: c.state ? c.state[0]!.toUpperCase() + c.state.slice(1) : "Unknown" };
  }
}

export function renderStatus(t: StatusText, nowMs: number): string {
  return "fixed" in t ? t.fixed : `Up ${humanDuration(nowMs - t.upSinceMs)}${t.suffix}`;
}

/** A finished one-shot job (a migration): exited 0 and not meant to be restarted. */
function finishedJob(c: ContainerInfo): boolean {
  return (c.state === "exited" || c.state === "dead") && c.exitCode === 0 && (c.restartPolicy === "no" || c.restartPolicy === "");
}

function fine(c: ContainerInfo): boolean {
  return (c.state === "running" && c.health !== "unhealthy") || finishedJob(c);
}

export function deploymentHealth(containers: readonly ContainerInfo[]): { healthy: boolean; message: string } {
  const n = containers.length;
  if (n === 0) return { healthy: false, message: "No containers" };
  // "healthy" is the spec's word when health checks say so; with none at all, say only what is known
  if (containers.every(fine)) return { healthy: true, message: `All ${n} containers ${containers.some((c) => c.hasHealthcheck) ? "healthy" : "running"}` };
  const down = containers.some((c) => c.state !== "running" && !finishedJob(c));
  if (down) return { healthy: false, message: `${containers.filter((c) => c.state === "running").length}/${n} containers running` };
  return { healthy: false, message: `${containers.filter((c) => c.health === "unhealthy").length} of ${n} containers unhealthy` };
}
