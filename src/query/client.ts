// The CLI side of the query socket: one GET over the Unix socket with a Bearer token.
import { request } from "node:http";

export class QueryClientError extends Error {
  constructor(message: string, readonly status = 0) {
    super(message);
  }
}

const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
const TIMEOUT_MS = 15_000;

/** GET `path` and parse the JSON answer; a non-200 answer throws with the server's error message. */
export function queryGet(socketPath: string, path: string, token: string, timeoutMs = TIMEOUT_MS): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: "GET", headers: { Authorization: `Bearer ${token}`, Host: "localhost" }, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (c: Buffer) => {
        size += c.length;
        if (size > MAX_RESPONSE_BYTES) req.destroy(new QueryClientError("answer too large"));
        else chunks.push(c);
      });
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          return reject(new QueryClientError(`the query socket answered ${res.statusCode} with a body that is not JSON`, res.statusCode));
        }
        if (res.statusCode === 200) return resolve(body);
        const message = typeof (body as { error?: unknown })?.error === "string" ? (body as { error: string }).error : `status ${res.statusCode}`;
        reject(new QueryClientError(message, res.statusCode));
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new QueryClientError(`no answer from the query socket ${socketPath} within ${timeoutMs / 1000} s`)));
    req.on("error", (err: NodeJS.ErrnoException) => {
      if (err instanceof QueryClientError) return reject(err);
      if (err.code === "ENOENT" || err.code === "ECONNREFUSED")
        return reject(new QueryClientError(`the daemon is not running (nothing listens on the query socket ${socketPath}): is the daemon running? start it, or pass --socket`));
      if (err.code === "EACCES") return reject(new QueryClientError(`permission denied on the query socket ${socketPath}: run as root or as a user that may open it (query_socket_mode)`));
      reject(new QueryClientError(`query socket ${socketPath}: ${err.message}`));
    });
    req.end();
  });
}
