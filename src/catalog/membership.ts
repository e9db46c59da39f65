// Which deployment and service a container belongs to, from its labels alone (labels never change
// on a container, so membership is fixed for its lifetime).
import { isDeploymentName } from "../base/index.js";

const MAX_SERVICE_NAME = 255;
const COMPOSE_PREFIX = "stevedore-";

export interface Membership {
  deployment: string;
  service: string;
}

const validService = (s: string | undefined): s is string => typeof s === "string" && s.length > 0 && s.length <= MAX_SERVICE_NAME;

/**
 * 1. labels stevedore.deployment=D and stevedore.service=S, or else
 * 2. com.docker.compose.project=stevedore-D and com.docker.compose.service=S.
 * Anything else (including an invalid deployment name) is not a member.
 */
export function membershipOf(labels: Readonly<Record<string, string>> | null | undefined): Membership | undefined {
  if (!labels) return undefined;
  const d = labels["stevedore.deployment"];
  const s = labels["stevedore.service"];
  if (d !== undefined && isDeploymentName(d) && validService(s)) return { deployment: d, service: s };
  const project = labels["com.docker.compose.project"];
  const service = labels["com.docker.compose.service"];
  if (project?.startsWith(COMPOSE_PREFIX)) {
    const name = project.slice(COMPOSE_PREFIX.length);
    if (isDeploymentName(name) && validService(service)) return { deployment: name, service };
  }
  return undefined;
}
