// The worker endpoints of the v2 manager protocol (see stevedore(8), MANAGER API): registration,
// sign-on/off, /task, task updates and returns, may-i-run, status changes, produced outputs.
import { log } from "../log.js";
import { HttpError, optionalJsonObject, type ApiRequest, type ApiResponse, type ApiRoute } from "../http/index.js";
import { workerOf } from "./access.js";
import { hashSecret, MAX_SECRET_BYTES } from "./auth.js";
import type { ManagerDeps } from "./deps.js";
import { checkWorkerFields } from "./farm.js";


/** Older v2 workers name their task types `supported_job_types`. */
function taskTypes(o: Record<string, unknown>): unknown {
  return o.supported_task_types ?? o.supported_job_types;
}

const NO_CONTENT: ApiResponse = { status: 204 };

export function workerRoutes(deps: ManagerDeps): ApiRoute[] {
  const { store, now } = deps;
  const farm = store.farm;

  async function register(req: ApiRequest): Promise<ApiResponse> {
    const o = await optionalJsonObject(req);
    const secret = o.secret;
    if (typeof secret !== "string" || secret.length === 0 || Buffer.byteLength(secret) > MAX_SECRET_BYTES)
      throw new HttpError(400, `field "secret": must be a non-empty string of at most ${MAX_SECRET_BYTES} bytes`);
    const fields = { nickname: o.nickname, platform: o.platform, software: o.software, supported_task_types: taskTypes(o) };
    // check the fields before paying for scrypt
    checkWorkerFields(fields);
    const secret_hash = await hashSecret(secret);
    const doc = farm.registerWorker({ ...(fields as object), secret_hash, address: req.remoteAddress }, now());
    await store.durable();
    return { status: 200, body: doc };
  }

  async function signOn(req: ApiRequest): Promise<ApiResponse> {
    const id = workerOf(req);
    const o = await optionalJsonObject(req);
    const fields: Record<string, unknown> = { address: req.remoteAddress };
    for (const key of ["nickname", "software"] as const) if (o[key] !== undefined) fields[key] = o[key];
    if (taskTypes(o) !== undefined) fields.supported_task_types = taskTypes(o);
    await deps.writeLogs(farm.signOn(id, fields, now()));
    await store.durable();
    return NO_CONTENT;
  }

  async function task(req: ApiRequest): Promise<ApiResponse> {
    const id = workerOf(req);
    await req.body(); // POST /task comes with an empty body; whatever is sent is read and bounded
    const r = farm.nextTask(id, now());
    // the assignment is durable in the journal; the manager's own "assigned" line (and the log
    // rotation) need not hold the answer: later lines of the task still come after it
    if (r.status === 200 && r.log) deps.writeLogs([r.log]).catch((err: Error) => log.error("task log write failed", { task: r.task._id, error: err.message }));
    await store.durable();
    if (r.status === 200) return { status: 200, body: r.task };
    if (r.status === 423) return { status: 423, body: r.body };
    if (r.status === 406) throw new HttpError(406, "the worker supports no task types; sign on with supported_task_types");
    return NO_CONTENT;
  }

  async function update(req: ApiRequest): Promise<ApiResponse> {
    const id = workerOf(req);
    const body = await req.json();
    const r = farm.updateTask(id, req.params.task!, body as never, now());
    if (r.log) await deps.writeLogs([r.log]);
    await store.durable();
    return NO_CONTENT;
  }

  async function giveBack(req: ApiRequest): Promise<ApiResponse> {
    const id = workerOf(req);
    await req.body();
    await deps.writeLogs(farm.returnTask(id, req.params.task!, now()));
    await store.durable();
    return NO_CONTENT;
  }

  async function mayIRun(req: ApiRequest): Promise<ApiResponse> {
    const body = farm.mayIRun(workerOf(req), req.params.task!, now());
    await store.durable();
    return { status: 200, body };
  }

  async function statusChange(req: ApiRequest): Promise<ApiResponse> {
    const body = farm.statusChange(workerOf(req), now());
    await store.durable();
    return body ? { status: 200, body } : NO_CONTENT;
  }

  async function ack(req: ApiRequest): Promise<ApiResponse> {
    const id = workerOf(req);
    await req.body();
    farm.ackStatusChange(id, req.params.status!, now());
    await store.durable();
    return NO_CONTENT;
  }

  async function signOff(req: ApiRequest): Promise<ApiResponse> {
    const id = workerOf(req);
    await req.body();
    await deps.writeLogs(farm.signOff(id, now()));
    await store.durable();
    return NO_CONTENT;
  }

  async function outputProduced(req: ApiRequest): Promise<ApiResponse> {
    const id = workerOf(req);
    const body = await req.json();
    if (typeof body !== "object" || body === null || Array.isArray(body)) throw new HttpError(400, "body must be a JSON object {paths}");
    farm.outputProduced(id, (body as { paths?: unknown }).paths ?? [], now());
    await store.durable();
    return NO_CONTENT;
  }

  return [
    { method: "POST", path: "/register-worker", handler: register },
    { method: "POST", path: "/sign-on", handler: signOn },
    { method: "POST", path: "/sign-off", handler: signOff },
    { method: "GET", path: "/task", handler: task },
    { method: "POST", path: "/task", handler: task },
    { method: "POST", path: "/tasks/:task/update", handler: update },
    { method: "POST", path: "/tasks/:task/return", handler: giveBack },
    { method: "GET", path: "/may-i-run/:task", handler: mayIRun },
    { method: "GET", path: "/status-change", handler: statusChange },
    { method: "POST", path: "/ack-status-change/:status", handler: ack },
    { method: "POST", path: "/output-produced", handler: outputProduced },
  ];
}
