// The worker's HTTP calls to the manager: JSON in and out, Basic auth, a time-out on every request,
// bounded answers. Network failures become ManagerUnreachable so the loop can back off.
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { VERSION } from "../version.js";

const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

export interface Answer {
  status: number;
  /** parsed JSON, or undefined for an empty or non-JSON body */
  body: unknown;
  text: string;
}

/** The manager did not answer (refused, reset, DNS, time-out). */
export class ManagerUnreachable extends Error {
  constructor(readonly path: string, override readonly cause: Error) {
    super(`manager unreachable (${path}): ${cause.message}`);
  }
}

export interface Credentials {
  id: string;
  secret: string;
}

export class ManagerHttp {
  private readonly agent: HttpAgent;
  private readonly isHttps: boolean;

  /** `ca`: certificates (PEM) trusted for an https:// manager instead of the system's (--cacert) */
  constructor(readonly baseUrl: string, private readonly timeoutMs: number, ca?: Buffer) {
    this.isHttps = baseUrl.startsWith("https:");
    this.agent = this.isHttps ? new HttpsAgent({ keepAlive: true, maxSockets: 4, ...(ca ? { ca } : {}) }) : new HttpAgent({ keepAlive: true, maxSockets: 4 });
  }

  /** One request; `auth` is Basic credentials or a ready Authorization header value. */
  request(method: string, path: string, opts: { body?: unknown; auth?: Credentials | string; timeoutMs?: number } = {}): Promise<Answer> {
    const url = new URL(this.baseUrl + path);
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const headers: Record<string, string | number> = { Accept: "application/json", "User-Agent": `stevedore-worker/${VERSION}` };
    if (payload) Object.assign(headers, { "Content-Type": "application/json", "Content-Length": payload.length });
    else if (method === "POST") headers["Content-Length"] = 0;
    if (typeof opts.auth === "string") headers.Authorization = opts.auth;
    else if (opts.auth) headers.Authorization = "Basic " + Buffer.from(`${opts.auth.id}:${opts.auth.secret}`).toString("base64");
    const send = this.isHttps ? httpsRequest : httpRequest;
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    return new Promise((resolve, reject) => {
      const req = send(url, { method, headers, agent: this.agent });
      // one deadline for the whole exchange, answer body included
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      const fail = (err: Error) => {
        clearTimeout(timer);
        reject(new ManagerUnreachable(path, err));
      };
      req.once("error", fail);
      req.once("response", (res) => {
        readBounded(res).then((buf) => {
          clearTimeout(timer);
          const text = buf.toString("utf8");
          resolve({ status: res.statusCode ?? 0, body: parseJson(text), text });
        }, fail);
      });
      req.end(payload);
    });
  }

  /** A GET whose body is the caller's to read (a blob): resolves at the answer's head. `idleMs`
   *  bounds each wait for data, not the whole transfer. A non-2xx body is read (bounded) as `text`. */
  fetch(path: string, auth: Credentials, idleMs: number): Promise<{ status: number; body: IncomingMessage; text: string }> {
    const url = new URL(this.baseUrl + path);
    const headers = { "User-Agent": `stevedore-worker/${VERSION}`, Authorization: "Basic " + Buffer.from(`${auth.id}:${auth.secret}`).toString("base64") };
    const send = this.isHttps ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(url, { method: "GET", headers, agent: this.agent });
      req.setTimeout(idleMs, () => req.destroy(new Error(`no data within ${idleMs} ms`)));
      req.once("error", (err) => reject(new ManagerUnreachable(path, err)));
      req.once("response", (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) return resolve({ status, body: res, text: "" });
        readBounded(res).then((buf) => resolve({ status, body: res, text: buf.toString("utf8") }), (err: Error) => reject(new ManagerUnreachable(path, err)));
      });
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

function parseJson(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

async function readBounded(res: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res) {
    size += (chunk as Buffer).length;
    if (size > MAX_ANSWER_BYTES) {
      res.destroy();
      throw new Error(`answer larger than ${MAX_ANSWER_BYTES} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The error text of a JSON {"error": "..."} answer, else the start of the body. */
export function answerError(a: Answer): string {
  const msg = (a.body as { error?: unknown } | undefined)?.error;
  return `HTTP ${a.status}${typeof msg === "string" ? `: ${msg}` : a.text ? `: ${a.text.slice(0, 200)}` : ""}`;
}
