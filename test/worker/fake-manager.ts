// A scripted peer of the worker protocol on node:http (a stub for unit tests, not the real manager):
// it hands out queued tasks, answers status requests and may-i-run as told, and records every call.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { randomBytes } from "node:crypto";
import { listen } from "../../src/http/index.js";

export interface Call {
  method: string;
  path: string;
  /** the worker id of valid Basic credentials, "" without, "?" for wrong ones */
  worker: string;
  body: unknown;
}

export interface FakeTask {
  _id: string;
  job: string;
  name: string;
  commands: { name: string; settings: Record<string, unknown> }[];
}

export type Override = (call: Call, res: ServerResponse) => boolean;

export class FakeManager {
  readonly calls: Call[] = [];
  readonly workers = new Map<string, string>(); // id -> secret
  readonly queue: FakeTask[] = [];
  readonly updates = new Map<string, Record<string, unknown>[]>();
  readonly mayRun = new Map<string, { may_keep_running: boolean; reason?: string; status_requested?: string }>();
  statusRequest: string | undefined;
  /** return true when the call was answered */
  override: Override | undefined;
  private server: Server | undefined;
  private sockets = new Set<import("node:net").Socket>();
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(port = 0): Promise<void> {
    const server = createServer((req, res) => void this.handle(req, res));
    server.on("connection", (s) => {
      this.sockets.add(s);
      s.once("close", () => this.sockets.delete(s));
    });
    await listen(server, { port, host: "127.0.0.1" });
    this.server = server;
    this.port = (server.address() as { port: number }).port;
  }

  /** stop listening and cut every connection (the manager is down) */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => server.close(r));
  }

  callsTo(path: string | RegExp): Call[] {
    return this.calls.filter((c) => (typeof path === "string" ? c.path === path : path.test(c.path)));
  }

  /** every log text sent for a task, joined */
  logOf(taskId: string): string {
    return (this.updates.get(taskId) ?? []).map((u) => (typeof u.log === "string" ? u.log : "")).join("");
  }

  finalOf(taskId: string): Record<string, unknown> | undefined {
    return (this.updates.get(taskId) ?? []).find((u) => u.task_status === "completed" || u.task_status === "failed" || u.task_status === "canceled");
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    const call: Call = { method: req.method ?? "", path: (req.url ?? "").split("?")[0]!, worker: this.auth(req.headers.authorization), body: text ? JSON.parse(text) : undefined };
    this.calls.push(call);
    if (this.override?.(call, res)) return;
    const json = (status: number, body?: unknown) => {
      if (body === undefined) return void res.writeHead(status).end();
      res.writeHead(status, { "Content-Type": "application/json" }).end(JSON.stringify(body));
    };
    if (call.path === "/register-worker" && call.method === "POST") {
      const b = call.body as { secret: string; nickname: string; supported_task_types: string[]; platform: string };
      const id = randomBytes(12).toString("hex");
      this.workers.set(id, b.secret);
      return json(200, { _id: id, nickname: b.nickname, address: "127.0.0.1", status: "", platform: b.platform, current_task: "", last_activity: "", supported_task_types: b.supported_task_types, software: "" });
    }
    if (!call.worker || call.worker === "?") {
      res.writeHead(401, { "WWW-Authenticate": 'Basic realm="stevedore manager"', "Content-Type": "application/json" }).end('{"error":"unknown worker"}');
      return;
    }
    let m: RegExpExecArray | null;
    if (call.path === "/sign-on" || call.path === "/sign-off") return json(204);
    if (call.path === "/task") {
      if (this.statusRequest) return json(423, { status_requested: this.statusRequest });
      const task = this.queue.shift();
      if (!task) return json(204);
      return json(200, { ...task, status: "active", priority: 50, job_priority: 50, job_type: "test", task_type: task.commands[0]?.name ?? "echo", parents: [], worker: call.worker, activity: "", log: "" });
    }
    if (call.path === "/status-change") return this.statusRequest ? json(200, { status_requested: this.statusRequest }) : json(204);
    if ((m = /^\/ack-status-change\/([^/]+)$/.exec(call.path))) {
      if (m[1] === this.statusRequest) this.statusRequest = undefined;
      return json(204);
    }
    if ((m = /^\/may-i-run\/([^/]+)$/.exec(call.path))) return json(200, this.mayRun.get(m[1]!) ?? { may_keep_running: true });
    if ((m = /^\/tasks\/([^/]+)\/update$/.exec(call.path))) {
      const list = this.updates.get(m[1]!) ?? [];
      list.push(call.body as Record<string, unknown>);
      this.updates.set(m[1]!, list);
      return json(204);
    }
    json(404, { error: "not found" });
  }

  private auth(header: string | undefined): string {
    if (!header?.startsWith("Basic ")) return "";
    const [id, secret] = Buffer.from(header.slice(6), "base64").toString("utf8").split(":");
    return id && this.workers.get(id) === secret ? id : "?";
  }
}
