// The reference worker's protocol loop: register once, sign on, poll /task, run tasks, follow status
// requests, sign off. Every call is timed out; an unreachable manager means capped back-off with jitter.
import { randomBytes } from "node:crypto";
import { signHs256 } from "../tokens/index.js";
import { DockerClient } from "../docker/index.js";
import { log } from "../log.js";
import { BadSettings, CommandStopped, type CommandContext, type TaskInfo } from "./commands.js";
import { ManagerHttp, ManagerUnreachable, answerError, type Answer, type Credentials } from "./http-client.js";
import type { WorkerOptions } from "./options.js";
import { TaskReporter, type SendResult, type TaskUpdate } from "./reporter.js";
import { RUNNERS } from "./runners.js";
import { ShamanCache } from "./shaman-cache.js";
import { loadRegistration, saveRegistration } from "./state.js";
import { Backoff, pause } from "./timing.js";

/** Why a running task was stopped. */
type StopCause =
  | { kind: "refused"; reason: string } // may-i-run said no (canceled, taken away)
  | { kind: "status"; status: string; reason: string } // may-i-run said no because of a status request
  | { kind: "shutdown" } // SIGTERM/SIGINT or a `shutdown` request
  | { kind: "gone" }; // an update was answered 404/409: no longer our task

interface RunningTask {
  id: string;
  abort: AbortController;
  cause?: StopCause;
}

/** A manager answer that is neither success nor something the loop can wait out. */
export class WorkerFatal extends Error {}

interface TaskDoc {
  _id: string;
  job: string;
  name: string;
  commands: { name: string; settings: Record<string, unknown> }[];
}

export class Worker {
  private readonly http: ManagerHttp;
  private readonly backoff: Backoff;
  private readonly shaman: ShamanCache;
  private creds: Credentials | undefined;
  /** aborted by stop(): pauses end, the loop signs off */
  private readonly stopping = new AbortController();
  /** aborted a while after stop(): the final update of a stopped task stops retrying */
  private readonly giveUp = new AbortController();
  private running: RunningTask | undefined;
  private asleep = false;
  private docker: DockerClient | undefined;
  private unreachableSince: number | undefined;

  constructor(private readonly opts: WorkerOptions, random: () => number = Math.random) {
    this.http = new ManagerHttp(opts.manager, opts.intervals.requestTimeoutMs, opts.ca);
    this.shaman = new ShamanCache(opts.shamanCache, this.http, opts.intervals.requestTimeoutMs);
    this.backoff = new Backoff(opts.intervals.backoffMinMs, opts.intervals.backoffMaxMs, random);
  }

  /** Registers (once), signs on and works until a `shutdown` request or stop(); resolves with the exit code. */
  async run(): Promise<number> {
    try {
      await this.signOn();
      while (!this.stopping.signal.aborted) await (this.asleep ? this.sleepStep() : this.taskStep());
      await this.signOff();
      return 0;
    } finally {
      this.http.close();
      this.docker?.close();
    }
  }

  /** SIGTERM/SIGINT: stop the running task (handing it back), sign off, make run() resolve 0. */
  stop(): void {
    if (this.stopping.signal.aborted) return;
    log.info("worker stopping", { task: this.running?.id });
    this.stopping.abort();
    setTimeout(() => this.giveUp.abort(), Math.floor(this.opts.intervals.signOffTimeoutMs / 2)).unref();
    this.stopTask({ kind: "shutdown" });
  }

  // ---- registration, sign-on, sign-off

  private async register(): Promise<void> {
    const secret = randomBytes(32).toString("hex");
    const body = { secret, platform: process.platform, supported_task_types: this.opts.taskTypes, nickname: this.opts.nickname };
    const auth = this.opts.registrationSecret ? `Bearer ${hs256Token(this.opts.registrationSecret, this.opts.nickname)}` : undefined;
    const a = await this.reliably("/register-worker", () => this.http.request("POST", "/register-worker", { body, auth }));
    if (!a) return;
    if (a.status !== 200 && a.status !== 201) throw new WorkerFatal(`registration refused: ${answerError(a)}`);
    const id = (a.body as { _id?: unknown } | undefined)?._id;
    if (typeof id !== "string" || !id) throw new WorkerFatal("registration answer without a worker _id");
    await saveRegistration(this.opts.stateFile, { manager: this.opts.manager, id, secret, registered: new Date().toISOString() });
    this.creds = { id, secret };
    log.info("registered with the manager", { worker: id, manager: this.opts.manager, state: this.opts.stateFile });
  }

  /** Sign on with the saved registration; register first when there is none (or it is for another manager) or the manager answers 401. */
  private async signOn(): Promise<void> {
    if (!this.creds) {
      const saved = await loadRegistration(this.opts.stateFile);
      if (saved && saved.manager === this.opts.manager) this.creds = { id: saved.id, secret: saved.secret };
      else await this.register();
    }
    const body = { supported_task_types: this.opts.taskTypes, nickname: this.opts.nickname };
    let refusals = 0;
    while (!this.stopping.signal.aborted) {
      const a = await this.reliably("/sign-on", () => this.http.request("POST", "/sign-on", { body, auth: this.creds }));
      if (!a) return;
      if (a.status >= 200 && a.status < 300) {
        this.backoff.reset();
        log.info("signed on", { worker: this.creds?.id, task_types: this.opts.taskTypes.join(","), nickname: this.opts.nickname });
        return;
      }
      if (a.status !== 401) throw new WorkerFatal(`sign-on refused: ${answerError(a)}`);
      log.warn("the manager does not know this worker (401 at sign-on): registering anew", { worker: this.creds?.id });
      if (refusals++ > 0) await pause(this.backoff.delay(), this.stopping.signal); // 401 again right after registering: wait
      if (!this.stopping.signal.aborted) await this.register();
    }
  }

  private async signOff(): Promise<void> {
    if (!this.creds) return;
    try {
      const a = await this.http.request("POST", "/sign-off", { auth: this.creds, timeoutMs: Math.min(this.opts.intervals.requestTimeoutMs, this.opts.intervals.signOffTimeoutMs) });
      if (a.status >= 200 && a.status < 300) log.info("signed off", { worker: this.creds.id });
      else log.warn("sign-off refused", { status: a.status, error: answerError(a) });
    } catch (err) {
      log.warn("could not sign off", { error: (err as Error).message });
    }
  }

  // ---- the loop

  private async taskStep(): Promise<void> {
    const a = await this.reliably("/task", () => this.http.request("GET", "/task", { auth: this.creds }));
    if (!a) return;
    switch (a.status) {
      case 200:
        this.backoff.reset();
        return this.runTask(a.body);
      case 204:
        this.backoff.reset();
        return pause(this.opts.intervals.idleMs, this.stopping.signal);
      case 423:
        return this.changeStatus(statusRequested(a.body));
      case 401:
        return this.unauthorized("/task");
      case 406:
        log.error("the manager says this worker supports no task types", { task_types: this.opts.taskTypes.join(",") });
        return pause(this.opts.intervals.idleMs, this.stopping.signal);
      default:
        return this.unexpected("/task", a);
    }
  }

  /** asleep: no tasks; ask /status-change every idle interval until told to wake up (or shut down) */
  private async sleepStep(): Promise<void> {
    const a = await this.reliably("/status-change", () => this.http.request("GET", "/status-change", { auth: this.creds }));
    if (!a) return;
    if (a.status === 200) return this.changeStatus(statusRequested(a.body));
    if (a.status === 401) return this.unauthorized("/status-change");
    if (a.status !== 204) return this.unexpected("/status-change", a);
    return pause(this.opts.intervals.idleMs, this.stopping.signal);
  }

  /** A 401 after sign-on: wait (back-off), then sign on again, which registers anew if that 401s too. */
  private async unauthorized(path: string): Promise<void> {
    const delay = this.backoff.delay();
    log.warn("the manager answered 401; signing on again after a pause", { path, retry_in_ms: delay });
    await pause(delay, this.stopping.signal);
    if (!this.stopping.signal.aborted) await this.signOn();
  }

  private async unexpected(path: string, a: Answer): Promise<void> {
    const delay = this.backoff.delay();
    log.warn("unexpected manager answer; retrying", { path, error: answerError(a), retry_in_ms: delay });
    await pause(delay, this.stopping.signal);
  }

  private async changeStatus(status: string | undefined): Promise<void> {
    if (!status) return this.unexpected("status request", { status: 0, body: undefined, text: "no status_requested" });
    if (status === "shutdown") {
      log.info("the manager asks this worker to shut down");
      this.stopping.abort(); // the loop ends and signs off: the sign-off is the acknowledgement
      return;
    }
    const a = await this.reliably("/ack-status-change", () => this.http.request("POST", `/ack-status-change/${encodeURIComponent(status)}`, { auth: this.creds }));
    if (!a) return;
    if (a.status === 401) return this.unauthorized("/ack-status-change");
    if (a.status < 200 || a.status >= 300) return this.unexpected("/ack-status-change", a);
    this.asleep = status === "asleep";
    if (status === "asleep" || status === "awake") log.info(`status changed to ${status}`);
    else log.warn("acknowledged a status this worker does not act on; carrying on awake", { status });
  }

  /**
   * `call` until it gets an answer: while the manager is unreachable or answers 5xx, back off
   * (logging each retry on stderr). undefined when stop() came first.
   */
  private async reliably(what: string, call: () => Promise<Answer>): Promise<Answer | undefined> {
    while (!this.stopping.signal.aborted) {
      let problem: string;
      try {
        const a = await call();
        if (a.status < 500) {
          if (this.unreachableSince !== undefined) {
            log.info("the manager answers again", { after_ms: Math.round(performance.now() - this.unreachableSince) });
            this.unreachableSince = undefined;
            this.backoff.reset();
          }
          return a;
        }
        problem = answerError(a);
      } catch (err) {
        if (!(err instanceof ManagerUnreachable)) throw err;
        problem = err.cause.message;
      }
      this.unreachableSince ??= performance.now();
      const delay = this.backoff.delay();
      log.warn("manager unavailable; retrying", { call: what, error: problem, retry_in_ms: delay });
      await pause(delay, this.stopping.signal);
    }
    return undefined;
  }

  // ---- running a task

  private async runTask(body: unknown): Promise<void> {
    const task = parseTask(body);
    if (typeof task === "string") {
      log.error("the manager sent a task this worker cannot read", { problem: task });
      return pause(this.opts.intervals.idleMs, this.stopping.signal);
    }
    const running: RunningTask = { id: task._id, abort: new AbortController() };
    this.running = running;
    // stop() came while /task was in flight: hand the task straight back (sign-off re-queues it)
    if (this.stopping.signal.aborted) this.stopTask({ kind: "shutdown" });
    const reporter = new TaskReporter((u) => this.sendUpdate(task._id, u), this.opts.intervals.flushMs, () => this.stopTask({ kind: "gone" }));
    log.info("task started", { task: task._id, job: task.job, name: task.name, commands: task.commands.length });
    reporter.log(`task ${task._id} (${task.name}) started on worker ${this.opts.nickname}`);
    reporter.start();
    const mayIRun = this.watchMayIRun(task._id);
    let outcome: { ok: true } | { ok: false; message: string };
    try {
      await this.runCommands(task, running.abort.signal, reporter);
      outcome = { ok: true };
    } catch (err) {
      outcome = { ok: false, message: err instanceof Error ? err.message : String(err) };
    } finally {
      clearInterval(mayIRun);
      this.running = undefined;
    }
    await this.report(task, running, reporter, outcome);
  }

  private async runCommands(task: TaskDoc, signal: AbortSignal, reporter: TaskReporter): Promise<void> {
    const n = task.commands.length;
    const info: TaskInfo = { id: task._id, job: task.job, name: task.name };
    for (const [i, command] of task.commands.entries()) {
      if (signal.aborted) throw new CommandStopped();
      const runner = RUNNERS[command.name];
      if (!runner) throw new BadSettings(`unknown command ${JSON.stringify(command.name)}`);
      if (!this.opts.taskTypes.includes(command.name)) throw new BadSettings(`this worker does not run ${command.name} commands (--task-types)`);
      const overall = (pct: number) => Math.min(100, Math.floor(((i + pct / 100) / n) * 100));
      reporter.set({ activity: `command ${i + 1}/${n}: ${command.name}`, current_command_idx: i, command_progress_percentage: 0, task_progress_percentage: overall(0) });
      const ctx: CommandContext = {
        signal,
        log: (line) => reporter.log(line),
        progress: (pct) => reporter.set({ command_progress_percentage: pct, task_progress_percentage: overall(pct) }),
        killGraceMs: this.opts.intervals.killGraceMs,
        docker: () => (this.docker ??= new DockerClient(this.opts.dockerSocket)),
        task: info,
        commandIdx: i,
        checkout: (id) => {
          if (!this.creds) throw new Error("not registered");
          return this.shaman.checkout(id, this.creds, `${task._id}-${i}`, ctx.log, signal);
        },
      };
      try {
        await runner(command.settings, ctx);
      } catch (err) {
        if (err instanceof CommandStopped || signal.aborted) throw new CommandStopped();
        throw new Error(`command ${i + 1} (${command.name}) failed: ${(err as Error).message}`);
      }
    }
  }

  /** The last update: completed, failed, or — when stopped — canceled or handed back without a status. */
  private async report(task: TaskDoc, running: RunningTask, reporter: TaskReporter, outcome: { ok: true } | { ok: false; message: string }): Promise<void> {
    const cause = running.cause;
    let final: TaskUpdate;
    if (cause?.kind === "gone") {
      reporter.stop();
      log.warn("task taken away by the manager (404/409 on update); dropped", { task: task._id });
      return;
    }
    if (outcome.ok) {
      // every command ran: a stop that came too late changes nothing
      reporter.log("task completed");
      final = { task_status: "completed", activity: "completed", task_progress_percentage: 100, command_progress_percentage: 100 };
    } else if (!cause) {
      reporter.log(outcome.message);
      final = { task_status: "failed", activity: `failed: ${outcome.message}`.slice(0, 500) };
    } else if (cause.kind === "refused") {
      reporter.log(`stopped: the manager says the task may not keep running (${cause.reason})`);
      final = { task_status: "canceled", activity: `stopped: ${cause.reason}`.slice(0, 500) };
    } else if (cause.kind === "status") {
      reporter.log(`stopped: the worker must change status to ${cause.status} (${cause.reason})`);
      final = { activity: `stopped: worker going ${cause.status}` };
    } else {
      reporter.log("stopped: the worker is shutting down; the manager re-queues the task at sign-off");
      final = { activity: "stopped: worker shutting down" };
    }
    const delivered = await reporter.finish(final, () => pause(this.backoff.delay(), this.giveUp.signal), this.giveUp.signal);
    log.info("task finished", { task: task._id, status: final.task_status ?? "handed back", reported: delivered, error: outcome.ok ? undefined : outcome.message });
    if (cause?.kind === "status") await this.changeStatus(cause.status);
  }

  private stopTask(cause: StopCause): void {
    const running = this.running;
    if (!running || running.abort.signal.aborted) return;
    running.cause = cause;
    running.abort.abort();
  }

  private async sendUpdate(taskId: string, update: TaskUpdate): Promise<SendResult> {
    let a: Answer;
    try {
      a = await this.http.request("POST", `/tasks/${encodeURIComponent(taskId)}/update`, { body: update, auth: this.creds });
    } catch (err) {
      log.warn("task update not delivered; kept for the next one", { task: taskId, error: (err as Error).message });
      return "retry";
    }
    if (a.status >= 200 && a.status < 300) return "ok";
    if (a.status === 404 || a.status === 409) return "gone";
    log.warn("task update refused; kept for the next one", { task: taskId, error: answerError(a) });
    return "retry";
  }

  /** Ask /may-i-run every mayIRunMs; a "no" stops the task. Unreachable: keep running (the manager times tasks out). */
  private watchMayIRun(taskId: string): NodeJS.Timeout {
    let asking = false;
    return setInterval(() => {
      if (asking) return;
      asking = true;
      this.http
        .request("GET", `/may-i-run/${encodeURIComponent(taskId)}`, { auth: this.creds })
        .then((a) => {
          const r = a.body as { may_keep_running?: unknown; reason?: unknown; status_requested?: unknown } | undefined;
          if (a.status !== 200 || r?.may_keep_running !== false || this.running?.id !== taskId) return;
          const reason = typeof r.reason === "string" ? r.reason : "no reason given";
          log.info("the manager says the task may not keep running", { task: taskId, reason });
          if (typeof r.status_requested === "string" && r.status_requested) this.stopTask({ kind: "status", status: r.status_requested, reason });
          else this.stopTask({ kind: "refused", reason });
        })
        .catch(() => {})
        .finally(() => (asking = false));
    }, this.opts.intervals.mayIRunMs);
  }
}

function statusRequested(body: unknown): string | undefined {
  const s = (body as { status_requested?: unknown } | undefined)?.status_requested;
  return typeof s === "string" && s ? s : undefined;
}

/** The Task document, or what is wrong with it. */
export function parseTask(body: unknown): TaskDoc | string {
  const t = body as Partial<Record<keyof TaskDoc, unknown>> | undefined;
  if (!t || typeof t !== "object") return "not an object";
  if (typeof t._id !== "string" || !t._id) return "no _id";
  if (!Array.isArray(t.commands)) return "no commands list";
  const commands: TaskDoc["commands"] = [];
  for (const c of t.commands as unknown[]) {
    const cmd = c as { name?: unknown; settings?: unknown } | null;
    if (!cmd || typeof cmd.name !== "string") return "a command without a name";
    const settings = cmd.settings ?? {};
    if (typeof settings !== "object" || Array.isArray(settings)) return `command ${cmd.name}: settings is not an object`;
    commands.push({ name: cmd.name, settings: settings as Record<string, unknown> });
  }
  return { _id: t._id, job: typeof t.job === "string" ? t.job : "", name: typeof t.name === "string" ? t.name : t._id, commands };
}

/** HS256 JWT for /register-worker when the manager has manager_registration_secret (valid 5 minutes). */
export function hs256Token(secret: string, subject: string, now = Math.floor(Date.now() / 1000)): string {
  return signHs256({ sub: subject, iat: now, exp: now + 300 }, secret);
}
