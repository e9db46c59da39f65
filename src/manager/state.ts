// The Farm's in-memory objects. Kept lean (one queued task should cost well under 2 KB) and
// shaped by classes so V8 gives every instance the same compact layout.
import { KeyedHeap } from "./heap.js";
import type { Command, JobStatus, RequestableStatus, TaskStatus, WorkerStatus } from "./model.js";
import { TASK_STATUSES } from "./model.js";

const NO_TASKS: readonly TaskState[] = Object.freeze([]);

export class WorkerState {
  status: WorkerStatus = "starting";
  requested: RequestableStatus | "" = "";
  lazy = false;
  /** the task this worker runs (active or cancel-requested); at most one */
  current: TaskState | undefined = undefined;
  lastActivity = "";
  /** last sign of life (ms); not journaled */
  seenAt = 0;
  /** has an entry in the worker deadline heap */
  dl = false;

  constructor(
    readonly id: string,
    public secretHash: string,
    public nickname: string,
    public address: string,
    public platform: string,
    public software: string,
    public types: readonly string[],
  ) {}
}

/** The ready tasks of one job and one task type, plus that pair's blacklist. */
export class Bucket {
  /** index in its task type's heap of buckets; -1 when empty or its job is not schedulable */
  pos = -1;
  /** ready tasks by bucketKey() */
  readonly heap = new KeyedHeap<TaskState>();
  /** workers blacklisted for this (job, task type) */
  banned: Set<string> | undefined = undefined;
  /** failures per worker on this (job, task type), for the blacklist threshold */
  failCounts: Map<string, number> | undefined = undefined;

  constructor(
    readonly job: JobState,
    readonly type: string,
  ) {}
}

export class TaskState {
  /** index in its bucket's ready heap; -1 when not ready */
  pos = -1;
  /** parents not completed yet; ready needs 0 */
  pending = 0;
  status: TaskStatus = "queued";
  /** the worker it was last assigned to (kept after it leaves, for the log and 409s) */
  worker: WorkerState | undefined = undefined;
  activity = "";
  progress = 0;
  failedBy: string[] | undefined = undefined;
  children: TaskState[] | undefined = undefined;
  /** last ping (ms) while active; not journaled */
  pingAt = 0;
  /** has an entry in the task deadline heap */
  dl = false;
  /** creation order in this farm (derived: records and snapshots keep tasks in creation order) */
  seq = 0;

  constructor(
    readonly id: string,
    readonly job: JobState,
    readonly bucket: Bucket,
    readonly name: string,
    readonly priority: number,
    readonly commands: Command[],
  ) {}

  /** set once, right after the job's tasks are made */
  parents: readonly TaskState[] = NO_TASKS;
}

export class JobState {
  status: JobStatus = "queued";
  readonly tasks: TaskState[] = [];
  readonly counts = zeroCounts();
  outputs: string[] = [];
  readonly buckets = new Map<string, Bucket>();

  constructor(
    readonly id: string,
    readonly name: string,
    readonly type: string,
    public priority: number,
    readonly created: number,
    public updated: number,
  ) {}
}

export function zeroCounts(): Record<TaskStatus, number> {
  const counts = {} as Record<TaskStatus, number>;
  for (const status of TASK_STATUSES) counts[status] = 0;
  return counts;
}

/**
 * Scheduling order: higher job priority, then higher task priority, then older. "Older" is
 * creation order, which is id order (ids are made in creation order) except across a clock step
 * back or a wrap of the id counter.
 */
export function taskBefore(a: TaskState, b: TaskState): boolean {
  const jobA = a.job.priority;
  const jobB = b.job.priority;
  if (jobA !== jobB) return jobA > jobB;
  if (a.priority !== b.priority) return a.priority > b.priority;
  return a.seq < b.seq;
}

/** A task's place among the ready tasks of its job (a bucket): higher priority, then older. */
export function bucketKey(task: TaskState): number {
  return (101 - task.priority) * 2 ** 40 + task.seq; // exact: < 2^47, seq < 2^40
}

/** A job whose ready tasks may be handed out. */
export function schedulable(status: JobStatus): boolean {
  return status === "queued" || status === "active";
}

/** A task a worker may be given, once its parents are completed. */
export function runnableStatus(status: TaskStatus): boolean {
  return status === "queued" || status === "soft-failed";
}
