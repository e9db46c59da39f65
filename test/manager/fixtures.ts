// Shared set-up for the manager Farm tests: a farm that records what it persists, workers and jobs.
import { Farm } from "../../src/manager/farm.js";
import { DEFAULT_SETTINGS, type FarmRecord, type FarmSettings, type NextTaskResult, type WorkerTaskDoc } from "../../src/manager/model.js";

export const T0 = Date.parse("2024-01-01T00:00:00Z");
export const CMD = [{ name: "echo", settings: { message: "hi" } }];

export interface Fixture {
  farm: Farm;
  records: FarmRecord[];
  settings: { -readonly [K in keyof FarmSettings]: FarmSettings[K] }; // tests change them (a reload)
}

export function newFarm(overrides: Partial<FarmSettings> = {}): Fixture {
  const records: FarmRecord[] = [];
  const settings = { ...DEFAULT_SETTINGS, ...overrides };
  const farm = new Farm({ persist: (r) => records.push(r), settings: () => settings });
  return { farm, records, settings };
}

/** A registered, signed-on worker's id. */
export function addWorker(farm: Farm, types: string[], nickname = "w", now = T0): string {
  const doc = farm.registerWorker({ secret_hash: "hash", nickname, supported_task_types: types, platform: "linux" }, now);
  farm.signOn(doc._id, {}, now);
  return doc._id;
}

export type TaskTuple = [name: string, type: string, priority?: number, parents?: string[]];

/** Submits a job; returns its id and its task ids by name. */
export function addJob(farm: Farm, name: string, priority: number, tasks: TaskTuple[], now = T0): { id: string; task: Record<string, string> } {
  const doc = farm.submitJob(
    { name, priority, tasks: tasks.map(([n, type, p, parents]) => ({ name: n, task_type: type, priority: p, commands: CMD, parents })) },
    now,
  );
  const task: Record<string, string> = {};
  for (const t of doc.tasks!) task[t.name] = t._id;
  return { id: doc._id, task };
}

export function taskOf(result: NextTaskResult): WorkerTaskDoc {
  if (result.status !== 200) throw new Error(`expected a task, got ${result.status}`);
  return result.task;
}

/** nextTask's task name, or the status code when there is none. */
export function pickName(farm: Farm, worker: string, now = T0): string | number {
  const result = farm.nextTask(worker, now);
  return result.status === 200 ? result.task.name : result.status;
}
