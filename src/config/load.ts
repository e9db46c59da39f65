// Loading the config file: locate it, read it bounded, parse, apply the schema and environment, validate.
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import { open } from "node:fs/promises";
import { KEYS, SITE_KEYS, type Config, type KeySpec, type Key, type Values, type Site, type StaticConfig, type DynamicConfig } from "./schema.js";
import { isDeploymentName, isHostPattern, parseHostPort } from "../base/index.js";
import { byLine } from "./check.js";
import { parseToml, MAX_ERRORS, type Entry, type Table } from "./toml.js";

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
  let text: string | undefined;
  try {
    text = decodeConfig(path, readBounded(path));
  } catch (err) {
    text = readFailure(path, explicit, err);
  }
  return parseConfig(text ?? "", text === undefined ? "" : path, env);
}

/** loadConfig without blocking the event loop (the reload path): the file is read into memory
 *  once, then the bytes are parsed, so a file being rewritten is never parsed half-read twice. */
export async function loadConfigAsync(path: string, explicit: boolean, env = process.env): Promise<Config> {
  let text: string | undefined;
  try {
    text = decodeConfig(path, await readBoundedAsync(path));
  } catch (err) {
    text = readFailure(path, explicit, err);
  }
  return parseConfig(text ?? "", text === undefined ? "" : path, env);
}

/** undefined = a missing default file (all defaults); anything else is thrown as a ConfigError. */
function readFailure(path: string, explicit: boolean, err: unknown): undefined {
  if (err instanceof ConfigError) throw err;
  const e = err as NodeJS.ErrnoException;
  if (e.code === "ENOENT" && !explicit) return undefined;
  const reason = e.code === "ENOENT" ? "no such file" : e.code === "EACCES" ? "permission denied" : e.code === "EISDIR" ? "is a directory" : e.message;
  throw new ConfigError([`${path}: cannot read: ${reason}`]);
}

/** The text of a config file, read the bounded way (a regular file of at most MAX_CONFIG_BYTES). */
export function readConfigText(path: string): string {
  return decodeConfig(path, readBounded(path));
}

function decodeConfig(path: string, bytes: Buffer): string {
  if (bytes.length > MAX_CONFIG_BYTES) throw new ConfigError([`${path}: file larger than ${MAX_CONFIG_BYTES} bytes`]);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new ConfigError([`${path}: not valid UTF-8`]);
  }
}

// O_NONBLOCK: opening a FIFO named as the config must not hang the daemon.
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

/** At most MAX_CONFIG_BYTES + 1 bytes of a regular file (never a FIFO, device or directory). */
function readBounded(path: string): Buffer {
  const fd = openSync(path, OPEN_FLAGS);
  try {
    if (!fstatSync(fd).isFile()) throw new ConfigError([`${path}: not a regular file`]);
    const buf = Buffer.allocUnsafe(MAX_CONFIG_BYTES + 1);
    let len = 0;
    for (let n; len < buf.length && (n = readSync(fd, buf, len, buf.length - len, null)) > 0; ) len += n;
    return buf.subarray(0, len);
  } finally {
    closeSync(fd);
  }
}

async function readBoundedAsync(path: string): Promise<Buffer> {
  const fh = await open(path, OPEN_FLAGS);
  try {
    if (!(await fh.stat()).isFile()) throw new ConfigError([`${path}: not a regular file`]);
    const buf = Buffer.allocUnsafe(MAX_CONFIG_BYTES + 1);
    let len = 0;
    for (let n; len < buf.length && (n = (await fh.read(buf, len, buf.length - len, null)).bytesRead) > 0; ) len += n;
    return buf.subarray(0, len);
  } finally {
    await fh.close();
  }
}

/** Validate config text. `file` names it in errors. */
export function parseConfig(text: string, file: string, env = process.env): Config {
  const name = file || "<defaults>";
  const { doc, errors: parseErrors } = parseToml(text);
  let errors = parseErrors.map((e) => `${name}:${e.line}: ${e.message}`);

  const values = Object.fromEntries(Object.entries(KEYS).map(([k, spec]) => [k, cloneDefault(spec)])) as Values;
  for (const [key, entry] of doc.root) {
    const spec = (KEYS as Record<string, KeySpec>)[key];
    if (!spec) { errors.push(`${name}:${entry.line}: unknown key ${key}${hint(key)}`); continue; }
    const err = checkType(key, spec, entry);
    if (err) errors.push(`${name}:${entry.line}: ${err}`);
    else (values as Record<string, unknown>)[key] = entry.value;
  }
  for (const [section, { line }] of doc.sections) errors.push(`${name}:${line}: unknown table [${section}]${section === "site" ? " (static routes are [[site]])" : ""}`);
  const sites: Site[] = [];
  for (const [arrayName, tables] of doc.arrays) {
    if (arrayName !== "site") {
      for (const t of tables) errors.push(`${name}:${t.line}: unknown table [[${arrayName}]]`);
      continue;
    }
    for (const t of tables) sites.push(readSite(t.table, t.line, name, errors));
  }
  checkDuplicateSites(sites, name, errors);

  const sources = applyEnv(values, env, errors);
  validateValues(values, (key) => sources.get(key) ?? `${name}:${doc.root.get(key)?.line ?? 0}: ${key}`, errors);
  if (errors.length) errors = byLine(errors, name);
  if (errors.length) throw new ConfigError(errors.length > MAX_ERRORS + 1 ? [...errors.slice(0, MAX_ERRORS), `${name}: ${errors.length - MAX_ERRORS} more errors not listed`] : errors);

  const stat: Record<string, unknown> = {};
  const dyn: Record<string, unknown> = { sites: Object.freeze(sites.map((s) => Object.freeze({ ...s, backends: Object.freeze([...s.backends]) }))) };
  for (const [key, spec] of Object.entries(KEYS)) ((spec as KeySpec).group === "static" ? stat : dyn)[key] = freezeValue(values[key as Key]);
  return Object.freeze({ file, static: Object.freeze(stat) as unknown as StaticConfig, dynamic: Object.freeze(dyn) as unknown as DynamicConfig });
}

function freezeValue(v: unknown): unknown {
  return Array.isArray(v) ? Object.freeze([...v]) : v;
}

/** "did you mean" for a key that is a known key in another place (a [[site]] key at the top level). */
function hint(key: string): string {
  if (key in SITE_KEYS) return ` (${key} belongs in a [[site]] table)`;
  return "";
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
  const site = { hostname: "", path: "/", backends: [] as string[], tls_cert: "", tls_key: "", tls: "", https_redirect: true, line };
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
  for (const b of site.backends) if (!parseHostPort(b)?.port) errors.push(`${at} backend ${JSON.stringify(b)} must be host:port${portRange(b, false)}`);
  if (site.backends.length > MAX_BACKENDS) errors.push(`${at} has more than ${MAX_BACKENDS} backends`);
  if ((site.tls_cert === "") !== (site.tls_key === "")) errors.push(`${at} tls_cert and tls_key go together`);
  if (site.tls !== "" && site.tls !== "auto") errors.push(`${at} tls must be "auto" or ""`);
  if (site.tls === "auto" && (site.tls_cert !== "" || site.hostname.startsWith("*."))) errors.push(`${at} tls = "auto" needs an exact hostname and no tls_cert`);
  return site;
}

const MAX_BACKENDS = 1000;

/** Say the range when the port is a number outside it (the common mistake: 8o80 reads as a format error). */
function portRange(value: string, listener: boolean): string {
  const port = /:(\d+)$/.exec(value)?.[1];
  if (port === undefined) return "";
  const n = Number(port);
  if (n >= 1 && n <= 65535) return "";
  return ` (port ${port} is out of range: use 1–65535${listener ? ", or 0 for any free port" : ""})`;
}

function checkDuplicateSites(sites: Site[], name: string, errors: string[]): void {
  const seen = new Map<string, number>();
  for (const site of sites) {
    if (!site.hostname) continue;
    const id = `${site.hostname.toLowerCase()} ${site.path}`;
    const first = seen.get(id);
    if (first !== undefined) errors.push(`${name}:${site.line}: [[site]] ${site.hostname} ${site.path} repeats the route of line ${first}`);
    else seen.set(id, site.line);
  }
}

const ENV_KEYS: [string, Key][] = [
  ["STEVEDORE_STATE_DIR", "state_dir"],
  ["STEVEDORE_QUERY_SOCKET", "query_socket_path"],
];

/** Environment overrides; returns where each overridden key came from (for error messages). */
function applyEnv(values: Values, env: NodeJS.ProcessEnv, errors: string[]): Map<string, string> {
  const sources = new Map<string, string>();
  for (const [variable, key] of ENV_KEYS) {
    const v = env[variable];
    if (!v) continue;
    if (v.includes("\0")) { errors.push(`${variable}: must not contain NUL`); continue; }
    (values as Record<string, unknown>)[key] = v;
    sources.set(key, `${variable}=${JSON.stringify(v)}: ${key}`);
  }
  const dockerHost = env.DOCKER_HOST;
  if (dockerHost) {
    if (dockerHost.startsWith("unix://")) {
      values.docker_socket = dockerHost.slice("unix://".length);
      sources.set("docker_socket", `DOCKER_HOST=${JSON.stringify(dockerHost)}: docker_socket`);
    } else errors.push(`DOCKER_HOST=${dockerHost}: only unix:// Docker hosts are supported`);
  }
  return sources;
}

/** sun_path holds 108 bytes including the terminating NUL. */
const MAX_SOCKET_PATH = 107;

function validateValues(values: Values, at: (key: string) => string, errors: string[]): void {
  for (const key of ["core_listen", "manager_listen", "proxy_http_listen", "proxy_https_listen", "metrics_listen"] as const)
    if (values[key] !== "" && !parseHostPort(values[key])) errors.push(`${at(key)} must be host:port or ""${portRange(values[key], true)}`); // port 0: any free port
  if (!values.state_dir.startsWith("/")) errors.push(`${at("state_dir")} must be an absolute path`);
  for (const key of ["query_socket_path", "admin_socket_path", "command_socket_path", "docker_socket"] as const) {
    const v = values[key];
    if (v === "" && key !== "docker_socket") continue;
    if (!v.startsWith("/")) errors.push(`${at(key)} must be an absolute path${key === "docker_socket" ? "" : ' or ""'}`);
    else if (Buffer.byteLength(v) > MAX_SOCKET_PATH) errors.push(`${at(key)} is longer than ${MAX_SOCKET_PATH} bytes (the Unix socket limit)`);
  }
  if (!/^0?[0-7]{3}$/.test(values.query_socket_mode)) errors.push(`${at("query_socket_mode")} must be an octal mode like "0666"`);
  if (!["debug", "info", "warn", "error"].includes(values.log_level)) errors.push(`${at("log_level")} must be debug, info, warn or error`);
  // access log, log format (issue 14)
  if (!["logfmt", "json"].includes(values.log_format)) errors.push(`${at("log_format")} must be logfmt or json`);
  if (!["stderr", "off"].includes(values.access_log) && !values.access_log.startsWith("/")) errors.push(`${at("access_log")} must be "stderr", "off" or an absolute file path`);
  if (values.ingress_domain !== "" && !isHostPattern(values.ingress_domain)) errors.push(`${at("ingress_domain")} must be a domain name`);
  if (!isDeploymentName(values.core_deployment)) errors.push(`${at("core_deployment")} must be a deployment name`);
  for (const [cert, key] of [["core_tls_cert", "core_tls_key"], ["manager_tls_cert", "manager_tls_key"], ["proxy_default_cert", "proxy_default_key"]] as const)
    if ((values[cert] === "") !== (values[key] === ""))
      errors.push(values[cert] ? `${at(cert)} needs ${key} too` : `${at(key)} needs ${cert} too`);
  validateAcme(values, at, errors);
}

/** RFC 8555 §6.1: ACME goes over HTTPS; plain http only to a CA on this host (a test CA behind a local proxy). */
function isDirectoryUrl(value: string): boolean {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return false;
  }
  if (/\s/.test(value) || !u.hostname || u.username || u.password) return false;
  return u.protocol === "https:" || (u.protocol === "http:" && ["127.0.0.1", "[::1]", "localhost"].includes(u.hostname));
}

function validateAcme(values: Values, at: (key: string) => string, errors: string[]): void {
  if (!isDirectoryUrl(values.acme_directory_url)) errors.push(`${at("acme_directory_url")} must be an https:// URL (http:// only on 127.0.0.1, [::1] or localhost)`);
  if (values.acme_email !== "" && !/^[^\s@<>]+@[^\s@<>]+$/.test(values.acme_email)) errors.push(`${at("acme_email")} must be an e-mail address or ""`);
  if (values.acme_ca_file !== "" && !values.acme_ca_file.startsWith("/")) errors.push(`${at("acme_ca_file")} must be an absolute path or ""`);
  for (const h of values.acme_hosts) if (h !== "ingress" && (!isHostPattern(h) || h.startsWith("*."))) errors.push(`${at("acme_hosts")}: ${JSON.stringify(h)} is neither "ingress" nor a host name`);
  if (values.acme_challenges.length === 0) errors.push(`${at("acme_challenges")} needs http-01, tls-alpn-01 or both`);
  for (const c of values.acme_challenges) if (c !== "http-01" && c !== "tls-alpn-01") errors.push(`${at("acme_challenges")}: ${JSON.stringify(c)} is not http-01 or tls-alpn-01`);
  if (values.acme && values.acme_challenges.includes("http-01") && values.proxy_http_listen === "") errors.push(`${at("acme")}: http-01 needs proxy_http_listen`);
  if (values.acme && values.proxy_https_listen === "") errors.push(`${at("acme")} needs proxy_https_listen`);
}
