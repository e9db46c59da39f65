// A small client for the manager listener in tests: raw node:http calls (every header and body byte
// ours to choose), registered workers with their Basic credentials, user tokens, a running daemon.
import { request, Agent } from "node:http";
import { randomBytes } from "node:crypto";
import { connect as netConnect, type Socket } from "node:net";
import assert from "node:assert/strict";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { NO_DOCKER } from "../helpers/admin.js";
import { mintUserToken } from "../../src/manager/auth.js";

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

export interface CallOptions {
  /** JSON-serialized unless a Buffer or string (sent as is) */
  body?: unknown;
  /** default application/json when there is a body; null sends none */
  contentType?: string | null;
  /** the Authorization header value (see basic(), bearer()) */
  auth?: string;
  headers?: Record<string, string>;
  agent?: Agent;
}

export const ID_RE = /^[0-9a-f]{24}$/;
export const UNKNOWN_ID = "0123456789abcdef01234567";

export function call(port: number, method: string, path: string, opts: CallOptions = {}): Promise<Reply> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.auth !== undefined) headers.Authorization = opts.auth;
  let payload: Buffer | undefined;
  if (opts.body !== undefined) {
    payload = Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body));
    const ct = opts.contentType === undefined ? "application/json" : opts.contentType;
    if (ct !== null) headers["Content-Type"] = ct;
    headers["Content-Length"] = String(payload.length);
  }
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path, headers, agent: opts.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on("error", reject);
    req.end(payload);
  });
}

export const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`;
export const bearer = (token: string) => `Bearer ${token}`;

/** An error answer: the status and the one JSON error shape. */
export function assertError(r: Reply, status: number, message?: RegExp): void {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.text}`);
  assert.match(String(r.headers["content-type"]), /^application\/json/);
  assert.deepEqual(Object.keys(r.json as object), ["error"], r.text);
  assert.equal(typeof r.json.error, "string");
  if (message) assert.match(r.json.error as string, message);
}

export class Worker {
  constructor(
    readonly m: Manager,
    readonly id: string,
    readonly secret: string,
  ) {}

  get auth(): string {
    return basic(this.id, this.secret);
  }

  call(method: string, path: string, opts: CallOptions = {}): Promise<Reply> {
    return this.m.call(method, path, { auth: this.auth, ...opts });
  }

  signOn(doc?: unknown): Promise<Reply> {
    return this.call("POST", "/sign-on", doc === undefined ? {} : { body: doc });
  }

  /** GET /task; the task document on 200 */
  task(method = "GET"): Promise<Reply> {
    return this.call(method, "/task");
  }

  update(taskId: string, doc: unknown): Promise<Reply> {
    return this.call("POST", `/tasks/${taskId}/update`, { body: doc });
  }

  mayIRun(taskId: string): Promise<Reply> {
    return this.call("GET", `/may-i-run/${taskId}`);
  }
}

/** A daemon with the manager listener (and the admin socket) and what tests need to talk to it. */
export class Manager {
  token = "";
  constructor(readonly d: TestDaemon) {}

  static async start(config = ""): Promise<Manager> {
    const d = await startDaemon({ env: NO_DOCKER, disable: ["query", "command", "core", "http", "https"], config });
    const m = new Manager(d);
    m.token = await m.mint("tester");
    return m;
  }

  get port(): number {
    return this.d.managerPort;
  }

  mint(subject: string, ttlSecs = 3600, nowMs?: number): Promise<string> {
    return mintUserToken(this.d.stateDir, { subject, ttlSecs, nowMs });
  }

  call(method: string, path: string, opts: CallOptions = {}): Promise<Reply> {
    return call(this.port, method, path, opts);
  }

  /** a user call with the test token */
  api(method: string, path: string, body?: unknown): Promise<Reply> {
    return this.call(method, path, { auth: bearer(this.token), ...(body === undefined ? {} : { body }) });
  }

  async register(doc: Record<string, unknown> = {}, auth?: string): Promise<Worker> {
    const secret = randomBytes(16).toString("hex");
    const r = await this.call("POST", "/register-worker", { body: { secret, platform: "linux", nickname: "w", supported_task_types: ["echo"], ...doc }, auth });
    assert.equal(r.status, 200, r.text);
    return new Worker(this, r.json._id as string, (doc.secret as string | undefined) ?? secret);
  }

  /** registered and signed on */
  async worker(types: string[] = ["echo"], nickname = "w"): Promise<Worker> {
    const w = await this.register({ supported_task_types: types, nickname });
    assert.equal((await w.signOn()).status, 204);
    return w;
  }

  /** POST /api/jobs; the 201 job (with tasks) */
  async submit(spec: Record<string, unknown>): Promise<Job> {
    const r = await this.api("POST", "/api/jobs", spec);
    assert.equal(r.status, 201, r.text);
    return r.json as Job;
  }

  /** a job of `n` independent tasks of `type` */
  job(name: string, type = "echo", n = 1, priority?: number): Promise<Job> {
    const tasks = Array.from({ length: n }, (_, i) => ({ name: `t${i}`, task_type: type, commands: [{ name: "echo", settings: { message: `hi ${i}` } }] }));
    return this.submit({ name, tasks, ...(priority === undefined ? {} : { priority }) });
  }

  async getJob(id: string): Promise<Job> {
    const r = await this.api("GET", `/api/jobs/${id}`);
    assert.equal(r.status, 200, r.text);
    return r.json as Job;
  }

  async taskStatus(jobId: string, taskId: string): Promise<string> {
    return (await this.getJob(jobId)).tasks!.find((t) => t._id === taskId)!.status;
  }

  async getWorker(id: string): Promise<Record<string, unknown>> {
    const r = await this.api("GET", "/api/workers");
    assert.equal(r.status, 200, r.text);
    return (r.json.workers as Record<string, unknown>[]).find((w) => w._id === id)!;
  }
}

export interface Job {
  _id: string;
  name: string;
  status: string;
  priority: number;
  task_counts: Record<string, number>;
  progress: number;
  outputs: string[];
  tasks?: { _id: string; name: string; status: string; worker: string; activity: string; progress: number; parents: string[] }[];
}

/**
 * One keep-alive connection with a minimal HTTP/1.1 client on a raw socket: much cheaper per request
 * than node:http, for fuzzing many thousands of bodies. One request at a time; reconnects when the
 * server closed the connection after an answer.
 */
export class KeepAliveConn {
  private sock: Socket | undefined;
  private buf: Buffer = Buffer.alloc(0);
  private waiting: { resolve(r: Reply): void; reject(e: Error): void } | undefined;

  constructor(private readonly port: number) {}

  async request(method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<Reply> {
    const sock = this.sock ?? (await this.connect());
    let head = `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n`;
    for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
    head += `Content-Length: ${body?.length ?? 0}\r\n\r\n`;
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      sock.write(body ? Buffer.concat([Buffer.from(head, "latin1"), body]) : Buffer.from(head, "latin1"));
    });
  }

  close(): void {
    this.sock?.destroy();
    this.sock = undefined;
  }

  private connect(): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const sock = netConnect({ host: "127.0.0.1", port: this.port, noDelay: true }, () => resolve(sock));
      this.buf = Buffer.alloc(0);
      sock.on("data", (chunk: Buffer) => {
        this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
        this.parse(sock);
      });
      sock.on("error", (err) => {
        reject(err);
        this.fail(sock, err);
      });
      sock.on("close", () => this.fail(sock, new Error("the server closed the connection before the answer")));
      this.sock = sock;
    });
  }

  private fail(sock: Socket, err: Error): void {
    if (this.sock === sock) this.sock = undefined;
    const w = this.waiting;
    this.waiting = undefined;
    w?.reject(err);
  }

  private parse(sock: Socket): void {
    const end = this.buf.indexOf("\r\n\r\n");
    if (end < 0 || !this.waiting) return;
    const lines = this.buf.subarray(0, end).toString("latin1").split("\r\n");
    const status = Number(lines[0]!.split(" ")[1]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers["content-length"] ?? 0);
    if (this.buf.length < end + 4 + length) return;
    const text = this.buf.subarray(end + 4, end + 4 + length).toString("utf8");
    this.buf = this.buf.subarray(end + 4 + length);
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    const w = this.waiting;
    this.waiting = undefined;
    if (/close/i.test(headers.connection ?? "")) {
      if (this.sock === sock) this.sock = undefined;
      sock.destroy();
    }
    w.resolve({ status, headers, text, json });
  }
}
