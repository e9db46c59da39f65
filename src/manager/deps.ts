// What the manager's route handlers share: the durable farm, task log files, the event hub, the clock.
import type { FarmStore } from "./store.js";
import type { TaskLogs } from "./task-logs.js";
import type { EventHub } from "./events.js";
import type { LogAppend } from "./model.js";
import type { CompletionRate, TaskHistory } from "./task-history.js";

export interface ManagerDeps {
  store: FarmStore;
  logs: TaskLogs;
  hub: EventHub;
  /** recent status changes per task (memory only) */
  history: TaskHistory;
  /** tasks completed per minute, last hour (memory only) */
  completions: CompletionRate;
  /** wall-clock ms (ids and the times users read are wall clock) */
  now(): number;
  /** append the farm's log text to the task logs (rotating first on a new activation), durably */
  writeLogs(appends: readonly LogAppend[]): Promise<void>;
}
