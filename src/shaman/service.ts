// Shaman on the manager listener: opens the store under <state_dir>/shaman (cleaning up after a
// crash), serves its routes, and runs the GC every shaman_gc_period_secs until stopped.
import type { DaemonContext } from "../component/index.js";
import { HttpError, type ApiRoute } from "../http/index.js";
import { ShamanStore, shamanRoot, type GcResult } from "../store/index.js";
import { log } from "../log.js";
import { shamanRoutes } from "./routes.js";

/** the first scheduled GC runs this soon after start (or after one period when that is shorter),
 *  so a daemon restarted more often than the period still collects */
const FIRST_GC_MAX_MS = 3600_000;

/** What the manager component calls (it knows the shape, not this module). */
export interface ShamanService {
  readonly name: "shaman";
  /** open the store and give the routes to serve under the manager's user auth */
  start(): Promise<ApiRoute[]>;
  /** stop the GC timer, end a GC under way */
  stop(): Promise<void>;
  status(): Record<string, unknown>;
}

export function shamanService(ctx: DaemonContext): ShamanService {
  let store: ShamanStore | undefined;
  let failure = "";
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const abort = new AbortController();
  let running: Promise<unknown> | undefined;
  let last: (GcResult & { finished: string }) | undefined;

  async function gc(dryRun: boolean): Promise<GcResult> {
    if (!store) throw new HttpError(503, `shaman unavailable: ${failure}`);
    const maxAgeMs = ctx.dynamic().shaman_gc_max_age_secs * 1000;
    const run = store.gc({ maxAgeMs, dryRun, signal: abort.signal });
    running = run.catch(() => {});
    const r = await run;
    if (!dryRun) last = { ...r, finished: new Date().toISOString() };
    log.info(dryRun ? "shaman: GC dry run" : "shaman: GC done", { scanned: r.scanned, linked: r.linked, freed_blobs: r.freed_blobs, freed_bytes: r.freed_bytes, ms: r.ms });
    return r;
  }

  function schedule(ms: number): void {
    if (stopped) return;
    timer = setTimeout(() => {
      gc(false)
        .catch((err: Error) => abort.signal.aborted || log.error("shaman: GC failed", { error: err.message }))
        .finally(() => schedule(ctx.dynamic().shaman_gc_period_secs * 1000));
    }, ms).unref();
  }

  return {
    name: "shaman",
    async start() {
      try {
        store = await ShamanStore.open(shamanRoot(ctx.config.static.state_dir));
      } catch (err) {
        failure = (err as Error).message;
        log.error("shaman unavailable", { error: failure });
        const refuse = () => {
          throw new HttpError(503, `shaman unavailable: ${failure}`);
        };
        return ["POST", "OPTIONS", "GET"].map((method) => ({ method, path: "/files/:checksum/:filesize", handler: refuse }))
          .concat([{ method: "POST", path: "/checkout/requirements", handler: refuse }, { method: "POST", path: "/checkout/create/:checkoutID", handler: refuse }, { method: "GET", path: "/checkout/files/:checkoutID", handler: refuse }])
          .concat([{ method: "GET", path: "/shaman/status", handler: refuse }, { method: "POST", path: "/shaman/gc", handler: refuse }]);
      }
      schedule(Math.min(FIRST_GC_MAX_MS, ctx.dynamic().shaman_gc_period_secs * 1000));
      const opened = store;
      return shamanRoutes({ store: opened, maxFileSize: () => ctx.dynamic().shaman_max_file_size, gc, lastGc: () => last });
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      abort.abort();
      await running;
    },
    status() {
      if (!store) return { state: failure ? "unavailable" : "stopped", ...(failure ? { reason: failure } : {}) };
      return { uploads_in_flight: store.uploadsInFlight, ...(last ? { last_gc: last.finished } : {}) };
    },
  };
}
