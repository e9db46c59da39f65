// Child process of the query benchmarks: serves GET /services for 200 containers either through
// stevedore's QueryServer (fake catalog, real tokens, real bodies cache) or through a bare node:http
// server returning the same bytes. Talks to the parent over IPC.
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { QueryServer, RevisionBodies } from "../../src/query/index.js";
import { TokenRegistry, getToken, tokensPath } from "../../src/tokens/index.js";
import { listenUnix } from "../../src/http/index.js";
import { FakeCatalog, container } from "../query/fake-catalog.js";

const [mode, socket, stateDir, bodyFile] = process.argv.slice(2) as ["stevedore" | "bare" | "hold", string, string, string | undefined];
const send = (m: unknown) => process.send!(m);

export function benchContainers(n: number) {
  return Array.from({ length: n }, (_, i) =>
    container({
      deployment: `app${String(i % 40).padStart(2, "0")}`,
      service: `svc${Math.floor(i / 40)}`,
      ingress: i % 2 ? { enabled: true, subdomain: `app${i}`, port: 8080, websocket: false, healthcheck: "/health" } : undefined,
    }),
  );
}

async function main(): Promise<void> {
  const catalog = new FakeCatalog();
  catalog.maxWaiters = 100_000;
  catalog.publish(benchContainers(200));
  const token = await getToken(stateDir, "bench");
  let server;
  if (mode === "hold") {
    // a bare node:http server that keeps every request pending (the cost of a pending request alone)
    const held = new Set<unknown>();
    server = createServer((_req, res) => {
      held.add(res);
      res.once("close", () => held.delete(res));
    });
  } else if (mode === "bare") {
    const body = bodyFile ? readFileSync(bodyFile) : new RevisionBodies(catalog.current()).services(false);
    server = createServer((_req, res) => {
      res.writeHead(200, { "Content-Type": "application/json", "Content-Length": body.length });
      res.end(body);
    });
    server.keepAliveTimeout = 5000;
  } else {
    const registry = new TokenRegistry(tokensPath(stateDir), () => catalog.refreshRegistered());
    registry.start();
    const qs = new QueryServer({ catalog, lookupToken: (t) => registry.lookup(t), tokensGeneration: () => registry.generation, staleAfterSecs: () => 30, pollDefaultTimeoutSecs: () => 60, maxConnections: 100_000 });
    server = qs.server;
  }
  const r = await listenUnix(server, socket, 0o666, "bench");
  if (!r.ok) throw new Error(r.message);
  process.on("disconnect", () => process.exit(0)); // the benchmark went away
  process.on("message", (m: { cmd: string }) => {
    if (m.cmd === "change") {
      catalog.publish(catalog.current().containers.slice(1));
      send({ cmd: "changed" });
    } else if (m.cmd === "stats") {
      (globalThis as { gc?: () => void }).gc?.();
      const mem = process.memoryUsage();
      send({ cmd: "stats", rss: mem.rss, heap: mem.heapUsed + mem.external, waiters: catalog.waiterCount(), connections: (server as { _connections?: number })._connections });
    } else if (m.cmd === "exit") {
      process.exit(0);
    }
  });
  send({ cmd: "ready", token, ts: catalog.current().ts, bytes: new RevisionBodies(catalog.current()).services(false).length });
}

void main();
