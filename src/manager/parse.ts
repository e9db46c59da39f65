// Checks the JSON bodies workers send (WorkerRegistration, WorkerSignonDoc, TaskUpdate, FileProduced).
// Known fields must have their type; unknown fields are ignored, because real v2 workers send
// more than the documents list (older ones send `supported_job_types` and activity fields).
import { HttpError } from "../http/index.js";

const MAX_STRING = 1024;
const MAX_LIST = 256;
/** a task's log text per update (the body limit bounds it too) */
const MAX_LOG = 8 * 1024 * 1024;
const TASK_TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export interface Registration {
  secret: string;
  platform: string;
  supported_task_types: string[];
  nickname: string;
}

export interface SignOn {
  supported_task_types?: string[];
  nickname?: string;
}

export interface TaskUpdateBody {
  task_status?: string;
  activity?: string;
  log?: string;
  task_progress_percentage?: number;
  current_command_idx?: number;
  command_progress_percentage?: number;
  metrics?: Record<string, unknown>;
}

type Obj = Record<string, unknown>;

function object(body: unknown, what: string): Obj {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new HttpError(400, `body must be a JSON object (${what})`);
  return body as Obj;
}

function str(o: Obj, key: string, max = MAX_STRING): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw new HttpError(400, `${key} must be a string`);
  if (v.length > max) throw new HttpError(400, `${key} is longer than ${max} characters`);
  return v;
}

function int(o: Obj, key: string, min: number, max: number): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v)) throw new HttpError(400, `${key} must be a number`);
  return Math.min(max, Math.max(min, Math.round(v)));
}

function taskTypes(o: Obj, key: string): string[] | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.length > MAX_LIST) throw new HttpError(400, `${key} must be a list of at most ${MAX_LIST} task types`);
  for (const t of v) if (typeof t !== "string" || !TASK_TYPE_RE.test(t)) throw new HttpError(400, `${key}: ${JSON.stringify(t)} is not a task type`);
  return [...new Set(v as string[])];
}

export function parseRegistration(body: unknown): Registration {
  const o = object(body, "WorkerRegistration");
  const secret = str(o, "secret");
  if (!secret) throw new HttpError(400, "secret is required");
  return {
    secret,
    platform: str(o, "platform") ?? "",
    supported_task_types: taskTypes(o, "supported_task_types") ?? taskTypes(o, "supported_job_types") ?? [],
    nickname: str(o, "nickname") ?? "",
  };
}

export function parseSignOn(body: unknown): SignOn {
  // workers may sign on with an empty body
  if (body === undefined) return {};
  const o = object(body, "WorkerSignonDoc");
  const out: SignOn = {};
  const types = taskTypes(o, "supported_task_types") ?? taskTypes(o, "supported_job_types");
  if (types) out.supported_task_types = types;
  const nickname = str(o, "nickname");
  if (nickname !== undefined) out.nickname = nickname;
  return out;
}

const TASK_STATUSES = new Set(["queued", "claimed-by-manager", "active", "completed", "failed", "soft-failed", "cancel-requested", "canceled", "paused"]);

export function parseTaskUpdate(body: unknown): TaskUpdateBody {
  const o = object(body, "TaskUpdate");
  const out: TaskUpdateBody = {};
  const status = str(o, "task_status", 64);
  if (status !== undefined) {
    if (!TASK_STATUSES.has(status)) throw new HttpError(400, `task_status ${JSON.stringify(status)} is not a task status`);
    out.task_status = status;
  }
  const activity = str(o, "activity") ?? str(o, "description");
  if (activity !== undefined) out.activity = activity;
  const log = str(o, "log", MAX_LOG);
  if (log) out.log = log;
  const p = int(o, "task_progress_percentage", 0, 100) ?? int(o, "percentage_complete_task", 0, 100);
  if (p !== undefined) out.task_progress_percentage = p;
  const idx = int(o, "current_command_idx", 0, 1_000_000);
  if (idx !== undefined) out.current_command_idx = idx;
  const cp = int(o, "command_progress_percentage", 0, 100) ?? int(o, "percentage_complete_command", 0, 100);
  if (cp !== undefined) out.command_progress_percentage = cp;
  if (o.metrics !== undefined && o.metrics !== null) out.metrics = object(o.metrics, "metrics");
  return out;
}

/** FileProduced: an empty list is 422 (the spec's answer), not 400. */
export function parseOutputProduced(body: unknown): string[] {
  const o = object(body, "FileProduced");
  const paths = o.paths;
  if (paths === undefined || paths === null || (Array.isArray(paths) && paths.length === 0)) throw new HttpError(422, "no paths");
  if (!Array.isArray(paths) || paths.length > MAX_LIST) throw new HttpError(400, `paths must be a list of at most ${MAX_LIST} strings`);
  for (const p of paths) if (typeof p !== "string" || p.length > 4096) throw new HttpError(400, "paths must be strings");
  return paths as string[];
}
