// Who may call what on the manager listener: registration (open or HS256 JWT), workers (Basic
// auth against their scrypt hash), users (ES256 JWT in a Bearer header or the jwtToken cookie).
import type { KeyObject } from "node:crypto";
import { HttpError, type ApiRequest, type ApiResponse } from "../http/index.js";
import { verifyHs256 } from "../tokens/index.js";
import { parseBasicAuth, userFromRequest, userToken, type WorkerAuth } from "./auth.js";
import { OBJECT_ID_RE } from "./ids.js";
import { tokenId } from "./revoked.js";

/** `token`: the user's token, so what it opens (an event stream) can end when it is signed out */
export type Caller = { kind: "open" } | { kind: "worker"; id: string } | { kind: "user"; subject: string; token?: string };

export interface AccessDeps {
  workerAuth: WorkerAuth;
  /** the stored scrypt hash of a worker, undefined when unknown */
  secretHash(workerId: string): string | undefined;
  /** the trusted user keys now */
  userKeys(): readonly KeyObject[];
  /** manager_registration_secret ("" = registration is open) */
  registrationSecret(): string;
  /** paths an extension authenticates itself (the dashboard's page, assets and sign-in) */
  openPath?(path: string): boolean;
  /** a signed-out (revoked) user token */
  revoked?(token: string): boolean;
}

const UNAUTHORIZED = { "WWW-Authenticate": 'Basic realm="stevedore manager"' };

/** paths for users (the job API, the dashboard's data, task logs, Shaman and its status and GC) */
function isUserPath(path: string): boolean {
  return path.startsWith("/api/") || path.startsWith("/logfile/") || path.startsWith("/files/") || path.startsWith("/checkout/") || path.startsWith("/shaman/");
}

/** what a worker may read too (a checkout's listing and its files, to run a task on another
 *  machine): with Basic auth these are worker paths, with a Bearer token user paths */
function isWorkerReadable(req: ApiRequest): boolean {
  return (req.method === "GET" || req.method === "HEAD") && (req.path.startsWith("/files/") || req.path.startsWith("/checkout/files/"));
}

/** The `before` hook of the API server: sets req.user to the Caller, or answers 401/403/498. */
export function authenticate(deps: AccessDeps): (req: ApiRequest) => Promise<ApiResponse | void> {
  return async (req) => {
    if (req.path === "/register-worker") {
      checkRegistration(req, deps.registrationSecret());
      req.user = { kind: "open" } satisfies Caller;
      return;
    }
    if (deps.openPath?.(req.path) && !isUserPath(req.path)) {
      req.user = { kind: "open" } satisfies Caller;
      return;
    }
    if (isUserPath(req.path) && !(isWorkerReadable(req) && /^Basic /i.test(req.header("authorization") ?? ""))) {
      const r = userFromRequest(req.header("authorization"), req.header("cookie"), deps.userKeys(), Date.now(), deps.revoked);
      if (!r.ok) throw new HttpError(r.status, r.message);
      if (r.via === "cookie" && !SAFE_METHODS.has(req.method)) checkSameOrigin(req);
      req.user = { kind: "user", subject: r.subject, token: userToken(req.header("authorization"), req.header("cookie")) } satisfies Caller;
      // the one place for every user path (job API, events, logs, Shaman, dashboard data),
      // errors and streams included, as the v2 manager's middleware did
      req.answerHeader("X-User-Id-From-Token", r.subject);
      return;
    }
    const basic = parseBasicAuth(req.header("authorization"));
    if (!basic || !OBJECT_ID_RE.test(basic.id)) throw new HttpError(401, "worker credentials required", UNAUTHORIZED);
    const hash = deps.secretHash(basic.id);
    if (hash === undefined || !(await deps.workerAuth.verify(basic.id, basic.secret, hash))) throw new HttpError(401, "unknown worker or wrong secret", UNAUTHORIZED);
    req.user = { kind: "worker", id: basic.id } satisfies Caller;
  };
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * CSRF: a browser sends the cookie with a request another site makes, so a state-changing request
 * riding on the cookie must come from a page of this origin: `Sec-Fetch-Site: same-origin`, or an
 * `Origin` whose host is this request's Host. Neither (or a mismatch) → 403.
 */
export function checkSameOrigin(req: ApiRequest): void {
  const site = req.header("sec-fetch-site");
  if (site !== undefined && site !== "same-origin") throw new HttpError(403, "cross-site request refused");
  const origin = req.header("origin");
  const host = req.header("host");
  let ok = site === "same-origin";
  if (origin !== undefined) {
    try {
      ok = origin !== "null" && host !== undefined && new URL(origin).host === host;
    } catch {
      ok = false;
    }
  }
  if (!ok) throw new HttpError(403, "cross-origin request refused: a cookie-signed change needs a same-origin Origin or Sec-Fetch-Site");
}

function checkRegistration(req: ApiRequest, secret: string): void {
  if (secret === "") return;
  const m = /^Bearer +(\S+)$/i.exec(req.header("authorization") ?? "");
  if (!m) throw new HttpError(403, "registration needs a Bearer token signed with the registration secret");
  // invalid and expired alike: the design answers 403 to both
  const r = verifyHs256(m[1], secret, Date.now());
  if (!r.ok) throw new HttpError(403, `registration token refused: ${r.message}`);
}

export function workerOf(req: ApiRequest): string {
  const c = req.user as Caller | undefined;
  if (c?.kind !== "worker") throw new HttpError(401, "worker credentials required", UNAUTHORIZED);
  return c.id;
}

/** the id of the user token behind the request (see revoked.ts), undefined for other callers */
export function sessionOf(req: ApiRequest): string | undefined {
  const c = req.user as Caller | undefined;
  return c?.kind === "user" && c.token !== undefined ? tokenId(c.token) : undefined;
}

export function userOf(req: ApiRequest): string {
  const c = req.user as Caller | undefined;
  if (c?.kind !== "user") throw new HttpError(401, "user token required");
  return c.subject;
}
