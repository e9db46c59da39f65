// The farm dashboard on the manager listener: `/` (the page, or the sign-in page without a valid
// cookie), its script and style from the bundle, the one-time sign-in link that turns a short-lived
// token into the HttpOnly jwtToken cookie, sign-out (the cookie dropped, its token revoked), and the
// host data (catalog, proxy routes) for its host page.
import { createHash } from "node:crypto";
import type { DaemonContext } from "../component/index.js";
import { HttpError, type ApiRequest, type ApiResponse, type ApiRoute } from "../http/index.js";
import { log } from "../log.js";
import { APP_JS } from "./app.js";
import { APP_CSS, appHtml, signInHtml } from "./page.js";

export const SIGN_IN_PATH = "/dashboard/sign-in";
export const SIGN_OUT_PATH = "/dashboard/sign-out";
const SIGNED_OUT_PATH = "/dashboard/signed-out";
/** the cookie (a token minted at sign-in) lives this long */
export const SESSION_TTL_SECS = 12 * 3600;
/** used sign-in tokens remembered (until they expire) so a link works once */
const MAX_USED = 10_000;

/** What the page needs from outside: the manager's user check and key (lent by the manager at start), the proxy's routes. */
export interface DashboardDeps {
  /** the proxy's current route table, [] when the proxy is off */
  routes(): readonly unknown[];
}

/** The manager's loan to its extensions (the shape of ManagerExtensionApi, restated: no interface imports another). */
interface ManagerLoan {
  verifyUser(authorization: string | undefined, cookie: string | undefined): { ok: true; subject: string } | { ok: false; status: number; message: string };
  mintUserToken(subject: string, ttlSecs: number): Promise<string>;
  revokeUserCookie(cookie: string | undefined): Promise<boolean>;
  checkSameOrigin(req: ApiRequest): void;
  readonly tls: boolean;
}

/** No script but ours, no other host, no framing: the page's whole policy. */
export const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

function pageHeaders(type: string): Record<string, string> {
  return {
    "Content-Type": type,
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
  };
}

const html = (status: number, text: string, extra: Record<string, string> = {}): ApiResponse => ({
  status,
  body: Buffer.from(text),
  headers: { ...pageHeaders("text/html; charset=utf-8"), ...extra },
});

/** the `exp` claim of a (verified) JWT, in ms; 0 when absent */
function expiryMs(token: string): number {
  try {
    const claims = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as { exp?: unknown };
    return typeof claims.exp === "number" ? claims.exp * 1000 : 0;
  } catch {
    return 0;
  }
}

export function dashboardService(ctx: DaemonContext, deps: DashboardDeps) {
  /** sha256 of a used sign-in token → when it expires (ms) */
  const used = new Map<string, number>();

  function spend(token: string): boolean {
    const now = Date.now();
    for (const [k, exp] of used) if (exp <= now) used.delete(k);
    const key = createHash("sha256").update(token).digest("hex");
    if (used.has(key)) return false;
    if (used.size >= MAX_USED) used.delete(used.keys().next().value!);
    used.set(key, Math.max(expiryMs(token), now + 60_000));
    return true;
  }

  function routes(mgr: ManagerLoan): ApiRoute[] {
    const signedIn = (req: ApiRequest) => mgr.verifyUser(undefined, req.header("cookie"));
    /** the session cookie with these attributes, or (maxAge 0) the instruction to drop it */
    const cookie = (value: string, maxAge: number) => `jwtToken=${value}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${mgr.tls ? "; Secure" : ""}`;
    const asset = (type: string, text: string): ApiRoute["handler"] => () => ({ status: 200, body: Buffer.from(text), headers: { ...pageHeaders(type), "Cache-Control": "no-cache" } });
    return [
      {
        method: "GET",
        path: "/",
        handler: (req) => {
          const r = signedIn(req);
          if (!r.ok) return html(401, signInHtml(r.message === "missing token" ? "" : "Your sign-in has expired or is not valid."));
          return html(200, appHtml());
        },
      },
      { method: "GET", path: "/dashboard/app.js", handler: asset("text/javascript; charset=utf-8", APP_JS) },
      { method: "GET", path: "/dashboard/app.css", handler: asset("text/css; charset=utf-8", APP_CSS) },
      {
        method: "GET",
        path: SIGN_IN_PATH,
        handler: async (req) => {
          const token = req.query.get("token") ?? "";
          const r = mgr.verifyUser(`Bearer ${token}`, undefined);
          if (!r.ok) return html(401, signInHtml("That sign-in link has expired or is not valid."));
          if (!spend(token)) return html(401, signInHtml("That sign-in link was already used."));
          const session = await mgr.mintUserToken(r.subject, SESSION_TTL_SECS);
          log.info("dashboard sign-in", { subject: r.subject, remote: req.remoteAddress });
          // 303 to `/`: the token leaves the address bar; no-referrer keeps it out of any Referer
          return { status: 303, body: Buffer.alloc(0), headers: { ...pageHeaders("text/plain; charset=utf-8"), Location: "/", "Set-Cookie": cookie(session, SESSION_TTL_SECS) } };
        },
      },
      {
        method: "POST",
        path: SIGN_OUT_PATH,
        handler: async (req) => {
          // a change riding on the cookie: same origin only, as for the job API (another site must
          // not sign the user out either)
          mgr.checkSameOrigin(req);
          const r = signedIn(req);
          if (!r.ok && r.message === "missing token") return html(401, signInHtml(""));
          // an expired or revoked cookie has nothing left to revoke: it is dropped all the same
          if ((await mgr.revokeUserCookie(req.header("cookie"))) && r.ok) log.info("dashboard sign-out", { subject: r.subject, remote: req.remoteAddress });
          // 303 (POST → GET): a reload of the next page does not post again
          return { status: 303, body: Buffer.alloc(0), headers: { ...pageHeaders("text/plain; charset=utf-8"), Location: SIGNED_OUT_PATH, "Set-Cookie": cookie("", 0) } };
        },
      },
      { method: "GET", path: SIGNED_OUT_PATH, handler: () => html(200, signInHtml("You have signed out.", "notice")) },
      {
        method: "GET",
        path: "/api/dashboard/host",
        handler: (req) => {
          // under /api/: the manager's auth hook has checked the user already; this is the belt
          if (!req.user) throw new HttpError(401, "user token required");
          const rev = ctx.catalog.current();
          const containers = rev.containers.map((c) => ({
            name: c.name,
            deployment: c.deployment,
            service: c.service,
            image: c.image,
            state: c.state,
            health: c.health,
            started_at: c.startedAt,
          }));
          return { status: 200, body: { revision: rev.seq, docker: ctx.catalog.dockerState(), deployments: rev.deployments, containers, routes: deps.routes() } };
        },
      },
    ];
  }

  return {
    name: "dashboard" as const,
    openPath: (path: string) => path === "/" || path === "/favicon.ico" || path.startsWith("/dashboard/"),
    async start(api: ManagerLoan): Promise<ApiRoute[]> {
      return routes(api);
    },
    async stop(): Promise<void> {},
  };
}
