// A job's exec command naming a Shaman checkout, run by a real `stevedore worker` process against the
// bundled daemon: the worker lists the checkout (GET /checkout/files/{id}) and fetches its files
// (GET /files/{sha}/{size}) with its Basic credentials into --shaman-cache, verified, then runs the
// command in a fresh copy; a second task uses the cache; an unknown checkout fails the task.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { request } from "node:http";
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { mintUserToken } from "../../src/manager/auth.js";
import { BUNDLE, startDaemon, waitFor, type TestDaemon } from "../helpers/daemon.js";

const WORKER_ENV = {
  STEVEDORE_WORKER_IDLE_MS: "50",
  STEVEDORE_WORKER_FLUSH_MS: "100",
  STEVEDORE_WORKER_MAY_I_RUN_MS: "200",
  STEVEDORE_WORKER_BACKOFF_MIN_MS: "50",
  STEVEDORE_WORKER_BACKOFF_MAX_MS: "400",
  STEVEDORE_WORKER_REQUEST_TIMEOUT_MS: "10000",
};

let d: TestDaemon;
let token: string;
let worker: ChildProcess;
let workerLog = "";
let cache: string;

function api<T>(method: string, path: string, body?: unknown, auth = `Bearer ${token}`): Promise<{ status: number; json: T; text: string }> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { Authorization: auth, "Content-Length": payload?.length ?? 0 };
    if (payload) headers["Content-Type"] = "application/json";
    const req = request({ host: "127.0.0.1", port: d.managerPort, method, path, headers, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (c: string) => (text += c));
      res.on("end", () => {
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, json: json as T, text });
      });
    });
    req.on("error", reject);
    req.end(payload);
  });
}

function push(dir: string, checkout: string): Promise<number | null> {
  const p = spawn(process.execPath, [BUNDLE, "shaman", "push", dir, "--checkout", checkout, "--manager", `http://127.0.0.1:${d.managerPort}`, "--config", d.configPath], {
    env: { ...process.env, STEVEDORE_MANAGER_TOKEN: "" },
    stdio: "ignore",
  });
  return new Promise((r) => p.on("close", r));
}

interface Job {
  _id: string;
  status: string;
  tasks?: { _id: string; status: string; activity: string }[];
}

async function runJob(name: string, settings: Record<string, unknown>): Promise<{ job: Job; log: string }> {
  const r = await api<{ _id: string }>("POST", "/api/jobs", { name, priority: 50, tasks: [{ name: "t", task_type: "exec", commands: [{ name: "exec", settings }] }] });
  assert.equal(r.status, 201, r.text);
  const id = r.json._id;
  const job = await waitFor(`job ${name} done`, async () => {
    const j = (await api<Job>("GET", `/api/jobs/${id}`)).json;
    return j.status === "completed" || j.status === "failed" ? j : undefined;
  }, 30_000, 25);
  const task = job.tasks![0]!;
  const log = await readFile(join(d.stateDir, "task-logs", `job-${job._id.slice(0, 4)}`, job._id, `task-${task._id}.txt`), "utf8").catch(() => "");
  return { job, log };
}

before(async () => {
  d = await startDaemon({ disable: ["query", "core", "http", "https"] });
  token = await mintUserToken(d.stateDir, { subject: "shaman-worker-test", ttlSecs: 600 });
  cache = join(d.dir, "worker-cache");
  worker = spawn(process.execPath, [BUNDLE, "worker", "--manager", `http://127.0.0.1:${d.managerPort}`, "--state", join(d.dir, "worker.json"), "--nickname", "shaman-w", "--task-types", "exec", "--shaman-cache", cache], {
    env: { ...process.env, ...WORKER_ENV, STEVEDORE_CONFIG: "", STEVEDORE_WORKER_REGISTRATION_SECRET: "" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  worker.stderr!.setEncoding("utf8").on("data", (c: string) => (workerLog += c));
});

after(async () => {
  worker?.kill("SIGTERM");
  await new Promise((r) => (worker.exitCode !== null ? r(null) : worker.once("exit", r)));
  await d.cleanup();
});

const sha = (b: string | Buffer) => createHash("sha256").update(b).digest("hex");

test("an exec command with checkout runs in a copy of it, fetched into --shaman-cache; a second run uses the cache", async () => {
  const tree = join(d.dir, "tree");
  await mkdir(join(tree, "sub"), { recursive: true });
  const big = Buffer.alloc(300_000, "b");
  await writeFile(join(tree, "a.txt"), "alpha\n");
  await writeFile(join(tree, "sub", "b.txt"), "beta\n");
  await writeFile(join(tree, "sub", "big.bin"), big);
  assert.equal(await push(tree, "wk_scene"), 0);
  const out = join(d.dir, "out.txt");
  // cwd is relative to the checkout; writing into the copy must not reach the cache
  const script = 'cat ../a.txt b.txt > "$OUT"; wc -c < big.bin >> "$OUT"; echo "$STEVEDORE_CHECKOUT" >> "$OUT"; echo mine > ../a.txt';
  const settings = { cmd: ["sh", "-c", script], cwd: "sub", env: { OUT: out }, checkout: "wk_scene" };
  const first = await runJob("shaman-1", settings);
  assert.equal(first.job.status, "completed", first.log + workerLog.slice(-2000));
  const [alpha, beta, size, dir] = (await readFile(out, "utf8")).split("\n");
  assert.deepEqual([alpha, beta, size!.trim()], ["alpha", "beta", "300000"]);
  assert.ok(dir!.startsWith(join(cache, "work") + "/"), dir);
  assert.match(first.log, /checkout wk_scene: 3 files in .* \(fetched 3, 300011 bytes/);
  // cached by checksum; the work directory is gone; the task's write did not reach the cache
  const cached = (await readdir(join(cache, "blobs"), { recursive: true })).filter((n) => n.includes("-"));
  assert.deepEqual(cached.map((n) => n.split("/")[1]).sort(), [`${sha("alpha\n")}-6`, `${sha("beta\n")}-5`, `${sha(big)}-300000`].sort());
  assert.equal(await readFile(join(cache, "blobs", sha("alpha\n").slice(0, 2), `${sha("alpha\n")}-6`), "utf8"), "alpha\n");
  assert.deepEqual(await readdir(join(cache, "work")), []);

  const second = await runJob("shaman-2", settings);
  assert.equal(second.job.status, "completed", second.log);
  assert.match(second.log, /checkout wk_scene: 3 files in .* \(fetched 0, 0 bytes/);
  assert.equal((await readFile(out, "utf8")).split("\n")[0], "alpha");
});

test("an unknown checkout fails the task with the manager's answer; workers read files with Basic auth only by GET", async () => {
  const r = await runJob("shaman-missing", { cmd: ["true"], checkout: "no_such_checkout" });
  assert.equal(r.job.status, "failed");
  assert.match(r.job.tasks![0]!.activity, /checkout no_such_checkout: the manager answered 404/);
  const creds = JSON.parse(await readFile(join(d.dir, "worker.json"), "utf8")) as { id: string; secret: string };
  const basic = "Basic " + Buffer.from(`${creds.id}:${creds.secret}`).toString("base64");
  const listing = await api("GET", "/checkout/files/wk_scene", undefined, basic);
  assert.equal(listing.status, 200);
  assert.equal(listing.text, `${sha("alpha\n")} 6 a.txt\n${sha("beta\n")} 5 sub/b.txt\n${sha(Buffer.alloc(300_000, "b"))} 300000 sub/big.bin\n`);
  assert.equal((await api("GET", `/files/${sha("beta\n")}/5`, undefined, basic)).text, "beta\n");
  // uploads, requirements and the store's status stay user paths
  assert.equal((await api("POST", `/files/${sha("x")}/1`, undefined, basic)).status, 401);
  assert.equal((await api("GET", "/shaman/status", undefined, basic)).status, 401);
  assert.equal((await api("GET", "/checkout/files/wk_scene", undefined, "Basic " + Buffer.from(`${creds.id}:wrong`).toString("base64"))).status, 401);
});
