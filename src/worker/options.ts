// The reference worker's options: what the command line gives, and the intervals (5 s in
// production; tests shorten them through STEVEDORE_WORKER_* environment variables).
import { homedir, hostname } from "node:os";
import { dirname, join } from "node:path";

export const TASK_TYPES = ["sleep", "echo", "exec", "docker-run"] as const;

export interface Intervals {
  /** pause between /task polls while the manager has no task (204), and between /status-change polls asleep */
  idleMs: number;
  /** log lines and progress are sent at least this often while a task runs */
  flushMs: number;
  /** /may-i-run is asked this often while a task runs */
  mayIRunMs: number;
  /** back-off while the manager is unreachable: starts here, doubles, capped at backoffMaxMs, ±20 % jitter */
  backoffMinMs: number;
  backoffMaxMs: number;
  /** every request to the manager: connect + answer */
  requestTimeoutMs: number;
  /** a stopped command gets this long after SIGTERM (exec) or `docker stop` (docker-run) before SIGKILL */
  killGraceMs: number;
  /** how long shutdown (signal or `shutdown` request) may spend reporting and signing off */
  signOffTimeoutMs: number;
}

export const DEFAULT_INTERVALS: Intervals = {
  idleMs: 5_000,
  flushMs: 5_000,
  mayIRunMs: 5_000,
  backoffMinMs: 1_000,
  backoffMaxMs: 30_000,
  requestTimeoutMs: 30_000,
  killGraceMs: 10_000,
  signOffTimeoutMs: 15_000,
};

/** Environment variable per interval (documented for tests; production keeps the defaults). */
export const INTERVAL_ENV: Record<keyof Intervals, string> = {
  idleMs: "STEVEDORE_WORKER_IDLE_MS",
  flushMs: "STEVEDORE_WORKER_FLUSH_MS",
  mayIRunMs: "STEVEDORE_WORKER_MAY_I_RUN_MS",
  backoffMinMs: "STEVEDORE_WORKER_BACKOFF_MIN_MS",
  backoffMaxMs: "STEVEDORE_WORKER_BACKOFF_MAX_MS",
  requestTimeoutMs: "STEVEDORE_WORKER_REQUEST_TIMEOUT_MS",
  killGraceMs: "STEVEDORE_WORKER_KILL_GRACE_MS",
  signOffTimeoutMs: "STEVEDORE_WORKER_SIGN_OFF_TIMEOUT_MS",
};

/** The defaults with any STEVEDORE_WORKER_*_MS override (1 ms .. 1 day; anything else is an error). */
export function intervalsFromEnv(env: NodeJS.ProcessEnv = process.env): Intervals {
  const out = { ...DEFAULT_INTERVALS };
  for (const [key, name] of Object.entries(INTERVAL_ENV) as [keyof Intervals, string][]) {
    const raw = env[name];
    if (raw === undefined || raw === "") continue;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > 86_400_000) throw new Error(`${name} must be an integer from 1 to 86400000 (ms), not ${JSON.stringify(raw)}`);
    out[key] = n;
  }
  return out;
}

export interface WorkerOptions {
  /** base URL of the manager, e.g. http://127.0.0.1:8083 */
  manager: string;
  taskTypes: string[];
  nickname: string;
  /** where the registration (worker id and secret) is kept */
  stateFile: string;
  /** HS256 secret for /register-worker when the manager sets manager_registration_secret */
  registrationSecret?: string;
  /** Docker socket for docker-run */
  dockerSocket: string;
  intervals: Intervals;
  /** the Shaman cache (exec commands with `checkout`): blobs by checksum, work directories */
  shamanCache: string;
  /** --cacert: PEM certificates trusted for an https:// manager instead of the system's */
  ca?: Buffer;
}

/** $STEVEDORE_WORKER_STATE, else /var/lib/stevedore/worker.json as root, else $XDG_STATE_HOME or ~/.local/state. */
export function defaultStateFile(env: NodeJS.ProcessEnv = process.env): string {
  if (env.STEVEDORE_WORKER_STATE) return env.STEVEDORE_WORKER_STATE;
  if (process.getuid?.() === 0) return "/var/lib/stevedore/worker.json";
  return join(env.XDG_STATE_HOME || join(homedir(), ".local", "state"), "stevedore", "worker.json");
}

export function defaultNickname(): string {
  return hostname();
}

/** http(s) URL without a trailing slash; throws on anything else. */
export function normalizeManagerUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`invalid manager URL ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error(`manager URL must be http:// or https://, not ${url.protocol}`);
  if (url.username || url.password) throw new Error("manager URL must not carry credentials");
  if (url.search || url.hash) throw new Error("manager URL must not have a query or fragment");
  return url.origin + url.pathname.replace(/\/+$/, "");
}

/** beside the state file: `<dir of state file>/shaman-cache` */
export function defaultShamanCache(stateFile: string): string {
  return join(dirname(stateFile), "shaman-cache");
}
