// The task farm end to end with real processes: the bundled daemon's manager, three `stevedore worker`
// processes and the `stevedore jobs`/`workers` CLI. A 300-task job with dependencies completes while a
// worker is SIGKILLed mid-task (its task completes elsewhere after the worker time-out); docker-run
// tasks run in real containers listed in the catalog; a failing job ends `failed`; a SIGTERM'd worker
// signs off and its task is re-queued.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { request } from "node:http";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { mintUserToken } from "../../src/manager/auth.js";
import { DOCKER_SOCKET, dockerReachable, ensureTestImage, needDocker, run, waitFor } from "../helpers/docker.js";
import { BUNDLE, runBundle, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { get } from "../query/http.js";

/** the manager forgets a silent worker after this long (the schema's minimum is 1 s); short for the
 *  test, but a healthy worker starved by a loaded machine must not stay silent that long */
const WORKER_TIMEOUT_SECS = 4;
/** well above the worker time-out: a killed worker's task is re-queued, not failed */
const TASK_TIMEOUT_SECS = 20;
const WORKER_ENV = {
  STEVEDORE_WORKER_IDLE_MS: "100",
  STEVEDORE_WORKER_FLUSH_MS: "200",
  STEVEDORE_WORKER_MAY_I_RUN_MS: "200",
  STEVEDORE_WORKER_BACKOFF_MIN_MS: "100",
  STEVEDORE_WORKER_BACKOFF_MAX_MS: "1000",
  STEVEDORE_WORKER_REQUEST_TIMEOUT_MS: "10000",
  STEVEDORE_WORKER_KILL_GRACE_MS: "1000",
  STEVEDORE_WORKER_SIGN_OFF_TIMEOUT_MS: "5000",
};
const NICKNAMES = ["farm-a", "farm-b", "farm-c"];
const STEPS = 290;
const LONG_SLEEP_SECS = 6;

interface Task {
  _id: string;
  name: string;
  status: string;
  worker: string;
  activity: string;
}
interface Job {
  _id: string;
  name: string;
  status: string;
  task_counts: Record<string, number>;
  tasks?: Task[];
}
interface WorkerDoc {
  _id: string;
  nickname: string;
  status: string;
  current_task: string;
}

interface WorkerProc {
  nickname: string;
  state: string;
  proc: ChildProcess;
  logs: string[];
  exited: Promise<number | null>;
}

let d: TestDaemon;
let token: string;
const workers = new Map<string, WorkerProc>();
/** jobs the docker-run tasks may have left containers for */
const jobIds: string[] = [];

function startWorker(nickname: string): WorkerProc {
  const state = join(d.dir, `worker-${nickname}.json`);
  const proc = spawn(process.execPath, [BUNDLE, "worker", "--manager", `http://127.0.0.1:${d.managerPort}`, "--state", state, "--nickname", nickname, "--task-types", "echo,sleep,exec,docker-run"], {
    env: { ...process.env, ...WORKER_ENV, DOCKER_HOST: `unix://${DOCKER_SOCKET}`, STEVEDORE_CONFIG: "", STEVEDORE_WORKER_REGISTRATION_SECRET: "" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const w: WorkerProc = { nickname, state, proc, logs: [], exited: new Promise((res) => proc.once("exit", (code) => res(code))) };
  proc.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    for (const line of chunk.split("\n")) if (line) w.logs.push(line);
    if (process.env.STEVEDORE_TEST_VERBOSE) process.stderr.write(chunk.replace(/^(?=.)/gm, `[${nickname}] `));
  });
  workers.set(nickname, w);
  return w;
}

/** A CLI run as a real process against the daemon's config; resolves with its exit code and output. */
function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runBundle(args, { STEVEDORE_CONFIG: d.configPath, STEVEDORE_STATE_DIR: "", STEVEDORE_MANAGER_TOKEN: "", STEVEDORE_QUERY_SOCKET: "" });
}

/** The manager's job API with a user token. */
function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { Authorization: `Bearer ${token}`, "Content-Length": payload?.length ?? 0 };
    if (payload) headers["Content-Type"] = "application/json";
    const req = request({ host: "127.0.0.1", port: d.managerPort, method, path, headers, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (c: string) => (text += c));
      res.on("end", () => {
        if ((res.statusCode ?? 0) >= 300) return reject(new Error(`${method} ${path}: HTTP ${res.statusCode} ${text}`));
        resolve((text ? JSON.parse(text) : undefined) as T);
      });
    });
    req.on("error", reject);
    req.end(payload);
  });
}

const getJob = (id: string) => api<Job>("GET", `/api/jobs/${id}`);
const listWorkers = async () => (await api<{ workers: WorkerDoc[] }>("GET", "/api/workers")).workers;

/** The job's id once it is listed under `name` (the CLI submits it; the test learns its id here). */
async function jobNamed(name: string, timeoutMs = 30_000): Promise<Job> {
  const listed = await waitFor(`job ${name} submitted`, async () => (await api<{ jobs: Job[] }>("GET", "/api/jobs")).jobs.find((j) => j.name === name), timeoutMs, 20);
  jobIds.push(listed._id);
  return listed;
}

async function taskNamed(jobId: string, name: string): Promise<Task> {
  const task = (await getJob(jobId)).tasks?.find((t) => t.name === name);
  assert.ok(task, `job ${jobId} has a task ${name}`);
  return task;
}

/** Wait until the named task satisfies `ok`; polls the job API. */
function waitForTask(jobId: string, name: string, what: string, ok: (t: Task) => boolean, timeoutMs = 30_000): Promise<Task> {
  return waitFor(`task ${name} ${what}`, async () => {
    const task = await taskNamed(jobId, name);
    return ok(task) ? task : undefined;
  }, timeoutMs, 25);
}

async function workerProcOf(workerId: string): Promise<WorkerProc> {
  const doc = (await listWorkers()).find((w) => w._id === workerId);
  const w = doc && workers.get(doc.nickname);
  assert.ok(w, `worker ${workerId} is one of ours`);
  return w;
}

function taskLogPath(jobId: string, taskId: string): string {
  return join(d.stateDir, "task-logs", `job-${jobId.slice(0, 4)}`, jobId, `task-${taskId}.txt`);
}

async function writeJob(name: string, doc: unknown): Promise<string> {
  const file = join(d.dir, `${name}.json`);
  await writeFile(file, JSON.stringify(doc));
  return file;
}

/** The 300 tasks: two roots, a 290-step DAG, docker-run (or, without Docker, echo) tasks and a final one. */
function bigJob(name: string, image: string | undefined) {
  const tasks: Record<string, unknown>[] = [
    { name: "prepare", task_type: "echo", commands: [{ name: "echo", settings: { message: "preparing" } }] },
    // picked first (highest priority); its worker is killed while it sleeps (long enough for the test to
    // see it sleeping on a loaded machine)
    { name: "long", task_type: "sleep", priority: 100, commands: [{ name: "echo", settings: { message: "long task" } }, { name: "sleep", settings: { time_in_seconds: LONG_SLEEP_SECS } }] },
  ];
  for (let i = 0; i < STEPS; i++) {
    const parents = ["prepare", ...(i >= 6 ? [`step-${i - 6}`] : [])];
    const commands = i % 10 === 9
      ? [{ name: "exec", settings: { cmd: ["echo", `exec step ${i}`] } }]
      : [{ name: "echo", settings: { message: `step ${i}` } }];
    tasks.push({ name: `step-${i}`, task_type: i % 10 === 9 ? "exec" : "echo", commands, parents });
  }
  for (let i = 0; i < 7; i++) {
    // container-0 runs long enough to be seen in the catalog
    const cmd = i === 0 ? ["sh", "-c", "echo in container 0; sleep 5"] : ["echo", `in container ${i}`];
    tasks.push(image
      ? { name: `container-${i}`, task_type: "docker-run", commands: [{ name: "docker-run", settings: { image, cmd } }], parents: ["prepare"] }
      : { name: `container-${i}`, task_type: "echo", commands: [{ name: "echo", settings: { message: `no Docker: container ${i} as echo` } }], parents: ["prepare"] });
  }
  const last = Array.from({ length: 6 }, (_, k) => `step-${STEPS - 1 - k}`);
  tasks.push({ name: "collect", task_type: "echo", commands: [{ name: "echo", settings: { message: "all done" } }], parents: ["long", ...last, ...Array.from({ length: 7 }, (_, i) => `container-${i}`)] });
  assert.equal(tasks.length, 300);
  return { name, priority: 60, tasks };
}

describe("the task farm with real workers", { timeout: 180_000 }, () => {
  before(async () => {
    d = await startDaemon({
      disable: ["https", "http", "core"],
      config: `manager_worker_timeout_secs = ${WORKER_TIMEOUT_SECS}\nmanager_task_timeout_secs = ${TASK_TIMEOUT_SECS}`,
    });
    token = await mintUserToken(d.stateDir, { subject: "farm-e2e", ttlSecs: 600 });
    for (const n of NICKNAMES) startWorker(n);
    await waitFor("three workers awake", async () => {
      const ws = await listWorkers();
      return ws.length === 3 && ws.every((w) => w.status === "awake");
    }, 30_000, 25);
  });

  after(async () => {
    // only the SIGKILLed worker should ever time out; more means the machine was too slow for WORKER_TIMEOUT_SECS
    const timeouts = d?.logs.filter((l) => /msg="worker timed out"/.test(l)).length ?? 0;
    if (timeouts !== 1) process.stderr.write(`farm e2e: ${timeouts} worker time-outs in the daemon log (expected 1)\n`);
    for (const w of workers.values()) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill("SIGKILL");
    await Promise.all([...workers.values()].map((w) => w.exited));
    await d?.cleanup();
    if (await dockerReachable()) {
      for (const job of jobIds) {
        const { stdout } = await run("docker", ["ps", "-aq", "--filter", `label=stevedore.worker.job=${job}`]).catch(() => ({ stdout: "" }));
        const ids = stdout.split("\n").filter(Boolean);
        if (ids.length) await run("docker", ["rm", "-f", "-v", ...ids]).catch(() => {});
      }
    }
  });

  test("stevedore workers lists the three workers", async () => {
    const r = await cli("workers");
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.match(lines[0]!, /^ID\s+NICKNAME\s+STATUS/);
    for (const n of NICKNAMES) assert.ok(lines.some((l) => new RegExp(`^[0-9a-f]{24}\\s+${n}\\s+awake\\b`).test(l)), `${n} listed awake:\n${r.stdout}`);
    assert.equal(lines.length, 4);
  });

  test("a 300-task job with dependencies completes; a SIGKILLed worker's task completes elsewhere", async (t) => {
    const started = performance.now();
    const docker = await dockerReachable();
    if (!docker && process.env.STEVEDORE_TEST_DOCKER === "required") throw new Error(`Docker is required but ${DOCKER_SOCKET} does not answer`);
    const image = docker ? await ensureTestImage() : undefined;
    if (!docker) t.diagnostic("no Docker: the docker-run tasks are echo tasks");

    // the query token first: a CLI run takes seconds on a loaded machine, and "long" and container-0
    // must still be running when the test looks for them
    const queryToken = docker ? (await cli("token", "get", "farm-e2e")).stdout.trim() : "";
    if (docker) assert.match(queryToken, /^[0-9a-f]{64}$/);
    const submitted = cli("jobs", "submit", await writeJob("big", bigJob("farm-big", image)), "--wait");
    const job = await jobNamed("farm-big");
    assert.equal(job.task_counts.queued! + (job.task_counts.active ?? 0) + (job.task_counts.completed ?? 0), 300);

    // while container-0 runs, its container is in the catalog (deployment job-<job id>)
    const seenInCatalog = docker
      ? waitFor("container-0 running in the catalog", async () => {
          const r = await get(d.querySocket, "/services", { token: queryToken });
          return r.status === 200 && (r.json as { deployment: string; service: string; running: boolean }[]).find((s) => s.deployment === `job-${job._id}` && s.service === "container-0" && s.running);
        }, 30_000, 20)
      : undefined;
    seenInCatalog?.catch(() => {}); // awaited below

    // kill the worker running "long" while it sleeps
    const long = await waitForTask(job._id, "long", "sleeping", (x) => x.status === "active" && /^command 2\/2: sleep/.test(x.activity));
    const victim = await workerProcOf(long.worker);
    victim.proc.kill("SIGKILL");
    await victim.exited;
    const killedAt = performance.now();
    t.diagnostic(`killed ${victim.nickname} (${long.worker}) running "long" at ${Math.round(killedAt - started)} ms`);

    await waitFor("the killed worker timed out", async () => (await listWorkers()).find((w) => w._id === long.worker)?.status === "timeout", 30_000, 25);
    const done = await waitForTask(job._id, "long", "completed on another worker", (x) => x.status === "completed", 40_000);
    assert.notEqual(done.worker, long.worker, "completed by another worker");
    t.diagnostic(`"long" completed elsewhere ${Math.round(performance.now() - killedAt)} ms after the kill`);
    // the first activation's log (rotated at the re-assignment) says why it moved
    const firstRun = await readFile(taskLogPath(job._id, long._id) + ".1", "utf8");
    assert.match(firstRun, new RegExp(`started on worker ${victim.nickname}`));
    assert.match(firstRun, new RegExp(`task re-queued: worker ${victim.nickname} \\(${long.worker}\\) timed out`));

    // the same registration comes back (the failing job below wants three workers)
    startWorker(victim.nickname);

    const r = await submitted;
    assert.equal(r.code, 0, `jobs submit --wait: ${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, new RegExp(`job ${job._id} completed\\n$`));
    const final = await getJob(job._id);
    assert.equal(final.status, "completed");
    assert.deepEqual(final.task_counts.completed, 300);
    t.diagnostic(`300 tasks completed in ${Math.round(performance.now() - started)} ms`);

    // `jobs log TASK` prints the current log: the second run, on the worker that completed it
    const log = await cli("jobs", "log", long._id);
    assert.equal(log.code, 0, log.stderr);
    assert.match(log.stdout, /manager: task assigned to worker farm-[abc]/);
    assert.match(log.stdout, /: long task\n/);
    assert.match(log.stdout, new RegExp(`: sleeping ${LONG_SLEEP_SECS} s\n`));
    assert.match(log.stdout, /: task completed\n/);
    assert.doesNotMatch(log.stdout, new RegExp(`started on worker ${victim.nickname}`));

    // every task ran after its parents: a child's first log line comes after its parent's "task completed"
    const tasks = final.tasks!;
    const byName = new Map(tasks.map((x) => [x.name, x]));
    const stamp = async (x: Task, re: RegExp) => {
      const text = await readFile(taskLogPath(job._id, x._id), "utf8");
      const m = text.split("\n").find((l) => re.test(l));
      assert.ok(m, `${x.name}: a line matching ${re}`);
      return m.slice(0, 24);
    };
    for (const [child, parent] of [["step-6", "step-0"], ["step-100", "step-94"], ["collect", "long"], ["step-0", "prepare"]] as const) {
      const parentDone = await stamp(byName.get(parent)!, /: task completed$/);
      const childStart = await stamp(byName.get(child)!, /manager: task assigned/);
      assert.ok(childStart >= parentDone, `${child} (${childStart}) started after ${parent} completed (${parentDone})`);
    }

    await t.test("docker-run tasks ran in real containers, listed in the catalog while running", async (st) => {
      if (!(await needDocker(st))) return;
      const service = await seenInCatalog!;
      assert.equal(service.deployment, `job-${job._id}`);
      const containerLog = await readFile(taskLogPath(job._id, byName.get("container-3")!._id), "utf8");
      assert.match(containerLog, /: in container 3\n/, "the container's output is in the task log");
      assert.match(containerLog, /container [0-9a-f]{12} from stevedore-test\/busybox/);
      // the workers removed their containers
      const { stdout } = await run("docker", ["ps", "-aq", "--filter", `label=stevedore.worker.job=${job._id}`]);
      assert.equal(stdout.trim(), "");
    });
  });

  test("a job whose exec task exits 1 on every worker ends failed; jobs submit --wait exits 1", async () => {
    await waitFor("three workers awake again", async () => {
      const ws = await listWorkers();
      return ws.length === 3 && ws.every((w) => w.status === "awake");
    }, 30_000, 25);
    const doc = {
      name: "farm-failing",
      tasks: [
        { name: "fails", task_type: "exec", commands: [{ name: "exec", settings: { cmd: ["sh", "-c", "echo failing on purpose; exit 1"] } }] },
        { name: "after-fails", task_type: "echo", parents: ["fails"], commands: [{ name: "echo", settings: { message: "never" } }] },
      ],
    };
    const r = await cli("jobs", "submit", await writeJob("failing", doc), "--wait");
    assert.equal(r.code, 1, `jobs submit --wait: ${r.stdout}\n${r.stderr}`);
    const job = await jobNamed("farm-failing");
    assert.match(r.stdout, new RegExp(`job ${job._id} failed\\n$`));
    const final = await getJob(job._id);
    assert.equal(final.status, "failed");
    const fails = final.tasks!.find((x) => x.name === "fails")!;
    assert.equal(fails.status, "failed");
    assert.equal(final.tasks!.find((x) => x.name === "after-fails")!.status, "canceled");
    const log = await cli("jobs", "log", `${job._id}/${fails._id}`);
    assert.equal(log.code, 0, log.stderr);
    assert.match(log.stdout, /: failing on purpose\n/);
    assert.match(log.stdout, /exited with status 1/);
    assert.match(log.stdout, /task failed by worker farm-[abc] .*\(failed by 3 worker\(s\)\); job failed/);
  });

  test("a SIGTERM'd worker signs off (offline) and its task is re-queued", async () => {
    const doc = { name: "farm-sigterm", tasks: [{ name: "nap", task_type: "sleep", commands: [{ name: "sleep", settings: { time_in_seconds: 60 } }] }] };
    const submitted = await cli("jobs", "submit", await writeJob("sigterm", doc));
    assert.equal(submitted.code, 0, submitted.stderr);
    const job = await jobNamed("farm-sigterm");
    const nap = await waitForTask(job._id, "nap", "active", (x) => x.status === "active" && x.worker !== "");
    const w = await workerProcOf(nap.worker);
    w.proc.kill("SIGTERM");
    assert.equal(await w.exited, 0, `the worker exits 0 after signing off:\n${w.logs.join("\n")}`);
    assert.ok(w.logs.some((l) => /signed off/.test(l)), "the worker logged its sign-off");
    const doc2 = (await listWorkers()).find((x) => x._id === nap.worker)!;
    assert.equal(doc2.status, "offline");
    assert.equal(doc2.current_task, "");
    // re-queued: another worker takes it (or it waits queued)
    const moved = await waitForTask(job._id, "nap", "re-queued", (x) => x.worker !== nap.worker && (x.status === "queued" || x.status === "active"));
    assert.ok(moved);
    // the line is in the current log, or in ".1" once another worker took the task
    const path = taskLogPath(job._id, nap._id);
    const log = (await readFile(path, "utf8").catch(() => "")) + (await readFile(`${path}.1`, "utf8").catch(() => ""));
    assert.match(log, new RegExp(`task re-queued: worker ${w.nickname} \\(${nap.worker}\\) signed off`));
    const cancel = await cli("jobs", "cancel", job._id);
    assert.equal(cancel.code, 0, cancel.stderr);
    await waitFor("the job canceled", async () => (await getJob(job._id)).status === "canceled", 20_000, 25);
  });
});
