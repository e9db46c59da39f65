// What `stevedore check-config` adds to validation: the files the daemon will load (certificates,
// keys, the ACME CA roots and account key), checked as the daemon would, with the config line;
// errors sorted by line; the effective config.
import { closeSync, constants, fstatSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { parseToml } from "./toml.js";
import { KEYS, type Config } from "./schema.js";

export interface FileCheck {
  errors: string[];
  warnings: string[];
}

/** Root keys naming a certificate and its key. */
const PAIRS = [
  ["core_tls_cert", "core_tls_key"],
  ["manager_tls_cert", "manager_tls_key"],
  ["proxy_default_cert", "proxy_default_key"],
] as const;

/** Check every certificate/key pair the config text names; `name` prefixes each message. */
export function checkFiles(text: string, name: string, now = Date.now()): FileCheck {
  const out: FileCheck = { errors: [], warnings: [] };
  const { doc } = parseToml(text);
  for (const [cert, key] of PAIRS) {
    const c = doc.root.get(cert), k = doc.root.get(key);
    checkPair(typeof c?.value === "string" ? { path: c.value, line: c.line, key: cert } : undefined,
      typeof k?.value === "string" ? { path: k.value, line: k.line, key } : undefined, name, now, out);
  }
  for (const site of doc.arrays.get("site") ?? []) {
    const c = site.table.get("tls_cert"), k = site.table.get("tls_key");
    checkPair(typeof c?.value === "string" ? { path: c.value, line: c.line, key: "tls_cert" } : undefined,
      typeof k?.value === "string" ? { path: k.value, line: k.line, key: "tls_key" } : undefined, name, now, out);
  }
  checkCaFile(doc.root.get("acme_ca_file"), name, now, out);
  return out;
}

/** acme_ca_file: the ACME client trusts these roots for the CA's HTTPS; a file without a single
 *  certificate would only show at the first order, as a TLS failure far from the cause. */
function checkCaFile(entry: { value: unknown; line: number } | undefined, name: string, now: number, out: FileCheck): void {
  if (typeof entry?.value !== "string" || !entry.value.startsWith("/")) return; // "" = none; relative: the loader says so
  const ref = { path: entry.value, line: entry.line, key: "acme_ca_file" };
  const text = readFile(ref, name, out);
  if (text === undefined) return;
  const found = caProblems(text, now);
  const at = `${name}:${ref.line}: acme_ca_file ${ref.path}`;
  out.errors.push(...found.errors.map((e) => `${at}${e}`));
  out.warnings.push(...found.warnings.map((w) => `${at}${w}`));
}

/** What is wrong with a bundle of PEM roots (messages go after "acme_ca_file PATH"). */
export function caProblems(text: Buffer, now: number): FileCheck {
  const out: FileCheck = { errors: [], warnings: [] };
  const blocks = text.toString("latin1").match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) out.errors.push(" holds no PEM certificate");
  for (const [i, block] of blocks.entries()) {
    let x509: X509Certificate;
    try {
      x509 = new X509Certificate(block);
    } catch {
      out.errors.push(`: certificate ${i + 1} is not a valid PEM certificate`);
      continue;
    }
    const until = Date.parse(x509.validTo);
    if (until < now) out.warnings.push(`: certificate ${i + 1} (${x509.subject.replace(/\n/g, ", ")}) expired on ${new Date(until).toISOString()}`);
  }
  return out;
}

/** The ACME account key the daemon reuses (<state_dir>/acme/account.key): a corrupt one fails every
 *  order at run time, so say so now. Missing is fine (made at the first order); only when acme is on. */
export function checkAcmeState(config: Config, out: FileCheck): void {
  if (!config.dynamic.acme) return;
  const ref = { path: join(config.static.state_dir, "acme", "account.key"), line: 0, key: "the ACME account key" };
  const probe: FileCheck = { errors: [], warnings: [] };
  const text = readFile(ref, "", probe);
  if (text === undefined) {
    // missing: made at the first order; unreadable here (not root): the daemon may still read it
    if (!probe.errors.some((e) => e.endsWith(" does not exist"))) out.warnings.push(...probe.errors);
    return;
  }
  let ok = false;
  try {
    const k = createPrivateKey(text);
    ok = k.asymmetricKeyType === "ec" && k.asymmetricKeyDetails?.namedCurve === "prime256v1";
  } catch {
    ok = false;
  }
  if (!ok) out.errors.push(`${ref.key} ${ref.path} is not a PEM P-256 private key: move it away and a new account is made at the first order`);
}

interface Ref { path: string; line: number; key: string }

function checkPair(cert: Ref | undefined, key: Ref | undefined, name: string, now: number, out: FileCheck): void {
  const certText = cert?.path ? readFile(cert, name, out) : undefined;
  const keyText = key?.path ? readFile(key, name, out) : undefined;
  let x509: X509Certificate | undefined;
  if (cert && certText !== undefined) {
    try {
      x509 = new X509Certificate(certText);
    } catch {
      out.errors.push(`${name}:${cert.line}: ${cert.key} ${cert.path} is not a PEM certificate`);
    }
  }
  if (x509 && cert && Date.parse(x509.validTo) < now)
    out.warnings.push(`${name}:${cert.line}: ${cert.key} ${cert.path} expired on ${new Date(Date.parse(x509.validTo)).toISOString()}: renew it`);
  if (!key || keyText === undefined) return;
  let priv;
  try {
    priv = createPrivateKey(keyText);
  } catch {
    out.errors.push(`${name}:${key.line}: ${key.key} ${key.path} is not a PEM private key`);
    return;
  }
  if (x509 && !x509.checkPrivateKey(priv))
    out.errors.push(`${name}:${key.line}: ${key.key} ${key.path} does not match the certificate ${cert!.path}`);
}

/** Certificate files are small; a FIFO or device named by mistake must not hang check-config. */
const MAX_PEM_BYTES = 1024 * 1024;

function readFile(ref: Ref, name: string, out: FileCheck): Buffer | undefined {
  const at = name ? `${name}:${ref.line}: ` : ""; // no name: a file the config does not name itself
  let fd: number | undefined;
  try {
    fd = openSync(ref.path, constants.O_RDONLY | constants.O_NONBLOCK);
    const st = fstatSync(fd);
    if (!st.isFile()) {
      out.errors.push(`${at}${ref.key} ${ref.path} is not a regular file`);
      return undefined;
    }
    if (st.size > MAX_PEM_BYTES) {
      out.errors.push(`${at}${ref.key} ${ref.path} is larger than ${MAX_PEM_BYTES} bytes: not a PEM file`);
      return undefined;
    }
    return readFileSync(fd);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "does not exist" : code === "EACCES" ? "is not readable (permission denied: run as root or fix its mode)" : code === "EISDIR" ? "is a directory" : `cannot be read (${code ?? (err as Error).message})`;
    out.errors.push(`${at}${ref.key} ${ref.path} ${why}`);
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Messages "file:LINE: ..." sorted by line; the ones without a line keep their order, last. */
export function byLine(messages: string[], name: string): string[] {
  const lineOf = (m: string) => (m.startsWith(name + ":") ? Number(/^(\d+): /.exec(m.slice(name.length + 1))?.[1] ?? Infinity) : Infinity);
  return messages.map((m, i) => ({ m, i, l: lineOf(m) })).sort((a, b) => a.l - b.l || a.i - b.i).map((x) => x.m);
}

/** The effective config as TOML, every key with its value (defaults filled in), like `nginx -T`. */
export function printConfig(config: Config): string {
  const lines = [`# effective config${config.file ? ` of ${config.file}` : " (all defaults)"}`, ""];
  for (const key of Object.keys(KEYS)) {
    const v = (config.static as Record<string, unknown>)[key] ?? (config.dynamic as Record<string, unknown>)[key];
    lines.push(`${key} = ${toml(v)}`);
  }
  for (const site of config.dynamic.sites) {
    lines.push("", "[[site]]", `hostname = ${toml(site.hostname)}`, `path = ${toml(site.path)}`, `backends = ${toml(site.backends)}`);
    if (site.tls_cert) lines.push(`tls_cert = ${toml(site.tls_cert)}`, `tls_key = ${toml(site.tls_key)}`);
  }
  return lines.join("\n") + "\n";
}

function toml(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(toml).join(", ")}]`;
  if (typeof v === "string") return JSON.stringify(v); // a JSON string is a valid TOML basic string for our values
  return String(v);
}
