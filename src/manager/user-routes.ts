// The user side of the manager (see stevedore(8), MANAGER API): the job API, workers and their
// status requests, the live event stream and the task logs. Callers carry a user JWT.
import { HttpError, optionalJsonObject, type ApiRequest, type ApiResponse, type ApiRoute } from "../http/index.js";
import { log, type Fields } from "../log.js";
import { sessionOf, userOf } from "./access.js";
import type { ManagerDeps } from "./deps.js";

function objectBody(body: unknown, what: string): Record<string, unknown> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new HttpError(400, `body must be a JSON object ${what}`);
  return body as Record<string, unknown>;
}


export function userRoutes(deps: ManagerDeps): ApiRoute[] {
  const { store, now } = deps;
  const farm = store.farm;
  // X-User-Id-From-Token is set on every answer by the auth hook (access.ts)
  const answer = (status: number, body?: unknown): ApiResponse => ({ status, body });
  /** a state change, logged with the token's subject once it is durable */
  const audit = (req: ApiRequest, msg: string, fields: Fields) => log.info(`manager: ${msg}`, { ...fields, user: userOf(req) });
  const job = (id: string) => {
    const doc = farm.getJob(id);
    if (!doc) throw new HttpError(404, "no such job");
    return doc;
  };

  /** a job action: apply, make it durable, log it, answer with the job */
  const jobAction = (what: string, fn: (id: string, body: Record<string, unknown>) => unknown, logged: (b: Record<string, unknown>) => Fields = () => ({})) => async (req: ApiRequest) => {
    const body = await optionalJsonObject(req);
    const doc = fn(req.params.job!, body);
    await store.durable();
    audit(req, what, { job: req.params.job!, ...logged(body) });
    return answer(200, doc);
  };

  return [
    {
      method: "POST",
      path: "/api/jobs",
      handler: async (req) => {
        const doc = farm.submitJob(await req.json(), now());
        await store.durable();
        audit(req, "job submitted", { job: doc._id, name: doc.name, tasks: doc.tasks?.length });
        return answer(201, doc);
      },
    },
    {
      method: "GET",
      path: "/api/jobs",
      handler: async (req) => {
        await store.durable();
        return answer(200, { jobs: farm.listJobs(req.query.get("status") ?? undefined) });
      },
    },
    { method: "GET", path: "/api/jobs/:job", handler: async (req) => (await store.durable(), answer(200, job(req.params.job!))) },
    { method: "POST", path: "/api/jobs/:job/cancel", handler: jobAction("job canceled", (id) => farm.cancelJob(id, now())) },
    {
      method: "POST",
      path: "/api/jobs/:job/requeue",
      handler: jobAction("job requeued", (id, b) => farm.requeueJob(id, (b.failed_only ?? false) as boolean, now()) /* the farm refuses a non-boolean */, (b) => ({ failed_only: b.failed_only === true })),
    },
    { method: "POST", path: "/api/jobs/:job/pause", handler: jobAction("job paused", (id) => farm.pauseJob(id, now())) },
    { method: "POST", path: "/api/jobs/:job/resume", handler: jobAction("job resumed", (id) => farm.resumeJob(id, now())) },
    { method: "POST", path: "/api/jobs/:job/priority", handler: jobAction("job priority changed", (id, b) => farm.setJobPriority(id, b.priority, now()), (b) => ({ priority: b.priority as number })) },
    {
      method: "GET",
      path: "/api/tasks/:task",
      handler: async (req) => {
        await store.durable();
        const task = farm.getTask(req.params.task!);
        if (!task) throw new HttpError(404, "no such task");
        return answer(200, { ...task, history: deps.history.get(task._id) });
      },
    },
    {
      method: "GET",
      path: "/api/stats",
      handler: (req) => answer(200, { completed_per_minute: deps.completions.perMinute(now()), ...farm.counts() }),
    },
    {
      method: "GET",
      path: "/api/blacklist",
      handler: async (req) => {
        await store.durable();
        const worker = req.query.get("worker") ?? undefined;
        return answer(200, { lines: farm.listBlacklist(worker) });
      },
    },
    {
      method: "GET",
      path: "/api/workers",
      handler: async (req) => (await store.durable(), answer(200, { workers: farm.listWorkers() })),
    },
    {
      method: "GET",
      path: "/api/workers/:worker",
      handler: async (req) => {
        await store.durable();
        const doc = farm.getWorker(req.params.worker!);
        if (!doc) throw new HttpError(404, "no such worker");
        return answer(200, doc);
      },
    },
    {
      method: "POST",
      path: "/api/workers/:worker/status-request",
      handler: async (req) => {
        const b = objectBody(await req.json(), "{status, lazy}");
        farm.requestStatus(req.params.worker!, b.status as string, (b.lazy ?? false) as boolean, now());
        await store.durable();
        audit(req, "worker status requested", { worker: req.params.worker!, status: b.status as string, lazy: b.lazy === true });
        return answer(204);
      },
    },
    {
      method: "DELETE",
      path: "/api/workers/:worker/blacklist",
      handler: async (req) => {
        const b = objectBody(await req.json(), "{job, task_type}");
        if (typeof b.job !== "string" || typeof b.task_type !== "string") throw new HttpError(400, "job and task_type must be strings");
        farm.forgetBlacklist(req.params.worker!, b.job, b.task_type, now());
        await store.durable();
        audit(req, "blacklist line forgotten", { worker: req.params.worker!, job: b.job, task_type: b.task_type });
        return answer(204);
      },
    },
    {
      method: "GET",
      path: "/api/events",
      handler: (req) => {
        userOf(req);
        const task = req.query.get("task") ?? undefined;
        if (!deps.hub.subscribe(req.inc, { lastEventId: req.header("last-event-id"), task, session: sessionOf(req) })) throw new HttpError(503, "too many event streams");
      },
    },
    {
      method: "GET",
      path: "/logfile/:job/:task",
      handler: async (req) => {
        const text = await deps.logs.read(req.params.job!, req.params.task!);
        if (text === undefined) throw new HttpError(404, "no log for this task");
        return { status: 200, body: text, headers: { "Content-Type": "text/plain; charset=utf-8" } };
      },
    },
  ];
}
