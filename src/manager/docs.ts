// The JSON documents (CONTRACTS.md shapes) built from the Farm's in-memory objects.
import type { JobDoc, TaskStatus, TaskSummary, WorkerDoc, WorkerTaskDoc } from "./model.js";
import { TASK_STATUSES } from "./model.js";
import type { JobState, TaskState, WorkerState } from "./state.js";

export const iso = (ms: number): string => new Date(ms).toISOString();

export function workerDoc(w: WorkerState): WorkerDoc {
  return {
    _id: w.id,
    nickname: w.nickname,
    address: w.address,
    status: w.status,
    platform: w.platform,
    current_task: w.current?.id ?? "",
    last_activity: w.lastActivity,
    supported_task_types: [...w.types],
    software: w.software,
  };
}

export function taskSummary(t: TaskState): TaskSummary {
  return {
    _id: t.id,
    name: t.name,
    status: t.status,
    priority: t.priority,
    task_type: t.bucket.type,
    parents: t.parents.map((p) => p.id),
    worker: t.worker?.id ?? "",
    activity: t.activity,
    progress: t.progress,
  };
}

export function workerTaskDoc(t: TaskState): WorkerTaskDoc {
  return {
    _id: t.id,
    job: t.job.id,
    name: t.name,
    status: t.status,
    priority: t.priority,
    job_priority: t.job.priority,
    job_type: t.job.type,
    task_type: t.bucket.type,
    commands: t.commands,
    parents: t.parents.map((p) => p.id),
    worker: t.worker?.id ?? "",
    activity: t.activity,
    log: "",
  };
}

export function jobDoc(job: JobState, withTasks: boolean): JobDoc {
  const counts: Partial<Record<TaskStatus, number>> = {};
  for (const status of TASK_STATUSES) if (job.counts[status] > 0) counts[status] = job.counts[status];
  const doc: JobDoc = {
    _id: job.id,
    name: job.name,
    type: job.type,
    priority: job.priority,
    status: job.status,
    created: iso(job.created),
    updated: iso(job.updated),
    task_counts: counts,
    progress: Math.floor((job.counts.completed * 100) / job.tasks.length),
    outputs: [...job.outputs],
  };
  if (withTasks) doc.tasks = job.tasks.map(taskSummary);
  return doc;
}
