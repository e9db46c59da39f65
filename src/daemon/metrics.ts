// The metrics listener (metrics_listen, off by default): GET /metrics in the Prometheus text
// format, on our HTTP/1.1 server side. Also registers the series only the daemon can see.
import { createServer, type Server } from "node:net";
import type { Component, DaemonContext, ListenerMap } from "../component/index.js";
import { ClientConnSet, describeBindError, httpDate, listen, type Incoming } from "../http/index.js";
import { CONTENT_TYPE, encode, metrics, registerProcessMetrics } from "../metrics/index.js";
import { parseHostPort } from "../base/index.js";
import { log } from "../log.js";

const SETTINGS = { maxHeaderBytes: 16 * 1024, idleMs: 30_000, headMs: 10_000, answerHalfClosed: true };

function text(inc: Incoming, status: number, reason: string, body: string, extra: string[] = []): void {
  const buf = Buffer.from(body);
  inc.answer(status, reason, ["Date", httpDate(), "Content-Type", "text/plain; charset=utf-8", "Content-Length", String(buf.length), ...extra], buf);
}

function serve(inc: Incoming): void {
  const path = inc.head.url.split("?", 1)[0];
  if (path !== "/metrics") return text(inc, 404, "Not Found", "404 Not Found: try /metrics\n");
  if (inc.head.method !== "GET" && inc.head.method !== "HEAD") return text(inc, 405, "Method Not Allowed", "405 Method Not Allowed\n", ["Allow", "GET, HEAD"]);
  const body = Buffer.from(encode(metrics));
  inc.answer(200, "OK", ["Date", httpDate(), "Content-Type", CONTENT_TYPE, "Content-Length", String(body.length), "Cache-Control", "no-store"], body);
}

/** Series of the daemon's own view: catalog revision, query pollers, process figures. */
function registerDaemonSeries(ctx: DaemonContext): void {
  registerProcessMetrics(metrics);
  metrics.gauge("stevedore_catalog_revision", "The catalog's current revision number.", [], () => [[[], ctx.catalog.current().seq]]);
  metrics.gauge("stevedore_query_pollers", "Long-poll requests of the query socket waiting for a new revision.", [], () => [[[], ctx.catalog.waiterCount()]]);
  metrics.gauge("stevedore_catalog_docker_up", "1 when Docker answers the catalog.", [], () => [[[], ctx.catalog.dockerState() === "ok" ? 1 : 0]]);
}

export function metricsComponent(ctx: DaemonContext): Component {
  const address = ctx.config.static.metrics_listen;
  let server: Server | undefined;
  let state: "disabled" | "listening" | "unavailable" | "stopped" = "disabled";
  let error: string | undefined;
  const conns = new ClientConnSet(() => SETTINGS, { request: serve, refuse: (inc, status) => text(inc, status, "Error", `${status}\n`) });
  registerDaemonSeries(ctx);
  return {
    name: "metrics",
    async start() {
      if (!address) return;
      const hp = parseHostPort(address);
      const s = createServer({ allowHalfOpen: true }, conns.accept);
      const err = hp
        ? await ctx.inherit(s, "metrics", address).then((inherited) => (inherited ? undefined : listen(s, { port: hp.port, host: hp.host }))).then(() => undefined, (e: Error) => e)
        : new Error("bad address");
      if (err) {
        state = "unavailable";
        // as the other listeners say it: "127.0.0.1:9273: address already in use", never an errno
        error = `${address}: ${describeBindError(err)}`;
        log.error("metrics listener unavailable", { address, error: describeBindError(err) });
        return;
      }
      server = s;
      state = "listening";
      log.info("metrics listening", { address });
    },
    async stop() {
      server?.close();
      conns.stop();
      conns.closeAll();
      if (state === "listening") state = "stopped";
    },
    status: () => ({ state, address: address || undefined, error }),
    listeners(): ListenerMap {
      return new Map(server && state === "listening" ? [["metrics", { server, address }]] : []);
    },
  };
}
