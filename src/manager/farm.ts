// The manager's task farm: workers, jobs, tasks and the scheduler, in memory and event-sourced.
// A public mutating method decides on the current state (reading the clock value it is given and
// the settings), writes every decision into a record, applies it through apply() — the only code
// that mutates state — and hands it to `persist` (the journal). Replaying the records on a
// snapshot rebuilds the same state. No HTTP and no file I/O here: log text is returned.
import { log } from "../log.js";
import { DeadlineHeap } from "./deadlines.js";
import { iso, jobDoc, taskSummary, workerDoc, workerTaskDoc } from "./docs.js";
import { newObjectId } from "./ids.js";
import { validateJobSpec } from "./job-spec.js";
import {
  ACKABLE_STATUSES,
  DEFAULT_SETTINGS,
  FarmError,
  LIMITS,
  REPORTABLE_TASK_STATUSES,
  REQUESTABLE_STATUSES,
  type Command,
  type FarmEvent,
  type FarmRecord,
  type FarmSettings,
  type JobDoc,
  type JobStatus,
  type LogAppend,
  type MayKeepRunning,
  type NextTaskResult,
  type RequestableStatus,
  type ReportableTaskStatus,
  type TaskStatus,
  type TaskSummary,
  type WorkerDoc,
  type WorkerFields,
  type WorkerStatus,
} from "./model.js";
import { ReadyQueue } from "./ready-queue.js";
import { Bucket, bucketKey, JobState, runnableStatus, schedulable, TaskState, WorkerState, zeroCounts } from "./state.js";

export interface FarmOptions {
  /** called with every record after it is applied (the HTTP layer journals it before replying) */
  persist?: (record: FarmRecord) => void;
  /** thresholds and time-outs, read on every decision */
  settings?: () => FarmSettings;
}

export interface RestoreOptions extends FarmOptions {
  /** the restart time: every live worker and active task gets a fresh deadline from it */
  now?: number;
}

export interface WorkerRegistration {
  secret_hash: string; // opaque (scrypt, made by the auth layer)
  nickname?: string;
  platform?: string;
  supported_task_types?: string[];
  address?: string;
  software?: string;
}

export interface WorkerSignOn {
  nickname?: string;
  supported_task_types?: string[];
  address?: string;
  software?: string;
}

export interface TaskUpdate {
  task_status?: ReportableTaskStatus;
  activity?: string;
  log?: string;
  task_progress_percentage?: number;
  current_command_idx?: number;
  command_progress_percentage?: number;
  metrics?: unknown;
}

export interface FarmSnapshot {
  format: 1;
  workers: {
    id: string;
    secret_hash: string;
    nickname: string;
    address: string;
    platform: string;
    software: string;
    supported_task_types: string[];
    status: WorkerStatus;
    status_requested: RequestableStatus | "";
    lazy: boolean;
    current_task: string;
    last_activity: string;
  }[];
  jobs: {
    id: string;
    name: string;
    type: string;
    priority: number;
    status: JobStatus;
    created: number;
    updated: number;
    outputs: string[];
    blacklists: { task_type: string; banned: string[]; fail_counts: [string, number][] }[];
    tasks: {
      id: string;
      name: string;
      task_type: string;
      priority: number;
      commands: Command[];
      parents: number[];
      status: TaskStatus;
      worker: string;
      activity: string;
      progress: number;
      failed_by: string[];
    }[];
  }[];
}

type Dirty = JobState | TaskState | WorkerState;

const line = (now: number, text: string): string => `${iso(now)} manager: ${text}\n`;

export class Farm {
  private readonly workers = new Map<string, WorkerState>();
  private readonly jobs = new Map<string, JobState>();
  private readonly tasks = new Map<string, TaskState>();
  /** workers by supported task type, for "is any other worker left to try this task" */
  private readonly typeWorkers = new Map<string, Set<WorkerState>>();
  private readonly ready = new ReadyQueue();
  private readonly workerDeadlines = new DeadlineHeap<WorkerState>();
  private readonly taskDeadlines = new DeadlineHeap<TaskState>();
  private readonly listeners = new Set<(event: FarmEvent) => void>();
  private dirty: Set<Dirty> | undefined;
  /** the next task's creation sequence number (derived; ties in scheduling go to the lower) */
  private nextSeq = 0;
  private readonly persist: (record: FarmRecord) => void;
  private readonly settings: () => FarmSettings;

  constructor(options: FarmOptions = {}) {
    this.persist = options.persist ?? (() => {});
    this.settings = options.settings ?? (() => DEFAULT_SETTINGS);
  }

  /** Rebuilds a farm from a snapshot (or nothing) and the records journaled after it. */
  static restore(snapshot: unknown, records: Iterable<unknown>, options: RestoreOptions = {}): Farm {
    const farm = new Farm(options);
    if (snapshot !== undefined) farm.load(snapshot as FarmSnapshot);
    for (const record of records) farm.apply(record as FarmRecord);
    farm.grace(options.now ?? Date.now());
    return farm;
  }

  onEvent(listener: (event: FarmEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ---------------------------------------------------------------- reads

  getJob(jobId: string, withTasks = true): JobDoc | undefined {
    const job = this.jobs.get(jobId);
    return job && jobDoc(job, withTasks);
  }

  listJobs(status?: string): JobDoc[] {
    const out: JobDoc[] = [];
    for (const job of this.jobs.values()) if (status === undefined || job.status === status) out.push(jobDoc(job, false));
    return out;
  }

  getTask(taskId: string): (TaskSummary & { job: string }) | undefined {
    const task = this.tasks.get(taskId);
    return task && { ...taskSummary(task), job: task.job.id };
  }

  getWorker(workerId: string): WorkerDoc | undefined {
    const worker = this.workers.get(workerId);
    return worker && workerDoc(worker);
  }

  listWorkers(): WorkerDoc[] {
    return [...this.workers.values()].map(workerDoc);
  }

  /** The stored (opaque) secret hash, for the auth layer. */
  /** how many workers and jobs, by status (admin `status`) */
  counts(): { workers: Record<string, number>; jobs: Record<string, number> } {
    const workers: Record<string, number> = {};
    const jobs: Record<string, number> = {};
    for (const w of this.workers.values()) workers[w.status] = (workers[w.status] ?? 0) + 1;
    for (const j of this.jobs.values()) jobs[j.status] = (jobs[j.status] ?? 0) + 1;
    return { workers, jobs };
  }

  /** tasks by status (metrics scrapes; one pass over every task) */
  taskCounts(): Record<string, number> {
    const tasks: Record<string, number> = {};
    for (const t of this.tasks.values()) tasks[t.status] = (tasks[t.status] ?? 0) + 1;
    return tasks;
  }

  workerSecretHash(workerId: string): string | undefined {
    return this.workers.get(workerId)?.secretHash;
  }

  // ---------------------------------------------------------------- workers

  registerWorker(registration: WorkerRegistration, now: number): WorkerDoc {
    const reg = registration as unknown as Record<string, unknown>;
    if (typeof reg.secret_hash !== "string" || reg.secret_hash.length === 0 || reg.secret_hash.length > LIMITS.secretHashChars) {
      throw new FarmError(400, 'field "secret_hash": must be a non-empty string');
    }
    const fields = workerFields(reg, true);
    const id = newObjectId(now);
    this.commit({ t: "worker-registered", at: now, worker: id, secret_hash: reg.secret_hash, ...(fields as WorkerFields) });
    const worker = this.workers.get(id)!;
    this.touch(worker, now);
    return workerDoc(worker);
  }

  /** Applies changed fields, re-queues a task the worker still held, status `starting`. */
  signOn(workerId: string, signOn: WorkerSignOn, now: number): LogAppend[] {
    const worker = this.worker(workerId);
    const fields = workerFields(signOn as unknown as Record<string, unknown>, false);
    const logs = this.releaseLogs(worker, "signed on again", now);
    this.commit({ t: "worker-signed-on", at: now, worker: worker.id, ...fields });
    this.touch(worker, now);
    return logs;
  }

  /** Re-queues the worker's task, status `offline`. */
  signOff(workerId: string, now: number): LogAppend[] {
    const worker = this.worker(workerId);
    const logs = this.releaseLogs(worker, "signed off", now);
    this.commit({ t: "worker-signed-off", at: now, worker: worker.id });
    return logs;
  }

  /** A sign of life (any authenticated request); not journaled. */
  touchWorker(workerId: string, now: number): void {
    this.touch(this.worker(workerId), now);
  }

  nextTask(workerId: string, now: number): NextTaskResult {
    const worker = this.worker(workerId);
    this.touch(worker, now);
    if (worker.requested) return { status: 423, body: { status_requested: worker.requested } };
    if (worker.types.length === 0) return { status: 406 };
    const current = worker.current;
    if (current?.status === "active") {
      current.pingAt = now;
      if (worker.status !== "awake") this.commit({ t: "worker-ready", at: now, worker: worker.id });
      return { status: 200, task: workerTaskDoc(current) };
    }
    const task = this.ready.pick(worker.types, worker.id);
    if (!task) {
      if (worker.status !== "awake" || current) this.commit({ t: "worker-ready", at: now, worker: worker.id });
      this.touch(worker, now);
      return { status: 204 };
    }
    this.commit({ t: "task-assigned", at: now, worker: worker.id, task: task.id });
    this.touch(worker, now);
    const text = line(now, `task assigned to worker ${describe(worker)}`);
    return { status: 200, task: workerTaskDoc(task), log: { job_id: task.job.id, task_id: task.id, text, rotate: true } };
  }

  /**
   * A worker's report on its task. Unknown task: 404; assigned to another worker: 409 and
   * nothing applied. Returns the text for the task's log (the worker's lines, then the
   * manager's), appended even when the task is no longer active.
   */
  updateTask(workerId: string, taskId: string, update: TaskUpdate, now: number): { log?: LogAppend } {
    const worker = this.worker(workerId);
    this.touch(worker, now);
    const u = parseTaskUpdate(update);
    const task = this.tasks.get(taskId);
    if (!task) throw new FarmError(404, "unknown task");
    if (task.worker !== worker) throw new FarmError(409, "task is assigned to another worker");
    let text = u.log ?? "";
    if (text && !text.endsWith("\n")) text += "\n";
    const record: Extract<FarmRecord, { t: "task-update" }> = { t: "task-update", at: now, worker: worker.id, task: task.id };
    if (task.status === "active") {
      task.pingAt = now;
      if (u.activity !== undefined && u.activity !== task.activity) record.activity = u.activity;
      if (u.progress !== undefined && u.progress !== task.progress) record.progress = u.progress;
      if (u.task_status === "completed") record.status = "completed";
      else if (u.task_status === "canceled") {
        record.status = "queued";
        text += line(now, `worker ${describe(worker)} stopped the task; re-queued`);
      } else if (u.task_status === "failed") text += this.decideFailure(task, worker, record, now);
    } else if (task.status === "cancel-requested" && u.task_status !== undefined && u.task_status !== "active") {
      record.status = u.task_status === "completed" ? "completed" : "canceled";
    }
    if (record.status !== undefined || record.activity !== undefined || record.progress !== undefined) this.commit(record);
    return text ? { log: { job_id: task.job.id, task_id: task.id, text } } : {};
  }

  /** Whether the worker may keep running the task; a yes refreshes the task's ping. */
  mayIRun(workerId: string, taskId: string, now: number): MayKeepRunning {
    const worker = this.worker(workerId);
    this.touch(worker, now);
    const task = this.tasks.get(taskId);
    if (!task) return { may_keep_running: false, reason: "task is unknown" };
    if (task.worker !== worker) return { may_keep_running: false, reason: "task is assigned to another worker" };
    if (task.status !== "active") return { may_keep_running: false, reason: `task is ${task.status}` };
    if (worker.requested && !worker.lazy && worker.requested !== "awake") {
      return { may_keep_running: false, reason: "worker status change requested", status_requested: worker.requested };
    }
    task.pingAt = now;
    return { may_keep_running: true };
  }

  /** The worker hands its task back: active → queued (cancel-requested → canceled). */
  returnTask(workerId: string, taskId: string, now: number): LogAppend[] {
    const worker = this.worker(workerId);
    this.touch(worker, now);
    const task = this.tasks.get(taskId);
    if (!task) throw new FarmError(404, "unknown task");
    if (task.worker !== worker || worker.current !== task) throw new FarmError(409, "task is not running on this worker");
    const logs = this.releaseLogs(worker, "returned it", now);
    this.commit({ t: "task-returned", at: now, worker: worker.id, task: task.id });
    return logs;
  }

  /** The pending status request, or undefined (204). */
  statusChange(workerId: string, now: number): { status_requested: RequestableStatus } | undefined {
    const worker = this.worker(workerId);
    this.touch(worker, now);
    return worker.requested ? { status_requested: worker.requested } : undefined;
  }

  /** status := the acknowledged value, request cleared; `shutdown` is ignored (sign-off acks it). */
  ackStatusChange(workerId: string, status: string, now: number): void {
    const worker = this.worker(workerId);
    this.touch(worker, now);
    if (!(ACKABLE_STATUSES as readonly string[]).includes(status)) throw new FarmError(400, `cannot acknowledge status ${JSON.stringify(status)}`);
    if (status === "shutdown") return;
    if (worker.requested !== status) log.warn("worker acknowledged a status that was not requested", { worker: worker.id, status, requested: worker.requested });
    this.commit({ t: "status-acked", at: now, worker: worker.id, status: status as WorkerStatus });
    this.touch(worker, now);
  }

  requestStatus(workerId: string, status: string, lazy: boolean, now: number): void {
    const worker = this.worker(workerId);
    if (!(REQUESTABLE_STATUSES as readonly string[]).includes(status)) throw new FarmError(400, `cannot request status ${JSON.stringify(status)}`);
    if (typeof lazy !== "boolean") throw new FarmError(400, 'field "lazy": must be a boolean');
    this.commit({ t: "status-requested", at: now, worker: worker.id, status: status as RequestableStatus, lazy });
  }

  /** Paths a worker produced, kept (last 10) on the job of its current task; false when it has none. */
  outputProduced(workerId: string, paths: unknown, now: number): boolean {
    const worker = this.worker(workerId);
    this.touch(worker, now);
    if (!Array.isArray(paths) || paths.some((p) => typeof p !== "string" || p.length > LIMITS.pathChars)) {
      throw new FarmError(400, `field "paths": must be an array of strings of at most ${LIMITS.pathChars} characters`);
    }
    if (paths.length === 0) throw new FarmError(422, "no paths");
    const job = worker.current?.job;
    if (!job) {
      log.warn("output produced by a worker without a task; dropped", { worker: worker.id });
      return false;
    }
    this.commit({ t: "output-produced", at: now, job: job.id, paths: (paths as string[]).slice(-LIMITS.outputsPerJob) });
    return true;
  }

  /** every blacklist line (worker, job, task type), optionally of one worker */
  listBlacklist(workerId?: string): { worker: string; job: string; task_type: string }[] {
    const out: { worker: string; job: string; task_type: string }[] = [];
    for (const job of this.jobs.values())
      for (const bucket of job.buckets.values())
        for (const w of bucket.banned ?? []) if (workerId === undefined || w === workerId) out.push({ worker: w, job: job.id, task_type: bucket.type });
    return out;
  }

  forgetBlacklist(workerId: string, jobId: string, taskType: string, now: number): void {
    const worker = this.worker(workerId);
    const bucket = this.job(jobId).buckets.get(taskType);
    if (!bucket?.banned?.has(worker.id)) throw new FarmError(404, "no such blacklist line");
    this.commit({ t: "blacklist-forgotten", at: now, worker: worker.id, job: jobId, task_type: taskType });
  }

  // ---------------------------------------------------------------- jobs

  /** Validates (FarmError 400), gives ids, queues; returns the job with its tasks. */
  submitJob(spec: unknown, now: number): JobDoc {
    const valid = validateJobSpec(spec);
    const jobId = newObjectId(now);
    const tasks = valid.tasks.map((t) => ({ id: newObjectId(now), ...t }));
    this.commit({ t: "job-submitted", at: now, job: jobId, name: valid.name, type: valid.type, priority: valid.priority, tasks });
    return jobDoc(this.jobs.get(jobId)!, true);
  }

  /** Queued tasks canceled, active ones cancel-requested; the job is canceled once none run. */
  cancelJob(jobId: string, now: number): JobDoc {
    const job = this.job(jobId);
    if (job.status === "completed") throw new FarmError(409, "job is completed");
    if (job.status !== "canceled" && job.status !== "cancel-requested") this.commit({ t: "job-canceled", at: now, job: job.id });
    return jobDoc(job, false);
  }

  /** Every task that is not running (or with failedOnly: failed and canceled ones) back to queued. */
  requeueJob(jobId: string, failedOnly: boolean, now: number): JobDoc {
    const job = this.job(jobId);
    if (typeof failedOnly !== "boolean") throw new FarmError(400, 'field "failed_only": must be a boolean');
    this.commit({ t: "job-requeued", at: now, job: job.id, failed_only: failedOnly });
    return jobDoc(job, false);
  }

  pauseJob(jobId: string, now: number): JobDoc {
    const job = this.job(jobId);
    if (job.status === "paused") return jobDoc(job, false);
    if (!schedulable(job.status)) throw new FarmError(409, `job is ${job.status}`);
    this.commit({ t: "job-paused", at: now, job: job.id });
    return jobDoc(job, false);
  }

  resumeJob(jobId: string, now: number): JobDoc {
    const job = this.job(jobId);
    if (schedulable(job.status)) return jobDoc(job, false);
    if (job.status !== "paused") throw new FarmError(409, `job is ${job.status}`);
    this.commit({ t: "job-resumed", at: now, job: job.id });
    return jobDoc(job, false);
  }

  setJobPriority(jobId: string, priority: unknown, now: number): JobDoc {
    const job = this.job(jobId);
    if (typeof priority !== "number" || !Number.isInteger(priority) || priority < 1 || priority > 100) {
      throw new FarmError(400, 'field "priority": must be an integer 1-100');
    }
    if (priority !== job.priority) this.commit({ t: "job-priority", at: now, job: job.id, priority });
    return jobDoc(job, false);
  }

  // ---------------------------------------------------------------- time-outs

  /** When expire() next has work (ms), or undefined; may be early (expire then re-arms). */
  nextDeadline(): number | undefined {
    const s = this.settings();
    const workerKey = this.workerDeadlines.peekKey();
    const taskKey = this.taskDeadlines.peekKey();
    const workerDue = workerKey === undefined ? Infinity : workerKey + s.manager_worker_timeout_secs * 1000;
    const taskDue = taskKey === undefined ? Infinity : taskKey + s.manager_task_timeout_secs * 1000;
    const due = Math.min(workerDue, taskDue);
    return due === Infinity ? undefined : due;
  }

  /**
   * Silent workers → `timeout` (their task re-queued); active tasks without a ping → `failed`
   * ("task timed out on worker X"). Returns the log text to append.
   */
  expire(now: number): LogAppend[] {
    const s = this.settings();
    const workerMs = s.manager_worker_timeout_secs * 1000;
    const taskMs = s.manager_task_timeout_secs * 1000;
    const logs: LogAppend[] = [];
    for (let worker = this.workerDeadlines.popDue(now - workerMs); worker; worker = this.workerDeadlines.popDue(now - workerMs)) {
      if (!liveWorker(worker)) continue;
      if (worker.seenAt + workerMs > now) {
        this.workerDeadlines.schedule(worker, worker.seenAt);
        continue;
      }
      log.warn("worker timed out", { worker: worker.id, nickname: worker.nickname });
      logs.push(...this.releaseLogs(worker, "timed out", now));
      this.commit({ t: "worker-timeout", at: now, worker: worker.id });
    }
    for (let task = this.taskDeadlines.popDue(now - taskMs); task; task = this.taskDeadlines.popDue(now - taskMs)) {
      if (task.status !== "active" && task.status !== "cancel-requested") continue;
      if (task.pingAt + taskMs > now) {
        this.taskDeadlines.schedule(task, task.pingAt);
        continue;
      }
      const record: Extract<FarmRecord, { t: "task-timeout" }> = { t: "task-timeout", at: now, task: task.id };
      if (task.status === "active" && this.jobWouldFail(task.job, 1)) record.fail_job = true;
      log.warn("task timed out", { task: task.id, worker: task.worker?.id });
      const text = line(now, task.status === "active" ? `task timed out on worker ${describe(task.worker)}; failed` : "task timed out; canceled");
      logs.push({ job_id: task.job.id, task_id: task.id, text });
      this.commit(record);
    }
    return logs;
  }

  // ---------------------------------------------------------------- persistence

  snapshot(): FarmSnapshot {
    return {
      format: 1,
      workers: [...this.workers.values()].map((w) => ({
        id: w.id,
        secret_hash: w.secretHash,
        nickname: w.nickname,
        address: w.address,
        platform: w.platform,
        software: w.software,
        supported_task_types: [...w.types],
        status: w.status,
        status_requested: w.requested,
        lazy: w.lazy,
        current_task: w.current?.id ?? "",
        last_activity: w.lastActivity,
      })),
      jobs: [...this.jobs.values()].map((job) => {
        const index = new Map(job.tasks.map((t, i) => [t, i]));
        return {
          id: job.id,
          name: job.name,
          type: job.type,
          priority: job.priority,
          status: job.status,
          created: job.created,
          updated: job.updated,
          outputs: [...job.outputs],
          blacklists: [...job.buckets.values()]
            .filter((b) => b.banned?.size || b.failCounts?.size)
            .map((b) => ({ task_type: b.type, banned: [...(b.banned ?? [])], fail_counts: [...(b.failCounts ?? [])] })),
          tasks: job.tasks.map((t) => ({
            id: t.id,
            name: t.name,
            task_type: t.bucket.type,
            priority: t.priority,
            commands: t.commands,
            parents: t.parents.map((p) => index.get(p)!),
            status: t.status,
            worker: t.worker?.id ?? "",
            activity: t.activity,
            progress: t.progress,
            failed_by: [...(t.failedBy ?? [])],
          })),
        };
      }),
    };
  }

  /** Applies one record: the only code that changes the farm's state. Reads no clock or settings. */
  apply(record: FarmRecord): void {
    const dirty = this.listeners.size > 0 ? new Set<Dirty>() : undefined;
    this.dirty = dirty;
    try {
      this.applyRecord(record);
    } finally {
      this.dirty = undefined;
    }
    if (dirty) this.emit(dirty);
  }

  // ---------------------------------------------------------------- decisions (no mutation)

  private commit(record: FarmRecord): void {
    this.apply(record);
    this.persist(record);
  }

  /** Fills in a failure report's outcome; returns the manager's log line. */
  private decideFailure(task: TaskState, worker: WorkerState, record: Extract<FarmRecord, { t: "task-update" }>, now: number): string {
    const s = this.settings();
    const bucket = task.bucket;
    const failuresHere = (bucket.failCounts?.get(worker.id) ?? 0) + 1;
    if (failuresHere >= s.manager_blacklist_threshold && !bucket.banned?.has(worker.id)) record.blacklist = true;
    const failedBy = new Set(task.failedBy).add(worker.id);
    const hard = failedBy.size >= s.manager_task_fail_after_softfail_count || !this.anotherWorkerCanTry(task, failedBy);
    record.status = hard ? "failed" : "soft-failed";
    if (hard && this.jobWouldFail(task.job, 1)) record.fail_job = true;
    let text = `task ${record.status} by worker ${describe(worker)} (failed by ${failedBy.size} worker(s))`;
    if (record.blacklist) text += `; worker blacklisted for task type ${bucket.type} of this job`;
    if (record.fail_job) text += "; job failed";
    return line(now, text);
  }

  /** Is some registered worker (any status) left that supports the task and may run it? */
  private anotherWorkerCanTry(task: TaskState, failedBy: Set<string>): boolean {
    const banned = task.bucket.banned;
    for (const candidate of this.typeWorkers.get(task.bucket.type) ?? []) {
      if (!failedBy.has(candidate.id) && !banned?.has(candidate.id)) return true;
    }
    return false;
  }

  private jobWouldFail(job: JobState, moreFailed: number): boolean {
    if (job.status !== "queued" && job.status !== "active" && job.status !== "paused") return false;
    const failed = job.counts.failed + moreFailed;
    return failed > 0 && failed * 100 >= this.settings().manager_job_fail_percentage * job.tasks.length;
  }

  /** The log line for the task a worker lets go of (re-queued, or canceled if cancel-requested). */
  private releaseLogs(worker: WorkerState, why: string, now: number): LogAppend[] {
    const task = worker.current;
    if (!task) return [];
    const outcome = task.status === "active" ? "re-queued" : "canceled";
    return [{ job_id: task.job.id, task_id: task.id, text: line(now, `task ${outcome}: worker ${describe(worker)} ${why}`) }];
  }

  private touch(worker: WorkerState, now: number): void {
    if (now > worker.seenAt) worker.seenAt = now;
    if (liveWorker(worker)) this.workerDeadlines.schedule(worker, worker.seenAt);
  }

  private worker(workerId: string): WorkerState {
    const worker = this.workers.get(workerId);
    if (!worker) throw new FarmError(404, "unknown worker");
    return worker;
  }

  private job(jobId: string): JobState {
    const job = this.jobs.get(jobId);
    if (!job) throw new FarmError(404, "unknown job");
    return job;
  }

  // ---------------------------------------------------------------- apply

  private applyRecord(r: FarmRecord): void {
    switch (r.t) {
      case "worker-registered": {
        const worker = new WorkerState(r.worker, r.secret_hash, r.nickname, r.address, r.platform, r.software, []);
        this.workers.set(worker.id, worker);
        this.setTypes(worker, r.supported_task_types);
        worker.lastActivity = "registered";
        return this.mark(worker);
      }
      case "worker-signed-on": {
        const worker = this.workers.get(r.worker)!;
        this.letGo(worker, r.at);
        if (r.nickname !== undefined) worker.nickname = r.nickname;
        if (r.address !== undefined) worker.address = r.address;
        if (r.platform !== undefined) worker.platform = r.platform;
        if (r.software !== undefined) worker.software = r.software;
        if (r.supported_task_types !== undefined) this.setTypes(worker, r.supported_task_types);
        return this.setWorkerStatus(worker, "starting", "signed on");
      }
      case "worker-signed-off": {
        const worker = this.workers.get(r.worker)!;
        this.letGo(worker, r.at);
        if (worker.requested === "shutdown") worker.requested = "";
        return this.setWorkerStatus(worker, "offline", "signed off");
      }
      case "worker-timeout": {
        const worker = this.workers.get(r.worker)!;
        this.letGo(worker, r.at);
        return this.setWorkerStatus(worker, "timeout", "timed out");
      }
      case "worker-ready":
        return this.workerReady(this.workers.get(r.worker)!, r.at);
      case "status-requested": {
        const worker = this.workers.get(r.worker)!;
        worker.requested = r.status;
        worker.lazy = r.lazy;
        return this.mark(worker);
      }
      case "status-acked": {
        const worker = this.workers.get(r.worker)!;
        worker.requested = "";
        worker.lazy = false;
        return this.setWorkerStatus(worker, r.status, `status ${r.status}`);
      }
      case "task-assigned":
        return this.assign(this.workers.get(r.worker)!, this.tasks.get(r.task)!, r.at);
      case "task-update":
        return this.applyUpdate(r);
      case "task-returned": {
        const worker = this.workers.get(r.worker)!;
        this.letGo(worker, r.at);
        worker.lastActivity = `returned task ${r.task}`;
        return this.mark(worker);
      }
      case "task-timeout": {
        const task = this.tasks.get(r.task)!;
        if (task.status === "active") {
          task.activity = `task timed out on worker ${describe(task.worker)}`;
          this.addFailedBy(task, task.worker!.id);
          this.setTaskStatus(task, "failed", r.at);
        } else this.setTaskStatus(task, "canceled", r.at);
        this.release(task);
        if (r.fail_job) this.failJob(task.job, r.at);
        return this.rollUp(task.job, r.at);
      }
      case "output-produced": {
        const job = this.jobs.get(r.job)!;
        job.outputs = [...job.outputs, ...r.paths].slice(-LIMITS.outputsPerJob);
        job.updated = r.at;
        return this.mark(job);
      }
      case "job-submitted":
        return this.addJob(r);
      case "job-canceled": {
        const job = this.jobs.get(r.job)!;
        const running = job.counts.active + job.counts["cancel-requested"] > 0;
        this.setJobStatus(job, running ? "cancel-requested" : "canceled", r.at);
        for (const task of job.tasks) {
          if (task.status === "active") this.setTaskStatus(task, "cancel-requested", r.at);
          else if (task.status !== "completed" && task.status !== "failed" && task.status !== "cancel-requested") this.setTaskStatus(task, "canceled", r.at);
        }
        return;
      }
      case "job-requeued":
        return this.requeue(this.jobs.get(r.job)!, r.failed_only, r.at);
      case "job-paused":
        return this.setJobStatus(this.jobs.get(r.job)!, "paused", r.at);
      case "job-resumed": {
        const job = this.jobs.get(r.job)!;
        this.setJobStatus(job, "queued", r.at);
        return this.rollUp(job, r.at);
      }
      case "job-priority": {
        const job = this.jobs.get(r.job)!;
        job.priority = r.priority;
        job.updated = r.at;
        for (const bucket of job.buckets.values()) if (bucket.pos >= 0) this.ready.sync(bucket, true);
        return this.mark(job);
      }
      case "blacklist-forgotten": {
        const bucket = this.jobs.get(r.job)!.buckets.get(r.task_type)!;
        bucket.banned?.delete(r.worker);
        bucket.failCounts?.delete(r.worker);
        return;
      }
      default:
        throw new Error(`unknown farm record type ${JSON.stringify((r as { t?: unknown }).t)}`);
    }
  }

  private addJob(r: Extract<FarmRecord, { t: "job-submitted" }>): void {
    const job = new JobState(r.job, r.name, r.type, r.priority, r.at, r.at);
    this.jobs.set(job.id, job);
    for (const spec of r.tasks) {
      let bucket = job.buckets.get(spec.task_type);
      if (!bucket) job.buckets.set(spec.task_type, (bucket = new Bucket(job, spec.task_type)));
      const task = new TaskState(spec.id, job, bucket, spec.name, spec.priority, spec.commands);
      task.seq = this.nextSeq++;
      job.tasks.push(task);
      this.tasks.set(task.id, task);
    }
    r.tasks.forEach((spec, i) => {
      if (spec.parents.length > 0) this.link(job.tasks[i]!, spec.parents.map((p) => job.tasks[p]!));
    });
    job.counts.queued = job.tasks.length;
    for (const task of job.tasks) if (task.pending === 0) task.bucket.heap.push(task, bucketKey(task));
    for (const bucket of job.buckets.values()) this.ready.sync(bucket, true);
    this.mark(job);
    for (const task of job.tasks) this.mark(task);
  }

  private link(task: TaskState, parents: TaskState[]): void {
    task.parents = parents;
    for (const parent of parents) {
      (parent.children ??= []).push(task);
      if (parent.status !== "completed") task.pending++;
    }
  }

  private assign(worker: WorkerState, task: TaskState, at: number): void {
    this.workerReady(worker, at);
    if (worker.current) this.letGo(worker, at); // defensive: one task per worker
    task.worker = worker;
    task.activity = "";
    task.progress = 0;
    worker.current = task;
    this.setTaskStatus(task, "active", at);
    task.pingAt = at;
    this.taskDeadlines.schedule(task, at);
    worker.lastActivity = `assigned task ${task.id}`;
    this.mark(worker);
    this.rollUp(task.job, at);
  }

  private applyUpdate(r: Extract<FarmRecord, { t: "task-update" }>): void {
    const task = this.tasks.get(r.task)!;
    if (r.activity !== undefined) task.activity = r.activity;
    if (r.progress !== undefined) task.progress = r.progress;
    this.mark(task);
    if (r.status === undefined) return;
    if (r.status === "failed" || r.status === "soft-failed") {
      const worker = this.workers.get(r.worker)!;
      const bucket = task.bucket;
      this.addFailedBy(task, worker.id);
      (bucket.failCounts ??= new Map()).set(worker.id, (bucket.failCounts.get(worker.id) ?? 0) + 1);
      if (r.blacklist) (bucket.banned ??= new Set()).add(worker.id);
    }
    this.setTaskStatus(task, r.status, r.at);
    this.release(task);
    if (r.fail_job) this.failJob(task.job, r.at);
    this.rollUp(task.job, r.at);
  }

  private addFailedBy(task: TaskState, workerId: string): void {
    if (!task.failedBy) task.failedBy = [workerId];
    else if (!task.failedBy.includes(workerId)) task.failedBy.push(workerId);
  }

  /** The worker asked for work: status awake; a task it left cancel-requested is canceled. */
  private workerReady(worker: WorkerState, at: number): void {
    if (worker.current && worker.current.status !== "active") this.letGo(worker, at);
    this.setWorkerStatus(worker, "awake", worker.lastActivity);
  }

  /** The worker stops running its task: active → queued, cancel-requested → canceled. */
  private letGo(worker: WorkerState, at: number): void {
    const task = worker.current;
    if (!task) return;
    this.setTaskStatus(task, task.status === "active" ? "queued" : "canceled", at);
    this.release(task);
    this.rollUp(task.job, at);
  }

  private release(task: TaskState): void {
    const worker = task.worker;
    if (worker && worker.current === task) {
      worker.current = undefined;
      this.mark(worker);
    }
  }

  private setWorkerStatus(worker: WorkerState, status: WorkerStatus, activity: string): void {
    worker.status = status;
    worker.lastActivity = activity;
    this.mark(worker);
  }

  private setTypes(worker: WorkerState, types: readonly string[]): void {
    for (const type of worker.types) this.typeWorkers.get(type)?.delete(worker);
    worker.types = [...types];
    for (const type of types) {
      let set = this.typeWorkers.get(type);
      if (!set) this.typeWorkers.set(type, (set = new Set()));
      set.add(worker);
    }
  }

  /** Changes a task's status keeping counts, children's parent counters and the ready index right. */
  private setTaskStatus(task: TaskState, status: TaskStatus, at: number): void {
    const old = task.status;
    if (old === status) return;
    const job = task.job;
    job.counts[old]--;
    job.counts[status]++;
    task.status = status;
    const open = schedulable(job.status);
    if (old === "completed") {
      for (const child of task.children ?? []) {
        child.pending++;
        if (child.pos >= 0) this.ready.remove(child, open);
      }
    } else if (status === "completed") {
      for (const child of task.children ?? []) {
        if (--child.pending === 0 && runnableStatus(child.status)) this.ready.add(child, open);
      }
    }
    const ready = task.pending === 0 && runnableStatus(status);
    if (ready && task.pos < 0) this.ready.add(task, open);
    else if (!ready && task.pos >= 0) this.ready.remove(task, open);
    job.updated = at;
    this.mark(task);
    this.mark(job);
  }

  private setJobStatus(job: JobState, status: JobStatus, at: number): void {
    if (job.status === status) return;
    const wasOpen = schedulable(job.status);
    job.status = status;
    job.updated = at;
    const open = schedulable(status);
    if (wasOpen !== open) for (const bucket of job.buckets.values()) this.ready.sync(bucket, open);
    this.mark(job);
  }

  /** Job status from its task counts (no settings: failing on a percentage is a recorded decision). */
  private rollUp(job: JobState, at: number): void {
    const c = job.counts;
    const total = job.tasks.length;
    switch (job.status) {
      case "cancel-requested":
        if (c.active + c["cancel-requested"] === 0) this.setJobStatus(job, "canceled", at);
        return;
      case "paused":
        if (c.completed === total) this.setJobStatus(job, "completed", at);
        return;
      case "queued":
      case "active": {
        if (c.completed === total) return this.setJobStatus(job, "completed", at);
        // failed tasks and nothing left that can run (their dependants wait forever): the job
        // ends failed instead of staying active for ever
        if (c.failed > 0 && c.active + c["cancel-requested"] === 0 && !hasReady(job)) return this.failJob(job, at);
        const started = c.active + c.completed + c.failed + c["soft-failed"] + c["cancel-requested"] > 0;
        return this.setJobStatus(job, started ? "active" : "queued", at);
      }
      default:
        return;
    }
  }

  private failJob(job: JobState, at: number): void {
    this.setJobStatus(job, "failed", at);
    for (const task of job.tasks) if (runnableStatus(task.status)) this.setTaskStatus(task, "canceled", at);
  }

  private requeue(job: JobState, failedOnly: boolean, at: number): void {
    if (job.status !== "paused") this.setJobStatus(job, "queued", at);
    if (!failedOnly) {
      for (const bucket of job.buckets.values()) {
        bucket.banned = undefined;
        bucket.failCounts = undefined;
      }
    }
    for (const task of job.tasks) {
      if (task.status === "active" || task.status === "cancel-requested") continue;
      if (failedOnly && task.status !== "failed" && task.status !== "canceled") continue;
      task.failedBy = undefined;
      task.activity = "";
      task.progress = 0;
      this.setTaskStatus(task, "queued", at);
      this.mark(task);
    }
    job.updated = at;
    this.mark(job);
    this.rollUp(job, at);
  }

  private mark(item: Dirty): void {
    this.dirty?.add(item);
  }

  private emit(dirty: Set<Dirty>): void {
    for (const item of dirty) {
      let event: FarmEvent;
      if (item instanceof JobState) event = { type: "job", doc: jobDoc(item, false) };
      else if (item instanceof TaskState) event = { type: "task", doc: { ...taskSummary(item), job: item.job.id } };
      else event = { type: "worker", doc: workerDoc(item) };
      for (const listener of this.listeners) {
        try {
          listener(event);
        } catch (err) {
          log.error("farm event listener failed", { error: String(err) });
        }
      }
    }
  }

  // ---------------------------------------------------------------- restore

  private load(snap: FarmSnapshot): void {
    if (snap?.format !== 1) throw new Error("unknown farm snapshot format");
    for (const w of snap.workers) {
      const worker = new WorkerState(w.id, w.secret_hash, w.nickname, w.address, w.platform, w.software, []);
      worker.status = w.status;
      worker.requested = w.status_requested;
      worker.lazy = w.lazy;
      worker.lastActivity = w.last_activity;
      this.workers.set(worker.id, worker);
      this.setTypes(worker, w.supported_task_types);
    }
    const currents: [WorkerState, string][] = [];
    for (const w of snap.workers) if (w.current_task) currents.push([this.workers.get(w.id)!, w.current_task]);
    for (const j of snap.jobs) {
      const job = new JobState(j.id, j.name, j.type, j.priority, j.created, j.updated);
      job.status = j.status;
      job.outputs = [...j.outputs];
      this.jobs.set(job.id, job);
      for (const t of j.tasks) {
        let bucket = job.buckets.get(t.task_type);
        if (!bucket) job.buckets.set(t.task_type, (bucket = new Bucket(job, t.task_type)));
        const task = new TaskState(t.id, job, bucket, t.name, t.priority, t.commands);
        task.seq = this.nextSeq++;
        task.status = t.status;
        task.worker = t.worker ? this.workers.get(t.worker) : undefined;
        task.activity = t.activity;
        task.progress = t.progress;
        if (t.failed_by.length > 0) task.failedBy = [...t.failed_by];
        job.counts[t.status]++;
        job.tasks.push(task);
        this.tasks.set(task.id, task);
      }
      j.tasks.forEach((t, i) => {
        if (t.parents.length > 0) this.link(job.tasks[i]!, t.parents.map((p) => job.tasks[p]!));
      });
      for (const b of j.blacklists) {
        const bucket = job.buckets.get(b.task_type)!;
        if (b.banned.length > 0) bucket.banned = new Set(b.banned);
        if (b.fail_counts.length > 0) bucket.failCounts = new Map(b.fail_counts);
      }
      for (const task of job.tasks) if (task.pending === 0 && runnableStatus(task.status)) task.bucket.heap.push(task, bucketKey(task));
      const open = schedulable(job.status);
      for (const bucket of job.buckets.values()) this.ready.sync(bucket, open);
    }
    for (const [worker, taskId] of currents) worker.current = this.tasks.get(taskId);
  }

  /** After a restart nobody has been heard from yet: every live worker and running task starts a fresh deadline. */
  private grace(now: number): void {
    this.workerDeadlines.clear();
    this.taskDeadlines.clear();
    for (const worker of this.workers.values()) {
      worker.seenAt = now;
      if (liveWorker(worker)) this.workerDeadlines.schedule(worker, now);
    }
    for (const task of this.tasks.values()) {
      if (task.status === "active" || task.status === "cancel-requested") {
        task.pingAt = now;
        this.taskDeadlines.schedule(task, now);
      }
    }
  }

  // ---------------------------------------------------------------- checks (tests)

  /** Throws when a derived index disagrees with the state (O(everything); tests only). */
  assertConsistent(): void {
    const fail = (what: string) => {
      throw new Error(`farm inconsistent: ${what}`);
    };
    const holders = new Map<TaskState, WorkerState>();
    for (const worker of this.workers.values()) {
      const task = worker.current;
      if (!task) continue;
      if (task.worker !== worker) fail(`worker ${worker.id} holds task ${task.id} assigned elsewhere`);
      if (task.status !== "active" && task.status !== "cancel-requested") fail(`worker ${worker.id} holds ${task.status} task`);
      if (holders.has(task)) fail(`task ${task.id} held by two workers`);
      holders.set(task, worker);
    }
    for (const job of this.jobs.values()) {
      const counts = zeroCounts();
      for (const task of job.tasks) {
        counts[task.status]++;
        if ((task.status === "active" || task.status === "cancel-requested") && holders.get(task) !== task.worker) fail(`running task ${task.id} not held by its worker`);
        const pending = task.parents.filter((p) => p.status !== "completed").length;
        if (pending !== task.pending) fail(`task ${task.id} pending ${task.pending} != ${pending}`);
        const ready = pending === 0 && runnableStatus(task.status);
        if (ready !== task.pos >= 0) fail(`task ${task.id} ready=${ready} pos=${task.pos}`);
        if (task.pos >= 0 && task.bucket.heap.items[task.pos] !== task) fail(`task ${task.id} pos wrong`);
      }
      for (const status of Object.keys(counts) as TaskStatus[]) if (counts[status] !== job.counts[status]) fail(`job ${job.id} count ${status}`);
      for (const bucket of job.buckets.values()) {
        const want = schedulable(job.status) && bucket.heap.size > 0;
        if (want !== bucket.pos >= 0) fail(`bucket ${job.id}/${bucket.type} listed=${bucket.pos >= 0} want=${want}`);
      }
    }
  }
}

function liveWorker(worker: WorkerState): boolean {
  return worker.status !== "offline" && worker.status !== "timeout";
}

function describe(worker: WorkerState | undefined): string {
  if (!worker) return "(none)";
  return worker.nickname ? `${worker.nickname} (${worker.id})` : worker.id;
}

/** a task of the job is ready to be picked (queued or soft-failed with its parents completed) */
function hasReady(job: JobState): boolean {
  for (const bucket of job.buckets.values()) if (bucket.heap.size > 0) return true;
  return false;
}

function boundedString(value: unknown, field: string, max: number): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value.length > max) throw new FarmError(400, `field "${field}": must be a string of at most ${max} characters`);
  return value;
}

/** Checks a registration's worker fields (FarmError 400), before the caller pays for hashing its secret. */
export function checkWorkerFields(doc: Record<string, unknown>): void {
  workerFields(doc, true);
}

/** The worker fields of a registration or sign-on; `all`: fill defaults for missing ones. */
function workerFields(doc: Record<string, unknown>, all: boolean) {
  if (typeof doc !== "object" || doc === null) throw new FarmError(400, "expected a JSON object");
  let types: string[] | undefined;
  const rawTypes = doc.supported_task_types;
  if (rawTypes !== undefined) {
    if (!Array.isArray(rawTypes) || rawTypes.length > LIMITS.taskTypesPerWorker) {
      throw new FarmError(400, `field "supported_task_types": must be an array of at most ${LIMITS.taskTypesPerWorker} names`);
    }
    for (const type of rawTypes) {
      if (typeof type !== "string" || type.length === 0 || type.length > LIMITS.nameChars) {
        throw new FarmError(400, 'field "supported_task_types": every type must be a non-empty string of at most 256 characters');
      }
    }
    types = [...new Set(rawTypes as string[])];
  }
  const fields = {
    nickname: boundedString(doc.nickname, "nickname", LIMITS.nameChars),
    address: boundedString(doc.address, "address", LIMITS.nameChars),
    platform: boundedString(doc.platform, "platform", LIMITS.nameChars),
    software: boundedString(doc.software, "software", LIMITS.nameChars),
    supported_task_types: types,
  };
  if (all) {
    fields.nickname ??= "";
    fields.address ??= "";
    fields.platform ??= "";
    fields.software ??= "";
    fields.supported_task_types ??= [];
  } else {
    for (const key of Object.keys(fields) as (keyof typeof fields)[]) if (fields[key] === undefined) delete fields[key];
  }
  return fields;
}

/** A TaskUpdate's fields, type-checked (400 on a wrong type); activity is cut to a bound. */
function parseTaskUpdate(update: unknown): { task_status?: ReportableTaskStatus; activity?: string; log?: string; progress?: number } {
  if (typeof update !== "object" || update === null || Array.isArray(update)) throw new FarmError(400, "task update must be a JSON object");
  const u = update as Record<string, unknown>;
  const out: { task_status?: ReportableTaskStatus; activity?: string; log?: string; progress?: number } = {};
  if (u.task_status !== undefined) {
    if (!(REPORTABLE_TASK_STATUSES as readonly unknown[]).includes(u.task_status)) {
      throw new FarmError(400, `field "task_status": must be one of ${REPORTABLE_TASK_STATUSES.join(", ")}`);
    }
    out.task_status = u.task_status as ReportableTaskStatus;
  }
  if (u.activity !== undefined) {
    if (typeof u.activity !== "string") throw new FarmError(400, 'field "activity": must be a string');
    out.activity = u.activity.slice(0, LIMITS.activityChars);
  }
  if (u.log !== undefined) {
    if (typeof u.log !== "string") throw new FarmError(400, 'field "log": must be a string');
    out.log = u.log;
  }
  if (u.task_progress_percentage !== undefined) {
    if (typeof u.task_progress_percentage !== "number" || !Number.isFinite(u.task_progress_percentage)) {
      throw new FarmError(400, 'field "task_progress_percentage": must be a number');
    }
    out.progress = Math.max(0, Math.min(100, Math.round(u.task_progress_percentage)));
  }
  for (const field of ["current_command_idx", "command_progress_percentage"]) {
    if (u[field] !== undefined && typeof u[field] !== "number") throw new FarmError(400, `field "${field}": must be a number`);
  }
  return out;
}
