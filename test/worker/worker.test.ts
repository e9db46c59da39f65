// `stevedore worker` as a real process (the bundle) against a scripted fake manager on a real socket.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUNDLE } from "../helpers/daemon.js";
import { waitFor, needDocker, ensureTestImage, removeLabeled, run } from "../helpers/docker.js";
import { FakeManager, type FakeTask } from "./fake-manager.js";

let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "stevedore-worker-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const FAST = {
  STEVEDORE_WORKER_IDLE_MS: "50",
  STEVEDORE_WORKER_FLUSH_MS: "100",
  STEVEDORE_WORKER_MAY_I_RUN_MS: "100",
  STEVEDORE_WORKER_BACKOFF_MIN_MS: "50",
  STEVEDORE_WORKER_BACKOFF_MAX_MS: "400",
  STEVEDORE_WORKER_REQUEST_TIMEOUT_MS: "3000",
  STEVEDORE_WORKER_KILL_GRACE_MS: "2000",
  STEVEDORE_WORKER_SIGN_OFF_TIMEOUT_MS: "3000",
};

interface WorkerProc {
  proc: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
}

function startWorker(manager: string, stateFile: string, extra: string[] = [], env: Record<string, string> = {}): WorkerProc {
  const proc = spawn(process.execPath, [BUNDLE, "worker", "--manager", manager, "--state", stateFile, "--nickname", "tester", ...extra], {
    env: { ...process.env, STEVEDORE_CONFIG: "", STEVEDORE_LOG_LEVEL: "info", ...FAST, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  proc.stderr!.setEncoding("utf8").on("data", (c: string) => (err += c));
  proc.stdout!.resume();
  const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
  return { proc, stderr: () => err, exited };
}

async function withManager(fn: (fm: FakeManager, state: string) => Promise<void>): Promise<void> {
  const fm = new FakeManager();
  await fm.start();
  const state = join(dir, `state-${randomBytes(4).toString("hex")}.json`);
  try {
    await fn(fm, state);
  } finally {
    await fm.stop();
  }
}

/** SIGTERM and the exit code, within a deadline */
async function terminate(w: WorkerProc): Promise<number | null> {
  w.proc.kill("SIGTERM");
  return within(w.exited, 20_000, "worker exit");
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`timed out waiting for ${what}`)), ms)));
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

const taskId = () => randomBytes(12).toString("hex");
const JOB = "65f0a0b0c0d0e0f001020304";
function task(commands: FakeTask["commands"], name = "t"): FakeTask {
  return { _id: taskId(), job: JOB, name, commands };
}
const LOG_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z: .*$/;

test("registers once, keeps the credentials 0600 in the state file, and reuses them", async () => {
  await withManager(async (fm, state) => {
    const w1 = startWorker(fm.url, state);
    await waitFor("sign-on", () => fm.callsTo("/sign-on").length === 1);
    const saved = JSON.parse(await readFile(state, "utf8")) as { manager: string; id: string; secret: string };
    assert.equal((await stat(state)).mode & 0o777, 0o600);
    assert.equal(saved.manager, fm.url);
    assert.equal(fm.workers.get(saved.id), saved.secret);
    assert.match(saved.secret, /^[0-9a-f]{64}$/);
    const reg = fm.callsTo("/register-worker")[0]!.body as Record<string, unknown>;
    assert.deepEqual(reg.supported_task_types, ["sleep", "echo", "exec", "docker-run"]);
    assert.equal(reg.nickname, "tester");
    assert.equal(fm.callsTo("/sign-on")[0]!.worker, saved.id);
    assert.equal(await terminate(w1), 0);
    assert.equal(fm.callsTo("/sign-off").length, 1);

    const w2 = startWorker(fm.url, state, ["--task-types", "echo,sleep"]);
    await waitFor("second sign-on", () => fm.callsTo("/sign-on").length === 2);
    assert.equal(fm.callsTo("/register-worker").length, 1, "no second registration");
    const signOn = fm.callsTo("/sign-on")[1]!;
    assert.equal(signOn.worker, saved.id);
    assert.deepEqual((signOn.body as { supported_task_types: string[] }).supported_task_types, ["echo", "sleep"]);
    assert.equal(await terminate(w2), 0);
  });
});

test("a 401 at sign-on registers anew and saves the new credentials", async () => {
  await withManager(async (fm, state) => {
    await writeFile(state, JSON.stringify({ manager: fm.url, id: "aaaaaaaaaaaaaaaaaaaaaaaa", secret: "forgotten", registered: "" }), { mode: 0o600 });
    const w = startWorker(fm.url, state);
    await waitFor("a signed-on worker", () => fm.callsTo("/sign-on").some((c) => c.worker && c.worker !== "?"));
    assert.equal(fm.callsTo("/sign-on")[0]!.worker, "?", "first sign-on with the old credentials");
    assert.equal(fm.callsTo("/register-worker").length, 1);
    const saved = JSON.parse(await readFile(state, "utf8")) as { id: string };
    assert.notEqual(saved.id, "aaaaaaaaaaaaaaaaaaaaaaaa");
    assert.ok(fm.workers.has(saved.id));
    assert.equal(await terminate(w), 0);
  });
});

test("a 401 on /task: back off and sign on again, no new registration while sign-on succeeds", async () => {
  await withManager(async (fm, state) => {
    let refused = 0;
    fm.override = (call, res) => {
      if (call.path !== "/task" || refused >= 1) return false;
      refused++;
      res.writeHead(401).end();
      return true;
    };
    const w = startWorker(fm.url, state);
    await waitFor("a second sign-on", () => fm.callsTo("/sign-on").length >= 2);
    await waitFor("polling again", () => fm.callsTo("/task").length >= 3);
    assert.equal(fm.callsTo("/register-worker").length, 1);
    assert.match(w.stderr(), /401/);
    assert.equal(await terminate(w), 0);
  });
});

test("echo, sleep and exec run in order and report completed with timestamped log lines", async () => {
  await withManager(async (fm, state) => {
    const t = task([
      { name: "echo", settings: { message: "hello\nworld" } },
      { name: "sleep", settings: { time_in_seconds: 0.2 } },
      { name: "exec", settings: { cmd: [process.execPath, "-e", "console.log('out ' + process.env.GREETING + ' ' + process.cwd()); console.error('err'); console.log('secret=' + process.env.STEVEDORE_WORKER_REGISTRATION_SECRET)"], cwd: dir, env: { GREETING: "hi" } } },
    ]);
    fm.queue.push(t);
    const w = startWorker(fm.url, state, [], { STEVEDORE_WORKER_REGISTRATION_SECRET: "s3cret" });
    await waitFor("completed", () => fm.finalOf(t._id));
    const final = fm.finalOf(t._id)!;
    assert.equal(final.task_status, "completed");
    assert.equal(final.task_progress_percentage, 100);
    const log = fm.logOf(t._id);
    const lines = log.split("\n").slice(0, -1);
    for (const line of lines) assert.match(line, LOG_LINE);
    const text = lines.map((l) => l.replace(/^[^ ]+: /, ""));
    const order = ["hello", "world", "sleeping 0.2 s", `out hi ${dir}`, "err", "task completed"].map((s) => text.indexOf(s));
    assert.ok(order.every((i) => i >= 0), `every line in: ${text.join(" | ")}`);
    assert.ok(order[0]! < order[2]! && order[2]! < order[3]! && order[3]! < order[5]!, "in order");
    assert.match(log, /: secret=undefined\n/, "the registration secret is not passed on");
    const idx = new Set((fm.updates.get(t._id) ?? []).map((u) => u.current_command_idx).filter((v) => v !== undefined));
    assert.ok(idx.has(2), "reports the command index");
    assert.equal(fm.updates.get(t._id)!.at(-1), final, "the final status is the last update");
    assert.equal(await terminate(w), 0);
  });
});

test("a failing exec fails the task; the commands after it do not run", async () => {
  await withManager(async (fm, state) => {
    const t = task([
      { name: "exec", settings: { cmd: [process.execPath, "-e", "console.log('about to fail'); process.exit(3)"] } },
      { name: "echo", settings: { message: "never" } },
    ]);
    const missing = task([{ name: "exec", settings: { cmd: ["/nonexistent/program"] } }]);
    const bad = task([{ name: "sleep", settings: { time_in_seconds: "soon" } }]);
    fm.queue.push(t, missing, bad);
    const w = startWorker(fm.url, state);
    await waitFor("three finals", () => fm.finalOf(t._id) && fm.finalOf(missing._id) && fm.finalOf(bad._id));
    assert.equal(fm.finalOf(t._id)!.task_status, "failed");
    assert.match(String(fm.finalOf(t._id)!.activity), /status 3/);
    assert.match(fm.logOf(t._id), /about to fail/);
    assert.doesNotMatch(fm.logOf(t._id), /never/);
    assert.equal(fm.finalOf(missing._id)!.task_status, "failed");
    assert.match(fm.logOf(missing._id), /ENOENT/);
    assert.equal(fm.finalOf(bad._id)!.task_status, "failed");
    assert.match(fm.logOf(bad._id), /time_in_seconds/);
    assert.equal(await terminate(w), 0);
  });
});

test("a worker limited by --task-types refuses commands of other types", async () => {
  await withManager(async (fm, state) => {
    const t = task([{ name: "exec", settings: { cmd: ["true"] } }]);
    fm.queue.push(t);
    const w = startWorker(fm.url, state, ["--task-types", "echo"]);
    await waitFor("final", () => fm.finalOf(t._id));
    assert.equal(fm.finalOf(t._id)!.task_status, "failed");
    assert.match(fm.logOf(t._id), /does not run exec/);
    assert.equal(await terminate(w), 0);
  });
});

test("may-i-run false stops a long sleep and a long exec promptly; the task is reported canceled", async () => {
  await withManager(async (fm, state) => {
    const pidFile = join(dir, `pid-${randomBytes(3).toString("hex")}`);
    const sleeper = task([{ name: "sleep", settings: { time_in_seconds: 600 } }]);
    const execer = task([{ name: "exec", settings: { cmd: [process.execPath, "-e", `require('fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); setTimeout(() => {}, 600000)`] } }]);
    fm.queue.push(sleeper, execer);
    const w = startWorker(fm.url, state);
    await waitFor("the sleep started", () => fm.logOf(sleeper._id).includes("sleeping 600 s"));
    const t0 = performance.now();
    fm.mayRun.set(sleeper._id, { may_keep_running: false, reason: "job canceled" });
    await waitFor("sleep stopped", () => fm.finalOf(sleeper._id));
    // may-i-run is asked every 100 ms here; the bound leaves room for a loaded machine (the sleep is 600 s)
    assert.ok(performance.now() - t0 < 8_000, "promptly");
    assert.equal(fm.finalOf(sleeper._id)!.task_status, "canceled");
    assert.match(fm.logOf(sleeper._id), /job canceled/);

    const pid = Number(await waitFor("exec pid", () => readFile(pidFile, "utf8").catch(() => undefined)));
    fm.mayRun.set(execer._id, { may_keep_running: false, reason: "job canceled" });
    await waitFor("exec stopped", () => fm.finalOf(execer._id));
    assert.equal(fm.finalOf(execer._id)!.task_status, "canceled");
    assert.throws(() => process.kill(pid, 0), "the process is gone");
    assert.equal(await terminate(w), 0);
  });
});

test("423 asleep: acknowledged, no tasks fetched until awake", async () => {
  await withManager(async (fm, state) => {
    fm.statusRequest = "asleep";
    const w = startWorker(fm.url, state);
    await waitFor("asleep acked", () => fm.callsTo("/ack-status-change/asleep").length === 1);
    await waitFor("asking for status changes", () => fm.callsTo("/status-change").length >= 3);
    const tasksWhileAsleep = fm.callsTo("/task").length;
    const t = task([{ name: "echo", settings: { message: "awake now" } }]);
    fm.queue.push(t);
    assert.equal(fm.callsTo("/task").length, tasksWhileAsleep, "no /task while asleep");
    fm.statusRequest = "awake";
    await waitFor("awake acked", () => fm.callsTo("/ack-status-change/awake").length === 1);
    await waitFor("the task ran", () => fm.finalOf(t._id)?.task_status === "completed");
    assert.equal(await terminate(w), 0);
  });
});

test("a shutdown request signs off and exits 0 (no ack: the sign-off is the ack)", async () => {
  await withManager(async (fm, state) => {
    const w = startWorker(fm.url, state);
    await waitFor("polling", () => fm.callsTo("/task").length >= 1);
    fm.statusRequest = "shutdown";
    assert.equal(await within(w.exited, 20_000, "exit"), 0);
    assert.equal(fm.callsTo("/sign-off").length, 1);
    assert.equal(fm.callsTo(/^\/ack-status-change/).length, 0);
  });
});

test("may-i-run false with a status request: the task is handed back without a status, then the status applies", async () => {
  await withManager(async (fm, state) => {
    const t = task([{ name: "sleep", settings: { time_in_seconds: 600 } }]);
    fm.queue.push(t);
    const w = startWorker(fm.url, state);
    await waitFor("running", () => fm.logOf(t._id).includes("sleeping"));
    fm.mayRun.set(t._id, { may_keep_running: false, reason: "worker must shut down", status_requested: "shutdown" });
    assert.equal(await within(w.exited, 20_000, "exit"), 0);
    assert.equal(fm.finalOf(t._id), undefined, "no final status");
    assert.match(fm.logOf(t._id), /change status to shutdown/);
    assert.equal(fm.callsTo("/sign-off").length, 1);
  });
});

test("SIGTERM stops the running task, hands it back and signs off (exit 0)", async () => {
  await withManager(async (fm, state) => {
    const t = task([{ name: "sleep", settings: { time_in_seconds: 600 } }]);
    fm.queue.push(t);
    const w = startWorker(fm.url, state);
    await waitFor("running", () => fm.logOf(t._id).includes("sleeping"));
    const t0 = performance.now();
    assert.equal(await terminate(w), 0);
    assert.ok(performance.now() - t0 < 8_000, "the 600 s sleep was stopped");
    assert.equal(fm.finalOf(t._id), undefined, "not failed: handed back");
    assert.match(fm.logOf(t._id), /shutting down/);
    const calls = fm.calls.map((c) => c.path);
    assert.ok(calls.lastIndexOf("/sign-off") > calls.lastIndexOf(`/tasks/${t._id}/update`), "signs off after the last update");
  });
});

test("a task that arrives after SIGTERM (its /task answer was in flight) is handed back at once, not run", async () => {
  await withManager(async (fm, state) => {
    const t = task([{ name: "sleep", settings: { time_in_seconds: 600 } }]);
    let held: import("node:http").ServerResponse | undefined;
    fm.override = (call, res) => {
      if (call.path !== "/task" || held) return false;
      held = res; // answered only once the worker is stopping
      return true;
    };
    const w = startWorker(fm.url, state);
    await waitFor("a /task call held", () => held);
    w.proc.kill("SIGTERM");
    await waitFor("the worker stopping", () => /worker stopping/.test(w.stderr()));
    const body = { ...t, status: "active", priority: 50, job_priority: 50, job_type: "test", task_type: "sleep", parents: [], worker: "", activity: "", log: "" };
    held!.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(body));
    const t0 = performance.now();
    assert.equal(await within(w.exited, 20_000, "worker exit"), 0);
    assert.ok(performance.now() - t0 < 8_000, "did not sleep through the task (600 s)");
    assert.equal(fm.finalOf(t._id), undefined, "not failed: handed back");
    assert.match(fm.logOf(t._id), /shutting down/);
    const calls = fm.calls.map((c) => c.path);
    assert.ok(calls.lastIndexOf("/sign-off") > calls.lastIndexOf(`/tasks/${t._id}/update`), "signs off after the last update");
  });
});

test("back-off while the manager is down (capped, logged), then it carries on", async () => {
  const fm = new FakeManager();
  await fm.start();
  const port = fm.port;
  await fm.stop();
  const state = join(dir, "state-backoff.json");
  const w = startWorker(`http://127.0.0.1:${port}`, state);
  try {
    await waitFor("several retries", () => (w.stderr().match(/manager unavailable/g) ?? []).length >= 5, 20_000);
    const delays = [...w.stderr().matchAll(/retry_in_ms=(\d+)/g)].map((m) => Number(m[1]));
    assert.ok(delays[0]! <= 60, `starts near the minimum: ${delays.join(",")}`);
    assert.ok(delays.every((d) => d <= 400), `capped: ${delays.join(",")}`);
    assert.ok(Math.max(...delays) >= 200, `grows: ${delays.join(",")}`);
    await fm.start(port);
    await waitFor("signed on after recovery", () => fm.callsTo("/sign-on").length === 1);
    assert.match(w.stderr(), /manager answers again/);
    const t = task([{ name: "echo", settings: { message: "back" } }]);
    fm.queue.push(t);
    await waitFor("task ran", () => fm.finalOf(t._id));
    // down again in the middle of work: the worker keeps retrying /task, then resumes
    await fm.stop();
    const before = (w.stderr().match(/manager unavailable/g) ?? []).length;
    await waitFor("retries", () => (w.stderr().match(/manager unavailable/g) ?? []).length >= before + 2);
    await fm.start(port);
    const polls = fm.callsTo("/task").length;
    await waitFor("polling again", () => fm.callsTo("/task").length > polls + 1);
    assert.equal(await terminate(w), 0);
  } finally {
    w.proc.kill("SIGKILL");
    await fm.stop();
  }
});

test("usage errors exit 2", async () => {
  for (const args of [["worker"], ["worker", "--manager", "ftp://x"], ["worker", "--manager", "http://x", "--task-types", "paint"]]) {
    const p = spawn(process.execPath, [BUNDLE, ...args], { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, STEVEDORE_CONFIG: "" } });
    let err = "";
    p.stderr!.setEncoding("utf8").on("data", (c: string) => (err += c));
    const code = await new Promise((r) => p.once("exit", r));
    assert.equal(code, 2, args.join(" "));
    assert.match(err, /^stevedore: /);
  }
});

test("docker-run runs a labelled container, collects its logs and removes it", async (t) => {
  if (!(await needDocker(t))) return;
  const image = await ensureTestImage();
  await withManager(async (fm, state) => {
    const ok = task([{ name: "docker-run", settings: { image, cmd: ["sh", "-c", "echo out-$GREETING; echo err >&2"], env: { GREETING: "hi" } } }], "Render Frame");
    const bad = task([{ name: "docker-run", settings: { image, cmd: ["sh", "-c", "exit 4"] } }]);
    const long = task([{ name: "docker-run", settings: { image, cmd: ["sleep", "600"] } }]);
    fm.queue.push(ok, bad, long);
    const w = startWorker(fm.url, state);
    try {
      await waitFor("ok final", () => fm.finalOf(ok._id), 60_000);
      assert.equal(fm.finalOf(ok._id)!.task_status, "completed", fm.logOf(ok._id));
      assert.match(fm.logOf(ok._id), /: out-hi\n/);
      assert.match(fm.logOf(ok._id), /: err\n/);
      await waitFor("bad final", () => fm.finalOf(bad._id), 60_000);
      assert.equal(fm.finalOf(bad._id)!.task_status, "failed");
      assert.match(String(fm.finalOf(bad._id)!.activity), /status 4/);

      const running = await waitFor("the long container runs", async () => {
        const { stdout } = await run("docker", ["ps", "-q", "--filter", `label=stevedore.worker.task=${long._id}`]);
        return stdout.trim() || undefined;
      }, 60_000);
      const { stdout: labels } = await run("docker", ["inspect", "--format", "{{json .Config.Labels}}", running]);
      const l = JSON.parse(labels) as Record<string, string>;
      assert.equal(l["stevedore.deployment"], `job-${JOB}`);
      assert.equal(l["stevedore.service"], "t");
      assert.equal(l["stevedore.worker.job"], JOB);
      fm.mayRun.set(long._id, { may_keep_running: false, reason: "job canceled" });
      await waitFor("long stopped", () => fm.finalOf(long._id), 30_000);
      assert.equal(fm.finalOf(long._id)!.task_status, "canceled");
      for (const id of [ok._id, bad._id, long._id]) {
        const { stdout } = await run("docker", ["ps", "-aq", "--filter", `label=stevedore.worker.task=${id}`]);
        assert.equal(stdout.trim(), "", `container of ${id} removed`);
      }
      assert.equal(await terminate(w), 0);
    } finally {
      w.proc.kill("SIGKILL");
      await removeLabeled(`stevedore.worker.job=${JOB}`);
    }
  });
});
