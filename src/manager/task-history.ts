// Each task's recent status changes (status, when, which worker) as the farm reports them, for the
// dashboard's task page. Held in memory only, bounded: it starts empty after a restart.
import type { TaskStatus } from "./model.js";

export interface StatusChange {
  status: TaskStatus;
  at: string; // RFC 3339
  worker: string;
}

/** changes kept per task */
const PER_TASK = 50;
/** tasks remembered; the least recently changed go first */
const MAX_TASKS = 200_000;

export class TaskHistory {
  private readonly tasks = new Map<string, StatusChange[]>();

  constructor(private readonly maxTasks = MAX_TASKS) {}

  /** note the task's status; a repeat of the last one is not a change */
  record(taskId: string, status: TaskStatus, worker: string, nowMs: number): void {
    let list = this.tasks.get(taskId);
    if (list && list[list.length - 1]!.status === status) return;
    if (list) this.tasks.delete(taskId); // to the young end
    else list = [];
    list.push({ status, at: new Date(nowMs).toISOString(), worker });
    if (list.length > PER_TASK) list.splice(0, list.length - PER_TASK);
    this.tasks.set(taskId, list);
    while (this.tasks.size > this.maxTasks) this.tasks.delete(this.tasks.keys().next().value!);
  }

  get(taskId: string): readonly StatusChange[] {
    return this.tasks.get(taskId) ?? [];
  }
}

/** Tasks completed per wall-clock minute over the last hour (memory only), for the dashboard's chart. */
export class CompletionRate {
  static readonly MINUTES = 60;
  private readonly counts = new Array<number>(CompletionRate.MINUTES).fill(0);
  /** the minute (ms / 60,000) the last slot written belongs to */
  private minute = 0;

  record(nowMs: number): void {
    this.advance(nowMs);
    this.counts[this.minute % CompletionRate.MINUTES]!++;
  }

  /** completions per minute, oldest first, the current minute last */
  perMinute(nowMs: number): number[] {
    this.advance(nowMs);
    const out: number[] = [];
    for (let m = this.minute - CompletionRate.MINUTES + 1; m <= this.minute; m++) out.push(this.counts[m % CompletionRate.MINUTES]!);
    return out;
  }

  private advance(nowMs: number): void {
    const now = Math.floor(nowMs / 60_000);
    if (now <= this.minute) return;
    // clear the slots of the minutes that passed without a completion
    for (let m = Math.max(this.minute + 1, now - CompletionRate.MINUTES + 1); m <= now; m++) this.counts[m % CompletionRate.MINUTES] = 0;
    this.minute = now;
  }
}
