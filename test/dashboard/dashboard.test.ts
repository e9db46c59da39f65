// The farm dashboard in a real browser (Debian's chromium driven by playwright-core) against the
// bundled daemon and two `stevedore worker` processes: sign-in through the printed one-time link,
// live updates from the CLI's jobs, cancel and worker sleep from the page, a live task log, a
// reconnect after a daemon restart, sign-out; and the guards: CSP, no other origin, no data without
// a valid cookie, cross-origin changes (sign-out included) refused. Screenshots of each page go to test-results/.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { request } from "node:http";
import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { mintUserToken } from "../../src/manager/auth.js";
import { waitFor } from "../helpers/docker.js";
import { BUNDLE, runBundle, startDaemon, type TestDaemon } from "../helpers/daemon.js";

const SHOTS = resolve("test-results/dashboard");
const WORKER_ENV = {
  STEVEDORE_WORKER_IDLE_MS: "100",
  STEVEDORE_WORKER_FLUSH_MS: "100",
  STEVEDORE_WORKER_MAY_I_RUN_MS: "200",
  STEVEDORE_WORKER_BACKOFF_MIN_MS: "100",
  STEVEDORE_WORKER_BACKOFF_MAX_MS: "500",
  STEVEDORE_WORKER_REQUEST_TIMEOUT_MS: "10000",
  STEVEDORE_WORKER_KILL_GRACE_MS: "1000",
  STEVEDORE_WORKER_SIGN_OFF_TIMEOUT_MS: "5000",
};
const NICKNAMES = ["dash-a", "dash-b"];

let d: TestDaemon;
let token: string;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let origin: string;
const workers: { proc: ChildProcess; exited: Promise<unknown> }[] = [];
/** every URL the page asked for */
const requested: string[] = [];
/** the cookie of the session signed out (refused, also after the restart) */
let signedOut = "";
/** main-frame navigations after sign-in (a reload would add one) */
let navigations = 0;

function startWorker(nickname: string): void {
  const proc = spawn(process.execPath, [BUNDLE, "worker", "--manager", origin, "--state", join(d.dir, `worker-${nickname}.json`), "--nickname", nickname, "--task-types", "echo,sleep"], {
    env: { ...process.env, ...WORKER_ENV, STEVEDORE_CONFIG: "", STEVEDORE_WORKER_REGISTRATION_SECRET: "" },
    stdio: ["ignore", "ignore", "ignore"],
  });
  workers.push({ proc, exited: new Promise((res) => proc.once("exit", res)) });
}

function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runBundle(args, { STEVEDORE_CONFIG: d.configPath, STEVEDORE_STATE_DIR: "", STEVEDORE_MANAGER_TOKEN: "", STEVEDORE_QUERY_SOCKET: "" });
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}
function http(method: string, path: string, headers: Record<string, string> = {}, body?: unknown): Promise<Reply> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((res, rej) => {
    const h: Record<string, string | number> = { ...headers, "Content-Length": payload?.length ?? 0 };
    if (payload) h["Content-Type"] = "application/json";
    const req = request({ host: "127.0.0.1", port: d.managerPort, method, path, headers: h, agent: false }, (r) => {
      let text = "";
      r.setEncoding("utf8").on("data", (c: string) => (text += c));
      r.on("end", () => res({ status: r.statusCode ?? 0, headers: r.headers, text }));
    });
    req.on("error", rej);
    req.end(payload);
  });
}
const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
  const r = await http(method, path, { Authorization: `Bearer ${token}` }, body);
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.text}`);
  return (r.text ? JSON.parse(r.text) : undefined) as T;
};

interface Job { _id: string; name: string; status: string; progress: number; tasks?: { _id: string; name: string; status: string }[] }

async function submit(name: string, tasks: unknown[], priority = 50): Promise<Job> {
  const file = join(d.dir, `${name}.json`);
  await writeFile(file, JSON.stringify({ name, priority, tasks }));
  const r = await cli("jobs", "submit", file);
  assert.equal(r.code, 0, r.stderr);
  const jobs = (await api<{ jobs: Job[] }>("GET", "/api/jobs")).jobs;
  const job = jobs.find((j) => j.name === name);
  assert.ok(job, `job ${name} listed`);
  return job;
}
const sleepTask = (name: string, secs: number, parents: string[] = []) => ({
  name, task_type: "sleep", parents,
  commands: [{ name: "echo", settings: { message: `${name} starts` } }, { name: "sleep", settings: { time_in_seconds: secs } }],
});

async function shoot(name: string): Promise<void> {
  await page.waitForTimeout(0);
  for (const width of [1280, 360]) {
    await page.setViewportSize({ width, height: width === 360 ? 740 : 900 });
    await page.screenshot({ path: join(SHOTS, `${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

async function signIn(): Promise<string> {
  const r = await cli("dashboard");
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

describe("the farm dashboard in a browser", { timeout: 300_000 }, () => {
  before(async () => {
    await mkdir(SHOTS, { recursive: true });
    d = await startDaemon({ disable: ["https", "http", "core"], config: "manager_worker_timeout_secs = 5\nmanager_task_timeout_secs = 60" });
    origin = `http://127.0.0.1:${d.managerPort}`;
    token = await mintUserToken(d.stateDir, { subject: "dashboard-test", ttlSecs: 600 });
    for (const n of NICKNAMES) startWorker(n);
    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: ["--no-sandbox"] });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on("request", (r) => requested.push(r.url()));
    page.on("framenavigated", (f) => { if (f === page.mainFrame()) navigations++; });
    await waitFor("two workers awake", async () => (await api<{ workers: { status: string }[] }>("GET", "/api/workers")).workers.filter((w) => w.status === "awake").length === 2, 30_000, 50);
  });

  after(async () => {
    await browser?.close();
    for (const w of workers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill("SIGKILL");
    await Promise.all(workers.map((w) => w.exited));
    await d?.cleanup();
  });

  test("without a cookie, or with an expired one: the sign-in page, never data", async () => {
    const bare = await http("GET", "/");
    assert.equal(bare.status, 401);
    assert.match(bare.text, /stevedore dashboard/);
    assert.doesNotMatch(bare.text, /<script/);
    assert.match(String(bare.headers["content-security-policy"]), /default-src 'none'; script-src 'self'/);
    assert.equal(bare.headers["x-content-type-options"], "nosniff");
    const expired = await mintUserToken(d.stateDir, { subject: "old", ttlSecs: 60, nowMs: Date.now() - 3600_000 });
    const cookie = `jwtToken=${expired}`;
    const page0 = await http("GET", "/", { Cookie: cookie });
    assert.equal(page0.status, 401);
    assert.match(page0.text, /expired[\s\S]*stevedore dashboard/);
    for (const path of ["/api/jobs", "/api/workers", "/api/dashboard/host"]) {
      assert.equal((await http("GET", path, { Cookie: cookie })).status, 498, path);
      assert.equal((await http("GET", path)).status, 401, path);
    }
    const link = await http("GET", `/dashboard/sign-in?token=${expired}`);
    assert.equal(link.status, 401, "an expired link signs nobody in");
    assert.equal(link.headers["set-cookie"], undefined);
    await page.goto(origin + "/");
    assert.match(await page.textContent("body") ?? "", /run\s+stevedore dashboard/);
    await shoot("sign-in");
  });

  test("stevedore dashboard: bad flags are usage errors (exit 2); --json gives the link and its expiry", async () => {
    const bad = await cli("dashboard", "--ttl", "2h");
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^stevedore: /);
    const j = await cli("dashboard", "--json", "--ttl", "1m", "--manager", "http://farm.example:8083");
    assert.equal(j.code, 0, j.stderr);
    const doc = JSON.parse(j.stdout) as { url: string; expires: string };
    assert.match(doc.url, /^http:\/\/farm\.example:8083\/dashboard\/sign-in\?token=[\w.-]+$/);
    assert.ok(Math.abs(Date.parse(doc.expires) - Date.now() - 60_000) < 30_000);
  });

  test("sign-in through the printed link: HttpOnly SameSite=Strict cookie, no token left in the address bar, link works once", async () => {
    const url = await signIn();
    assert.match(url, new RegExp(`^${origin}/dashboard/sign-in\\?token=`));
    const res = await page.goto(url);
    assert.equal(page.url(), origin + "/");
    assert.equal(res?.status(), 200);
    assert.match(String(res?.headers()["content-security-policy"]), /script-src 'self'/);
    const [cookie] = (await context.cookies()).filter((c) => c.name === "jwtToken");
    assert.ok(cookie);
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, "Strict");
    assert.equal(await page.evaluate(() => document.cookie), "", "no script sees the cookie");
    await page.waitForSelector("#conn:text('live')");
    const again = await http("GET", new URL(url).pathname + new URL(url).search);
    assert.equal(again.status, 401, "the link works once");
    navigations = 0;
  });

  test("a job submitted from the CLI appears without a reload and its progress bar moves", async () => {
    await page.goto(origin + "/#/jobs");
    navigations = 0;
    await page.waitForSelector("#conn:text('live')");
    // 1.5 s each on two workers: on a loaded machine the CLI's submit alone can take seconds, and the
    // bar must still be seen moving through several values
    const tasks = Array.from({ length: 8 }, (_, i) => sleepTask(`p${i}`, 1.5));
    const job = await submit("dash-progress", tasks);
    const bar = page.locator(`tr[data-job="${job._id}"] [role=progressbar]`);
    await bar.waitFor({ timeout: 20_000 });
    const values = new Set<string>();
    await waitFor("the progress bar reaches 100", async () => {
      const v = await bar.getAttribute("aria-valuenow");
      if (v !== null) values.add(v);
      return v === "100";
    }, 30_000, 50);
    assert.ok(values.size >= 3, `the bar moved through several values: ${[...values].join(", ")}`);
    assert.match(await page.locator(`tr[data-job="${job._id}"]`).textContent() ?? "", /✓\s*completed/);
    assert.equal(navigations, 0, "no reload");
    await shoot("jobs");
    await page.goto(origin + "/#/");
    await page.waitForSelector("text=Tasks completed per minute");
    await shoot("overview");
  });

  test("cancel from the page: the CLI sees canceled; the job page shows tasks and their graph", async () => {
    const job = await submit("dash-cancel", [sleepTask("a", 30), sleepTask("b", 30), sleepTask("c", 1, ["a", "b"]), sleepTask("d", 1, ["c"])]);
    await page.goto(`${origin}/#/job/${job._id}`);
    await page.waitForSelector("svg[aria-label^='dependency graph of 4 tasks']");
    await shoot("job");
    await page.click("#job-cancel");
    await waitFor("the CLI sees the job canceled", async () => {
      const r = await cli("jobs", "show", job._id, "--json");
      return r.code === 0 && (JSON.parse(r.stdout) as Job).status === "canceled";
    }, 20_000, 100);
    await page.waitForSelector("dd .st-canceled");
  });

  test("the task log tails live", async () => {
    const job = await submit("dash-log", [{
      name: "talker", task_type: "sleep",
      // 8 s between the lines: the page must be open on the task before the second one is written,
      // also when a loaded machine takes seconds to see the task active and load the page
      commands: [{ name: "echo", settings: { message: "first line" } }, { name: "sleep", settings: { time_in_seconds: 8 } }, { name: "echo", settings: { message: "second line" } }],
    }], 90);
    const task = await waitFor("talker active", async () => {
      const t = (await api<Job>("GET", `/api/jobs/${job._id}`)).tasks![0]!;
      return t.status === "active" ? t : undefined;
    }, 30_000, 25);
    // The page is opened while the first line may still be on its way: lines that come live while the
    // page reads the log file are merged, never lost or doubled.
    await page.goto(`${origin}/#/task/${job._id}/${task._id}`);
    navigations = 0;
    await page.waitForSelector("#log:has-text('first line')", { timeout: 20_000 });
    assert.doesNotMatch(await page.textContent("#log") ?? "", /second line/, "the second line is not written yet");
    await page.waitForSelector("#log:has-text('second line')", { timeout: 30_000 });
    const shown = await page.textContent("#log") ?? "";
    assert.equal(shown.split("first line").length - 1, 1, `the first line once: ${shown}`);
    assert.equal(shown.split("second line").length - 1, 1, `the second line once: ${shown}`);
    await page.waitForSelector("#task-status .st-completed", { timeout: 20_000 });
    await page.waitForSelector("#history .st-completed");
    assert.match(await page.textContent("#history") ?? "", /active[\s\S]*on dash-[ab][\s\S]*completed/);
    assert.equal(navigations, 0);
    await shoot("task");
  });

  test("a worker put to sleep from the page goes asleep; woken again", async () => {
    await page.goto(`${origin}/#/workers`);
    await page.click("button[aria-label='sleep dash-a']");
    const byName = async () => (await api<{ workers: { _id: string; nickname: string; status: string }[] }>("GET", "/api/workers")).workers.find((w) => w.nickname === "dash-a")!;
    await waitFor("dash-a asleep", async () => (await byName()).status === "asleep", 30_000, 50);
    const id = (await byName())._id;
    await page.waitForSelector(`tr[data-worker="${id}"] .st-asleep`);
    await shoot("workers");
    await page.click("button[aria-label='wake dash-a']");
    await waitFor("dash-a awake", async () => (await byName()).status === "awake", 30_000, 50);
  });

  test("the host page lists the catalog and the proxy's routes", async () => {
    await page.goto(`${origin}/#/host`);
    await page.waitForSelector("text=Proxy routes");
    await shoot("host");
  });

  test("a cross-origin POST riding on the cookie is refused with 403", async () => {
    const job = await submit("dash-csrf", [sleepTask("x", 30)]);
    const session = (await context.cookies()).find((c) => c.name === "jwtToken")!.value;
    const cookie = `jwtToken=${session}`;
    const evil = await http("POST", `/api/jobs/${job._id}/cancel`, { Cookie: cookie, Origin: "http://evil.example" }, {});
    assert.equal(evil.status, 403);
    assert.match(evil.headers["content-type"] as string, /json/);
    assert.equal((await http("POST", `/api/jobs/${job._id}/pause`, { Cookie: cookie, "Sec-Fetch-Site": "cross-site" }, {})).status, 403);
    assert.equal((await http("POST", `/api/jobs/${job._id}/pause`, { Cookie: cookie }, {})).status, 403, "no Origin, no Sec-Fetch-Site");
    assert.equal((await http("GET", `/api/jobs/${job._id}`, { Cookie: cookie })).status, 200, "reads need no Origin");
    assert.notEqual((await api<Job>("GET", `/api/jobs/${job._id}`)).status, "canceled");
    // the same origin with the cookie works (a page's fetch)
    const ok = await http("POST", `/api/jobs/${job._id}/cancel`, { Cookie: cookie, Origin: origin }, {});
    assert.equal(ok.status, 200);
  });

  test("sign out from the header (keyboard): cookie dropped, token revoked, its event streams end; cross-origin refused", async () => {
    await page.goto(`${origin}/#/jobs`);
    await page.reload(); // a fresh load: the keyboard starts at the top of the page
    await page.waitForSelector("#conn:text('live')");
    const session = (await context.cookies()).find((c) => c.name === "jwtToken")!.value;
    const cookie = `jwtToken=${session}`;
    const evil = await http("POST", "/dashboard/sign-out", { Cookie: cookie, Origin: "http://evil.example" });
    assert.equal(evil.status, 403);
    assert.equal(evil.headers["set-cookie"], undefined);
    assert.equal((await http("POST", "/dashboard/sign-out", { Cookie: cookie, "Sec-Fetch-Site": "cross-site" })).status, 403);
    assert.equal((await http("POST", "/dashboard/sign-out", { Cookie: cookie })).status, 403, "no Origin, no Sec-Fetch-Site");
    assert.equal((await http("GET", "/api/jobs", { Cookie: cookie })).status, 200, "still signed in");
    const none = await http("POST", "/dashboard/sign-out", { Origin: origin });
    assert.equal(none.status, 401, "no cookie: nothing to sign out");
    assert.match(none.text, /stevedore dashboard/);
    // another tab's event stream on the same cookie (a raw one: its end is what we wait for)
    const stream = await new Promise<import("node:http").IncomingMessage>((res, rej) => {
      request({ host: "127.0.0.1", port: d.managerPort, path: "/api/events", headers: { Cookie: cookie }, agent: false }, res).on("error", rej).end();
    });
    assert.equal(stream.statusCode, 200);
    let ended = false;
    stream.on("close", () => (ended = true)).resume();
    // reachable with Tab alone (in the header, after the skip link and the four page links); Enter signs out
    for (let i = 0; i < 6 && (await page.evaluate(() => document.activeElement?.id)) !== "sign-out"; i++) await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Sign out");
    const answer = page.waitForResponse((r) => r.url() === `${origin}/dashboard/sign-out`);
    await page.keyboard.press("Enter");
    assert.equal((await answer).status(), 303);
    assert.equal(await (await answer).headerValue("set-cookie"), "jwtToken=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
    await page.waitForURL(`${origin}/dashboard/signed-out`);
    assert.match(await page.textContent("body") ?? "", /signed out[\s\S]*run\s+stevedore dashboard/);
    assert.deepEqual((await context.cookies()).filter((c) => c.name === "jwtToken"), []);
    await shoot("signed-out");
    await waitFor("the other stream ended", async () => ended, 5_000, 20);
    // the token itself is dead, not only the cookie: pages and the API refuse it
    const res = await page.goto(origin + "/");
    assert.equal(res?.status(), 401);
    assert.match(await page.textContent("body") ?? "", /run\s+stevedore dashboard/);
    const old = await http("GET", "/", { Cookie: cookie });
    assert.equal(old.status, 401);
    assert.doesNotMatch(old.text, /<script/);
    for (const path of ["/api/jobs", "/api/dashboard/host", "/api/events"]) {
      assert.equal((await http("GET", path, { Cookie: cookie })).status, 401, path);
      assert.equal((await http("GET", path, { Authorization: `Bearer ${session}` })).status, 401, `${path} with the token as Bearer`);
    }
    assert.equal((await http("GET", "/api/jobs", { Authorization: `Bearer ${token}` })).status, 200, "other tokens are unaffected");
    signedOut = cookie;
    await page.goto(await signIn()); // signed in again for what follows
    assert.equal(page.url(), origin + "/");
  });

  test("after a daemon restart the page shows it is disconnected, then reconnects by itself", async () => {
    await page.goto(`${origin}/#/jobs`);
    await page.waitForSelector("#conn:text('live')");
    navigations = 0;
    await d.stop();
    await page.waitForSelector("#conn.down:text('disconnected')", { timeout: 20_000 });
    await shoot("disconnected");
    await d.restart();
    await page.waitForSelector("#conn:not(.down):text('live')", { timeout: 40_000 });
    const job = await submit("dash-after-restart", [sleepTask("y", 0.2)]);
    await page.waitForSelector(`tr[data-job="${job._id}"]`, { timeout: 20_000 });
    assert.equal(navigations, 0, "no reload");
    assert.equal((await http("GET", "/api/jobs", { Cookie: signedOut })).status, 401, "a token signed out before the restart stays refused");
  });

  test("the page asked no other origin for anything", () => {
    assert.ok(requested.length > 10);
    const others = requested.filter((u) => !u.startsWith(origin + "/") && !u.startsWith("data:"));
    assert.deepEqual(others, []);
  });
});
