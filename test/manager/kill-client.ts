// Load client of the manager kill -9 test: workers and a user drive the manager; every acknowledged answer is printed as one JSON line.
//
// argv: client number, PRNG seed, worker slots. stdin: "go <port> <user token>" starts (or resumes)
// the load, "pause" stops it: the actors finish their request in flight and "paused" is printed
// once all are idle. Printing is synchronous on a pipe (Linux), so a line on stdout means the
// answer arrived before the client made its next request. A request that got no answer (the
// server was killed) leaves its outcome unknown: a worker prints "doubt" and resynchronises
// through /task, which hands back the task the manager holds for it.
import http from "node:http";
import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import { intRng } from "../helpers/random.js";

const clientNo = Number(process.argv[2]);
const rand = intRng(Number(process.argv[3]));
const workerSlots = Number(process.argv[4] ?? 2);
const REQUEST_TIMEOUT_MS = 20_000;
/** own jobs the user keeps open before it cancels or looks one up */
const OPEN_JOBS = 3;
const TASK_TYPES = ["a", "b"];

let port = 0;
let token = "";
let agent = new http.Agent({ keepAlive: true });
let paused = true;
/** a connection was refused since the last "go" */
let serverDown = false;
let resumed: Promise<void>;
let resume: () => void = () => {};
let idle = 0;
let counter = 0;
const ACTORS = workerSlots + 1;

function pauseGate(): void {
  paused = true;
  resumed = new Promise((r) => (resume = r));
}
pauseGate();

function emit(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

/** Every actor passes here before each step; the last one to stop reports "paused". */
async function gate(): Promise<void> {
  if (!paused) return;
  idle++;
  if (idle === ACTORS) emit({ e: "paused" });
  await resumed;
  idle--;
}

createInterface({ input: process.stdin }).on("line", (line) => {
  const [cmd, p, t] = line.split(" ");
  if (cmd === "go") {
    port = Number(p);
    token = t!;
    agent.destroy();
    agent = new http.Agent({ keepAlive: true });
    paused = false;
    serverDown = false;
    resume();
  } else if (cmd === "pause") {
    pauseGate();
    if (idle === ACTORS) emit({ e: "paused" });
  } else if (cmd === "exit") process.exit(0);
});

/** The server answered (any status). */
interface Answer {
  status: number;
  body: any;
}

/** No answer: reset, closed mid-answer or timed out. Whatever was asked may or may not have happened. */
class Lost extends Error {}
/** Connection refused (the server is down): the request was never sent, so nothing happened. */
class Refused extends Lost {}

function request(method: string, path: string, auth: string, body?: unknown): Promise<Answer> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        method,
        path,
        agent,
        timeout: REQUEST_TIMEOUT_MS,
        headers: { authorization: auth, ...(payload ? { "content-type": "application/json", "content-length": payload.length } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", (err) => reject(new Lost(err.message)));
        res.on("end", () => {
          if (!res.complete) return reject(new Lost("answer cut off"));
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown = text;
          if ((res.headers["content-type"] ?? "").includes("json") && text) parsed = JSON.parse(text);
          resolve({ status: res.statusCode!, body: parsed });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code !== "ECONNREFUSED") return reject(new Lost(err.message));
      serverDown = true;
      reject(new Refused(err.message));
    });
    req.end(payload);
  });
}

function fail(what: string, a: Answer): never {
  emit({ e: "error", client: clientNo, msg: `${what}: unexpected ${a.status} ${JSON.stringify(a.body)}` });
  process.exit(1);
}

// ------------------------------------------------------------------ user

interface OwnJob {
  id: string;
  /** the last pause or resume acknowledged (after one in doubt, either way works: both are idempotent) */
  paused: boolean;
}
const jobs: OwnJob[] = [];

const bearer = () => `Bearer ${token}`;

function jobSpec(): unknown {
  const n = 1 + rand(4);
  const tasks = Array.from({ length: n }, (_, i) => ({
    name: `t${i}`,
    task_type: TASK_TYPES[rand(TASK_TYPES.length)]!,
    priority: 1 + rand(100),
    commands: [{ name: "echo", settings: { message: `job of client ${clientNo}` } }],
    ...(i > 0 && rand(3) === 0 ? { parents: [`t${rand(i)}`] } : {}),
  }));
  return { name: `c${clientNo}-${counter++}`, priority: 1 + rand(100), tasks };
}

/**
 * The user's changes are printed twice: what it is about to ask ("cancelling", "prioritizing",
 * "pausing"; it may happen without an answer), then what was acknowledged.
 */
async function userStep(): Promise<void> {
  if (jobs.length < OPEN_JOBS && rand(4) !== 0) {
    const a = await request("POST", "/api/jobs", bearer(), jobSpec());
    if (a.status !== 201) fail("submit", a);
    jobs.push({ id: a.body._id, paused: false });
    emit({ e: "job", j: a.body._id, tasks: a.body.tasks.map((t: { _id: string }) => t._id), priority: a.body.priority });
    return;
  }
  if (jobs.length === 0) return;
  const i = rand(jobs.length);
  const job = jobs[i]!;
  const r = rand(12);
  if (r < 4) {
    // printed before asking: a worker may lose its task to this cancel before the answer comes, or without one
    emit({ e: "cancelling", j: job.id });
    const a = await request("POST", `/api/jobs/${job.id}/cancel`, bearer());
    if (a.status === 200) emit({ e: "cancel", j: job.id });
    else if (a.status !== 409) fail("cancel", a); // 409: completed meanwhile
    jobs.splice(i, 1);
  } else if (r < 6) {
    const priority = 1 + rand(100);
    emit({ e: "prioritizing", j: job.id, priority });
    const a = await request("POST", `/api/jobs/${job.id}/priority`, bearer(), { priority });
    if (a.status !== 200) fail("priority", a);
    emit({ e: "prio", j: job.id, priority });
  } else if (r < 8) {
    const action = job.paused ? "resume" : "pause";
    emit({ e: "pausing", j: job.id });
    const a = await request("POST", `/api/jobs/${job.id}/${action}`, bearer());
    if (a.status === 409) return void jobs.splice(i, 1); // over (completed or failed) meanwhile
    if (a.status !== 200) fail(action, a);
    job.paused = action === "pause";
    emit({ e: job.paused ? "jpause" : "jresume", j: job.id });
  } else {
    // forget jobs that are over, so new ones keep coming
    const a = await request("GET", `/api/jobs/${job.id}`, bearer());
    if (a.status !== 200) fail("get job", a);
    if (["completed", "failed", "canceled"].includes(a.body.status)) jobs.splice(i, 1);
  }
}

// ------------------------------------------------------------------ workers

interface Worker {
  id: string;
  secret: string;
  signedOn: boolean;
  /** the task the worker knows it holds; undefined: none, or not known (then /task tells) */
  held: { task: string; job: string } | undefined;
  /** acknowledged asleep: asks /status-change instead of /task (after an ack in doubt: awake, and /task tells) */
  asleep: boolean;
}
const slots: (Worker | undefined)[] = Array.from({ length: workerSlots }, () => undefined);

/**
 * What a worker's request in flight could change, printed with "doubt" when it gets no answer:
 * "task" may have assigned a task; "release" may have let go of the held one (a report, a
 * return, sign-on or -off); "soft" leaves the task where it is (an update may have set its
 * activity and progress and appended its log line; may-i-run, output-produced and /status-change
 * change no task). "sreq" may have set a status request (the worker asks for itself, with the user's
 * token: one actor, so its requests and acknowledgements are applied in the order sent), "sack"
 * may have acknowledged one, "off" may have signed the worker off (and cleared a shutdown request).
 */
type InFlight =
  | { kind: "task" | "release" | "off" }
  | { kind: "soft"; activity?: string; progress?: number; log?: string }
  | { kind: "sreq"; status: string; lazy: boolean }
  | { kind: "sack"; status: string };

const basic = (w: Worker) => `Basic ${Buffer.from(`${w.id}:${w.secret}`).toString("base64")}`;

async function register(slot: number): Promise<void> {
  const secret = randomBytes(12).toString("hex");
  const a = await request("POST", "/register-worker", "", { secret, platform: "linux", supported_task_types: TASK_TYPES, nickname: `c${clientNo}s${slot}` });
  if (a.status !== 200) fail("register", a);
  slots[slot] = { id: a.body._id, secret, signedOn: false, held: undefined, asleep: false };
  emit({ e: "reg", w: a.body._id, s: secret });
}

/** One request of a worker. Without an answer its outcome is unknown: "doubt", then /task says what the worker holds. */
async function workerStep(slot: number): Promise<void> {
  const w = slots[slot];
  if (!w) return register(slot);
  let inFlight: InFlight = { kind: "soft" };
  const send = (what: InFlight, method: string, path: string, body?: unknown, auth = basic(w)) => {
    inFlight = what;
    return request(method, path, auth, body);
  };
  try {
    await workerRequest(slot, w, send);
  } catch (err) {
    if (!(err instanceof Lost)) throw err;
    if (err instanceof Refused) return;
    w.held = undefined;
    emit({ e: "doubt", w: w.id, ...inFlight });
  }
}

type Send = (what: InFlight, method: string, path: string, body?: unknown, auth?: string) => Promise<Answer>;

async function workerRequest(slot: number, w: Worker, send: Send): Promise<void> {
  if (!w.signedOn) {
    const a = await send({ kind: "release" }, "POST", "/sign-on", { supported_task_types: TASK_TYPES });
    if (a.status !== 204) fail("sign-on", a);
    w.signedOn = true;
    w.held = undefined;
    return emit({ e: "none", w: w.id });
  }
  if (w.asleep) return sleepStep(slot, w, send);
  if (!w.held) {
    if (rand(150) === 0) return signOff(slot, w, send); // retired: a new worker registers in this slot
    if (rand(25) === 0) return requestStatus(w, send);
    const a = await send({ kind: "task" }, "POST", "/task");
    if (a.status === 204) {
      emit({ e: "none", w: w.id });
      // an idle worker polls again a little later (pacing, not synchronisation)
      return new Promise((r) => setTimeout(r, 1 + rand(10)));
    }
    if (a.status === 423) return changeStatus(slot, w, a.body.status_requested, send);
    if (a.status !== 200) fail("task", a);
    w.held = { task: a.body._id, job: a.body.job };
    return emit({ e: "assign", w: w.id, x: a.body._id, j: a.body.job, activity: a.body.activity });
  }
  const { task, job } = w.held;
  if (rand(40) === 0) return requestStatus(w, send);
  const r = rand(20);
  if (r < 10) {
    const n = counter++;
    const update = { activity: `step ${n}`, task_progress_percentage: rand(101), log: `c${clientNo} ${task} line ${n}` };
    const a = await send({ kind: "soft", activity: update.activity, progress: update.task_progress_percentage, log: update.log }, "POST", `/tasks/${task}/update`, update);
    if (a.status !== 204) fail("update", a);
    return emit({ e: "upd", w: w.id, x: task, activity: update.activity, progress: update.task_progress_percentage, log: update.log });
  }
  if (r < 12) {
    const a = await send({ kind: "soft" }, "GET", `/may-i-run/${task}`);
    if (a.status !== 200) fail("may-i-run", a);
    if (a.body.may_keep_running) return;
    // told to stop for a status request (immediate): hand the task back, then /task says which
    if (a.body.status_requested) return giveBack(w, send);
    // told to stop (its job was canceled): report the task canceled
    return finish(w, "canceled", send);
  }
  if (r < 16) return finish(w, "completed", send);
  if (r < 18) return finish(w, "failed", send);
  if (r < 19) return giveBack(w, send);
  const a = await send({ kind: "soft" }, "POST", "/output-produced", { paths: [`/out/${job}/${counter++}.png`] });
  if (a.status !== 204) fail("output-produced", a);
}

async function giveBack(w: Worker, send: Send): Promise<void> {
  const a = await send({ kind: "release" }, "POST", `/tasks/${w.held!.task}/return`);
  if (a.status !== 204) fail("return", a);
  w.held = undefined;
  emit({ e: "none", w: w.id });
}

async function signOff(slot: number, w: Worker, send: Send): Promise<void> {
  const a = await send({ kind: "off" }, "POST", "/sign-off");
  if (a.status !== 204) fail("sign-off", a);
  slots[slot] = undefined;
  emit({ e: "off", w: w.id });
}

/** A status request for this worker through the user API (mostly asleep; lazy or immediate). */
async function requestStatus(w: Worker, send: Send, status = ["asleep", "asleep", "asleep", "awake", "shutdown"][rand(5)]!): Promise<void> {
  const lazy = rand(2) === 0;
  const a = await send({ kind: "sreq", status, lazy }, "POST", `/api/workers/${w.id}/status-request`, { status, lazy }, bearer());
  if (a.status !== 204) fail("status-request", a);
  emit({ e: "sreq", w: w.id, status, lazy });
}

/** What a v2 worker does when told of a status request: shutdown signs off, the others are acknowledged. */
async function changeStatus(slot: number, w: Worker, status: unknown, send: Send): Promise<void> {
  if (status === "shutdown") return signOff(slot, w, send);
  if (status !== "asleep" && status !== "awake") return fail("status requested", { status: 0, body: status });
  const a = await send({ kind: "sack", status }, "POST", `/ack-status-change/${status}`);
  if (a.status !== 204) fail("ack-status-change", a);
  w.asleep = status === "asleep";
  emit({ e: "sack", w: w.id, status });
}

/** Asleep: ask /status-change; nothing asked, now and then the worker asks to be woken (as its user would). */
async function sleepStep(slot: number, w: Worker, send: Send): Promise<void> {
  const a = await send({ kind: "soft" }, "GET", "/status-change");
  if (a.status === 200) return changeStatus(slot, w, a.body.status_requested, send);
  if (a.status !== 204) fail("status-change", a);
  if (rand(3) === 0) return requestStatus(w, send, "awake");
  // pacing, not synchronisation
  return new Promise((r) => setTimeout(r, 1 + rand(10)));
}

async function finish(w: Worker, status: "completed" | "failed" | "canceled", send: Send): Promise<void> {
  const task = w.held!.task;
  const a = await send({ kind: "release" }, "POST", `/tasks/${task}/update`, { task_status: status });
  if (a.status !== 204) fail(`update ${status}`, a);
  w.held = undefined;
  emit({ e: "done", w: w.id, x: task, status });
}

async function actor(step: () => Promise<void>, lostIsFine: boolean): Promise<never> {
  for (;;) {
    await gate();
    try {
      await step();
    } catch (err) {
      if (!(lostIsFine && err instanceof Lost)) throw err;
    }
    // the server is down until the parent pauses us: do not spin (pacing, not synchronisation)
    if (serverDown) await new Promise((r) => setTimeout(r, 5));
  }
}

// the user paces itself so that most requests are the workers' (pacing, not synchronisation)
void actor(() => userStep().finally(() => new Promise((r) => setTimeout(r, rand(20)))), true);
for (let slot = 0; slot < workerSlots; slot++) void actor(() => workerStep(slot), true);
