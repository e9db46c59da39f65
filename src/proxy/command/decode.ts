// Decode one command frame into an Order, accepting every shape stevedore(8) lists (PROXY, Command socket):
//  - spec shape: {id, version, data: {type: ORDER, data: {...}}} (no outer type);
//  - wire shape: {id, version, type: "PROXY", data: {type: ORDER, data: {...}}};
//  - {id, version, type: ORDER, data: {...}} (the spec's generic form; master orders use it);
//  - fields flat next to the inner type (REMOVE_HTTP_FRONT in the spec) instead of in data.data;
//  - backends as {app_id, ip_address, port} or {app_id, backend_id, address: "ip:port"};
//  - ADD_CERTIFICATE flat or {certificate: {...}, names}; REMOVE_CERTIFICATE "fp" or {fingerprint}.
// Every failure is a message naming the problem, with the request id when one could be read.
import { isIP } from "node:net";
import { isHostPattern, parseHostPort } from "../../base/index.js";
import type { LoadBalancing } from "../types.js";
import { MASTER_ORDER_TYPES, STATE_ORDER_TYPES, type Order } from "./messages.js";

export type Decoded = { ok: true; id: string; order: Order } | { ok: false; id: string; message: string };

export const MAX_ID_CHARS = 256;
const MAX_APP_ID_CHARS = 256;
const MAX_PATH_BEGIN_CHARS = 2048;
const MAX_NAMES = 256;
const MAX_CHAIN = 16;

class DecodeError extends Error {}
const fail = (message: string): never => {
  throw new DecodeError(message);
};

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** A short, printable rendering of a value for error messages. */
function show(v: unknown): string {
  const s = typeof v === "string" ? v : JSON.stringify(v) ?? String(v);
  return JSON.stringify(s.length > 64 ? s.slice(0, 64) + "..." : s);
}

export function decodeRequest(text: string): Decoded {
  let req: unknown;
  try {
    req = JSON.parse(text);
  } catch (err) {
    return { ok: false, id: guessId(text), message: `invalid JSON: ${(err as Error).message}` };
  }
  if (!isObj(req)) return { ok: false, id: "", message: "a request must be a JSON object" };
  const rawId = req.id;
  if (rawId === undefined) return { ok: false, id: "", message: "missing id" };
  if (typeof rawId !== "string") return { ok: false, id: "", message: "id must be a string" };
  if (rawId.length > MAX_ID_CHARS) return { ok: false, id: "", message: `id longer than ${MAX_ID_CHARS} characters` };
  const id = rawId;
  try {
    checkVersion(req.version);
    checkWorker(req.worker_id);
    return { ok: true, id, order: decodeOrder(req) };
  } catch (err) {
    if (err instanceof DecodeError) return { ok: false, id, message: err.message };
    throw err;
  }
}

/** The id of a request that is not valid JSON, when it can still be read. */
function guessId(text: string): string {
  const m = /"id"\s*:\s*"([^"\\\x00-\x1f]{0,256})"/.exec(text.slice(0, 4096));
  return m?.[1] ?? "";
}

function checkVersion(v: unknown): void {
  if (v === undefined) return;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) fail("version must be a non-negative integer");
  if (v !== 0) fail(`unsupported protocol version ${String(v)}`);
}

function checkWorker(w: unknown): void {
  if (w === undefined || w === null) return;
  if (typeof w !== "number" && typeof w !== "string") fail("worker_id must be a number or a string");
  // this daemon is one proxy worker, id 0
  if (String(w).trim() !== "0") fail(`no such worker: ${show(w)} (this proxy has one worker, id 0)`);
}

/** Find the order type and its payload in any accepted shape. */
function locate(req: Obj): { type: string; payload: unknown } {
  const outer = req.type;
  if (outer !== undefined && typeof outer !== "string") fail("type must be a string");
  if (outer === "PROXY") {
    if (!isObj(req.data) || typeof req.data.type !== "string") fail("PROXY: data must be an object with a string type");
    const inner = req.data as Obj;
    return { type: inner.type as string, payload: payloadOf(inner) };
  }
  if (typeof outer === "string") return { type: outer, payload: req.data };
  if (req.data === undefined) fail("missing type (expected a top-level type or data.type)");
  if (!isObj(req.data)) fail("data must be an object with a type");
  const inner = req.data as Obj;
  if (inner.type === undefined) fail("missing data.type");
  if (typeof inner.type !== "string") fail("data.type must be a string");
  return { type: inner.type as string, payload: payloadOf(inner) };
}

/** {type, data} → data; {type, ...flat fields} → the flat fields. */
function payloadOf(order: Obj): unknown {
  if ("data" in order) return order.data;
  const { type: _type, ...rest } = order;
  return rest;
}

function decodeOrder(req: Obj): Order {
  const { type, payload } = locate(req);
  if (!STATE_ORDER_TYPES.has(type) && !MASTER_ORDER_TYPES.has(type)) fail(`unknown message type ${show(type)}`);
  const f = () => new Fields(type, payload);
  switch (type) {
    case "ADD_APPLICATION": {
      const p = f();
      return {
        type,
        app: {
          appId: p.appId(),
          stickySession: p.bool("sticky_session") ?? false,
          httpsRedirect: p.bool("https_redirect") ?? false,
          loadBalancing: p.policy(),
        },
      };
    }
    case "REMOVE_APPLICATION":
      return { type, appId: typeof payload === "string" ? checkAppId(type, payload) : f().appId() };
    case "ADD_HTTP_FRONT":
    case "REMOVE_HTTP_FRONT": {
      const p = f();
      return { type, front: { appId: p.appId(), hostname: p.hostname("hostname"), pathBegin: p.pathBegin() } };
    }
    case "ADD_HTTPS_FRONT": {
      const p = f();
      return { type, front: { appId: p.appId(), hostname: p.hostname("hostname"), pathBegin: p.pathBegin(), fingerprint: p.fingerprint(true)! } };
    }
    case "REMOVE_HTTPS_FRONT": {
      const p = f();
      return { type, front: { appId: p.appId(), hostname: p.hostname("hostname"), pathBegin: p.pathBegin(), fingerprint: p.fingerprint(false) } };
    }
    case "ADD_BACKEND":
    case "REMOVE_BACKEND":
      return { type, backend: f().backend() };
    case "ADD_CERTIFICATE":
      return { type, cert: f().certificate() };
    case "REMOVE_CERTIFICATE":
      return { type, fingerprint: typeof payload === "string" ? checkFingerprint(type, "data", payload) : f().fingerprint(true)! };
    case "SAVE_STATE":
    case "LOAD_STATE":
      return { type, path: f().filePath() };
    default:
      return { type } as Order;
  }
}

function checkAppId(type: string, v: string): string {
  if (v === "") fail(`${type}: app_id must not be empty`);
  if (v.length > MAX_APP_ID_CHARS) fail(`${type}: app_id longer than ${MAX_APP_ID_CHARS} characters`);
  if (/[\x00-\x20\x7f]/.test(v)) fail(`${type}: app_id must not contain spaces or control characters`);
  return v;
}

function checkFingerprint(type: string, name: string, v: string): string {
  if (!/^[0-9a-fA-F]{64}$/.test(v)) fail(`${type}: ${name} must be a SHA-256 fingerprint (64 hex digits), got ${show(v)}`);
  return v.toLowerCase();
}

const POLICIES: Record<string, LoadBalancing> = { roundrobin: "roundrobin", random: "random", leastconnections: "leastconnections", leastconnection: "leastconnections" };

/** Typed access to one payload object, with errors naming the order and the field. */
class Fields {
  private readonly o: Obj;
  constructor(private readonly type: string, payload: unknown) {
    if (payload === undefined) fail(`${type}: missing data`);
    if (!isObj(payload)) fail(`${type}: data must be an object`);
    this.o = payload as Obj;
  }

  private err(msg: string): never {
    return fail(`${this.type}: ${msg}`);
  }

  str(name: string, required: true): string;
  str(name: string, required: false): string | undefined;
  str(name: string, required: boolean): string | undefined {
    const v = this.o[name];
    if (v === undefined || v === null) return required ? this.err(`missing field ${name}`) : undefined;
    if (typeof v !== "string") this.err(`${name} must be a string`);
    return v as string;
  }

  bool(name: string): boolean | undefined {
    const v = this.o[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "boolean") this.err(`${name} must be a boolean`);
    return v as boolean;
  }

  appId(): string {
    return checkAppId(this.type, this.str("app_id", true));
  }

  hostname(name: string): string {
    const h = this.str(name, true).toLowerCase();
    if (!isHostPattern(h)) this.err(`${name} ${show(h)} is not a host name or a one-label wildcard (*.example.com)`);
    return h;
  }

  pathBegin(): string {
    const p = this.str("path_begin", false) ?? "";
    if (p.length > MAX_PATH_BEGIN_CHARS) this.err(`path_begin longer than ${MAX_PATH_BEGIN_CHARS} characters`);
    if (p !== "" && !p.startsWith("/")) this.err(`path_begin must be empty or start with "/", got ${show(p)}`);
    if (/[\x00-\x20\x7f]/.test(p)) this.err("path_begin must not contain spaces or control characters");
    return p;
  }

  fingerprint(required: boolean): string | undefined {
    const v = required ? this.str("fingerprint", true) : this.str("fingerprint", false);
    return v === undefined ? undefined : checkFingerprint(this.type, "fingerprint", v);
  }

  policy(): LoadBalancing {
    const v = this.str("load_balancing_policy", false);
    if (v === undefined) return "roundrobin";
    const p = POLICIES[v.toLowerCase().replace(/[_-]/g, "")];
    if (!p) this.err(`load_balancing_policy must be roundrobin, random or leastconnections, got ${show(v)}`);
    return p!;
  }

  backend() {
    const appId = this.appId();
    const backendId = this.str("backend_id", false);
    if (backendId !== undefined && (backendId === "" || backendId.length > MAX_APP_ID_CHARS || /[\x00-\x1f\x7f]/.test(backendId)))
      this.err("backend_id must be 1 to 256 printable characters");
    let ip: string;
    let port: unknown;
    const address = this.str("address", false);
    if (address !== undefined) {
      const hp = parseHostPort(address);
      if (!hp || isIP(hp.host) === 0) this.err(`address must be "ip:port" (IPv6 as "[ip]:port"), got ${show(address)}`);
      ip = hp!.host;
      port = hp!.port;
    } else {
      if (this.o.ip_address === undefined) this.err("missing field ip_address (or address)");
      ip = this.str("ip_address", true);
      if (isIP(ip) === 0) this.err(`ip_address must be an IPv4 or IPv6 address, got ${show(ip)}`);
      port = this.o.port;
      if (port === undefined) this.err("missing field port");
    }
    if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) this.err("port must be an integer from 1 to 65535");
    return { appId, backendId, ip, port: port as number };
  }

  certificate() {
    const nested = isObj(this.o.certificate);
    const inner = nested ? new Fields(this.type, this.o.certificate) : this;
    const certificate = inner.str("certificate", true);
    const key = inner.str("key", true);
    const chain = inner.strList("certificate_chain", MAX_CHAIN) ?? [];
    const names = (this.strList("names", MAX_NAMES) ?? []).map((n) => {
      const h = n.toLowerCase();
      if (!isHostPattern(h)) this.err(`names: ${show(n)} is not a host name or a one-label wildcard`);
      return h;
    });
    return { certificate, key, chain, names };
  }

  strList(name: string, max: number): string[] | undefined {
    const v = this.o[name];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) this.err(`${name} must be an array of strings`);
    if ((v as string[]).length > max) this.err(`${name} has more than ${max} entries`);
    return v as string[];
  }

  filePath(): string {
    const p = this.str("path", true);
    if (p === "" || p.length > 4096 || p.includes("\0")) this.err("path must be a non-empty file path");
    return p;
  }
}
