// Fuzz the manager's JSON endpoints over real sockets: 10,000 mutated bodies each (seeded, so a
// failure replays), sent on a few keep-alive connections. Every answer must be a clean 2xx, or a
// 4xx in the {"error": "..."} shape; never a 500 (nor a 503), and the daemon stays up.
import { test, before, after, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { intRng, mutate } from "../helpers/random.js";
import { bearer, KeepAliveConn, Manager, type Reply, type Worker } from "./client.js";

const PER_ENDPOINT = 10_000;
/** connections at once: enough that answers share journal fsyncs */
const PARALLEL = 16;

/** structural bits for byte-level mutation (latin1: "\xff" is a byte that is never valid UTF-8 alone) */
const PIECES = ['"', "{", "}", "[", "]", ",", ":", "null", "true", "false", "0", "-1", "1e999", "-0", "1.5", '""', "\\u0000", "\\ud800", "\\", " ", "\xff", '"__proto__"', '{"__proto__":{}}', '"constructor"', "[[[[", "}}}}"];
/** values for structural mutation */
const VALUES: unknown[] = [
  null, 0, -1, 1.5, 1e308, -0, 50, 100, 101, "", "x", "y".repeat(300), "z".repeat(5000), [], {}, [1], ["a"], ["a", "a"], [[]], [{}], true, false,
  "asleep", "awake", "shutdown", "offline", "completed", "failed", "canceled", "active", "queued", "/out/x.png", { a: { b: { c: [] } } }, "\u0000", "\ud800",
];
const KEYS = [
  "secret", "nickname", "platform", "software", "supported_task_types", "supported_job_types", "task_status", "activity", "log", "task_progress_percentage",
  "current_command_idx", "command_progress_percentage", "metrics", "paths", "name", "type", "priority", "tasks", "task_type", "commands", "parents",
  "settings", "status", "lazy", "failed_only", "__proto__", "0",
];

/** obj[key] = value as an own property, even for "__proto__" */
function put(obj: object, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Replaces, adds or deletes a random field somewhere in the tree. */
function mutateValue(value: unknown, rand: (n: number) => number, depth = 0): unknown {
  if (typeof value !== "object" || value === null || depth > 4) return rand(3) === 0 ? VALUES[rand(VALUES.length)] : value;
  const copy: Record<string, unknown> = Array.isArray(value) ? ([...value] as unknown as Record<string, unknown>) : { ...(value as object) };
  const keys = Object.keys(copy);
  const choice = rand(4);
  if (choice === 0 || keys.length === 0) put(copy, KEYS[rand(KEYS.length)]!, VALUES[rand(VALUES.length)]);
  else if (choice === 1 && !Array.isArray(copy)) delete copy[keys[rand(keys.length)]!];
  else {
    const key = keys[rand(keys.length)]!;
    put(copy, key, mutateValue(copy[key], rand, depth + 1));
  }
  return copy;
}

/** Half structural (still JSON), half byte-level (mostly not), 1-3 edits each. */
function mutant(base: unknown, rand: (n: number) => number): Buffer {
  if (rand(2) === 0) {
    let v = base;
    for (let k = 1 + rand(3); k > 0; k--) v = mutateValue(v, rand);
    return Buffer.from(JSON.stringify(v) ?? "");
  }
  let buf: Buffer = Buffer.from(JSON.stringify(base));
  for (let k = 1 + rand(3); k > 0; k--) buf = mutate(buf, rand, PIECES);
  return buf;
}

let m: Manager;
before(async () => {
  m = await Manager.start();
});
after(async () => {
  await m?.d.cleanup();
});

/** A clean answer: 2xx, or 4xx with exactly {"error": string}. */
function checkClean(r: Reply, body: Buffer): void {
  const what = () => `${r.status} ${r.text} for ${JSON.stringify(body.toString("latin1"))}`;
  if (r.status >= 200 && r.status < 300) return;
  assert.ok(r.status >= 400 && r.status < 500, what());
  assert.match(String(r.headers["content-type"]), /^application\/json/, what());
  assert.ok(r.json && typeof r.json === "object" && Object.keys(r.json).length === 1 && typeof r.json.error === "string", what());
}

interface Endpoint {
  method: string;
  path: string;
  auth?: string;
  base: unknown;
  /** false: generate another mutant instead of this one (thinning out the costly ones) */
  keep?(body: Buffer, rand: (n: number) => number): boolean;
}

async function fuzz(t: TestContext, seed: number, ep: Endpoint): Promise<void> {
  const rand = intRng(seed);
  const statuses = new Map<number, number>();
  let made = 0;
  const next = (): Buffer | undefined => {
    if (made >= PER_ENDPOINT) return undefined;
    for (;;) {
      const body = mutant(ep.base, rand);
      if (!ep.keep || ep.keep(body, rand)) {
        made++;
        return body;
      }
    }
  };
  const headers: Record<string, string> = { "Content-Type": "application/json", ...(ep.auth ? { Authorization: ep.auth } : {}) };
  const lane = async () => {
    const conn = new KeepAliveConn(m.port);
    try {
      for (let body = next(); body; body = next()) {
        const r = await conn.request(ep.method, ep.path, headers, body);
        checkClean(r, body);
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      }
    } finally {
      conn.close();
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, lane));
  const total = [...statuses.values()].reduce((a, b) => a + b, 0);
  assert.equal(total, PER_ENDPOINT);
  const ok = [...statuses].filter(([s]) => s < 300).reduce((a, [, n]) => a + n, 0);
  assert.ok(ok > 0 && ok < PER_ENDPOINT, `both accepted and refused bodies (${JSON.stringify([...statuses])})`);
  // the daemon is up and answering
  assert.equal(m.d.proc.exitCode, null);
  assert.equal((await m.api("GET", "/api/workers")).status, 200);
  t.diagnostic(`${ep.method} ${ep.path}: ${[...statuses].sort().map(([st, n]) => `${n} × ${st}`).join(", ")}`);
}

/** a client-side guess whether the body registers a worker (and so costs a scrypt hash) */
function wouldRegister(body: Buffer): boolean {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(body.toString("utf8")) as Record<string, unknown>;
  } catch {
    return false;
  }
  if (typeof o !== "object" || o === null || Array.isArray(o)) return false;
  if (typeof o.secret !== "string" || o.secret.length === 0 || Buffer.byteLength(o.secret) > 1024) return false;
  const shortString = (v: unknown) => v === undefined || (typeof v === "string" && v.length <= 256);
  if (![o.nickname, o.platform, o.software].every(shortString)) return false;
  const types = o.supported_task_types ?? o.supported_job_types;
  return types === undefined || (Array.isArray(types) && types.length <= 100 && types.every((t) => typeof t === "string" && t.length > 0 && t.length <= 256));
}

let w: Worker;
let taskId: string;
let jobId: string;

test("fuzz: register-worker", async (t) => {
  // a registration that passes the checks costs a scrypt hash (tens of ms of CPU): of the mutants
  // that look like they would register, 1 in 150 is sent; every other mutant goes as it is
  await fuzz(t, 1, {
    method: "POST",
    path: "/register-worker",
    base: { secret: "0123456789abcdef", platform: "linux", nickname: "fuzz", software: "v2", supported_task_types: ["echo", "sleep"] },
    keep: (body, rand) => !wouldRegister(body) || rand(150) === 0,
  });
});

test("fuzz: sign-on", async (t) => {
  const signer = await m.worker(["fz-signon"]);
  await fuzz(t, 2, { method: "POST", path: "/sign-on", auth: signer.auth, base: { nickname: "fuzz", supported_task_types: ["a", "b"], supported_job_types: ["c"], software: "x" } });
});

test("fuzz: task update", async (t) => {
  w = await m.worker(["fz-task"]);
  const job = await m.job("fuzz-updates", "fz-task", 3);
  jobId = job._id;
  taskId = (await w.task()).json._id as string;
  await fuzz(t, 3, {
    method: "POST",
    path: `/tasks/${taskId}/update`,
    auth: w.auth,
    base: { task_status: "active", activity: "rendering", log: "2024-01-01T00:00:00Z: line", task_progress_percentage: 50, current_command_idx: 0, command_progress_percentage: 10, metrics: { mem: 1 } },
  });
});

test("fuzz: output-produced", async (t) => {
  if ((await w.task()).status !== 200) {
    await m.api("POST", `/api/jobs/${jobId}/requeue`);
    assert.equal((await w.task()).status, 200);
  }
  await fuzz(t, 4, { method: "POST", path: "/output-produced", auth: w.auth, base: { paths: ["/out/0001.png", "/out/0002.png"] } });
  const outputs = (await m.getJob(jobId)).outputs;
  assert.ok(outputs.length > 0 && outputs.length <= 10);
});

test("fuzz: POST /api/jobs", async (t) => {
  const cmd = [{ name: "echo", settings: { message: "hi" } }];
  await fuzz(t, 5, {
    method: "POST",
    path: "/api/jobs",
    auth: bearer(m.token),
    base: {
      name: "fuzz",
      type: "render",
      priority: 60,
      tasks: [
        { name: "t0", task_type: "fz-nobody", commands: cmd },
        { name: "t1", task_type: "fz-nobody", priority: 3, commands: cmd, parents: ["t0"] },
        { name: "t2", task_type: "fz-nobody", commands: [{ name: "sleep", settings: { time_in_seconds: 1 } }], parents: ["t0", "t1"] },
      ],
    },
  });
});

test("fuzz: status-request", async (t) => {
  const target = await m.worker(["fz-status"]);
  await fuzz(t, 6, { method: "POST", path: `/api/workers/${target.id}/status-request`, auth: bearer(m.token), base: { status: "asleep", lazy: true } });
});

test("fuzz: priority", async (t) => {
  await fuzz(t, 7, { method: "POST", path: `/api/jobs/${jobId}/priority`, auth: bearer(m.token), base: { priority: 60 } });
});

test("fuzz: requeue", async (t) => {
  await fuzz(t, 8, { method: "POST", path: `/api/jobs/${jobId}/requeue`, auth: bearer(m.token), base: { failed_only: true } });
  // nothing went wrong behind the answers either
  assert.ok(!m.d.logs.some((l) => /API request failed|internal error/.test(l)), m.d.logs.filter((l) => /level=error/.test(l)).join("\n"));
  assert.equal(m.d.proc.exitCode, null);
});

test("fuzz: DELETE /api/workers/{id}/blacklist", async (t) => {
  // a real line to forget (3 failures; a second capable worker keeps them soft), so the endpoint
  // is reached with both a line to forget (the first valid body) and none (404 after it)
  const type = "fz-blacklist";
  const failer = await m.worker([type]);
  await m.register({ supported_task_types: [type] });
  const job = await m.job("fuzz-blacklist", type, 4);
  for (let i = 0; i < 3; i++) {
    const task = await failer.task();
    assert.equal(task.status, 200, task.text);
    assert.equal((await failer.update(task.json._id, { task_status: "failed" })).status, 204);
  }
  assert.equal((await m.api("GET", `/api/blacklist?worker=${failer.id}`)).json.lines.length, 1);
  await fuzz(t, 9, { method: "DELETE", path: `/api/workers/${failer.id}/blacklist`, auth: bearer(m.token), base: { job: job._id, task_type: type } });
  assert.equal((await m.api("GET", `/api/blacklist?worker=${failer.id}`)).json.lines.length, 0, "the line was forgotten once");
});

for (const [i, action] of (["cancel", "pause", "resume"] as const).entries()) {
  test(`fuzz: POST /api/jobs/{id}/${action} bodies`, async (t) => {
    // its own job of a type nobody runs: the action's own state rules (repeated, 409) stay clean
    const job = await m.job(`fuzz-${action}`, "fz-nobody", 2);
    if (action === "resume") assert.equal((await m.api("POST", `/api/jobs/${job._id}/pause`)).status, 200);
    await fuzz(t, 10 + i, { method: "POST", path: `/api/jobs/${job._id}/${action}`, auth: bearer(m.token), base: { reason: "fuzz", force: false } });
    const status = (await m.getJob(job._id)).status;
    assert.equal(status, { cancel: "canceled", pause: "paused", resume: "queued" }[action]);
  });
}

test("fuzz: POST /shaman/gc", async (t) => {
  await fuzz(t, 13, { method: "POST", path: "/shaman/gc", auth: bearer(m.token), base: { dry_run: true } });
  assert.ok(!m.d.logs.some((l) => /API request failed|internal error|GC failed/.test(l)), m.d.logs.filter((l) => /level=error/.test(l)).join("\n"));
  assert.equal((await m.api("GET", "/shaman/status")).status, 200);
});
