import { readFileSync } from "node:fs";
import { KEYS, SITE_KEYS, type Config, type KeySpec, type Key, type Values, type Site, type StaticConfig, type DynamicConfig } from "./schema.js";
import { parseToml, type Entry, type Table } from "./toml.js";

export const DEFAULT_CONFIG_PATH = "/etc/stevedore/stevedore.conf";
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

export class ConfigError extends Error {
  constructor(readonly errors: string[]) {
    super(errors.join("; "));
  }
}

/** Which file to read: --config, else STEVEDORE_CONFIG, else the default (which may be missing). */
export function configPath(flag: string | undefined, env = process.env): { path: string; explicit: boolean } {
  if (flag) return { path: flag, explicit: true };
  if (env.STEVEDORE_CONFIG) return { path: env.STEVEDORE_CONFIG, explicit: true };
  return { path: DEFAULT_CONFIG_PATH, explicit: false };
}

/** Read and validate a config file; throws ConfigError listing every problem. */
export function loadConfig(path: string, explicit: boolean, env = process.env): Config {
  let text = "";
  let file = path;
  try {
    const bytes = readFileSync(path);
    if (bytes.length > MAX_CONFIG_BYTES) throw new ConfigError([`${path}: file larger than ${MAX_CONFIG_BYTES} bytes`]);
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" && !explicit) file = "";
    else if (err instanceof TypeError) throw new ConfigError([`${path}: not valid UTF-8`]);
    else throw new ConfigError([`${path}: ${(err as Error).message}`]);
  }
  return parseConfig(text, file, env);
}

/** Validate config text. `file` names it in errors. */
export function parseConfig(text: string, file: string, env = process.env): Config {
  const name = file || "<defaults>";
  const { doc, errors: parseErrors } = parseToml(text);
  const errors = parseErrors.map((e) => `${name}:${e.line}: ${e.message}`);

  const values = Object.fromEntries(Object.entries(KEYS).map(([k, spec]) => [k, cloneDefault(spec)])) as Values;
  for (const [key, entry] of doc.root) {
    const spec = (KEYS as Record<string, KeySpec>)[key];
    if (!spec) { errors.push(`${name}:${entry.line}: unknown key ${key}`); continue; }
    const err = checkType(key, spec, entry);
    if (err) errors.push(`${name}:${entry.line}: ${err}`);
    else (values as Record<string, unknown>)[key] = entry.value;
  }
  for (const [section, { line }] of doc.sections) errors.push(`${name}:${line}: unknown table [${section}]`);
  const sites: Site[] = [];
  for (const [arrayName, tables] of doc.arrays) {
    if (arrayName !== "site") {
      for (const t of tables) errors.push(`${name}:${t.line}: unknown table [[${arrayName}]]`);
      continue;
    }
    for (const t of tables) sites.push(readSite(t.table, t.line, name, errors));
  }

  applyEnv(values, env, errors);
  validateValues(values, doc.root, name, errors);
  if (errors.length) throw new ConfigError(errors);

  const stat: Record<string, unknown> = {};
  const dyn: Record<string, unknown> = { sites };
  for (const [key, spec] of Object.entries(KEYS)) ((spec as KeySpec).group === "static" ? stat : dyn)[key] = values[key as Key];
  return { file, static: stat as unknown as StaticConfig, dynamic: dyn as unknown as DynamicConfig };
}

function cloneDefault(spec: KeySpec): unknown {
  return Array.isArray(spec.default) ? [...spec.default] : spec.default;
}

function checkType(key: string, spec: KeySpec, entry: Entry): string | undefined {
  const v = entry.value;
  const ok =
    (spec.type === "string" && typeof v === "string") ||
    (spec.type === "integer" && typeof v === "number") ||
    (spec.type === "boolean" && typeof v === "boolean") ||
    (spec.type === "strings" && Array.isArray(v));
  if (!ok) return `${key} must be ${spec.type === "strings" ? "an array of strings" : `a${spec.type === "integer" ? "n" : ""} ${spec.type}`}`;
  if (typeof v === "number" && ((spec.min !== undefined && v < spec.min) || (spec.max !== undefined && v > spec.max)))
    return `${key} must be between ${spec.min} and ${spec.max}`;
  if (typeof v === "string" && v.includes("\0")) return `${key} must not contain NUL`;
  return undefined;
}

function readSite(table: Table, line: number, name: string, errors: string[]): Site {
  const site = { hostname: "", path: "/", backends: [] as string[], tls_cert: "", tls_key: "", line };
  for (const [key, entry] of table) {
    const spec = (SITE_KEYS as Record<string, KeySpec>)[key];
    if (!spec) { errors.push(`${name}:${entry.line}: unknown key ${key} in [[site]]`); continue; }
    const err = checkType(key, spec, entry);
    if (err) errors.push(`${name}:${entry.line}: ${err}`);
    else (site as Record<string, unknown>)[key] = entry.value;
  }
  const at = `${name}:${line}: [[site]]`;
  if (!isHostPattern(site.hostname)) errors.push(`${at} hostname must be a host name or *.domain, got ${JSON.stringify(site.hostname)}`);
  if (!site.path.startsWith("/")) errors.push(`${at} path must start with /`);
  if (site.backends.length === 0) errors.push(`${at} needs at least one backend`);
  for (const b of site.backends) if (!parseHostPort(b)) errors.push(`${at} backend ${JSON.stringify(b)} must be host:port`);
  if ((site.tls_cert === "") !== (site.tls_key === "")) errors.push(`${at} tls_cert and tls_key go together`);
  return site;
}

const ENV_KEYS: [string, Key][] = [
  ["STEVEDORE_STATE_DIR", "state_dir"],
  ["STEVEDORE_QUERY_SOCKET", "query_socket_path"],
];

function applyEnv(values: Values, env: NodeJS.ProcessEnv, errors: string[]): void {
  for (const [variable, key] of ENV_KEYS) {
    const v = env[variable];
    if (v) (values as Record<string, unknown>)[key] = v;
  }
  const dockerHost = env.DOCKER_HOST;
  if (dockerHost) {
    if (dockerHost.startsWith("unix://")) values.docker_socket = dockerHost.slice("unix://".length);
    else errors.push(`DOCKER_HOST=${dockerHost}: only unix:// Docker hosts are supported`);
  }
}

function validateValues(values: Values, root: Table, name: string, errors: string[]): void {
  const at = (key: string) => `${name}:${root.get(key)?.line ?? 0}: ${key}`;
  for (const key of ["core_listen", "manager_listen", "proxy_http_listen", "proxy_https_listen"] as const)
    if (values[key] !== "" && !parseHostPort(values[key])) errors.push(`${at(key)} must be host:port or ""`);
  if (!values.state_dir.startsWith("/")) errors.push(`${at("state_dir")} must be an absolute path`);
  if (!/^0?[0-7]{3}$/.test(values.query_socket_mode)) errors.push(`${at("query_socket_mode")} must be an octal mode like "0666"`);
  if (!["debug", "info", "warn", "error"].includes(values.log_level)) errors.push(`${at("log_level")} must be debug, info, warn or error`);
  if (values.ingress_domain !== "" && !isHostPattern(values.ingress_domain)) errors.push(`${at("ingress_domain")} must be a domain name`);
  if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(values.core_deployment)) errors.push(`${at("core_deployment")} must be a deployment name`);
  for (const [cert, key] of [["core_tls_cert", "core_tls_key"], ["manager_tls_cert", "manager_tls_key"], ["proxy_default_cert", "proxy_default_key"]] as const)
    if ((values[cert] === "") !== (values[key] === "")) errors.push(`${at(cert)} and ${key} go together`);
}

const LABEL = "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?";
const HOST = new RegExp(`^(\\*\\.)?${LABEL}(\\.${LABEL})*$`, "i");
export function isHostPattern(host: string): boolean {
  return host.length <= 253 && HOST.test(host);
}

/** "host:port" or "[v6]:port" → parts; undefined when malformed. */
export function parseHostPort(value: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]+)):([0-9]{1,5})$/.exec(value);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 0 || port > 65535) return undefined;
  return { host: m[1] ?? m[2]!, port };
}
