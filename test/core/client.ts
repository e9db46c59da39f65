// A small client for the core API in tests (node:http, so every header and body byte is ours to choose).
import { request } from "node:http";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

export interface CallOptions {
  /** JSON-serialized unless a Buffer/string (sent as is) */
  body?: unknown;
  stream?: Readable;
  /** base64 key header; null sends none */
  key?: string | null;
  contentType?: string | null;
  headers?: Record<string, string>;
}

export class CoreClient {
  constructor(readonly port: number, public key: string) {}

  static async forStateDir(port: number, stateDir: string): Promise<CoreClient> {
    return new CoreClient(port, (await readFile(join(stateDir, "corekey.bin"))).toString("base64"));
  }

  call(method: string, path: string, opts: CallOptions = {}): Promise<Reply> {
    const headers: Record<string, string> = { ...opts.headers };
    const key = opts.key === undefined ? this.key : opts.key;
    if (key !== null) headers["X-Duxcore-CoreKey"] = key;
    let payload: Buffer | undefined;
    if (opts.body !== undefined) {
      payload = Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body));
      const ct = opts.contentType === undefined ? "application/json" : opts.contentType;
      if (ct !== null) headers["Content-Type"] = ct;
      headers["Content-Length"] = String(payload.length);
    }
    return new Promise((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port: this.port, method, path, headers, agent: false }, (res) => {
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
      if (opts.stream) opts.stream.pipe(req);
      else req.end(payload);
    });
  }

  create(params: Record<string, unknown>): Promise<Reply> {
    return this.call("POST", "/service", { body: { type: "raw", params } });
  }

  ctl(id: string, op: string): Promise<Reply> {
    return this.call("POST", `/service/${id}/ctl`, { body: { op } });
  }
}
