// The manager as a daemon component: the durable farm, task logs, auth and events on the JSON
// API server at manager_listen, and the one timer that expires silent workers and tasks.
import type { KeyObject } from "node:crypto";
import { join } from "node:path";
import type { Component, DaemonContext } from "../component/index.js";
import { createApiServer, HttpError, type ApiErrorStatus, type ApiRequest, type ApiRoute, type ApiServer } from "../http/index.js";
import { verifyEs256 } from "../tokens/index.js";
import { JournalError } from "../store/index.js";
import { log } from "../log.js";
import { metrics, type Sample } from "../metrics/index.js";
import { authenticate, checkSameOrigin } from "./access.js";
import { AuthBusyError, ensureKeyPair, loadUserKeys, mintUserToken, userFromRequest, userToken, WorkerAuth, JWT_DIR, type UserAuth } from "./auth.js";
import type { ManagerDeps } from "./deps.js";
import { EventHub } from "./events.js";
import { RevokedTokens, REVOKED_FILE, tokenId } from "./revoked.js";
import { OBJECT_ID_RE } from "./ids.js";
import { FarmError, type FarmSettings, type LogAppend } from "./model.js";
import { FarmStore, JournalFailed } from "./store.js";
import { TaskLogError, TaskLogs } from "./task-logs.js";
import { CompletionRate, TaskHistory } from "./task-history.js";
import { userRoutes } from "./user-routes.js";
import { workerRoutes } from "./worker-routes.js";

const MiB = 1024 * 1024;
const LIMITS = { maxBodyBytes: 16 * MiB, maxConnections: 4096, idleMs: 30_000, maxHeaderBytes: 16 * 1024 };
/** how often due worker and task time-outs are expired (a heap pop each, not a scan) */
const EXPIRE_EVERY_MS = 1000;

function errorStatus(err: unknown): ApiErrorStatus | undefined {
  if (err instanceof FarmError) return { status: err.status, message: err.message };
  if (err instanceof TaskLogError) return { status: err.status, message: err.message };
  if (err instanceof AuthBusyError) return { status: 503, message: err.message, headers: { "Retry-After": "1" } };
  if (err instanceof JournalFailed || err instanceof JournalError) return { status: 503, message: err.message };
  return undefined;
}

/** More endpoints on the manager listener under its auth (user paths: /files/, /checkout/, /shaman/),
 *  composed by the daemon, since no interface imports another (Shaman is one). */
export interface ManagerExtension {
  readonly name: string;
  /** prepare (open stores, start timers) and give the routes; called when the manager starts */
  start(api: ManagerExtensionApi): Promise<ApiRoute[]>;
  /** paths (outside /api/ and the other user paths) the extension authenticates itself */
  openPath?(path: string): boolean;
  /** called when the manager stops, after its listener */
  stop(): Promise<void>;
  /** shown under `name` in the manager's status */
  status?(): Record<string, unknown>;
}

/** What the manager lends its extensions: the user check of its auth and tokens signed with its key. */
export interface ManagerExtensionApi {
  /** the user behind these headers (Bearer, else cookie jwtToken) */
  verifyUser(authorization: string | undefined, cookie: string | undefined): UserAuth;
  /** a user token signed with the manager's private key */
  mintUserToken(subject: string, ttlSecs: number): Promise<string>;
  /** sign out the jwtToken cookie of this header: its token is refused everywhere until it
   *  expires (also after a restart: <state_dir>/jwt/revoked.json) and its event streams end;
   *  false when the cookie holds no valid token (nothing to revoke) */
  revokeUserCookie(cookie: string | undefined): Promise<boolean>;
  /** the manager's CSRF check for a cookie-signed change (throws 403) */
  checkSameOrigin(req: ApiRequest): void;
  /** a TLS listener (cookies get Secure) */
  readonly tls: boolean;
}

export interface ManagerOptions {
  extensions?: readonly ManagerExtension[];
}

export function managerComponent(ctx: DaemonContext, options: ManagerOptions = {}): Component {
  const extensions = options.extensions ?? [];
  const started: ManagerExtension[] = [];
  const cfg = ctx.config.static;
  const settings = (): FarmSettings => ctx.dynamic();
  const workerAuth = new WorkerAuth();
  // a task update may carry as much log as its body (16 MiB): refusing it after the farm applied the update would lie
  const logs = new TaskLogs(cfg.state_dir, { maxAppendBytes: LIMITS.maxBodyBytes });
  const hub = new EventHub();
  let revoked = new RevokedTokens();
  const isRevoked = (token: string) => revoked.size > 0 && revoked.has(tokenId(token));
  const history = new TaskHistory();
  const completions = new CompletionRate();
  let store: FarmStore | undefined;
  let userKeys: KeyObject[] = [];
  let timer: NodeJS.Timeout | undefined;
  let unsubscribe = () => {};
  let failure = "";
  let server: ApiServer | undefined;
  const samples = (counts: () => Record<string, number>) => () => Object.entries(store && !store.failed ? counts() : {}).map(([k, v]): Sample => [[k], v]);
  metrics.gauge("stevedore_manager_workers", "Manager workers by status.", ["status"], samples(() => store!.farm.counts().workers));
  metrics.gauge("stevedore_manager_tasks", "Manager tasks by status.", ["status"], samples(() => store!.farm.taskCounts()));

  /** Issued at once and in order (task logs keep call order per file); resolves when durable. */
  function writeLogs(appends: readonly LogAppend[]): Promise<void> {
    const done: Promise<void>[] = [];
    for (const a of appends) {
      if (a.rotate) done.push(logs.rotate(a.job_id, a.task_id));
      done.push(logs.append(a.job_id, a.task_id, a.text));
      hub.publish("log", { job: a.job_id, task: a.task_id, text: a.text }, a.task_id);
    }
    return Promise.all(done).then(() => undefined);
  }

  function expire(): void {
    if (!store || store.failed) return;
    const appends = store.farm.expire(Date.now());
    if (appends.length) void writeLogs(appends).catch((err: Error) => log.error("task log write failed", { error: err.message }));
  }

  return {
    name: "manager",
    async start() {
      if (cfg.manager_listen === "") return;
      try {
        store = await FarmStore.open(cfg.state_dir, settings);
        await ensureKeyPair(cfg.state_dir);
        userKeys = await loadUserKeys(cfg.state_dir, cfg.manager_jwt_keys_dir);
        revoked = await RevokedTokens.load(join(cfg.state_dir, JWT_DIR, REVOKED_FILE));
      } catch (err) {
        failure = (err as Error).message;
        store = undefined;
        log.error("manager unavailable", { error: failure });
        return;
      }
      const farm = store.farm;
      const deps: ManagerDeps = { store, logs, hub, history, completions, now: Date.now, writeLogs };
      const auth = authenticate({
        workerAuth,
        secretHash: (id) => farm.workerSecretHash(id),
        userKeys: () => userKeys,
        registrationSecret: () => cfg.manager_registration_secret,
        openPath: (path) => extensions.some((e) => e.openPath?.(path) ?? false),
        revoked: isRevoked,
      });
      const tls = Boolean(cfg.manager_tls_cert && cfg.manager_tls_key);
      const api: ManagerExtensionApi = {
        verifyUser: (authorization, cookie) => userFromRequest(authorization, cookie, userKeys, Date.now(), isRevoked),
        revokeUserCookie: async (cookie) => {
          const token = userToken(undefined, cookie);
          const r = token === undefined ? undefined : verifyEs256(token, userKeys, Date.now());
          if (!token || !r?.ok || r.claims.exp === undefined) return false;
          const id = tokenId(token);
          const kept = revoked.revoke(id, r.claims.exp * 1000);
          hub.endSession(id);
          // refused from now on either way; a failed write only means a restart would forget it
          await kept.catch((err: Error) => log.error("cannot keep the signed-out token list", { error: err.message }));
          return true;
        },
        checkSameOrigin,
        mintUserToken: (subject, ttlSecs) => mintUserToken(cfg.state_dir, { subject, ttlSecs }),
        tls,
      };
      const durable = store;
      const extraRoutes: ApiRoute[] = [];
      for (const ext of extensions) {
        extraRoutes.push(...(await ext.start(api)));
        started.push(ext);
      }
      server = createApiServer({
        name: "manager",
        listen: cfg.manager_listen,
        tls: tls ? { certFile: cfg.manager_tls_cert, keyFile: cfg.manager_tls_key, handshakeMs: () => ctx.dynamic().tls_handshake_timeout_secs * 1000 } : undefined,
        routes: [...workerRoutes(deps), ...userRoutes(deps), ...extraRoutes],
        params: { task: OBJECT_ID_RE, job: OBJECT_ID_RE, worker: OBJECT_ID_RE, status: /^[a-z-]{1,32}$/ },
        before: (req) => {
          if (durable.failed) throw new HttpError(503, "manager journal failed; restart the daemon");
          return auth(req);
        },
        errorStatus,
        limits: () => ({ ...LIMITS, headMs: ctx.dynamic().api_header_timeout_secs * 1000 }),
        inherit: ctx.inherit,
      });
      unsubscribe = farm.onEvent((e) => {
        if (e.type === "task") {
          const before = history.get(e.doc._id);
          if (e.doc.status === "completed" && before[before.length - 1]?.status !== "completed") completions.record(Date.now());
          history.record(e.doc._id, e.doc.status, e.doc.worker, Date.now());
        }
        hub.publish(e.type, e.doc);
      });
      timer = setInterval(expire, EXPIRE_EVERY_MS).unref();
      await server.start();
    },
    async stop(graceful, deadline) {
      clearInterval(timer);
      hub.close();
      await server?.stop(graceful, deadline);
      for (const ext of started.splice(0)) await ext.stop().catch((err: Error) => log.error(`${ext.name} stop failed`, { error: err.message }));
      unsubscribe();
      await logs.close();
      await store?.close();
    },
    listeners: () => server?.listeners() ?? new Map(),
    status() {
      if (cfg.manager_listen === "") return { state: "disabled" };
      if (!store || !server) return { state: failure ? "unavailable" : "stopped", address: cfg.manager_listen, ...(failure ? { reason: failure } : {}) };
      const s = server.status();
      const counts = store.farm.counts();
      const ext = Object.fromEntries(started.filter((e) => e.status).map((e) => [e.name, e.status!()]));
      return { ...s, workers: counts.workers, jobs: counts.jobs, ...ext, ...(store.failed ? { state: "unavailable", reason: "journal write failed" } : {}) };
    },
    async prepareReload() {
      // trusted user keys may have been added or removed
      try {
        userKeys = await loadUserKeys(cfg.state_dir, cfg.manager_jwt_keys_dir);
        return [];
      } catch (err) {
        return [`manager: cannot load user keys: ${(err as Error).message}`];
      }
    },
  };
}
