// The anchor of manager-http.bench.ts, in its own process: a bare node:http server that answers
// the worker loop's requests with the manager's bytes after the same worker Basic-auth check
// (parseBasicAuth, SHA-256 of id NUL secret, cache lookup, constant-time compare) and nothing else.
// Protocol (IPC): receives {workers: [{id, secret}], taskBody}; answers {port}.
import { createHash, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import { parseBasicAuth } from "../../src/manager/auth.js";

interface Setup {
  workers: { id: string; secret: string }[];
  taskBody: string;
}

const digest = (id: string, secret: string) => createHash("sha256").update(id).update("\0").update(secret).digest();

process.once("message", (setup: Setup) => {
  const cache = new Map(setup.workers.map((w) => [w.id, digest(w.id, w.secret)]));
  const taskBody = Buffer.from(setup.taskBody);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const basic = parseBasicAuth(req.headers.authorization);
      const known = basic && cache.get(basic.id);
      if (!basic || !known || !timingSafeEqual(known, digest(basic.id, basic.secret))) {
        res.writeHead(401, { "Content-Type": "application/json", "Content-Length": 2 }).end("{}");
        return;
      }
      if (req.url === "/task") {
        res.writeHead(200, { "Content-Type": "application/json", "Content-Length": taskBody.length }).end(taskBody);
      } else {
        res.writeHead(204).end();
      }
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, "127.0.0.1", () => process.send!({ port: (server.address() as { port: number }).port }));
});
