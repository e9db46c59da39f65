// Checked shapes of the CA's JSON answers (RFC 8555 §7.1): anything else is an AcmeError, never a
// crash deeper down. Only the fields we use are read.

export interface Problem {
  type: string;
  detail: string;
  status?: number;
  subproblems?: Problem[];
}

/** An ACME failure: the CA's problem document, or our own in the same shape. */
export class AcmeError extends Error {
  constructor(
    readonly problem: Problem,
    /** ms to wait before trying again (Retry-After), when the CA said so */
    readonly retryAfterMs?: number,
  ) {
    super(problem.detail ? `${problem.type}: ${problem.detail}` : problem.type);
  }
  get type(): string {
    return this.problem.type;
  }
}

export const ACME_ERR = "urn:ietf:params:acme:error:";

/** our own errors about the CA's answers */
export function malformed(detail: string): AcmeError {
  return new AcmeError({ type: "about:blank#stevedore-bad-answer", detail });
}

export function parseJson(body: Buffer | string): unknown {
  try {
    return JSON.parse(typeof body === "string" ? body : body.toString("utf8"));
  } catch {
    throw malformed("answer is not JSON");
  }
}

function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw malformed(`${what} is not an object`);
  return v as Record<string, unknown>;
}

function str(o: Record<string, unknown>, k: string, what: string): string {
  const v = o[k];
  if (typeof v !== "string" || v.length === 0 || v.length > 8192) throw malformed(`${what}.${k} is not a string`);
  return v;
}

function optStr(o: Record<string, unknown>, k: string, what: string): string | undefined {
  return o[k] === undefined ? undefined : str(o, k, what);
}

function url(o: Record<string, unknown>, k: string, what: string): string {
  const v = str(o, k, what);
  if (!/^https?:\/\/[^\s]+$/.test(v)) throw malformed(`${what}.${k} is not a URL`);
  return v;
}

function urls(o: Record<string, unknown>, k: string, what: string): string[] {
  const v = o[k];
  if (!Array.isArray(v) || v.length > 100) throw malformed(`${what}.${k} is not a list`);
  return v.map((_, i) => url(v as unknown as Record<string, unknown>, String(i), `${what}.${k}`));
}

export function parseProblem(v: unknown): Problem {
  const o = obj(v, "problem");
  const type = typeof o.type === "string" && o.type.length <= 512 ? o.type : "about:blank";
  const detail = typeof o.detail === "string" ? o.detail.slice(0, 2048) : "";
  const p: Problem = { type, detail };
  if (typeof o.status === "number" && Number.isInteger(o.status)) p.status = o.status;
  if (Array.isArray(o.subproblems)) p.subproblems = o.subproblems.slice(0, 20).filter((s) => typeof s === "object" && s !== null).map(parseProblem);
  return p;
}

export interface Directory {
  newNonce: string;
  newAccount: string;
  newOrder: string;
}

export function parseDirectory(v: unknown): Directory {
  const o = obj(v, "directory");
  return { newNonce: url(o, "newNonce", "directory"), newAccount: url(o, "newAccount", "directory"), newOrder: url(o, "newOrder", "directory") };
}

export type Status = "pending" | "ready" | "processing" | "valid" | "invalid" | "deactivated" | "expired" | "revoked";
const STATUSES = new Set(["pending", "ready", "processing", "valid", "invalid", "deactivated", "expired", "revoked"]);

function status(o: Record<string, unknown>, what: string): Status {
  const s = str(o, "status", what);
  if (!STATUSES.has(s)) throw malformed(`${what}.status ${JSON.stringify(s.slice(0, 40))} is unknown`);
  return s as Status;
}

export interface Account {
  status: Status;
}

export function parseAccount(v: unknown): Account {
  return { status: status(obj(v, "account"), "account") };
}

export interface Order {
  status: Status;
  authorizations: string[];
  finalize: string;
  certificate?: string;
  error?: Problem;
}

export function parseOrder(v: unknown): Order {
  const o = obj(v, "order");
  const order: Order = { status: status(o, "order"), authorizations: urls(o, "authorizations", "order"), finalize: url(o, "finalize", "order") };
  if (o.certificate !== undefined) order.certificate = url(o, "certificate", "order");
  if (o.error !== undefined) order.error = parseProblem(o.error);
  return order;
}

export interface Challenge {
  type: string;
  url: string;
  token: string;
  status: Status;
  error?: Problem;
}

export interface Authorization {
  status: Status;
  identifier: string;
  challenges: Challenge[];
}

const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;

export function parseAuthorization(v: unknown): Authorization {
  const o = obj(v, "authorization");
  const id = obj(o.identifier, "authorization.identifier");
  if (id.type !== "dns") throw malformed("authorization.identifier.type is not dns");
  const identifier = str(id, "value", "authorization.identifier");
  if (!Array.isArray(o.challenges) || o.challenges.length > 20) throw malformed("authorization.challenges is not a list");
  const challenges: Challenge[] = [];
  for (const raw of o.challenges) {
    const c = obj(raw, "challenge");
    const type = str(c, "type", "challenge");
    // token-less challenge types we do not answer are skipped, not errors
    if (typeof c.token !== "string" || !TOKEN.test(c.token)) {
      if (type === "http-01" || type === "tls-alpn-01") throw malformed(`challenge ${type} has no valid token`);
      continue;
    }
    const ch: Challenge = { type, url: url(c, "url", "challenge"), token: c.token, status: status(c, "challenge") };
    if (c.error !== undefined) ch.error = parseProblem(c.error);
    challenges.push(ch);
  }
  return { status: status(o, "authorization"), identifier, challenges };
}

/** Retry-After: seconds or an HTTP date; undefined when absent or nonsense. Capped at a day. */
export function parseRetryAfter(v: string | undefined, now = Date.now()): number | undefined {
  if (!v) return undefined;
  let ms: number;
  if (/^\s*\d{1,9}\s*$/.test(v)) ms = Number(v) * 1000;
  else {
    const t = Date.parse(v);
    if (Number.isNaN(t)) return undefined;
    ms = t - now;
  }
  return Math.min(Math.max(ms, 0), 86400_000);
}

export { optStr };
