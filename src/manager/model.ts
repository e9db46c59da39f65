// The manager's vocabulary: statuses, the JSON documents it serves, the journal records that
// change its state, and the errors and settings the Farm works with.
import type { DynamicConfig } from "../config/index.js";

export const WORKER_STATUSES = ["starting", "awake", "asleep", "error", "shutdown", "testing", "offline", "timeout"] as const;
export type WorkerStatus = (typeof WORKER_STATUSES)[number];
/** What a user may ask a worker to become. */
export const REQUESTABLE_STATUSES = ["asleep", "awake", "shutdown"] as const;
export type RequestableStatus = (typeof REQUESTABLE_STATUSES)[number];
/** What a worker may acknowledge (shutdown is accepted and ignored; sign-off is its ack). */
export const ACKABLE_STATUSES = ["starting", "awake", "asleep", "error", "shutdown", "testing", "offline"] as const;

export const TASK_STATUSES = [
  "queued",
  "claimed-by-manager",
  "active",
  "completed",
  "failed",
  "soft-failed",
  "cancel-requested",
  "canceled",
  "paused",
] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
/** What a worker may report in a task update. */
export const REPORTABLE_TASK_STATUSES = ["active", "completed", "failed", "canceled"] as const;
export type ReportableTaskStatus = (typeof REPORTABLE_TASK_STATUSES)[number];

export const JOB_STATUSES = ["queued", "active", "completed", "failed", "cancel-requested", "canceled", "paused"] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** Bounds on what one submission may hold. */
export const LIMITS = {
  tasksPerJob: 100_000,
  nameChars: 256,
  commandsPerTask: 1_000,
  parentsPerTask: 1_000,
  taskTypesPerWorker: 100,
  activityChars: 1_000,
  outputsPerJob: 10,
  pathChars: 4_096,
  secretHashChars: 1_024,
} as const;

/** The thresholds and time-outs, read through a getter on every decision so a reload applies. */
export type FarmSettings = Pick<
  DynamicConfig,
  | "manager_blacklist_threshold"
  | "manager_task_fail_after_softfail_count"
  | "manager_job_fail_percentage"
  | "manager_worker_timeout_secs"
  | "manager_task_timeout_secs"
>;

export const DEFAULT_SETTINGS: FarmSettings = {
  manager_blacklist_threshold: 3,
  manager_task_fail_after_softfail_count: 3,
  manager_job_fail_percentage: 10,
  manager_worker_timeout_secs: 60,
  manager_task_timeout_secs: 600,
};

/** A domain error with the HTTP status it maps to (400 bad input, 404 unknown, 409 conflict). */
export class FarmError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "FarmError";
  }
}

// ---- documents (JSON shapes of CONTRACTS.md) ----

export interface Command {
  name: string;
  settings: Record<string, unknown>;
}

export interface WorkerDoc {
  _id: string;
  nickname: string;
  address: string;
  status: WorkerStatus;
  platform: string;
  current_task: string; // task id or ""
  last_activity: string; // what the worker did last, e.g. "assigned task <id>"
  supported_task_types: string[];
  software: string;
}

export interface TaskSummary {
  _id: string;
  name: string;
  status: TaskStatus;
  priority: number;
  task_type: string;
  parents: string[];
  worker: string; // worker id or ""
  activity: string;
  progress: number;
}

/** What /task hands a worker. */
export interface WorkerTaskDoc {
  _id: string;
  job: string;
  name: string;
  status: TaskStatus;
  priority: number;
  job_priority: number;
  job_type: string;
  task_type: string;
  commands: Command[];
  parents: string[];
  worker: string;
  activity: string;
  log: "";
}

export interface JobDoc {
  _id: string;
  name: string;
  type: string;
  priority: number;
  status: JobStatus;
  created: string;
  updated: string;
  task_counts: Partial<Record<TaskStatus, number>>; // non-zero counts only
  progress: number; // 0-100, completed share
  outputs: string[];
  tasks?: TaskSummary[];
}

export type FarmEvent =
  | { type: "job"; doc: JobDoc }
  | { type: "task"; doc: TaskSummary & { job: string } }
  | { type: "worker"; doc: WorkerDoc };

/** Text for a task's log file; `rotate`: start a new file first (a new activation). */
export interface LogAppend {
  job_id: string;
  task_id: string;
  text: string;
  rotate?: true;
}

export interface MayKeepRunning {
  may_keep_running: boolean;
  reason?: string;
  status_requested?: RequestableStatus;
}

export type NextTaskResult =
  | { status: 200; task: WorkerTaskDoc; log?: LogAppend } // log (with rotate) only on a new assignment
  | { status: 204 }
  | { status: 406 }
  | { status: 423; body: { status_requested: RequestableStatus } };

// ---- journal records: every state change, with every decision it needs ----

export interface WorkerFields {
  nickname: string;
  address: string;
  platform: string;
  software: string;
  supported_task_types: string[];
}

export interface TaskRecordSpec {
  id: string;
  name: string;
  task_type: string;
  priority: number;
  commands: Command[];
  parents: number[]; // indexes into the job's task list
}

export type FarmRecord =
  | ({ t: "worker-registered"; at: number; worker: string; secret_hash: string } & WorkerFields)
  | ({ t: "worker-signed-on"; at: number; worker: string } & Partial<WorkerFields>)
  | { t: "worker-signed-off"; at: number; worker: string }
  | { t: "worker-timeout"; at: number; worker: string }
  /** the worker asked for work: status awake, a task it left cancel-requested is canceled */
  | { t: "worker-ready"; at: number; worker: string }
  | { t: "status-requested"; at: number; worker: string; status: RequestableStatus; lazy: boolean }
  | { t: "status-acked"; at: number; worker: string; status: WorkerStatus }
  | { t: "task-assigned"; at: number; worker: string; task: string }
  | {
      t: "task-update";
      at: number;
      worker: string;
      task: string;
      /** the resulting status, decided by the Farm (e.g. "soft-failed" for a reported failure) */
      status?: TaskStatus;
      activity?: string;
      progress?: number;
      /** this failure put the worker on the (job, task type) blacklist */
      blacklist?: true;
      /** this change failed the job (its queued tasks are canceled) */
      fail_job?: true;
    }
  | { t: "task-returned"; at: number; worker: string; task: string }
  | { t: "task-timeout"; at: number; task: string; fail_job?: true }
  | { t: "output-produced"; at: number; job: string; paths: string[] }
  | { t: "job-submitted"; at: number; job: string; name: string; type: string; priority: number; tasks: TaskRecordSpec[] }
  | { t: "job-canceled"; at: number; job: string }
  | { t: "job-requeued"; at: number; job: string; failed_only: boolean }
  | { t: "job-paused"; at: number; job: string }
  | { t: "job-resumed"; at: number; job: string }
  | { t: "job-priority"; at: number; job: string; priority: number }
  | { t: "blacklist-forgotten"; at: number; worker: string; job: string; task_type: string };

export type FarmRecordType = FarmRecord["t"];
