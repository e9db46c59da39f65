// Validation of a submitted job (POST /api/jobs): field types and bounds, unknown fields, task
// names unique, parents named within the job, no cycles. Errors are FarmError 400 naming the
// task and the field.
import { FarmError, LIMITS, type Command } from "./model.js";

export interface ValidTask {
  name: string;
  task_type: string;
  priority: number;
  commands: Command[];
  parents: number[]; // indexes into the task list
}

export interface ValidJob {
  name: string;
  type: string;
  priority: number;
  tasks: ValidTask[];
}

const JOB_FIELDS = new Set(["name", "type", "priority", "tasks"]);
const TASK_FIELDS = new Set(["name", "task_type", "priority", "commands", "parents"]);
const COMMAND_FIELDS = new Set(["name", "settings"]);
const DEFAULT_PRIORITY = 50;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function fail(where: string, field: string, problem: string): never {
  throw new FarmError(400, `${where}field "${field}": ${problem}`);
}

function name(value: unknown, where: string, field: string): string {
  if (typeof value !== "string" || value.length === 0) fail(where, field, "must be a non-empty string");
  if (value.length > LIMITS.nameChars) fail(where, field, `must be at most ${LIMITS.nameChars} characters`);
  return value;
}

function priority(value: unknown, where: string): number {
  if (value === undefined) return DEFAULT_PRIORITY;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 100) fail(where, "priority", "must be an integer 1-100");
  return value;
}

function noUnknown(value: Record<string, unknown>, known: Set<string>, where: string): void {
  for (const key of Object.keys(value)) if (!known.has(key)) fail(where, key, "unknown field");
}

function commands(value: unknown, where: string): Command[] {
  if (!Array.isArray(value) || value.length === 0) fail(where, "commands", "must be a non-empty array");
  if (value.length > LIMITS.commandsPerTask) fail(where, "commands", `at most ${LIMITS.commandsPerTask} commands`);
  return value.map((command, i) => {
    const at = `${where}command ${i}: `;
    if (!isObject(command)) fail(where, `commands[${i}]`, "must be an object {name, settings}");
    noUnknown(command, COMMAND_FIELDS, at);
    if (!isObject(command.settings)) fail(at, "settings", "must be an object");
    return { name: name(command.name, at, "name"), settings: command.settings };
  });
}

function task(value: unknown, index: number): Omit<ValidTask, "parents"> & { parentNames: string[] } {
  if (!isObject(value)) fail(`task ${index}: `, "tasks", "each task must be an object");
  const taskName = name(value.name, `task ${index}: `, "name");
  const where = `task ${JSON.stringify(taskName)}: `;
  noUnknown(value, TASK_FIELDS, where);
  const parents = value.parents ?? [];
  if (!Array.isArray(parents) || parents.some((p) => typeof p !== "string")) fail(where, "parents", "must be an array of task names");
  if (parents.length > LIMITS.parentsPerTask) fail(where, "parents", `at most ${LIMITS.parentsPerTask} parents`);
  return {
    name: taskName,
    task_type: name(value.task_type, where, "task_type"),
    priority: priority(value.priority, where),
    commands: commands(value.commands, where),
    parentNames: parents as string[],
  };
}

/** Resolves parent names to indexes; throws on an unknown or repeated parent. */
function linkParents(tasks: ReturnType<typeof task>[]): ValidTask[] {
  const byName = new Map<string, number>();
  for (let i = 0; i < tasks.length; i++) {
    const t = tasks[i]!;
    if (byName.has(t.name)) fail(`task ${JSON.stringify(t.name)}: `, "name", "another task of this job has the same name");
    byName.set(t.name, i);
  }
  const out: ValidTask[] = new Array(tasks.length);
  for (let i = 0; i < tasks.length; i++) {
    const t = tasks[i]!;
    const parents: number[] = [];
    for (const parent of t.parentNames) {
      const at = byName.get(parent);
      if (at === undefined) fail(`task ${JSON.stringify(t.name)}: `, "parents", `${JSON.stringify(parent)} is not a task of this job`);
      if (parents.includes(at)) fail(`task ${JSON.stringify(t.name)}: `, "parents", "a parent is named twice");
      parents.push(at);
    }
    out[i] = { name: t.name, task_type: t.task_type, priority: t.priority, commands: t.commands, parents };
  }
  return out;
}

/** Throws naming a task on a cycle (Kahn's algorithm; what it cannot order holds a cycle). */
function checkAcyclic(tasks: ValidTask[]): void {
  const n = tasks.length;
  const waiting = new Int32Array(n);
  const children: (number[] | undefined)[] = new Array(n);
  const ready: number[] = [];
  for (let i = 0; i < n; i++) {
    const parents = tasks[i]!.parents;
    waiting[i] = parents.length;
    if (parents.length === 0) ready.push(i);
    for (const p of parents) (children[p] ??= []).push(i);
  }
  let ordered = 0;
  while (ready.length > 0) {
    const i = ready.pop()!;
    ordered++;
    for (const child of children[i] ?? []) if (--waiting[child]! === 0) ready.push(child);
  }
  if (ordered === n) return;
  // Walk up unordered parents from an unordered task until one repeats: that one is on a cycle.
  let at = waiting.findIndex((n) => n > 0);
  const seen = new Set<number>();
  while (!seen.has(at)) {
    seen.add(at);
    at = tasks[at]!.parents.find((p) => waiting[p]! > 0)!;
  }
  fail(`task ${JSON.stringify(tasks[at]!.name)}: `, "parents", "dependency cycle");
}

export function validateJobSpec(spec: unknown): ValidJob {
  if (!isObject(spec)) throw new FarmError(400, "job must be a JSON object");
  noUnknown(spec, JOB_FIELDS, "");
  const jobName = name(spec.name, "", "name");
  const type = spec.type === undefined ? "" : spec.type;
  if (typeof type !== "string" || type.length > LIMITS.nameChars) fail("", "type", `must be a string of at most ${LIMITS.nameChars} characters`);
  const jobPriority = priority(spec.priority, "");
  if (!Array.isArray(spec.tasks) || spec.tasks.length === 0) fail("", "tasks", "must be a non-empty array");
  if (spec.tasks.length > LIMITS.tasksPerJob) fail("", "tasks", `at most ${LIMITS.tasksPerJob} tasks`);
  const tasks = linkParents(spec.tasks.map(task));
  checkAcyclic(tasks);
  return { name: jobName, type, priority: jobPriority, tasks };
}
