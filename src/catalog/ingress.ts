// The stevedore.ingress.* labels of a container.
import type { Ingress } from "./types.js";

const PREFIX = "stevedore.ingress.";
const MAX_SUBDOMAIN = 253;
const MAX_PATH = 2048;

export interface ParsedIngress {
  /** absent when the container has no stevedore.ingress.* label */
  ingress?: Ingress;
  /** why the labels are (partly) invalid, for a one-time log line */
  problems: string[];
}

/** true for "true", "1", "yes" (any case, surrounding spaces ignored); anything else false */
export function labelBool(value: string | undefined): boolean {
  return value !== undefined && /^(true|1|yes)$/i.test(value.trim());
}

/** An integer port 1–65535 written in plain decimal digits, else undefined. */
export function parsePort(value: string): number | undefined {
  const v = value.trim();
  if (!/^[0-9]{1,5}$/.test(v)) return undefined;
  const n = Number(v);
  return n >= 1 && n <= 65535 ? n : undefined;
}

export function parseIngress(labels: Readonly<Record<string, string>>): ParsedIngress {
  const problems: string[] = [];
  let any = false;
  for (const k of Object.keys(labels)) if (k.startsWith(PREFIX)) { any = true; break; }
  if (!any) return { problems };
  const ingress: Ingress = { enabled: labelBool(labels[PREFIX + "enabled"]) };
  const subdomain = labels[PREFIX + "subdomain"];
  if (subdomain !== undefined) {
    if (subdomain.length <= MAX_SUBDOMAIN) ingress.subdomain = subdomain;
    else problems.push("subdomain too long");
  }
  const port = labels[PREFIX + "port"];
  if (port !== undefined) {
    const n = parsePort(port);
    if (n === undefined) problems.push(`invalid port ${JSON.stringify(port.slice(0, 32))}`);
    else ingress.port = n;
  }
  const websocket = labels[PREFIX + "websocket"];
  if (websocket !== undefined) ingress.websocket = labelBool(websocket);
  const redirect = labels[PREFIX + "https_redirect"];
  if (redirect !== undefined) ingress.httpsRedirect = labelBool(redirect);
  const healthcheck = labels[PREFIX + "healthcheck"];
  if (healthcheck !== undefined) {
    if (healthcheck.startsWith("/") && healthcheck.length <= MAX_PATH && !/[\s\x00-\x1f\x7f]/.test(healthcheck)) ingress.healthcheck = healthcheck;
    else problems.push(`invalid healthcheck path ${JSON.stringify(healthcheck.slice(0, 64))}`);
  }
  return { ingress, problems };
}
