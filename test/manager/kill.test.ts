// kill -9 trials of the manager under mixed load from client processes: every acknowledged change survives, no task runs on two workers.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { cp, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { setLogSink } from "../../src/log.js";
import { mintUserToken } from "../../src/manager/auth.js";
import { Farm } from "../../src/manager/farm.js";
import { openJournal } from "../../src/store/index.js";
import { intRng } from "../helpers/random.js";

const SERVER = fileURLToPath(new URL("./kill-server.ts", import.meta.url));
const CLIENT = fileURLToPath(new URL("./kill-client.ts", import.meta.url));
/** the server's fsyncs take up to this much longer (see kill-server.ts) */
const FSYNC_EXTRA_MS = 3;
/** how long one condition may take (a start, the first acknowledgement, a pause) on a loaded machine */
const DEADLINE_MS = 30_000;

/**
 * A lane is a run of trials on one state dir. The long lane lets the journal grow over many kills
 * and compacts every few hundred records; the short ones start from nothing, some with the default
 * threshold (no compaction), some compacting very often (kills land inside compactions).
 * Two streams of lanes run side by side.
 */
interface Lane {
  name: string;
  trials: number;
  /** STEVEDORE_MANAGER_COMPACT_RECORDS; undefined: the default (200,000) */
  compactRecords?: number;
  /** worker slots of each client process */
  clients: number[];
}
const STREAMS: Lane[][] = [
  [{ name: "long", trials: 100, compactRecords: 300, clients: [3, 3] }],
  [
    { name: "fresh1", trials: 20, clients: [3, 2] },
    { name: "fresh2", trials: 20, compactRecords: 25, clients: [2, 3] },
    { name: "fresh3", trials: 20, compactRecords: 120, clients: [3, 2] },
    { name: "fresh4", trials: 20, clients: [2, 2, 1] },
    { name: "fresh5", trials: 20, compactRecords: 4, clients: [3, 2] },
  ],
];

// ------------------------------------------------------------------ what the clients were told

/**
 * What the parent knows of a worker from acknowledged answers, and from what its request in
 * flight at a kill could have changed. Activity and progress are the values the task may show
 * (the acknowledged one, and that of an update in doubt); undefined when not known.
 */
type Knowledge =
  | { kind: "none" } // holds no task
  | { kind: "holds"; task: string; job: string; activity: string[] | undefined; progress: number[] | undefined; logs: string[] }
  | { kind: "maybe"; task: string; job: string; progress: number[] | undefined } // holds this task or none: a report, return or sign-on/off in doubt
  | { kind: "unknown" }; // a /task in doubt: it may hold any task

interface ClientEvent {
  e: string;
  w?: string;
  s?: string;
  x?: string;
  j?: string;
  tasks?: string[];
  kind?: string;
  activity?: string;
  progress?: number;
  log?: string;
  status?: string;
  lazy?: boolean;
  priority?: number;
  msg?: string;
}

/** a worker's status request as compared: "" for none, else the status and " lazy" when lazy */
const requestText = (status: string, lazy: boolean | undefined) => (status === "" ? "" : `${status}${lazy ? " lazy" : ""}`);

interface WorkerModel {
  secret: string;
  know: Knowledge;
  /** the status request it may have (requestText), from acknowledged requests and those in doubt */
  req: string[];
  /** its status when known from an acknowledged answer (an acknowledged status change, a sign-off); else undefined */
  status: string | undefined;
}

interface JobModel {
  tasks: string[];
  /** the priorities it may have */
  priority: number[];
  /** an acknowledged pause (true) or resume (false) with nothing after it; undefined: not known */
  paused: boolean | undefined;
}

/** Everything acknowledged so far in one lane, and what it implies. */
class Model {
  readonly workers = new Map<string, WorkerModel>();
  readonly jobs = new Map<string, JobModel>();
  readonly canceled = new Set<string>();
  readonly completed = new Set<string>();
  /** "worker task" pairs whose failed/canceled report was acknowledged */
  readonly released = new Set<string>();
  /** jobs and workers acknowledged since the last check through the API */
  touchedJobs = new Set<string>();
  newWorkers = new Set<string>();
  /** workers whose status request may have changed since the last check through the API */
  requestWorkers = new Set<string>();
  acks = 0;
  /** worker answers (assign, update, report, none) acknowledged */
  workerAcks = 0;
  /** acknowledgements by kind, for the summary */
  readonly kinds: Record<string, number> = {};
  readonly errors: string[] = [];
  /** jobs a cancel was sent for (answered or not) */
  readonly cancelTried = new Set<string>();
  /** workers that were given a new task while known to hold another, with that task's job */
  private swaps: { job: string; what: string }[] = [];

  /** Once all clients are paused (all their lines read): a swap is only right if its old task's job was canceled. */
  settle(): string[] {
    const wrong = this.swaps.filter((s) => !this.cancelTried.has(s.job)).map((s) => s.what);
    this.swaps = [];
    return wrong;
  }

  apply(ev: ClientEvent): void {
    const w = ev.w === undefined ? undefined : this.workers.get(ev.w);
    if (ev.w !== undefined && ev.e !== "reg" && !w) return void this.errors.push(`event for a worker never registered: ${JSON.stringify(ev)}`);
    const job = ev.j === undefined ? undefined : this.jobs.get(ev.j);
    // any other answer of a worker may change its status (sign-on, /task, reports): known again after a status change
    if (w && ev.e !== "sreq") w.status = undefined;
    if (w && (ev.e === "sreq" || ev.e === "sack" || ev.e === "off" || ev.e === "doubt")) this.requestWorkers.add(ev.w!);
    switch (ev.e) {
      case "reg":
        this.workers.set(ev.w!, { secret: ev.s!, know: { kind: "none" }, req: [""], status: undefined });
        this.newWorkers.add(ev.w!);
        break;
      case "sreq":
        w!.req = [requestText(ev.status!, ev.lazy)];
        break;
      case "sack":
        w!.req = [""];
        w!.status = ev.status;
        break;
      case "off":
        w!.know = { kind: "none" };
        w!.req = afterSignOff(w!.req);
        w!.status = "offline";
        break;
      case "none":
        w!.know = { kind: "none" };
        break;
      case "doubt":
        w!.know = afterDoubt(w!.know, ev);
        if (ev.kind === "sreq") w!.req = union(w!.req, [requestText(ev.status!, ev.lazy)]);
        if (ev.kind === "sack") w!.req = union(w!.req, [""]);
        if (ev.kind === "off") w!.req = union(w!.req, afterSignOff(w!.req));
        return;
      case "assign": {
        const k = w!.know;
        const same = (k.kind === "holds" || k.kind === "maybe") && k.task === ev.x;
        // one client's events are in order: a worker known to hold a task gets that task back
        // (unless its job was canceled: then /task lets the old one go; decided once every client's lines are in)
        if (k.kind === "holds" && !same) this.swaps.push({ job: k.job, what: `worker ${ev.w} was given ${ev.x} while it held ${k.task}` });
        if (k.kind === "holds" && same && k.activity && !k.activity.includes(ev.activity!)) {
          this.errors.push(`task ${ev.x} came back to ${ev.w} with activity "${ev.activity}"; acknowledged ${JSON.stringify(k.activity)}`);
        }
        if (k.kind === "none" && ev.activity !== "") this.errors.push(`task ${ev.x} newly given to ${ev.w} with activity "${ev.activity}"`);
        // the same task again keeps its progress; a new activation starts at 0
        let progress: number[] | undefined = [0];
        if (k.kind === "holds" && same) progress = k.progress;
        else if (k.kind === "maybe" && same) progress = k.progress && [...k.progress, 0];
        else if (k.kind === "unknown") progress = undefined; // the task it got back may be one it held before
        w!.know = { kind: "holds", task: ev.x!, job: ev.j!, activity: [ev.activity!], progress, logs: k.kind === "holds" && same ? k.logs : [] };
        this.touchedJobs.add(ev.j!);
        break;
      }
      case "upd": {
        const k = w!.know;
        if (k.kind !== "holds" || k.task !== ev.x) return void this.errors.push(`update of ${ev.x} acknowledged to ${ev.w}, not known to hold it`);
        k.activity = [ev.activity!];
        k.progress = [ev.progress!];
        k.logs.push(ev.log!);
        break;
      }
      case "done": {
        const k = w!.know;
        if (k.kind !== "holds" || k.task !== ev.x) return void this.errors.push(`report on ${ev.x} acknowledged to ${ev.w}, not known to hold it`);
        this.touchedJobs.add(k.job);
        if (ev.status === "completed") this.completed.add(ev.x!);
        else this.released.add(`${ev.w} ${ev.x}`);
        w!.know = { kind: "none" };
        break;
      }
      case "job":
        this.jobs.set(ev.j!, { tasks: ev.tasks!, priority: [ev.priority!], paused: undefined });
        this.touchedJobs.add(ev.j!);
        break;
      case "cancelling":
        this.cancelTried.add(ev.j!);
        if (job) job.paused = undefined;
        return;
      case "prioritizing":
        job!.priority = union(job!.priority, [ev.priority!]);
        return;
      case "prio":
        job!.priority = [ev.priority!];
        this.touchedJobs.add(ev.j!);
        break;
      case "pausing":
        job!.paused = undefined;
        return;
      case "jpause":
      case "jresume":
        job!.paused = ev.e === "jpause";
        this.touchedJobs.add(ev.j!);
        break;
      case "cancel":
        this.canceled.add(ev.j!);
        this.touchedJobs.add(ev.j!);
        break;
      case "error":
        this.errors.push(ev.msg!);
        return;
      default:
        return this.errors.push(`unknown event ${JSON.stringify(ev)}`), undefined;
    }
    this.acks++;
    if (ev.w !== undefined) this.workerAcks++;
    const kind = ev.e === "done" ? ev.status! : ev.e;
    this.kinds[kind] = (this.kinds[kind] ?? 0) + 1;
  }
}

function union<T>(a: T[], b: T[]): T[] {
  return [...new Set([...a, ...b])];
}

/** a sign-off clears a shutdown request (it is the acknowledgement), no other */
function afterSignOff(req: string[]): string[] {
  return union([], req.map((r) => (r.startsWith("shutdown") ? "" : r)));
}

/** A worker's knowledge once a request of the given kind got no answer. */
function afterDoubt(k: Knowledge, ev: ClientEvent): Knowledge {
  switch (ev.kind) {
    case "sreq":
    case "sack":
      // a status request or its acknowledgement changes no task
      return k;
    case "soft":
      // the task stays; an update may or may not have been applied
      if (k.kind === "holds" && ev.activity !== undefined) {
        return { ...k, activity: k.activity && [...k.activity, ev.activity], progress: k.progress && [...k.progress, ev.progress!] };
      }
      return k;
    case "release":
    case "off":
      if (k.kind === "holds") return { kind: "maybe", task: k.task, job: k.job, progress: k.progress };
      return k;
    default:
      return { kind: "unknown" };
  }
}

// ------------------------------------------------------------------ checking a state against it

interface TaskView {
  status: string;
  worker: string;
  activity: string;
  progress: number;
}

/** The manager's state as read back: in full from the journal, or in part through the API. */
interface View {
  /** worker id -> current_task ("" for none) */
  workers: Map<string, string>;
  /** worker id -> its status and status request (requestText; only the status part through the API, and only when asked) */
  workerStates: Map<string, { status: string; req?: string; reqStatus?: string }>;
  /** job id -> status */
  jobs: Map<string, string>;
  /** job id -> priority */
  jobPriorities: Map<string, number>;
  /** job id -> its task ids, for the jobs read with their tasks */
  jobTasks: Map<string, string[]>;
  /** the tasks of those jobs */
  tasks: Map<string, TaskView>;
}

const RUNNING = new Set(["active", "cancel-requested"]);
const RUNNABLE = new Set(["queued", "soft-failed", "active"]);

function checkView(model: Model, view: View): string[] {
  const problems: string[] = [];
  const problem = (text: string) => problems.length < 20 && problems.push(text);
  for (const id of model.workers.keys()) if (!view.workers.has(id)) problem(`acknowledged worker ${id} is missing`);
  for (const [job, { tasks, priority, paused }] of model.jobs) {
    if (!view.jobs.has(job)) problem(`acknowledged job ${job} is missing`);
    const seen = view.jobTasks.get(job);
    if (seen && seen.join() !== tasks.join()) problem(`job ${job} has tasks ${seen.join()}, acknowledged ${tasks.join()}`);
    const prio = view.jobPriorities.get(job);
    if (prio !== undefined && !priority.includes(prio)) problem(`job ${job} has priority ${prio}; acknowledged ${JSON.stringify(priority)}`);
    const status = view.jobs.get(job);
    // a paused job stays paused until resumed, unless all its tasks end (completed) or it fails
    if (status !== undefined && paused === true && !["paused", "completed", "failed"].includes(status)) problem(`job ${job} is ${status} after an acknowledged pause`);
    if (status !== undefined && paused === false && status === "paused") problem(`job ${job} is paused after an acknowledged resume`);
  }
  for (const [id, w] of model.workers) {
    const s = view.workerStates.get(id);
    if (!s) continue;
    if (s.req !== undefined && !w.req.includes(s.req)) problem(`worker ${id} has status request "${s.req}"; acknowledged ${JSON.stringify(w.req)}`);
    if (s.reqStatus !== undefined && !w.req.some((r) => r.split(" ")[0] === s.reqStatus)) problem(`worker ${id} has status request "${s.reqStatus}"; acknowledged ${JSON.stringify(w.req)}`);
    if (w.status !== undefined && s.status !== w.status) problem(`worker ${id} is ${s.status}; acknowledged ${w.status}`);
  }
  for (const job of model.canceled) {
    const status = view.jobs.get(job);
    if (status !== "canceled" && status !== "cancel-requested") problem(`job ${job} is ${status} after an acknowledged cancel`);
    for (const task of view.jobTasks.get(job) ?? []) {
      const t = view.tasks.get(task)!;
      if (RUNNABLE.has(t.status)) problem(`task ${task} of canceled job ${job} is ${t.status}`);
    }
  }
  for (const task of model.completed) {
    const t = view.tasks.get(task);
    if (t && t.status !== "completed") problem(`task ${task} is ${t.status} after an acknowledged completion`);
  }
  for (const pair of model.released) {
    const [worker, task] = pair.split(" ") as [string, string];
    const t = view.tasks.get(task);
    if (t && t.worker === worker && RUNNING.has(t.status)) problem(`task ${task} is still ${t.status} on ${worker} after its acknowledged report`);
  }
  const told = new Map<string, string>(); // task -> the worker known to hold it
  for (const [id, { know }] of model.workers) {
    const current = view.workers.get(id);
    if (current === undefined) continue;
    if (know.kind === "none" && current !== "") problem(`worker ${id} holds ${current}; acknowledged: none`);
    if (know.kind === "maybe" && current !== "" && current !== know.task) problem(`worker ${id} holds ${current}; acknowledged: ${know.task} or none`);
    if (know.kind !== "holds") continue;
    const other = told.get(know.task);
    if (other !== undefined) problem(`task ${know.task} was acknowledged to workers ${other} and ${id}`);
    told.set(know.task, id);
    if (current !== know.task) problem(`worker ${id} holds "${current}"; acknowledged: ${know.task}`);
    const t = view.tasks.get(know.task);
    if (!t) continue;
    if (t.worker !== id || !RUNNING.has(t.status)) problem(`task ${know.task} is ${t.status} on "${t.worker}"; acknowledged: running on ${id}`);
    // a canceled job's task ignores activity and progress; active means no cancel came
    if (t.status === "active" && know.activity && !know.activity.includes(t.activity)) problem(`task ${know.task} activity "${t.activity}"; acknowledged ${JSON.stringify(know.activity)}`);
    if (t.status === "active" && know.progress && !know.progress.includes(t.progress)) problem(`task ${know.task} progress ${t.progress}; acknowledged ${JSON.stringify(know.progress)}`);
  }
  // no task on two workers, and each running task is held by the worker it names
  const holder = new Map<string, string>();
  for (const [id, current] of view.workers) {
    if (current === "") continue;
    const other = holder.get(current);
    if (other !== undefined) problem(`task ${current} is held by workers ${other} and ${id}`);
    holder.set(current, id);
    const t = view.tasks.get(current);
    if (t && (t.worker !== id || !RUNNING.has(t.status))) problem(`worker ${id} holds task ${current}, which is ${t.status} on "${t.worker}"`);
  }
  for (const [id, t] of view.tasks) {
    if (RUNNING.has(t.status) && holder.get(id) !== t.worker) problem(`task ${id} is ${t.status} on ${t.worker}, which holds "${view.workers.get(t.worker)}"`);
  }
  return problems;
}

interface JobJson {
  _id: string;
  status: string;
  priority: number;
  tasks?: ({ _id: string } & TaskView)[];
}

const emptyView = (): View => ({ workers: new Map(), workerStates: new Map(), jobs: new Map(), jobPriorities: new Map(), jobTasks: new Map(), tasks: new Map() });

function addJob(view: View, job: JobJson): void {
  view.jobs.set(job._id, job.status);
  view.jobPriorities.set(job._id, job.priority);
  if (!job.tasks) return;
  view.jobTasks.set(job._id, job.tasks.map((t) => t._id));
  for (const t of job.tasks) view.tasks.set(t._id, { status: t.status, worker: t.worker, activity: t.activity, progress: t.progress });
}

/** The whole state, from a copy of the journal (so the server still meets any torn tail itself). */
async function journalView(stateDir: string, scratch: string): Promise<{ view: View; generation: number; midCompaction: boolean }> {
  const dir = join(stateDir, "manager");
  await rm(scratch, { recursive: true, force: true });
  await cp(dir, scratch, { recursive: true });
  const names = await readdir(scratch);
  // more than one generation's files, or a temp snapshot: killed inside a compaction
  const midCompaction = names.filter((n) => n.startsWith("log-")).length > 1 || names.some((n) => n.endsWith(".tmp"));
  const { journal, snapshot, records } = await openJournal(scratch, { maxRecordBytes: 64 * 1024 * 1024 });
  const generation = journal.generation;
  await journal.close();
  const farm = Farm.restore(snapshot, records, { now: Date.now() });
  farm.assertConsistent();
  const view = emptyView();
  for (const w of farm.listWorkers()) view.workers.set(w._id, w.current_task);
  // the status request is not in the worker API's documents: the snapshot has it, with `lazy`
  for (const w of farm.snapshot().workers) view.workerStates.set(w.id, { status: w.status, req: requestText(w.status_requested, w.lazy) });
  for (const j of farm.listJobs()) addJob(view, farm.getJob(j._id) as JobJson);
  return { view, generation, midCompaction };
}

// ------------------------------------------------------------------ the API side

async function call(port: number, path: string, auth: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: auth } });
  return { status: res.status, text: await res.text() };
}

async function getJson(port: number, path: string, token: string): Promise<any> {
  const r = await call(port, path, `Bearer ${token}`);
  if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${r.text}`);
  return JSON.parse(r.text);
}

/**
 * After a restart, through the job and worker APIs: every worker and job, the tasks of the jobs
 * acknowledged-about since the last check (and of every held task), acknowledged log lines of
 * held tasks, and Basic auth of the workers registered since the last check.
 */
async function apiCheck(port: number, token: string, model: Model): Promise<string[]> {
  const view = emptyView();
  for (const w of (await getJson(port, "/api/workers", token)).workers) {
    view.workers.set(w._id, w.current_task);
    view.workerStates.set(w._id, { status: w.status });
  }
  // a worker's pending status request, as the worker itself is told it (its status, not whether lazy)
  for (const id of model.requestWorkers) {
    const state = view.workerStates.get(id);
    if (!state) continue;
    const r = await call(port, "/status-change", `Basic ${Buffer.from(`${id}:${model.workers.get(id)!.secret}`).toString("base64")}`);
    if (r.status === 204) state.reqStatus = "";
    else if (r.status === 200) state.reqStatus = (JSON.parse(r.text) as { status_requested: string }).status_requested;
  }
  for (const j of (await getJson(port, "/api/jobs", token)).jobs) addJob(view, j);
  const read = new Set(model.touchedJobs);
  for (const { know } of model.workers.values()) if (know.kind === "holds" || know.kind === "maybe") read.add(know.job);
  for (const job of read) if (view.jobs.has(job)) addJob(view, await getJson(port, `/api/jobs/${job}`, token));
  const problems = checkView(model, view);
  for (const [id, { know }] of model.workers) {
    if (know.kind !== "holds" || know.logs.length === 0) continue;
    const r = await call(port, `/logfile/${know.job}/${know.task}`, `Bearer ${token}`);
    for (const line of know.logs) if (!r.text.includes(line)) problems.push(`log of task ${know.task} (worker ${id}) lacks acknowledged "${line}"`);
  }
  for (const id of model.newWorkers) {
    const r = await call(port, "/status-change", `Basic ${Buffer.from(`${id}:${model.workers.get(id)!.secret}`).toString("base64")}`);
    if (r.status !== 200 && r.status !== 204) problems.push(`worker ${id} registered, but its Basic auth gets ${r.status} ${r.text}`);
  }
  model.touchedJobs = new Set();
  model.newWorkers = new Set();
  model.requestWorkers = new Set();
  return problems;
}

// ------------------------------------------------------------------ processes

/** Re-checks conditions after every event of a lane (a line from a child, a child's exit). */
class Waiters {
  private list: (() => boolean)[] = [];

  notify(): void {
    this.list = this.list.filter((settled) => !settled());
  }

  /** Resolves once `cond` holds; rejects when `trouble` reports something, or at the deadline. */
  until(cond: () => boolean, what: string, trouble: () => string | undefined = () => undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what}: not within ${DEADLINE_MS} ms ${trouble() ?? ""}`)), DEADLINE_MS);
      const settled = () => {
        const problem = trouble();
        if (problem === undefined && !cond()) return false;
        clearTimeout(timer);
        if (problem === undefined) resolve();
        else reject(new Error(`${what}: ${problem}`));
        return true;
      };
      if (!settled()) this.list.push(settled);
    });
  }
}

/** The children's environment: no V8 coverage (under c8 it slows every start, and a killed child writes none). */
function childEnv(extra: Record<string, string>): Record<string, string> {
  const env = { ...process.env, ...extra } as Record<string, string>;
  delete env.NODE_V8_COVERAGE;
  return env;
}

interface Server {
  proc: ChildProcess;
  port: number | undefined;
  exited: Promise<void>;
  stderr: string[];
}

function spawnServer(script: string, stateDir: string, lane: Lane, waiters: Waiters): Server {
  const env = childEnv({ STEVEDORE_LOG_LEVEL: "warn" });
  if (lane.compactRecords !== undefined) env.STEVEDORE_MANAGER_COMPACT_RECORDS = String(lane.compactRecords);
  const proc = spawn(process.execPath, [script, stateDir, String(FSYNC_EXTRA_MS)], { stdio: ["pipe", "pipe", "pipe"], env });
  const server: Server = { proc, port: undefined, exited: new Promise((r) => proc.on("exit", () => (r(), waiters.notify()))), stderr: [] };
  createInterface({ input: proc.stdout! }).on("line", (line) => {
    const m = /^listening (\d+)$/.exec(line);
    if (m) server.port = Number(m[1]);
    waiters.notify();
  });
  createInterface({ input: proc.stderr! }).on("line", (line) => server.stderr.push(line));
  return server;
}

/** SIGKILL (if it has not killed itself); a server that died otherwise failed. */
async function kill(server: Server): Promise<void> {
  server.proc.kill("SIGKILL");
  await server.exited;
  if (server.proc.signalCode !== "SIGKILL") throw new Error(`the server exited by itself (${server.proc.exitCode}): ${server.stderr.join("\n")}`);
}

function exited(proc: ChildProcess): boolean {
  return proc.exitCode !== null || proc.signalCode !== null;
}

interface Client {
  proc: ChildProcess;
  pauses: number;
  exited: boolean;
}

function spawnClient(script: string, no: number, seed: number, slots: number, model: Model, waiters: Waiters): Client {
  const proc = spawn(process.execPath, [script, String(no), String(seed), String(slots)], { stdio: ["pipe", "pipe", "inherit"], env: childEnv({}) });
  const client: Client = { proc, pauses: 0, exited: false };
  proc.on("exit", () => ((client.exited = true), waiters.notify()));
  createInterface({ input: proc.stdout! }).on("line", (line) => {
    const ev = JSON.parse(line) as ClientEvent;
    if (ev.e === "paused") client.pauses++;
    else model.apply(ev);
    waiters.notify();
  });
  return client;
}

// ------------------------------------------------------------------ the trials

interface Totals {
  trials: number;
  acks: number;
  killsAtStart: number;
  killsAfterAnswer: number;
  midCompaction: number;
  compactions: number;
  cuts: number;
  kinds: Record<string, number>;
}

interface Scripts {
  server: string;
  client: string;
}

/** One lane's trials: start the server (checking the API), load, kill, pause the clients, check the journal. */
class LaneRun {
  private readonly stateDir: string;
  private readonly scratch: string;
  private readonly rand: (n: number) => number;
  private readonly model = new Model();
  private readonly waiters = new Waiters();
  private readonly clients: Client[] = [];
  private server: Server | undefined;
  private token = "";
  private generation = 0;
  private lastStartMs = 100;
  /** wall time per step, for KILL_TEST_DEBUG */
  private readonly phases: Record<string, number> = {};
  private mark = performance.now();

  constructor(
    private readonly lane: Lane,
    root: string,
    private readonly scripts: Scripts,
    private readonly seed: number,
    private readonly totals: Totals,
    private readonly aborted: () => boolean,
  ) {
    this.stateDir = join(root, lane.name);
    this.scratch = join(root, `${lane.name}-copy`);
    this.rand = intRng(seed);
  }

  async run(): Promise<void> {
    const t0 = performance.now();
    try {
      for (let trial = 0; trial < this.lane.trials && !this.aborted(); trial++) await this.trial(trial, `${this.lane.name} trial ${trial}`);
      if (this.aborted()) return;
      await this.start(`${this.lane.name} last restart`); // and its check through the API
    } finally {
      for (const c of this.clients) c.proc.kill("SIGKILL");
      this.server?.proc.kill("SIGKILL");
      await rm(this.scratch, { recursive: true, force: true });
    }
    this.summarize(performance.now() - t0);
  }

  private async trial(trial: number, at: string): Promise<void> {
    if (trial > 0 && this.rand(10) === 0) await this.killWhileStarting();
    else await this.loadAndKill(at, await this.start(at));
    assert.deepEqual([...this.model.errors, ...this.model.settle()], [], `${at}: the clients`);
    this.totals.trials++;
    const j = await journalView(this.stateDir, this.scratch);
    this.phase("journal");
    assert.deepEqual(checkView(this.model, j.view), [], `${at}: the journal after the kill`);
    if (j.midCompaction) this.totals.midCompaction++;
    this.totals.compactions += Math.max(0, j.generation - this.generation);
    this.generation = j.generation;
  }

  private spawnServer(): Server {
    this.server = spawnServer(this.scripts.server, this.stateDir, this.lane, this.waiters);
    return this.server;
  }

  /** Starts the server, starts the clients the first time, checks the state through the API; returns the port. */
  private async start(at: string): Promise<number> {
    const server = this.spawnServer();
    const t0 = performance.now();
    await this.waiters.until(() => server.port !== undefined || exited(server.proc), `${at}: start`);
    if (server.port === undefined) throw new Error(`${at}: the server exited: ${server.stderr.join("\n")}`);
    this.lastStartMs = Math.round(performance.now() - t0);
    this.phase("start");
    if (this.clients.length === 0) {
      this.token = await mintUserToken(this.stateDir, { subject: "kill-test", ttlSecs: 3600 });
      this.lane.clients.forEach((slots, i) => this.clients.push(spawnClient(this.scripts.client, i, this.seed * 10 + i, slots, this.model, this.waiters)));
    }
    assert.deepEqual(await apiCheck(server.port, this.token, this.model), [], `${at}: through the API after the restart`);
    this.phase("api");
    return server.port;
  }

  /** Anywhere in a start (as long as the last one took): loading the journal, cutting a torn tail, binding. */
  private async killWhileStarting(): Promise<void> {
    const server = this.spawnServer();
    await new Promise((r) => setTimeout(r, this.rand(this.lastStartMs + 1)));
    await kill(server);
    this.totals.killsAtStart++;
  }

  private readonly trouble = () => {
    if (this.model.errors.length > 0) return `client error: ${this.model.errors.join("; ")}`;
    return this.clients.some((c) => c.exited) ? "a client exited" : undefined;
  };

  /** Lets the clients loose, kills the server at a random moment, and waits until every client stopped. */
  private async loadAndKill(at: string, port: number): Promise<void> {
    const { model, rand, waiters, server } = this;
    const workerAcks = model.workerAcks;
    const slots = this.lane.clients.reduce((a, b) => a + b);
    for (const c of this.clients) c.proc.stdin!.write(`go ${port} ${this.token}\n`);
    // mostly once the workers are back at work (each pays one scrypt check after a restart)
    if (rand(10) !== 0) await waiters.until(() => model.workerAcks >= workerAcks + slots, `${at}: the workers' first answers`, this.trouble);
    // mostly mid-flow, now and then right away (many requests of the restart's resync in flight)
    await new Promise((r) => setTimeout(r, rand(4) === 0 ? rand(10) : rand(150)));
    const how = rand(20);
    if (how < 7) {
      // the server kills itself right after its next successful answer is sent
      server!.proc.stdin!.write("arm\n");
      this.totals.killsAfterAnswer++;
      await waiters.until(() => exited(server!.proc), `${at}: killed after an answer`, this.trouble);
    } else if (how < 10) {
      // right on an acknowledgement the parent sees: the next group commit may still be unwritten
      const acks = model.acks;
      await waiters.until(() => model.acks > acks, `${at}: an acknowledgement to kill on`, this.trouble);
    }
    this.phase("load");
    await kill(server!);
    const pauses = this.clients.map((c) => c.pauses);
    for (const c of this.clients) c.proc.stdin!.write("pause\n");
    await waiters.until(() => this.clients.every((c, i) => c.pauses > pauses[i]!), `${at}: clients pausing`, this.trouble);
    this.phase("kill+pause");
  }

  private phase(name: string): void {
    const now = performance.now();
    this.phases[name] = (this.phases[name] ?? 0) + now - this.mark;
    this.mark = now;
  }

  private summarize(ms: number): void {
    const { model, lane } = this;
    this.totals.acks += model.acks;
    for (const [kind, n] of Object.entries(model.kinds)) this.totals.kinds[kind] = (this.totals.kinds[kind] ?? 0) + n;
    if (process.env.KILL_TEST_DEBUG) {
      const phases = Object.fromEntries(Object.entries(this.phases).map(([k, v]) => [k, Math.round(v)]));
      console.error(lane.name, Math.round(ms), "ms", JSON.stringify(model.kinds), JSON.stringify(phases));
    }
    assert.ok(model.acks > lane.trials * 5, `${lane.name}: only ${model.acks} acknowledgements`);
    if (lane.compactRecords !== undefined && lane.compactRecords <= 300) assert.ok(this.generation > 0, `${lane.name}: no compaction happened`);
  }
}

test("kill -9 at random moments under mixed load loses nothing acknowledged and never runs a task on two workers", { timeout: 420_000 }, async (t) => {
  const t0 = performance.now();
  const root = await mkdtemp(join(tmpdir(), "stevedore-manager-kill-"));
  t.after(() => rm(root, { recursive: true, force: true }));
  // esbuild bundles (what tsx would compile), so a start costs a plain node start: ~0.5 s of CPU less each
  const outdir = join(root, "bundle");
  await build({ entryPoints: { server: SERVER, client: CLIENT }, bundle: true, platform: "node", format: "esm", target: "node20", outdir, outExtension: { ".js": ".mjs" }, logLevel: "warning" });
  const scripts = { server: join(outdir, "server.mjs"), client: join(outdir, "client.mjs") };
  const cuts: string[] = [];
  t.after(setLogSink((line) => cuts.push(line))); // the parent's own journal opens (of copies) log their cuts here
  const totals: Totals = { trials: 0, acks: 0, killsAtStart: 0, killsAfterAnswer: 0, midCompaction: 0, compactions: 0, cuts: 0, kinds: {} };
  // a failing lane stops the others at their next trial
  let failed = false;
  await Promise.all(
    STREAMS.map(async (lanes, s) => {
      for (const [i, lane] of lanes.entries()) {
        await new LaneRun(lane, root, scripts, 0x6b1 + s * 100 + i, totals, () => failed).run().catch((err: unknown) => {
          failed = true;
          throw err;
        });
      }
    }),
  );
  totals.cuts = cuts.filter((line) => line.includes("cut")).length;
  t.diagnostic(`${JSON.stringify(totals)} in ${Math.round(performance.now() - t0)} ms`);
  assert.ok(totals.trials >= 200, `only ${totals.trials} trials`);
  // the load has every kind of acknowledged change issue 11 names durable: status requests and
  // their acknowledgements, sign-offs (a shutdown's), job priority, pause and resume among them
  const least: Record<string, number> = { sreq: 40, sack: 30, off: 5, prio: 20, jpause: 15, jresume: 3, cancel: 40, upd: 100, assign: 200 };
  for (const [kind, n] of Object.entries(least)) assert.ok((totals.kinds[kind] ?? 0) >= n, `only ${totals.kinds[kind] ?? 0} acknowledged ${kind} (want ${n})`);
});
