// From Docker's inspect answer to the catalog's ContainerInfo, and the public projection that
// decides whether a change is a real one.
import type { ContainerInspect } from "../docker/index.js";
import { parseIngress } from "./ingress.js";
import { membershipOf } from "./membership.js";
import type { ContainerInfo, Health } from "./types.js";

/** Docker's nanosecond timestamp → RFC 3339 UTC with whole seconds; null for "never". */
export function rfc3339(value: string | undefined): string | null {
  if (!value || value.startsWith("0001-01-01")) return null;
  const ms = Date.parse(value);
  if (!Number.isFinite(ms) || ms <= 0) return null;
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

function healthOf(state: ContainerInspect["State"]): Health {
  const s = state.Health?.Status;
  return s === "healthy" || s === "unhealthy" || s === "starting" ? s : "none";
}

export interface Converted {
  info: ContainerInfo;
  /** ingress label problems (logged once per container) */
  problems: string[];
}

/** undefined when the container is not a member of any deployment */
export function toContainerInfo(c: ContainerInspect): Converted | undefined {
  const labels = c.Config?.Labels ?? {};
  const member = membershipOf(labels);
  if (!member) return undefined;
  const { ingress, problems } = parseIngress(labels);
  const test = c.Config?.Healthcheck?.Test;
  const networks: { name: string; ip: string }[] = [];
  for (const [name, net] of Object.entries(c.NetworkSettings?.Networks ?? {})) networks.push({ name, ip: net?.IPAddress ?? "" });
  const info: ContainerInfo = {
    id: c.Id,
    name: c.Name.replace(/^\//, ""),
    deployment: member.deployment,
    service: member.service,
    image: c.Config?.Image ?? "",
    state: c.State.Status,
    running: c.State.Running === true,
    health: healthOf(c.State),
    hasHealthcheck: Array.isArray(test) && test.length > 0 && test[0] !== "NONE",
    exitCode: c.State.ExitCode ?? 0,
    startedAt: rfc3339(c.State.StartedAt),
    restartPolicy: c.HostConfig?.RestartPolicy?.Name || "no",
    networks,
    labels,
  };
  if (ingress) info.ingress = ingress;
  return { info, problems };
}

/** Sort order of every listing: deployment, service, container name (code-point order). */
export function compareContainers(a: ContainerInfo, b: ContainerInfo): number {
  return cmp(a.deployment, b.deployment) || cmp(a.service, b.service) || cmp(a.name, b.name) || cmp(a.id, b.id);
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * What /services, /deployments and every /status/<name> can show of a set of containers
 * (uptime excluded: it is computed at request time). Two states with equal projections look
 * the same to every client, so they must not make a new revision.
 */
export function publicProjection(containers: readonly ContainerInfo[], deployments: readonly string[]): string {
  const rows = containers.map((c) => [
    c.deployment, c.service, c.id.slice(0, 12), c.name, c.running, c.ingress ?? null, c.image, c.state,
    c.health, c.hasHealthcheck, c.exitCode, c.startedAt, c.restartPolicy,
  ]);
  return JSON.stringify([deployments, rows]);
}
