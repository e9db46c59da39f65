// `stevedore jobs ...`: submit, list, show and steer jobs of the manager's task farm through its job API.
import { readFile } from "node:fs/promises";
import { CommandError, UsageError, describeError, parse, table, type Command } from "./command.js";
import { call, callOk, followEvents, managerTarget, replyError, type ManagerTarget, type SseEvent } from "./manager-client.js";
import { loadCliConfig } from "./query-common.js";

export interface TaskSummary {
  _id: string;
  name: string;
  status: string;
  priority: number;
  task_type: string;
  parents: string[];
  worker: string;
  activity: string;
  progress: number;
}

export interface Job {
  _id: string;
  name: string;
  type: string;
  priority: number;
  status: string;
  created: string;
  updated: string;
  task_counts: Record<string, number>;
  progress: number;
  outputs: string[];
  tasks?: TaskSummary[];
}

const JOB_DONE = new Set(["completed", "failed", "canceled"]);
const TASK_DONE = new Set(["completed", "failed", "canceled"]);
const MAX_JOB_FILE_BYTES = 16 * 1024 * 1024;
/** `jobs log TASK` looks through at most this many jobs for the task */
const MAX_JOBS_SEARCHED = 1000;

export const MANAGER_OPTIONS = {
  manager: { type: "string" },
  cacert: { type: "string" },
  config: { type: "string", short: "c" },
} as const;

export const MANAGER_OPTIONS_HELP = `  --manager URL    the manager (default: http(s)://<manager_listen> of the config)
  --cacert FILE    PEM certificates to trust for an https:// manager instead of
                   the system's (a private CA, a self-signed manager_tls_cert)
  --config FILE    config file (manager_listen, manager_tls_cert, state_dir)
The commands sign their calls with a short-lived ES256 token made with
<state_dir>/jwt/es256-private.pem (root only), or send $STEVEDORE_MANAGER_TOKEN.`;

const USAGE = `usage: stevedore jobs submit FILE|- [--wait] [--json]
       stevedore jobs list [--status STATUS] [--json|-q]
       stevedore jobs show ID [--json]
       stevedore jobs cancel|pause|resume ID [--json]
       stevedore jobs requeue ID [--failed-only] [--json]
       stevedore jobs log TASK|JOB/TASK [--follow]
   (each also takes [--manager URL] [--config FILE])

Jobs of the manager's task farm, through its job API.
  submit FILE|-     POST a job document ({name, priority?, type?, tasks: [{name,
                    task_type, priority?, commands: [{name, settings}], parents?}]})
                    from FILE or standard input; prints the new job's id
  --wait            (submit) show the job's progress until it ends (one line
                    rewritten in place on a terminal); exit 0 when it completed,
                    1 when it failed or was canceled
  list              every job (or those with --status STATUS)
  show ID           one job with its tasks and latest outputs
  cancel ID         cancel: queued tasks are canceled, running ones stopped
  pause|resume ID   stop handing out the job's tasks, and start again
  requeue ID        queue the job's tasks again (--failed-only: only failed ones)
  log TASK          print a task's log; TASK is a task id (its job is looked up
                    among the jobs) or JOB/TASK
  --follow          (log) keep printing new lines until the task ends; exit 0
                    when it completed, 1 when it failed or was canceled
  --json            print the manager's JSON
  -q, --quiet       (list) job ids only, one a line
${MANAGER_OPTIONS_HELP}`;

export const jobsCommand: Command = {
  name: "jobs",
  summary: "submit, list, show and steer task-farm jobs (manager)",
  usage: USAGE,
  async run(args) {
    const { values, positionals } = parse(args, {
      ...MANAGER_OPTIONS,
      json: { type: "boolean" },
      quiet: { type: "boolean", short: "q" },
      wait: { type: "boolean" },
      status: { type: "string" },
      "failed-only": { type: "boolean" },
      follow: { type: "boolean" },
    });
    const [action, arg, ...extra] = positionals;
    if (action === undefined) throw new UsageError("jobs needs an action: submit, list, show, cancel, requeue, pause, resume or log");
    if (extra.length) throw new UsageError("too many arguments");
    const only = (flag: keyof typeof values, where: string[]) => {
      if (values[flag] !== undefined && !where.includes(action)) throw new UsageError(`--${flag} applies to jobs ${where.join("/")} only`);
    };
    only("wait", ["submit"]);
    only("status", ["list"]);
    only("failed-only", ["requeue"]);
    only("follow", ["log"]);
    only("quiet", ["list"]);
    only("json", ["submit", "list", "show", "cancel", "requeue", "pause", "resume"]);
    const needArg = (what: string) => {
      if (arg === undefined) throw new UsageError(`jobs ${action} needs ${what}`);
      return arg;
    };
    if (action === "list" && arg !== undefined) throw new UsageError("jobs list takes no argument");
    if (!["submit", "list", "show", "cancel", "requeue", "pause", "resume", "log"].includes(action)) throw new UsageError(`unknown jobs action: ${action}`);
    const target = managerTarget(values.manager, loadCliConfig(values.config), process.env, values.cacert);
    switch (action) {
      case "submit":
        return submit(target, needArg("a job file (or - for standard input)"), values.wait === true, values.json === true);
      case "list":
        return list(target, values.status, values.json === true, values.quiet === true);
      case "show":
        return show(target, idArg(needArg("a job id")), values.json === true);
      case "log":
        return showLog(target, needArg("a task id (or JOB/TASK)"), values.follow === true);
      default: {
        const id = idArg(needArg("a job id"));
        const body = action === "requeue" ? { failed_only: values["failed-only"] === true } : undefined;
        const r = await callOk(target, "POST", `/api/jobs/${encodeURIComponent(id)}/${action}`, body, `no job ${id}`);
        const job = r.body as Job;
        if (values.json) printJson(job);
        else process.stdout.write(`job ${id}: ${job?.status ?? "?"}\n`);
        return 0;
      }
    }
  },
};

function idArg(id: string): string {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) throw new UsageError(`invalid id ${JSON.stringify(id)}`);
  return id;
}

export function printJson(body: unknown): void {
  process.stdout.write(JSON.stringify(body, null, 2) + "\n");
}

async function readJobFile(file: string): Promise<unknown> {
  let text: string;
  try {
    if (file === "-") {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const c of process.stdin) {
        size += (c as Buffer).length;
        if (size > MAX_JOB_FILE_BYTES) throw new CommandError(`the job document is larger than ${MAX_JOB_FILE_BYTES} bytes`);
        chunks.push(c as Buffer);
      }
      text = Buffer.concat(chunks).toString("utf8");
    } else {
      const buf = await readFile(file);
      if (buf.length > MAX_JOB_FILE_BYTES) throw new CommandError(`${file} is larger than ${MAX_JOB_FILE_BYTES} bytes`);
      text = buf.toString("utf8");
    }
  } catch (err) {
    if (err instanceof CommandError) throw err;
    throw new CommandError(`cannot read the job file: ${describeError(err)}`);
  }
  try {
    const doc = JSON.parse(text) as unknown;
    if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw new Error("not a JSON object");
    return doc;
  } catch (err) {
    throw new CommandError(`${file === "-" ? "standard input" : file}: not a job document: ${(err as Error).message}`);
  }
}

async function submit(target: ManagerTarget, file: string, wait: boolean, json: boolean): Promise<number> {
  const doc = await readJobFile(file);
  const job = (await callOk(target, "POST", "/api/jobs", doc)).body as Job;
  if (json) printJson(job);
  else process.stdout.write(`job ${job._id} submitted: ${job.name} (${job.tasks?.length ?? "?"} tasks)\n`);
  if (!wait) return 0;
  return waitForJob(target, job._id, json);
}

/** Follow a job's progress over /api/events until it ends; 0 when it completed, else 1. */
export async function waitForJob(target: ManagerTarget, id: string, quiet: boolean): Promise<number> {
  const tty = process.stdout.isTTY === true && !quiet;
  let last = "";
  const show = (job: Job) => {
    if (quiet) return;
    const line = progressLine(job);
    if (line === last) return;
    last = line;
    process.stdout.write(tty ? `\r\x1b[K${line}` : `${line}\n`);
  };
  const finish = (job: Job): string | undefined => {
    show(job);
    return JOB_DONE.has(job.status) ? job.status : undefined;
  };
  const status = await followEvents(
    target,
    "",
    (e: SseEvent) => {
      if (e.event !== "job") return undefined;
      const job = jsonOf(e.data) as Job | undefined;
      return job?._id === id && typeof job.status === "string" ? finish(job) : undefined;
    },
    async () => finish((await callOk(target, "GET", `/api/jobs/${encodeURIComponent(id)}`, undefined, `no job ${id}`)).body as Job),
  );
  if (tty) process.stdout.write("\n");
  if (!quiet) process.stdout.write(`job ${id} ${status}\n`);
  return status === "completed" ? 0 : 1;
}

function jsonOf(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function progressLine(job: Job): string {
  return `job ${job.name ?? ""} (${job._id}): ${job.status} ${job.progress ?? 0}%, tasks ${countsText(job.task_counts)}`;
}

/** {completed: 3, failed: 1, queued: 6} → "3/10 completed, 1 failed, 6 queued" */
export function countsText(counts: Record<string, number> | undefined): string {
  const c = counts ?? {};
  const total = Object.values(c).reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
  const rest = Object.entries(c).filter(([s, n]) => s !== "completed" && n > 0).sort(([a], [b]) => (a < b ? -1 : 1));
  return [`${c.completed ?? 0}/${total} completed`, ...rest.map(([s, n]) => `${n} ${s}`)].join(", ");
}

async function list(target: ManagerTarget, status: string | undefined, json: boolean, quiet: boolean): Promise<number> {
  const path = status ? `/api/jobs?status=${encodeURIComponent(status)}` : "/api/jobs";
  const body = (await callOk(target, "GET", path)).body as { jobs: Job[] };
  if (quiet) return process.stdout.write((body?.jobs ?? []).map((j) => j._id + "\n").join("")), 0;
  if (json) return printJson(body), 0;
  const rows = (body?.jobs ?? []).map((j) => [j._id, j.name, j.type || "-", String(j.priority), j.status, `${j.progress ?? 0}%`, countsText(j.task_counts), j.updated]);
  process.stdout.write(table(["ID", "NAME", "TYPE", "PRIO", "STATUS", "PROGRESS", "TASKS", "UPDATED"], rows));
  return 0;
}

async function show(target: ManagerTarget, id: string, json: boolean): Promise<number> {
  const job = (await callOk(target, "GET", `/api/jobs/${encodeURIComponent(id)}`, undefined, `no job ${id}`)).body as Job;
  if (json) return printJson(job), 0;
  const outputs = job.outputs?.length ? job.outputs.join("\n          ") : "-";
  process.stdout.write(
    `job:      ${job._id}\nname:     ${job.name}\ntype:     ${job.type || "-"}\npriority: ${job.priority}\n` +
      `status:   ${job.status} (${job.progress ?? 0}%), tasks ${countsText(job.task_counts)}\n` +
      `created:  ${job.created}\nupdated:  ${job.updated}\noutputs:  ${outputs}\n\n` +
      table(
        ["TASK", "NAME", "TYPE", "STATUS", "WORKER", "PROGRESS", "ACTIVITY"],
        (job.tasks ?? []).map((t) => [t._id, t.name, t.task_type, t.status, t.worker || "-", `${t.progress ?? 0}%`, t.activity || "-"]),
      ),
  );
  return 0;
}

/** JOB/TASK as given, or TASK looked up in the jobs (newest first). */
async function resolveTask(target: ManagerTarget, arg: string): Promise<{ job: string; task: string }> {
  const parts = arg.split("/");
  if (parts.length === 2) return { job: idArg(parts[0]!), task: idArg(parts[1]!) };
  if (parts.length > 2) throw new UsageError(`invalid task ${JSON.stringify(arg)}: use TASK or JOB/TASK`);
  const task = idArg(arg);
  const jobs = ((await callOk(target, "GET", "/api/jobs")).body as { jobs: Job[] })?.jobs ?? [];
  const newestFirst = [...jobs].sort((a, b) => (a.updated < b.updated ? 1 : a.updated > b.updated ? -1 : 0)).slice(0, MAX_JOBS_SEARCHED);
  for (const j of newestFirst) {
    const r = await call(target, "GET", `/api/jobs/${encodeURIComponent(j._id)}`);
    if (r.status === 404) continue;
    if (r.status !== 200) throw new CommandError(replyError(r));
    if ((r.body as Job).tasks?.some((t) => t._id === task)) return { job: j._id, task };
  }
  throw new CommandError(`no task ${task} in any job${jobs.length > MAX_JOBS_SEARCHED ? ` (searched the newest ${MAX_JOBS_SEARCHED}; use JOB/TASK)` : ""}`);
}

async function taskNow(target: ManagerTarget, job: string, task: string): Promise<TaskSummary | undefined> {
  const j = (await callOk(target, "GET", `/api/jobs/${encodeURIComponent(job)}`, undefined, `no job ${job}`)).body as Job;
  return j.tasks?.find((t) => t._id === task);
}

/** `task NAME (ID): STATUS N%, ACTIVITY` */
export function taskLine(t: Partial<TaskSummary> & { _id: string }): string {
  const activity = typeof t.activity === "string" && t.activity ? `, ${t.activity}` : "";
  return `task ${t.name ?? ""} (${t._id}): ${t.status ?? "?"} ${t.progress ?? 0}%${activity}`;
}

/**
 * The log lines on standard output; on a terminal, under them one line of the task's state,
 * rewritten in place (cleared before each log text and drawn again after it). Not on a
 * terminal: the log lines alone, no control characters.
 */
class LogWithStatus {
  private status = "";
  constructor(private readonly tty = process.stdout.isTTY === true) {}
  log(text: string): void {
    if (!text) return;
    if (!text.endsWith("\n")) text += "\n";
    process.stdout.write(this.tty && this.status ? `\r\x1b[K${text}${this.status}` : text);
  }
  task(line: string): void {
    if (!this.tty || line === this.status) return;
    this.status = line;
    process.stdout.write(`\r\x1b[K${line}`);
  }
  end(): void {
    if (this.tty && this.status) process.stdout.write("\r\x1b[K");
  }
}

async function showLog(target: ManagerTarget, arg: string, follow: boolean): Promise<number> {
  const { job, task } = await resolveTask(target, arg);
  const fetchLog = async () => {
    const r = await call(target, "GET", `/logfile/${encodeURIComponent(job)}/${encodeURIComponent(task)}`);
    if (r.status === 404) return "";
    if (r.status !== 200) throw new CommandError(replyError(r));
    return r.text;
  };
  if (!follow) {
    const text = await fetchLog();
    if (!text) throw new CommandError(`task ${task} has no log yet`);
    process.stdout.write(text);
    return 0;
  }
  // subscribe first, then print the file: a line written in between may show twice, none is lost
  let printedFile = false;
  const out = new LogWithStatus();
  const done = (t: Partial<TaskSummary> | undefined) => {
    if (!t || typeof t.status !== "string") return undefined;
    out.task(taskLine({ ...t, _id: task }));
    return TASK_DONE.has(t.status) ? t.status : undefined;
  };
  const status = await followEvents(
    target,
    `?task=${encodeURIComponent(task)}`,
    (e) => {
      const data = (jsonOf(e.data) ?? e.data) as Record<string, unknown> | string | undefined;
      if (e.event === "log") {
        const text = logText(data, task);
        if (text) out.log(text);
        return undefined;
      }
      if (e.event === "task" && data && typeof data === "object" && data._id === task) return done(data as Partial<TaskSummary>);
      return undefined;
    },
    async () => {
      if (!printedFile) {
        out.log(await fetchLog());
        printedFile = true;
      }
      return done(await taskNow(target, job, task));
    },
  );
  out.end();
  process.stderr.write(`task ${task} ${status}\n`);
  return status === "completed" ? 0 : 1;
}

/** The text of a `log` event: a JSON string, or an object's log/line/text, for our task only. */
function logText(data: Record<string, unknown> | string | undefined, task: string): string | undefined {
  if (typeof data === "string") return data;
  if (!data) return undefined;
  const owner = data.task ?? data.task_id;
  if (owner !== undefined && owner !== task) return undefined;
  const text = data.log ?? data.line ?? data.text;
  return typeof text === "string" ? text : undefined;
}
