// Fan-out: 10,000 clients waiting on /poll, one change → time until the last has its answer,
// and the server's RSS per waiting client. Anchor: the same 10,000 requests held pending by a
// bare node:http server (what node:http alone costs), and the goals (1 s, 10 KB).
import { fork, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { execFile, spawnSync } from "node:child_process";
import { promisify } from "node:util";
import { BUNDLE, startDaemon } from "../helpers/daemon.js";
import { get } from "../query/http.js";
import { waitFor } from "../helpers/docker.js";

const exec = promisify(execFile);
const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024;

const CLIENTS = 10_000;

interface Msg {
  cmd: string;
  token?: string;
  ts?: number;
  rss?: number;
  heap?: number;
  waiters?: number;
  connections?: number;
}

function start(mode: "stevedore" | "hold", dir: string) {
  const sock = join(dir, `${mode}.sock`);
  const child: ChildProcess = fork(join(process.cwd(), "test/bench/query-server.ts"), [mode, sock, join(dir, "state")], {
    execArgv: ["--import", "tsx", "--expose-gc"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const next = (cmd: string) => new Promise<Msg>((resolve) => {
    const on = (m: Msg) => {
      if (m.cmd !== cmd) return;
      child.off("message", on);
      resolve(m);
    };
    child.on("message", on);
  });
  return { sock, child, next };
}

/** open n connections, send `request` on each; resolve when all are connected and sent */
async function openClients(sock: string, n: number, request: Buffer, onAnswer: () => void): Promise<Socket[]> {
  const sockets: Socket[] = [];
  const one = (resolve: () => void, reject: (e: Error) => void, attempt = 0): void => {
      const s = connect(sock);
      let got = false;
      s.on("connect", () => {
        s.write(request);
        resolve();
      });
      s.on("data", (d: Buffer) => {
        if (!got && d.includes("\r\n\r\n")) {
          got = true;
          onAnswer();
        }
      });
      s.on("error", (err: NodeJS.ErrnoException) => {
        // the listen backlog is full: try again shortly
        if (err.code === "EAGAIN" && attempt < 50) setTimeout(() => one(resolve, reject, attempt + 1), 10);
        else reject(err);
      });
      s.once("connect", () => sockets.push(s));
  };
  for (let i = 0; i < n; i += 200) await Promise.all(Array.from({ length: Math.min(200, n - i) }, () => new Promise<void>((resolve, reject) => one(resolve, reject))));
  return sockets;
}

/** The bundled daemon over the real engine: 10,000 clients keep a poll waiting (each re-polls with
 *  the timestamp it got, as a real client does: other users of the shared engine make changes too),
 *  then one `docker create`: time until every client has an answer with a newer timestamp. */
async function realDaemon(): Promise<{ fanoutMs: number; fromCreateMs: number; perClient: number } | undefined> {
  if (!(await exec("docker", ["version"]).then(() => true, () => false))) return undefined;
  const d = await startDaemon({ disable: ["admin", "command", "core", "manager", "http", "https"], config: "poll_max_waiters = 20000" });
  const name = "q-fanout";
  const clients: Socket[] = [];
  try {
    const token = spawnSync(process.execPath, [BUNDLE, "token", "get", "q-fanout"], { encoding: "utf8", env: { ...process.env, STEVEDORE_CONFIG: d.configPath, STEVEDORE_STATE_DIR: "" } }).stdout.trim();
    await waitFor("token", async () => (await get(d.querySocket, "/deployments", { token })).status === 200, 3000);
    const pollReq = (since: number) => `GET /poll?since=${since}&timeout=290 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`;
    const start = (await get(d.querySocket, "/poll?since=0", { token })).json.timestamp as number;
    const before = rssOf(d.proc.pid!);
    let target = Infinity; // answers with a timestamp > target count
    let reached = 0;
    let first = 0;
    let last = 0;
    let all: () => void = () => {};
    const done = new Promise<void>((r) => (all = r));
    const open = (attempt = 0): Promise<void> => new Promise((resolve, reject) => {
      const s = connect(d.querySocket);
      let buf = "";
      let counted = false;
      s.on("connect", () => {
        clients.push(s);
        s.write(pollReq(start));
        resolve();
      });
      s.on("error", (err: NodeJS.ErrnoException) => {
        if (err.code === "EAGAIN" && attempt < 500) setTimeout(() => open(attempt + 1).then(resolve, reject), 20);
        else reject(err);
      });
      s.setEncoding("latin1").on("data", (chunk: string) => {
        buf += chunk;
        const m = /\r\n\r\n(\{[^}]*\})/.exec(buf);
        if (!m) return;
        buf = buf.slice(m.index + m[0].length);
        const ts = JSON.parse(m[1]!).timestamp as number;
        if (ts > target && !counted) {
          counted = true;
          const now = performance.now();
          if (reached === 0) first = now;
          if (++reached === CLIENTS) (last = now), all();
        }
        s.write(pollReq(ts));
      });
    });
    for (let i = 0; i < CLIENTS; i += 100) await Promise.all(Array.from({ length: Math.min(100, CLIENTS - i) }, () => open()));
    await new Promise((r) => setTimeout(r, 1000)); // let the daemon parse the last requests
    const waiting = rssOf(d.proc.pid!);
    target = (await get(d.querySocket, "/poll?since=0", { token })).json.timestamp as number;
    const t0 = performance.now();
    await exec("docker", ["create", "--name", name, "--label", "stevedore.test=query", "--label", "stevedore.deployment=q-fanout", "--label", "stevedore.service=s", "stevedore-test/busybox:latest"]);
    await done;
    return { fanoutMs: last - first, fromCreateMs: last - t0, perClient: (waiting - before) / CLIENTS };
  } finally {
    for (const s of clients) s.destroy();
    await exec("docker", ["rm", "-f", name]).catch(() => {});
    await d.cleanup();
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-q-fanout-"));
  try {
    // anchor: a bare node:http server holding the same 10,000 requests pending
    const bare = start("hold", dir);
    const bareReady = await bare.next("ready");
    bare.child.send({ cmd: "stats" });
    const bareBeforeStats = await bare.next("stats");
    const bareBefore = bareBeforeStats.rss!;
    const holdReq = Buffer.from(`GET /poll?since=${bareReady.ts}&timeout=290 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${bareReady.token}\r\n\r\n`);
    const idle = await openClients(bare.sock, CLIENTS, holdReq, () => {});
    for (;;) {
      bare.child.send({ cmd: "stats" });
      if ((await bare.next("stats")).connections === CLIENTS) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 300)); // let the last requests be parsed
    bare.child.send({ cmd: "stats" });
    const bareAfterStats = await bare.next("stats");
    const bareAfter = bareAfterStats.rss!;
    for (const s of idle) s.destroy();
    bare.child.send({ cmd: "exit" });

    const ours = start("stevedore", dir);
    const ready = await ours.next("ready");
    ours.child.send({ cmd: "stats" });
    const beforeStats = await ours.next("stats");
    const before = beforeStats.rss!;
    const req = Buffer.from(`GET /poll?since=${ready.ts}&timeout=290 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ready.token}\r\n\r\n`);
    let answered = 0;
    let allAnswered: () => void = () => {};
    const done = new Promise<void>((r) => (allAnswered = r));
    const clients = await openClients(ours.sock, CLIENTS, req, () => {
      if (++answered === CLIENTS) allAnswered();
    });
    for (;;) {
      ours.child.send({ cmd: "stats" });
      const st = await ours.next("stats");
      if (st.waiters === CLIENTS) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    ours.child.send({ cmd: "stats" });
    const waitingStats = await ours.next("stats");
    const waitingRss = waitingStats.rss!;
    if (answered !== 0) throw new Error(`${answered} polls answered before the change`);
    const t0 = performance.now();
    ours.child.send({ cmd: "change" });
    await done;
    const fanout = performance.now() - t0;
    for (const s of clients) s.destroy();
    ours.child.send({ cmd: "exit" });

    const perClient = (waitingRss - before) / CLIENTS;
    const bareClient = (bareAfter - bareBefore) / CLIENTS;
    console.log(`fan-out: ${CLIENTS} clients waiting on /poll over the Unix socket, one change`);
    console.log(`| figure | stevedore | anchor | ratio |`);
    console.log(`|---|---|---|---|`);
    console.log(`| time until the last answer ms | ${fanout.toFixed(0)} | goal 1000 | ${(fanout / 1000).toFixed(2)} |`);
    console.log(`| server RSS per waiting client KB | ${(perClient / 1024).toFixed(2)} | goal 10; pending request on bare node:http ${(bareClient / 1024).toFixed(2)} | ${(perClient / 10240).toFixed(2)} of goal; ${(perClient / bareClient).toFixed(2)}x bare |`);
    const real = await realDaemon();
    if (real) {
      console.log(`| bundled daemon, real engine: first → last answer ms | ${real.fanoutMs.toFixed(0)} | goal 1000 | ${(real.fanoutMs / 1000).toFixed(2)} |`);
      console.log(`| bundled daemon: docker create → last answer ms | ${real.fromCreateMs.toFixed(0)} | (includes the docker CLI and the event) | |`);
      console.log(`| bundled daemon RSS per waiting client KB (no forced GC) | ${(real.perClient / 1024).toFixed(2)} | goal 10 | ${(real.perClient / 10240).toFixed(2)} |`);
    }
    const heapKb = (a: Msg, b: Msg) => (((b.heap ?? 0) - (a.heap ?? 0)) / CLIENTS / 1024).toFixed(2);
    console.log(`| JS heap + external per waiting client KB | ${heapKb(beforeStats, waitingStats)} | pending request on bare node:http ${heapKb(bareBeforeStats, bareAfterStats)} | |`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

void main().then(() => process.exit(0));
