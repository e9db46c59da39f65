// Every response body of one catalog revision, serialized once and reused as the same Buffer.
// /status bodies are templates: the only request-time part (uptime in "Up 2h") is filled in per
// request; a deployment with no running container has its whole body cached.
import type { ContainerInfo, Revision } from "../catalog/index.js";
import { compareContainers } from "../catalog/index.js";
import { deploymentHealth, renderStatus, statusText, type StatusText } from "./status.js";

type Part = string | StatusText;

export class RevisionBodies {
  private services_?: Buffer;
  private ingress_?: Buffer;
  private deployments_?: Buffer;
  private byDeployment_?: Map<string, ContainerInfo[]>;
  private known_?: Set<string>;
  private status = new Map<string, Buffer | Part[]>();
  readonly pollChanged: Buffer;
  readonly pollUnchanged: Buffer;

  constructor(readonly revision: Revision) {
    this.pollChanged = Buffer.from(`{"changed":true,"timestamp":${revision.ts}}`);
    this.pollUnchanged = Buffer.from(`{"changed":false,"timestamp":${revision.ts}}`);
  }

  services(ingressOnly: boolean): Buffer {
    if (ingressOnly) return (this.ingress_ ??= serviceList(this.revision.containers.filter((c) => c.ingress?.enabled === true)));
    return (this.services_ ??= serviceList(this.revision.containers));
  }

  deployments(): Buffer {
    return (this.deployments_ ??= Buffer.from(JSON.stringify([...new Set(this.revision.deployments)].sort().map((name) => ({ name })))));
  }

  /** The /status body for a deployment at `nowMs`, or undefined when the deployment is unknown. */
  statusOf(name: string, nowMs: number): Buffer | undefined {
    let body = this.status.get(name);
    if (body === undefined) {
      if (!this.isKnown(name)) return undefined;
      body = statusTemplate(name, this.containersOf(name));
      this.status.set(name, body);
    }
    if (Buffer.isBuffer(body)) return body;
    let text = "";
    for (const p of body) text += typeof p === "string" ? p : JSON.stringify(renderStatus(p, nowMs));
    return Buffer.from(text);
  }

  private isKnown(name: string): boolean {
    this.known_ ??= new Set([...this.revision.deployments, ...this.revision.containers.map((c) => c.deployment)]);
    return this.known_.has(name);
  }

  private containersOf(name: string): ContainerInfo[] {
    if (!this.byDeployment_) {
      this.byDeployment_ = new Map();
      for (const c of sortContainers(this.revision.containers)) {
        const list = this.byDeployment_.get(c.deployment);
        if (list) list.push(c);
        else this.byDeployment_.set(c.deployment, [c]);
      }
    }
    return this.byDeployment_.get(name) ?? [];
  }
}

/** Deployment, then service, then container name (the catalog sorts too; this keeps us exact regardless). */
export function sortContainers(list: readonly ContainerInfo[]): ContainerInfo[] {
  return [...list].sort(compareContainers);
}

function ingressJson(c: ContainerInfo): Record<string, unknown> | undefined {
  const i = c.ingress;
  if (!i) return undefined;
  const out: Record<string, unknown> = { enabled: i.enabled };
  if (i.subdomain !== undefined) out.subdomain = i.subdomain;
  if (i.port !== undefined) out.port = i.port;
  if (i.websocket !== undefined) out.websocket = i.websocket;
  if (i.healthcheck !== undefined) out.healthcheck = i.healthcheck;
  return out;
}

function serviceList(list: readonly ContainerInfo[]): Buffer {
  return Buffer.from(
    JSON.stringify(
      sortContainers(list).map((c) => ({
        deployment: c.deployment,
        service: c.service,
        container_id: c.id.slice(0, 12),
        container_name: c.name.replace(/^\//, ""),
        running: c.running,
        ingress: ingressJson(c),
      })),
    ),
  );
}

function statusTemplate(name: string, containers: ContainerInfo[]): Buffer | Part[] {
  const { healthy, message } = deploymentHealth(containers);
  const parts: Part[] = [];
  let text = JSON.stringify({ deployment: name, project_name: `stevedore-${name}`, healthy, message }).slice(0, -1) + `,"containers":[`;
  containers.forEach((c, i) => {
    if (i > 0) text += ",";
    const head = { id: c.id.slice(0, 12), name: c.name.replace(/^\//, ""), service: c.service, image: c.image, state: c.state, health: c.health };
    text += JSON.stringify(head).slice(0, -1) + `,"status":`;
    const st = statusText(c);
    if ("fixed" in st) text += JSON.stringify(st.fixed);
    else {
      parts.push(text, st);
      text = "";
    }
    text += `,"exit_code":${c.exitCode},"started_at":${JSON.stringify(c.startedAt)}}`;
  });
  text += "]}";
  if (parts.length === 0) return Buffer.from(text);
  parts.push(text);
  return parts;
}
