// The query socket as a daemon component: tokens registry + HTTP server on the Unix path.
import { listenUnix } from "../http/index.js";
import { log } from "../log.js";
import { untilDeadline } from "../deadline.js";
import type { Component, DaemonContext } from "../component/index.js";
import { TokenRegistry, tokensPath } from "../tokens/index.js";
import { QueryServer } from "./server.js";

type State = "starting" | "listening" | "disabled" | "unavailable" | "stopped";

export function queryComponent(ctx: DaemonContext): Component {
  const { query_socket_path: path, query_socket_mode: modeText, query_max_connections, state_dir } = ctx.config.static;
  const tokens = new TokenRegistry(tokensPath(state_dir), () => ctx.catalog.refreshRegistered());
  const qs = new QueryServer({
    catalog: ctx.catalog,
    lookupToken: (t) => tokens.lookup(t),
    tokensGeneration: () => tokens.generation,
    staleAfterSecs: () => ctx.dynamic().catalog_stale_after_secs,
    pollDefaultTimeoutSecs: () => ctx.dynamic().poll_default_timeout_secs,
    maxConnections: query_max_connections,
  });
  let state: State = path === "" ? "disabled" : "starting";
  let reason = "";

  return {
    name: "query",
    async start() {
      // deployments with a token are registered (listed in /deployments) even without containers
      ctx.catalog.addRegisteredSource("tokens", () => tokens.deployments());
      tokens.start();
      ctx.catalog.refreshRegistered();
      if (path === "") return;
      const r = await listenUnix(qs.server, path, parseInt(modeText, 8), "query", ctx);
      if (r.ok) {
        state = "listening";
        log.info("query socket listening", { path, mode: modeText });
      } else {
        state = "unavailable";
        reason = r.message;
      }
    },
    async stop(graceful, deadline) {
      tokens.stop();
      if (state !== "listening") {
        if (state !== "disabled") state = "stopped";
        return;
      }
      // answer every pending poll `changed:true` (closing its connection once the answer is
      // sent) before the socket closes; idle connections close at once
      qs.markStopping();
      ctx.catalog.releaseWaiters();
      await untilDeadline(qs.drained(), graceful ? deadline : performance.now() + 1000);
      const closed = new Promise<void>((resolve) => qs.server.close(() => resolve()));
      qs.closeAllConnections();
      await closed;
      state = "stopped";
    },
    listeners() {
      return new Map(state === "listening" ? [["query", { server: qs.server, address: path }]] : []);
    },
    status() {
      return {
        state,
        address: path || undefined,
        ...(reason ? { reason } : {}),
        waiters: qs.pendingPolls,
        tokens: tokens.size,
      };
    },
  };
}
