// What the manager's user-side commands (jobs, workers, manager token) share: the manager's URL from
// the config, a user JWT minted with the local private key, JSON calls and the /api/events stream.
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { userInfo } from "node:os";
import { join } from "node:path";
import { formatHostPort, parseHostPort } from "../base/index.js";
import type { Config } from "../config/index.js";
import { signEs256 } from "../tokens/index.js";
import { VERSION } from "../version.js";
import { CommandError, UsageError, unreachable } from "./command.js";

const REQUEST_TIMEOUT_MS = 30_000;
const MAX_ANSWER_BYTES = 64 * 1024 * 1024;
/** events kept while the state is read at (re)connect */
const MAX_HELD_EVENTS = 10_000;
/** tokens the job commands mint for themselves live this long */
export const CLI_TOKEN_TTL_SECS = 300;
export const MAX_TOKEN_TTL_SECS = 366 * 86400;

export function privateKeyPath(stateDir: string): string {
  return join(stateDir, "jwt", "es256-private.pem");
}

/** An ES256 JWT {sub, iat, exp} signed with <state_dir>/jwt/es256-private.pem. */
export async function userToken(stateDir: string, opts: { subject: string; ttlSecs: number }): Promise<string> {
  const file = privateKeyPath(stateDir);
  let pem: string;
  try {
    pem = await readFile(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new CommandError(`no manager key at ${file} (the daemon makes it at its first start with the manager enabled)`);
    if (code === "EACCES") throw new CommandError(`cannot read ${file}: permission denied (run as root, or set STEVEDORE_MANAGER_TOKEN)`);
    throw new CommandError(`cannot read ${file}: ${(err as Error).message}`);
  }
  const now = Math.floor(Date.now() / 1000);
  return signEs256({ sub: opts.subject, iat: now, exp: now + opts.ttlSecs }, pem);
}


export function defaultSubject(): string {
  try {
    return userInfo().username || "cli";
  } catch {
    return "cli";
  }
}

/** "90" (seconds), "90s", "15m", "12h", "7d" → seconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const m = /^([0-9]{1,9})([smhd]?)$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]) * { "": 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as "" | "s" | "m" | "h" | "d"];
  return n > 0 ? n : undefined;
}

/** --manager URL, else http(s)://<manager_listen> of the config (a wildcard address means this host). */
export function managerUrl(flag: string | undefined, config: Config): string {
  if (flag) {
    let url: URL;
    try {
      url = new URL(flag);
    } catch {
      throw new UsageError(`invalid --manager URL ${JSON.stringify(flag)}`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError("--manager must be an http:// or https:// URL");
    return url.origin + url.pathname.replace(/\/+$/, "");
  }
  const listen = config.static.manager_listen;
  if (!listen) throw new CommandError("the manager is disabled (manager_listen is empty); pass --manager URL");
  const hp = parseHostPort(listen);
  if (!hp) throw new CommandError(`manager_listen ${JSON.stringify(listen)} is not host:port`);
  const host = hp.host === "0.0.0.0" || hp.host === "" ? "127.0.0.1" : hp.host === "::" ? "::1" : hp.host;
  return `${config.static.manager_tls_cert ? "https" : "http"}://${formatHostPort(host, hp.port)}`;
}

/** --cacert FILE: read now, so a bad path fails before any call */
export function readCaFile(path: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (err) {
    throw new CommandError(`cannot read --cacert ${path}: ${(err as Error).message}`);
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) throw new CommandError(`--cacert ${path} holds no PEM certificate`);
  return pem;
}

export interface ManagerTarget {
  url: string;
  /** --cacert: PEM certificates trusted for https:// instead of the system's */
  ca?: Buffer;
  /** a fresh Authorization value for each call (tokens are short-lived) */
  authorization(): Promise<string>;
}

/** The target from the flags: --manager or the config; STEVEDORE_MANAGER_TOKEN or a token minted from the local key. */
export function managerTarget(flag: string | undefined, config: Config, env = process.env, cacert?: string): ManagerTarget {
  const url = managerUrl(flag, config);
  const ca = cacert === undefined ? undefined : readCaFile(cacert);
  const given = env.STEVEDORE_MANAGER_TOKEN;
  const subject = defaultSubject();
  return {
    url,
    ca,
    authorization: async () => `Bearer ${given || (await userToken(config.static.state_dir, { subject, ttlSecs: CLI_TOKEN_TTL_SECS }))}`,
  };
}

export interface Reply {
  status: number;
  text: string;
  body: unknown;
}

function send(target: ManagerTarget, method: string, path: string, headers: Record<string, string | number>, payload?: Buffer): Promise<IncomingMessage> {
  const url = new URL(target.url + path);
  const req = (url.protocol === "https:" ? httpsRequest : httpRequest)(url, { method, headers: { "User-Agent": `stevedore/${VERSION}`, ...headers }, ...(target.ca ? { ca: target.ca } : {}) });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS / 1000} s`)), REQUEST_TIMEOUT_MS);
    req.once("error", (err) => {
      clearTimeout(timer);
      reject(new CommandError(unreachable("the manager", target.url, err as NodeJS.ErrnoException, "--manager URL")));
    });
    req.once("response", (res) => {
      clearTimeout(timer);
      resolve(res);
    });
    req.end(payload);
  });
}

/** One JSON (or text) call, answer read whole within the time-out. */
export async function call(target: ManagerTarget, method: string, path: string, body?: unknown): Promise<Reply> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const headers: Record<string, string | number> = { Authorization: await target.authorization(), Accept: "application/json" };
  if (payload) Object.assign(headers, { "Content-Type": "application/json", "Content-Length": payload.length });
  else if (method !== "GET") headers["Content-Length"] = 0;
  const res = await send(target, method, path, headers, payload);
  const chunks: Buffer[] = [];
  let size = 0;
  const timer = setTimeout(() => res.destroy(new Error("answer too slow")), REQUEST_TIMEOUT_MS);
  try {
    for await (const c of res) {
      size += (c as Buffer).length;
      if (size > MAX_ANSWER_BYTES) throw new CommandError(`the manager's answer is larger than ${MAX_ANSWER_BYTES} bytes`);
      chunks.push(c as Buffer);
    }
  } catch (err) {
    if (err instanceof CommandError) throw err;
    throw new CommandError(`the manager's answer broke off: ${(err as Error).message}`);
  } finally {
    clearTimeout(timer);
    res.destroy();
  }
  const text = Buffer.concat(chunks).toString("utf8");
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.statusCode ?? 0, text, body: parsed };
}

/** call() that must succeed: anything but 2xx becomes a CommandError with the manager's message. */
export async function callOk(target: ManagerTarget, method: string, path: string, body?: unknown, notFound?: string): Promise<Reply> {
  const r = await call(target, method, path, body);
  if (r.status >= 200 && r.status < 300) return r;
  if (r.status === 404 && notFound) throw new CommandError(notFound);
  throw new CommandError(replyError(r));
}

export function replyError(r: Reply): string {
  const msg = (r.body as { error?: unknown } | undefined)?.error;
  const detail = typeof msg === "string" ? msg : r.text.trim().slice(0, 300) || `HTTP ${r.status}`;
  if (r.status === 401) return `the manager refused the token (401: ${detail}); is this the manager's host, or is STEVEDORE_MANAGER_TOKEN right?`;
  if (r.status === 498) return `the token has expired (498)`;
  return `manager: ${detail} (HTTP ${r.status})`;
}

// ---- /api/events (server-sent events)

export interface SseEvent {
  id: string;
  event: string;
  data: string;
}

/** Incremental text/event-stream parser: lines ending in \n, \r\n or \r; bounded event size. */
export class SseParser {
  private buffer = "";
  private data: string[] = [];
  private dataChars = 0;
  private event = "";
  private lastId = "";
  private dropping = false;

  constructor(private readonly emit: (e: SseEvent) => void, private readonly maxEventChars = 4 * 1024 * 1024) {}

  /** the id of the last event (for Last-Event-ID on a reconnect) */
  get id(): string {
    return this.lastId;
  }

  push(text: string): void {
    this.buffer += text;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buffer);
      // a lone \r at the end may be the first half of \r\n: wait for more
      if (!m || (m[0] === "\r" && m.index === this.buffer.length - 1)) break;
      const line = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      this.line(line);
    }
    if (this.buffer.length > this.maxEventChars) {
      this.buffer = "";
      this.dropping = true; // resynchronise at the next blank line
    }
  }

  private line(line: string): void {
    if (line === "") {
      if (!this.dropping && this.data.length) this.emit({ id: this.lastId, event: this.event || "message", data: this.data.join("\n") });
      this.data = [];
      this.dataChars = 0;
      this.event = "";
      this.dropping = false;
      return;
    }
    if (line.startsWith(":") || this.dropping) return;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") {
      this.dataChars += value.length;
      if (this.dataChars > this.maxEventChars) {
        this.dropping = true;
        this.data = [];
        return;
      }
      this.data.push(value);
    } else if (field === "event") this.event = value;
    else if (field === "id" && !value.includes("\0")) this.lastId = value;
  }
}

/**
 * Follow /api/events until `handle` returns a value (resolves with it) or `signal` aborts. A dropped
 * stream is reopened with Last-Event-ID after a pause (up to `maxReconnects` in a row); `onOpen` runs at
 * every (re)connect, so the caller can re-read state it may have missed.
 */
export async function followEvents<T>(
  target: ManagerTarget,
  query: string,
  handle: (e: SseEvent) => T | undefined,
  onOpen: () => Promise<T | undefined>,
  maxReconnects = 20,
): Promise<T> {
  let lastId = "";
  let failures = 0;
  for (;;) {
    const headers: Record<string, string> = { Authorization: await target.authorization(), Accept: "text/event-stream" };
    if (lastId) headers["Last-Event-ID"] = lastId;
    let res: IncomingMessage;
    try {
      res = await send(target, "GET", `/api/events${query}`, headers);
    } catch (err) {
      if (++failures > maxReconnects) throw err;
      await new Promise((r) => setTimeout(r, Math.min(5_000, 250 * 2 ** failures)));
      continue;
    }
    if (res.statusCode !== 200) {
      const chunks: Buffer[] = [];
      for await (const c of res) if (chunks.push(c as Buffer) > 64) break;
      throw new CommandError(replyError({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8"), body: safeJson(Buffer.concat(chunks).toString("utf8")) }));
    }
    const result = await readEvents(res, handle, onOpen, (id) => {
      lastId = id;
      failures = 0; // the stream works: count breaks in a row only
    });
    if (result.done) return result.value as T;
    if (++failures > maxReconnects) throw new CommandError("the manager's event stream keeps breaking off");
    await new Promise((r) => setTimeout(r, Math.min(5_000, 250 * 2 ** failures)));
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

async function readEvents<T>(
  res: IncomingMessage,
  handle: (e: SseEvent) => T | undefined,
  onOpen: () => Promise<T | undefined>,
  setId: (id: string) => void,
): Promise<{ done: boolean; value?: T }> {
  return new Promise((resolve, reject) => {
    let finished = false;
    const finish = (r: { done: boolean; value?: T }) => {
      if (finished) return;
      finished = true;
      res.destroy();
      resolve(r);
    };
    // events that arrive while onOpen() reads the state wait for it, so they are handled after it
    let held: SseEvent[] | undefined = [];
    const take = (e: SseEvent) => {
      if (finished) return;
      if (e.id) setId(e.id);
      const v = handle(e);
      if (v !== undefined) finish({ done: true, value: v });
    };
    const parser = new SseParser((e) => (held ? held.length < MAX_HELD_EVENTS && held.push(e) : take(e)));
    res.setEncoding("utf8");
    res.on("data", (chunk: string) => parser.push(chunk));
    res.once("close", () => finish({ done: false }));
    res.once("error", () => finish({ done: false }));
    onOpen().then((v) => {
      if (v !== undefined) return finish({ done: true, value: v });
      const events = held ?? [];
      held = undefined;
      for (const e of events) take(e);
    }, (err) => {
      if (finished) return;
      finished = true;
      res.destroy();
      reject(err);
    });
  });
}
