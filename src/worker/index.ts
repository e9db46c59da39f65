// The reference worker (`stevedore worker`): a client program of the manager's worker protocol.
// It imports only the floor (docker, http, store, config, log, base), never an interface.
export { Worker, WorkerFatal, parseTask, hs256Token } from "./worker.js";
export {
  DEFAULT_INTERVALS, INTERVAL_ENV, TASK_TYPES, defaultNickname, defaultShamanCache, defaultStateFile, intervalsFromEnv, normalizeManagerUrl,
  type Intervals, type WorkerOptions,
} from "./options.js";
export { loadRegistration, saveRegistration, type Registration } from "./state.js";
export { TaskReporter, logLine } from "./reporter.js";
export { LogDemuxer, taskLabels, containerName } from "./docker-run.js";
export { LineBuffer } from "./commands.js";
export { Backoff } from "./timing.js";
