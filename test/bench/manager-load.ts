// Shared by the manager benches: a raw keep-alive HTTP/1.1 client (one request in flight per
// socket, answers framed by Content-Length), the bundled daemon with only the manager listener,
// and setup through the HTTP API (workers registered and signed on in parallel batches, jobs).
import { connect, type Socket } from "node:net";
import { execFileSync } from "node:child_process";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { mintUserToken } from "../../src/manager/auth.js";

export const TYPES = ["render", "sleep", "echo", "exec"];

export interface Answer {
  status: number;
  head: string;
  body: Buffer;
}

/** One keep-alive connection; request() sends raw bytes and resolves with the next answer. */
export class RawConn {
  private readonly socket: Socket;
  private buf: Buffer = Buffer.alloc(0);
  private waiter: ((a: Answer) => void) | undefined;
  private failure: ((e: Error) => void) | undefined;
  readonly ready: Promise<void>;

  constructor(port: number) {
    this.socket = connect(port, "127.0.0.1");
    this.socket.setNoDelay(true);
    this.ready = new Promise((resolve, reject) => {
      this.socket.once("connect", resolve);
      this.socket.once("error", reject);
    });
    this.socket.on("error", (err) => this.failure?.(err));
    this.socket.on("close", () => this.failure?.(new Error("connection closed")));
    this.socket.on("data", (chunk: Buffer) => this.onData(chunk));
  }

  request(bytes: Buffer | string): Promise<Answer> {
    return new Promise((resolve, reject) => {
      this.waiter = resolve;
      this.failure = reject;
      this.socket.write(bytes);
    });
  }

  close(): void {
    this.failure = undefined;
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const headEnd = this.buf.indexOf("\r\n\r\n");
    if (headEnd < 0) return;
    const head = this.buf.toString("latin1", 0, headEnd);
    const m = /\r\ncontent-length: *(\d+)/i.exec(head);
    const total = headEnd + 4 + Number(m?.[1] ?? 0);
    if (this.buf.length < total) return;
    const answer = { status: Number(head.slice(9, 12)), head, body: this.buf.subarray(headEnd + 4, total) };
    this.buf = this.buf.subarray(total);
    const w = this.waiter;
    this.waiter = undefined;
    w?.(answer);
  }
}

/** The bytes of one request (Content-Length always set; keep-alive is HTTP/1.1's default). */
export function requestBytes(method: string, path: string, headers: Record<string, string>, body = ""): Buffer {
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
  const len = Buffer.byteLength(body);
  return Buffer.from(`${method} ${path} HTTP/1.1\r\nHost: bench\r\n${lines}${body || method === "POST" ? `Content-Length: ${len}\r\n` : ""}\r\n${body}`);
}

export const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`;

/** A pool of keep-alive connections for setup requests, `width` at a time. */
export async function inParallel<T>(port: number, width: number, items: T[], fn: (conn: RawConn, item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, async () => {
    const conn = new RawConn(port);
    await conn.ready;
    try {
      while (next < items.length) {
        const i = next++;
        await fn(conn, items[i]!, i);
      }
    } finally {
      conn.close();
    }
  }));
}

export function expectStatus(a: Answer, status: number, what: string): void {
  if (a.status !== status) throw new Error(`${what}: HTTP ${a.status} ${a.body.toString().slice(0, 300)}`);
}

/** The bundled daemon (make build) with only the manager listener on a loopback port. */
export function startManager(config = ""): Promise<TestDaemon> {
  return startDaemon({
    disable: ["query", "admin", "command", "core", "http", "https"],
    // the bench pauses between phases: no worker or task may time out meanwhile
    config: `manager_worker_timeout_secs = 86400\nmanager_task_timeout_secs = 604800\n${config}`,
    // BENCH_PROFILE=<dir>: a CPU profile of the daemon, written when it stops
    nodeArgs: process.env.BENCH_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [],
  });
}

export interface BenchWorker {
  id: string;
  auth: string;
  types: string[];
}

/** Registers `count` workers (each one scrypt hash) and signs them on (each one scrypt check), `width` requests at a time. */
export async function addWorkers(port: number, count: number, rand: (n: number) => number, width = 8): Promise<{ workers: BenchWorker[]; registerMs: number; signOnMs: number }> {
  const specs = Array.from({ length: count }, (_, i) => {
    const types = TYPES.filter(() => rand(2) === 1);
    if (types.length === 0) types.push(TYPES[i % TYPES.length]!);
    return { secret: `bench-secret-${i}-${rand(1e9)}`, types, nickname: `bench-${i}` };
  });
  const workers: BenchWorker[] = new Array(count);
  let t = performance.now();
  await inParallel(port, width, specs, async (conn, s, i) => {
    const body = JSON.stringify({ secret: s.secret, nickname: s.nickname, platform: "linux", software: "bench", supported_task_types: s.types });
    const a = await conn.request(requestBytes("POST", "/register-worker", { "Content-Type": "application/json" }, body));
    expectStatus(a, 200, "register-worker");
    const id = (JSON.parse(a.body.toString()) as { _id: string })._id;
    workers[i] = { id, auth: basic(id, s.secret), types: s.types };
  });
  const registerMs = performance.now() - t;
  t = performance.now();
  await inParallel(port, width, workers, async (conn, w) => {
    const a = await conn.request(requestBytes("POST", "/sign-on", { Authorization: w.auth, "Content-Type": "application/json" }, "{}"));
    expectStatus(a, 204, "sign-on");
  });
  return { workers, registerMs, signOnMs: performance.now() - t };
}

export function jobSpec(name: string, tasks: number, rand: (n: number) => number) {
  return {
    name,
    type: "bench",
    priority: 1 + rand(100),
    tasks: Array.from({ length: tasks }, (_, i) => ({
      name: `${name}-${i}`,
      task_type: TYPES[rand(TYPES.length)]!,
      priority: 1 + rand(100),
      commands: [{ name: "echo", settings: { message: `frame ${i}` } }],
    })),
  };
}

/** A user token for the job API. */
export async function userAuth(d: TestDaemon): Promise<string> {
  return `Bearer ${await mintUserToken(d.stateDir, { subject: "bench", ttlSecs: 3600 })}`;
}

/** Submits a job through POST /api/jobs; returns its id. */
export async function submitJob(conn: RawConn, user: string, spec: unknown): Promise<string> {
  const a = await conn.request(requestBytes("POST", "/api/jobs", { Authorization: user, "Content-Type": "application/json" }, JSON.stringify(spec)));
  expectStatus(a, 201, "submit job");
  return (JSON.parse(a.body.toString()) as { _id: string })._id;
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? NaN;

/** The machine's load (a shared box): the uptime line. */
export function load(): string {
  try {
    return execFileSync("uptime", { encoding: "utf8" }).trim();
  } catch {
    return "uptime unavailable";
  }
}
