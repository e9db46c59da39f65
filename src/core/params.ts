// POST /service bodies: validation (400 naming the field) and the mapping to Docker's create body.
import { isIP } from "node:net";
import { HttpError } from "../http/index.js";
import { DEPLOYMENT_NAME, isDeploymentName } from "../base/index.js";
import { isCheckoutId } from "../store/index.js";

export interface HostMapEntry {
  HostIp?: string;
  HostPort: string;
}

export interface ServiceParams {
  id: string;
  image: string;
  bind_dir: string;
  bind_contents?: string;
  cmd?: string[];
  shell?: string[];
  user?: string;
  working_dir?: string;
  open_stdin?: boolean;
  tty?: boolean;
  hostname?: string;
  port_map?: Record<string, HostMapEntry | HostMapEntry[]>;
  network_disabled?: boolean;
  max_cpu?: number;
  max_ram?: number;
  /** extension: the deployment label (default core_deployment) */
  deployment?: string;
  /** extension: extra container labels (e.g. stevedore.ingress.*) */
  labels?: Record<string, string>;
}

const REQUIRED = ["id", "image", "bind_dir"];

export const ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
const PORT_KEY_RE = /^([0-9]{1,5})\/(tcp|udp|sctp)$/;
const HOST_PORT_RE = /^([0-9]{1,5})?(-[0-9]{1,5})?$/;
const HOSTNAME_RE = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,62})(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,62}))*$/;
export const OWN_LABELS = ["stevedore.core.id", "stevedore.deployment", "stevedore.service"];
export const CPU_PERIOD = 100_000;
const MAX_LIST = 4096;
const MAX_STRING = 65536;

const bad = (msg: string) => new HttpError(400, msg);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function str(v: unknown, field: string, max = MAX_STRING): string {
  if (typeof v !== "string") throw bad(`${field} must be a string`);
  if (v.length > max) throw bad(`${field} is longer than ${max} characters`);
  if (v.includes("\0")) throw bad(`${field} contains NUL`);
  return v;
}

function strList(v: unknown, field: string): string[] {
  if (!Array.isArray(v)) throw bad(`${field} must be an array of strings`);
  if (v.length > MAX_LIST) throw bad(`${field} has more than ${MAX_LIST} items`);
  return v.map((s, i) => str(s, `${field}[${i}]`));
}

function bool(v: unknown, field: string): boolean {
  if (typeof v !== "boolean") throw bad(`${field} must be a boolean`);
  return v;
}

function int(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v)) throw bad(`${field} must be an integer`);
  if (v < min || v > max) throw bad(`${field} must be between ${min} and ${max}`);
  return v;
}

function absPath(v: unknown, field: string): string {
  const p = str(v, field, 4096);
  if (!p.startsWith("/")) throw bad(`${field} must be an absolute path`);
  return p;
}

function hostPort(v: unknown, field: string): HostMapEntry {
  if (!isObject(v)) throw bad(`${field} must be an object {HostIp?, HostPort}`);
  const unknown = Object.keys(v).filter((k) => k !== "HostIp" && k !== "HostPort");
  if (unknown.length) throw bad(`${field}: unknown keys ${unknown.join(", ")}`);
  const port = str(v.HostPort ?? "", `${field}.HostPort`, 11);
  const m = HOST_PORT_RE.exec(port);
  if (!m || [m[1], m[2]?.slice(1)].some((p) => p !== undefined && Number(p) > 65535)) throw bad(`${field}.HostPort must be a port number (as a string)`);
  const out: HostMapEntry = { HostPort: port };
  if (v.HostIp !== undefined) {
    const ip = str(v.HostIp, `${field}.HostIp`, 64);
    if (ip !== "" && !isIP(ip)) throw bad(`${field}.HostIp must be an IP address`);
    out.HostIp = ip;
  }
  return out;
}

const VALIDATORS: Record<keyof ServiceParams, (v: unknown, field: string) => unknown> = {
  id: (v, f) => {
    const id = str(v, f, 128);
    if (!ID_RE.test(id)) throw bad(`${f} must match ${ID_RE.source}`);
    return id;
  },
  image: (v, f) => {
    const image = str(v, f, 1024);
    if (image === "" || /\s/.test(image)) throw bad(`${f} must be an image reference`);
    return image;
  },
  bind_dir: (v, f) => {
    const dir = absPath(v, f);
    // Binds are "host:container": a colon or comma would smuggle in options
    if (/[:,]/.test(dir)) throw bad(`${f} must not contain ":" or ","`);
    if (dir.split("/").includes("..")) throw bad(`${f} must not contain ".."`);
    return dir;
  },
  bind_contents: (v, f) => {
    const url = str(v, f, 8192);
    if (url.startsWith("shaman:")) {
      if (!isCheckoutId(url.slice(7))) throw bad(`${f}: shaman:ID needs a checkout ID matching ^[a-zA-Z0-9_]{2,64}$`);
      return url;
    }
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw bad(`${f} must be an http or https URL`);
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") throw bad(`${f} must be an http or https URL`);
    return url;
  },
  cmd: strList,
  shell: strList,
  user: (v, f) => str(v, f, 256),
  working_dir: absPath,
  open_stdin: bool,
  tty: bool,
  hostname: (v, f) => {
    const h = str(v, f, 253);
    if (!HOSTNAME_RE.test(h)) throw bad(`${f} must be a host name`);
    return h;
  },
  port_map: (v, f) => {
    if (!isObject(v)) throw bad(`${f} must be an object`);
    const out: Record<string, HostMapEntry | HostMapEntry[]> = {};
    const keys = Object.keys(v);
    if (keys.length > 1024) throw bad(`${f} has more than 1024 ports`);
    for (const key of keys) {
      const m = PORT_KEY_RE.exec(key);
      if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535) throw bad(`${f}: ${JSON.stringify(key)} must be "<port>/<tcp|udp|sctp>"`);
      const value = v[key];
      if (Array.isArray(value)) {
        if (value.length > 64) throw bad(`${f}["${key}"] has more than 64 bindings`);
        out[key] = value.map((e, i) => hostPort(e, `${f}["${key}"][${i}]`));
      } else out[key] = hostPort(value, `${f}["${key}"]`);
    }
    return out;
  },
  network_disabled: bool,
  max_cpu: (v, f) => int(v, f, 1000, CPU_PERIOD * 1024),
  max_ram: (v, f) => int(v, f, 1, Number.MAX_SAFE_INTEGER),
  deployment: (v, f) => {
    const d = str(v, f, 63);
    if (!isDeploymentName(d)) throw bad(`${f} must match ${DEPLOYMENT_NAME.source}`);
    return d;
  },
  labels: (v, f) => {
    if (!isObject(v)) throw bad(`${f} must be an object of strings`);
    const keys = Object.keys(v);
    if (keys.length > 256) throw bad(`${f} has more than 256 labels`);
    const out: Record<string, string> = {};
    for (const key of keys) {
      if (key === "" || key.length > 256 || key.includes("\0")) throw bad(`${f}: bad label name ${JSON.stringify(key)}`);
      if (OWN_LABELS.includes(key)) throw bad(`${f}: ${key} is set by stevedore`);
      out[key] = str(v[key], `${f}["${key}"]`, 4096);
    }
    return out;
  },
};

/** Validate a POST /service body; 400 naming the field, unknown keys named. */
export function parseCreateBody(body: unknown): ServiceParams {
  if (!isObject(body)) throw bad("body must be a JSON object");
  const extra = Object.keys(body).filter((k) => k !== "type" && k !== "params");
  if (extra.length) throw bad(`unknown keys: ${extra.join(", ")}`);
  if (body.type !== "raw") throw bad(`type must be "raw"`);
  const params = body.params;
  if (!isObject(params)) throw bad("params must be an object");
  const unknown = Object.keys(params).filter((k) => !(k in VALIDATORS));
  if (unknown.length) throw bad(`unknown params keys: ${unknown.join(", ")}`);
  for (const required of REQUIRED) if (params[required] === undefined) throw bad(`params.${required} is required`);
  const out: Record<string, unknown> = {};
  for (const [key, validate] of Object.entries(VALIDATORS)) {
    const value = params[key];
    if (value === undefined || (value === null && !REQUIRED.includes(key))) continue;
    out[key] = validate(value, `params.${key}`);
  }
  return out as unknown as ServiceParams;
}

/** Validate a PATCH /service/<id>/env body. */
export function parseEnvBody(body: unknown): Record<string, string> {
  if (!isObject(body)) throw bad("body must be a JSON object of strings");
  const keys = Object.keys(body);
  if (keys.length > MAX_LIST) throw bad(`more than ${MAX_LIST} variables`);
  const env: Record<string, string> = {};
  for (const key of keys) {
    if (key === "" || key.includes("=") || key.includes("\0")) throw bad(`bad variable name ${JSON.stringify(key)}: must be non-empty without "=" or NUL`);
    const value = body[key];
    if (typeof value !== "string") throw bad(`${key} must be a string`);
    if (value.includes("\0")) throw bad(`${key} contains NUL`);
    env[key] = value;
  }
  return env;
}

/** The Docker create body for a service (Env from the stored env). */
export function createBody(p: ServiceParams, env: Record<string, string>, bindPath: string, deployment: string): Record<string, unknown> {
  const body: Record<string, unknown> = {
    Image: p.image,
    OpenStdin: p.open_stdin ?? true,
    StdinOnce: false,
    Tty: p.tty ?? true,
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Labels: { ...p.labels, "stevedore.core.id": p.id, "stevedore.deployment": deployment, "stevedore.service": p.id },
  };
  if (p.cmd !== undefined) body.Cmd = p.cmd;
  if (p.shell !== undefined) body.Shell = p.shell;
  if (p.user !== undefined) body.User = p.user;
  if (p.working_dir !== undefined) body.WorkingDir = p.working_dir;
  if (p.hostname !== undefined) body.Hostname = p.hostname;
  if (p.network_disabled !== undefined) body.NetworkDisabled = p.network_disabled;
  const host: Record<string, unknown> = { Binds: [`${bindPath}:${p.bind_dir}`] };
  if (p.port_map !== undefined) {
    const exposed: Record<string, object> = {};
    const bindings: Record<string, HostMapEntry[]> = {};
    for (const [port, value] of Object.entries(p.port_map)) {
      exposed[port] = {};
      bindings[port] = (Array.isArray(value) ? value : [value]).map((e) => ({ HostIp: e.HostIp ?? "", HostPort: e.HostPort }));
    }
    body.ExposedPorts = exposed;
    host.PortBindings = bindings;
  }
  if (p.max_cpu !== undefined) {
    host.CpuPeriod = CPU_PERIOD;
    host.CpuQuota = p.max_cpu;
  }
  if (p.max_ram !== undefined) host.Memory = p.max_ram;
  body.HostConfig = host;
  return body;
}
