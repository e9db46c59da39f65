// The daemon: load the config, start the components, serve until a stop, then drain and stop.
import { ensureDir, removeStaleTemps } from "../store/index.js";
import { configPath, loadConfig, ConfigError, type Config, type DynamicConfig } from "../config/index.js";
import { DockerClient } from "../docker/index.js";
import { Catalog } from "../catalog/index.js";
import { log, setLogFormat, setLogLevel, type Level, type LogFormat } from "../log.js";
import { VERSION } from "../version.js";
import type { Component, DaemonContext } from "../component/index.js";
import { createComponents } from "./components.js";
import { Reloader } from "./reload.js";
import { Handover, stopAccepting } from "./handover.js";
import { unavailableListeners } from "./unavailable.js";
import { checkMovedListeners } from "./bind-check.js";
import { SystemdNotifier } from "./notify.js";

/** Run the daemon in the foreground until SIGTERM/SIGINT or a stop request. Resolves with the exit code. */
export async function runDaemon(configFlag: string | undefined): Promise<number> {
  const { path, explicit } = configPath(configFlag);
  let config: Config;
  try {
    config = loadConfig(path, explicit);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const e of err.errors) log.error("config error", { error: e });
    return 1;
  }
  setLogLevel(config.dynamic.log_level as Level);
  setLogFormat(config.dynamic.log_format as LogFormat);
  await ensureDir(config.static.state_dir, 0o700);
  // temps of atomic writes a crash cut short (kill -9 between write and rename)
  // (before any component writes there: a temp with our own pid is an earlier process's)
  const stale = await removeStaleTemps(config.static.state_dir);
  if (stale.removed.length > 0) log.info("removed stale temp files", { dir: config.static.state_dir, count: stale.removed.length });
  if (!stale.complete) log.debug("stale temp search bounded", { dir: config.static.state_dir });

  const docker = new DockerClient(config.static.docker_socket);
  const components: Component[] = [];
  const reloader = new Reloader(
    path,
    explicit,
    config,
    async (next) => (await Promise.all(components.map((c) => c.prepareReload?.(next) ?? []))).flat(),
    process.env,
    (changed, next) => checkMovedListeners(changed, next, components),
  );
  // systemd (Type=notify): READY=1 once every listener is bound, RELOADING=1/READY=1 around
  // each reload, STOPPING=1 at the stop
  const notifier = new SystemdNotifier();
  reloader.around(() => void notifier.reloading(), () => void notifier.send("READY=1"));
  const catalog = new Catalog({ docker, stateDir: config.static.state_dir, dynamic: () => reloader.dynamic });
  let stopRequested: ((graceful: boolean) => void) | undefined;
  const stopped = new Promise<boolean>((resolve) => (stopRequested = resolve));
  let drainedResolve: () => void = () => {};
  const drained = new Promise<void>((resolve) => (drainedResolve = resolve));

  const handover = new Handover();
  const ctx: DaemonContext = {
    config,
    dynamic: () => reloader.dynamic,
    docker,
    catalog,
    startedAt: performance.now(),
    components,
    requestStop: (graceful) => {
      stopRequested?.(graceful);
      return drained;
    },
    reload: () => reloader.reload(),
    inherit: handover.inherit,
    handedOver: handover.handedOver,
    launchSuccessor: () => handover.launchSuccessor(components),
    stopAccepting: () => stopAccepting(components),
  };
  reloader.onSwap((dyn: DynamicConfig) => {
    setLogLevel(dyn.log_level as Level);
    setLogFormat(dyn.log_format as LogFormat);
    for (const c of components) c.reloaded?.(dyn);
  });
  components.push(...createComponents(ctx));

  // Signals are handled from here on (before the "starting" line, so whoever sees it may signal):
  // a stop during start-up (Docker slow to answer) is clean too.
  const onSignal = (signal: NodeJS.Signals) => {
    log.info("signal received, stopping", { signal });
    stopRequested?.(true);
  };
  const onHup = () => {
    log.info("SIGHUP received, reloading");
    void reloader.reload();
  };
  // logrotate's convention: the access log file was renamed, write a new one
  const onUsr1 = () => {
    log.info("SIGUSR1 received, reopening log files");
    for (const c of components) c.reopenLogs?.();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  process.on("SIGHUP", onHup);
  process.on("SIGUSR1", onUsr1);
  log.info("starting", { version: VERSION, config: config.file || "(defaults)", pid: process.pid });
  await Promise.race([catalog.start(), stopped]); // a hung Docker must not delay a stop
  const failures: string[] = [];
  for (const c of components) await c.start().catch((err: Error) => failures.push(`${c.name}: ${err.message}`));
  // Every listener the operator configured must be up (as nginx: no half-started daemon that
  // looks healthy to systemd); the cause goes on one line, the exit status is 1.
  failures.push(...unavailableListeners(components));
  let exitCode = 0;
  if (failures.length) {
    log.error("cannot start", { cause: failures.join("; ") });
    exitCode = 1;
  }
  // a new master (UPGRADE_MASTER) that could not take every socket over gives up: the old one keeps serving
  if (!(await handover.reportReady(failures)) || failures.length) stopRequested?.(false);
  if (!failures.length) {
    const summary = components.map((c) => `${c.name}:${String(c.status().state ?? "?")}`).join(",");
    log.info("ready", { components: summary });
    void notifier.send("READY=1", `STATUS=ready: ${summary}`);
  }

  // Signal handlers do not keep node's loop alive: with every listener disabled or unavailable
  // the daemon would exit silently. This timer holds it until a stop is requested.
  const keepAlive = setInterval(() => {}, 1 << 30);
  const graceful = await stopped;
  clearInterval(keepAlive);
  const stopping = notifier.send("STOPPING=1");
  const deadline = performance.now() + (graceful ? reloader.dynamic.shutdown_timeout_secs * 1000 : 0);
  // Interfaces first (all at once, each draining until the deadline), then the stopLast ones,
  // then the catalog they read from.
  await Promise.allSettled(components.filter((c) => !c.stopLast).map((c) => c.stop(graceful, deadline)));
  drainedResolve();
  await Promise.allSettled(components.filter((c) => c.stopLast).map((c) => c.stop(graceful, deadline)));
  await catalog.stop();
  docker.close();
  process.off("SIGTERM", onSignal);
  process.off("SIGINT", onSignal);
  process.off("SIGHUP", onHup);
  process.off("SIGUSR1", onUsr1);
  await stopping; // (sent long ago: the order of systemd's messages is kept)
  log.info("stopped");
  return exitCode;
}
