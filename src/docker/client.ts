// The Docker transport: HTTP/1.1 over the Unix socket, API version negotiation, bounded requests.
import { Agent, request, type IncomingMessage } from "node:http";
import type { Readable } from "node:stream";
import { DockerError, DockerUnavailable } from "./errors.js";

/** The Engine API versions we speak: floor 1.41 (Docker 20.10), ceiling as far as we have checked. */
export const MIN_API = "1.41";
export const MAX_API = "1.47";

/** Numeric comparison of "1.9" vs "1.10". */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

export interface RequestOptions {
  method?: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown; // JSON-serialized
  stream?: Readable; // streamed raw body
  contentType?: string;
  timeoutMs?: number;
  /** statuses that are success for this call besides 2xx (e.g. 304 for start/stop) */
  accept?: number[];
}

const CONNECT_TIMEOUT_MS = 5_000;
const RESPONSE_TIMEOUT_MS = 60_000;
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

/** HTTP over the Docker Unix socket, with version negotiation and typed errors. */
export class DockerTransport {
  private agent = new Agent({ keepAlive: true, maxSockets: 16, maxFreeSockets: 4 });
  private apiVersion: string | undefined;
  private negotiating: Promise<string> | undefined;

  constructor(readonly socketPath: string) {}

  /** The negotiated API version ("1.41"), negotiating first if needed. */
  async version(): Promise<string> {
    if (this.apiVersion) return this.apiVersion;
    this.negotiating ??= this.negotiate().finally(() => (this.negotiating = undefined));
    return this.negotiating;
  }

  /** Forget the negotiated version (after a reconnect the engine may have been upgraded). */
  resetVersion(): void {
    this.apiVersion = undefined;
  }

  private async negotiate(): Promise<string> {
    const res = await this.raw("GET", "/version", { timeoutMs: 10_000 }, "version"); // a hung engine must not stall start-up for long
    const body = (await readAll(res)).toString("utf8");
    let info: { ApiVersion?: string; MinAPIVersion?: string } | undefined;
    try {
      info = res.statusCode === 200 ? JSON.parse(body) : undefined;
    } catch {
      // not JSON: reported below
    }
    if (!info?.ApiVersion) throw new DockerError(res.statusCode ?? 0, "unexpected /version answer", "version");
    if (compareVersions(info.ApiVersion, MIN_API) < 0)
      throw new DockerError(0, `engine API ${info.ApiVersion} is older than the oldest we support (${MIN_API})`, "version");
    const chosen = compareVersions(info.ApiVersion, MAX_API) < 0 ? info.ApiVersion : MAX_API;
    if (info.MinAPIVersion && compareVersions(chosen, info.MinAPIVersion) < 0)
      throw new DockerError(0, `engine needs API ${info.MinAPIVersion} or newer; we speak up to ${MAX_API}`, "version");
    this.apiVersion = chosen;
    return chosen;
  }

  /** A JSON call: resolves with the parsed body (undefined for empty bodies), rejects with DockerError/DockerUnavailable. */
  async json<T>(operation: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.call(operation, path, opts);
    const body = await readAll(res);
    if (body.length === 0) return undefined as T;
    return JSON.parse(body.toString("utf8")) as T;
  }

  /** A versioned call returning the raw response once its status is known to be a success. */
  async call(operation: string, path: string, opts: RequestOptions = {}, retried = false): Promise<IncomingMessage> {
    const version = await this.version();
    const res = await this.raw(opts.method ?? "GET", `/v${version}${path}`, opts, operation);
    const status = res.statusCode ?? 0;
    if ((status >= 200 && status < 300) || opts.accept?.includes(status)) return res;
    const message = await errorMessage(res);
    if (status === 400 && /client version/i.test(message) && !retried && !opts.stream) {
      this.resetVersion();
      return this.call(operation, path, opts, true);
    }
    throw new DockerError(status, message, operation);
  }

  /** One HTTP exchange; resolves at response headers. Network failures become DockerUnavailable. */
  raw(method: string, path: string, opts: RequestOptions, operation = path): Promise<IncomingMessage> {
    const qs = opts.query ? queryString(opts.query) : "";
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const headers: Record<string, string | number> = { Host: "docker" };
    if (payload) Object.assign(headers, { "Content-Type": "application/json", "Content-Length": payload.length });
    if (opts.stream) headers["Content-Type"] = opts.contentType ?? "application/x-tar";
    return new Promise((resolve, reject) => {
      const req = request({ socketPath: this.socketPath, path: path + qs, method, headers, agent: this.agent });
      const connectTimer = setTimeout(() => req.destroy(new Error("connect timeout")), CONNECT_TIMEOUT_MS);
      req.once("socket", (sock) => {
        if (!sock.connecting) clearTimeout(connectTimer);
        else sock.once("connect", () => clearTimeout(connectTimer));
      });
      req.setTimeout(opts.timeoutMs ?? RESPONSE_TIMEOUT_MS, () => req.destroy(new Error("response timeout")));
      req.once("response", (res) => {
        clearTimeout(connectTimer);
        req.setTimeout(0);
        resolve(res);
      });
      req.once("error", (err) => {
        clearTimeout(connectTimer);
        reject(err instanceof DockerError ? err : new DockerUnavailable(operation, err));
      });
      if (opts.stream) {
        opts.stream.once("error", (err) => req.destroy(err));
        opts.stream.pipe(req);
      } else req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

export function queryString(query: Record<string, string | number | boolean | undefined>): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : "";
}

export async function readAll(res: IncomingMessage, limit = MAX_RESPONSE_BYTES): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      res.destroy();
      throw new Error(`docker response larger than ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

async function errorMessage(res: IncomingMessage): Promise<string> {
  const text = (await readAll(res, 1024 * 1024).catch(() => Buffer.alloc(0))).toString("utf8");
  try {
    const msg = (JSON.parse(text) as { message?: unknown }).message;
    if (typeof msg === "string") return msg;
  } catch {
    /* not JSON */
  }
  return text.trim() || `HTTP ${res.statusCode}`;
}
