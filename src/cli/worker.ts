// `stevedore worker`: run the reference worker in the foreground until shut down.
import { DEFAULT_INTERVALS, TASK_TYPES, Worker, WorkerFatal, defaultNickname, defaultShamanCache, defaultStateFile, intervalsFromEnv, normalizeManagerUrl } from "../worker/index.js";
import { CommandError, UsageError, parse, type Command } from "./command.js";
import { readCaFile } from "./manager-client.js";

const USAGE = `usage: stevedore worker --manager URL [--task-types TYPES] [--nickname NAME]
                        [--state FILE] [--docker-socket PATH] [--shaman-cache DIR]
                        [--cacert FILE]

Runs a worker of the manager's task farm in the foreground: registers once
(the worker id and a random secret are kept in the state file, mode 0600),
signs on, asks for tasks every ${DEFAULT_INTERVALS.idleMs / 1000} s while idle, runs their commands, reports
progress and log lines, and signs off on SIGTERM/SIGINT or a shutdown request.
  --manager URL          the manager, e.g. http://127.0.0.1:8083 (required)
  --task-types TYPES     comma-separated, from ${TASK_TYPES.join(",")} (default: all);
                         also the commands this worker agrees to run
  --nickname NAME        shown in 'stevedore workers' (default: the host name)
  --state FILE           registration file (default: $STEVEDORE_WORKER_STATE, else
                         /var/lib/stevedore/worker.json as root, else
                         $XDG_STATE_HOME or ~/.local/state, /stevedore/worker.json)
  --docker-socket PATH   Docker for docker-run (default: DOCKER_HOST unix://..., else
                         /run/docker.sock)
  --shaman-cache DIR     files of Shaman checkouts, kept by checksum (default:
                         shaman-cache beside the state file)
  --cacert FILE          PEM certificates to trust for an https:// manager
                         instead of the system's (a private CA, a self-signed
                         manager_tls_cert)
Commands: echo {message}, sleep {time_in_seconds}, exec {cmd: [...], cwd?, env?,
checkout?} (no shell; with checkout: ID it runs in a fresh copy of that Shaman
checkout, fetched from the manager through the cache), docker-run {image, cmd?, env?}. With manager_registration_secret set
on the manager, put the secret in $STEVEDORE_WORKER_REGISTRATION_SECRET.
On SIGTERM/SIGINT the running task is stopped and handed back (the sign-off
re-queues it); a second signal exits at once with status 1. Exit 0 after signing
off, 1 when the manager refuses the registration or the state file is unusable.`;

export const workerCommand: Command = {
  name: "worker",
  summary: "run a task-farm worker against a manager",
  usage: USAGE,
  async run(args) {
    const { values, positionals } = parse(args, {
      manager: { type: "string" },
      "task-types": { type: "string" },
      nickname: { type: "string" },
      state: { type: "string" },
      "docker-socket": { type: "string" },
      "shaman-cache": { type: "string" },
      cacert: { type: "string" },
    });
    if (positionals.length) throw new UsageError("worker takes no arguments");
    if (!values.manager) throw new UsageError("worker needs --manager URL");
    let manager: string;
    try {
      manager = normalizeManagerUrl(values.manager);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const taskTypes = parseTaskTypes(values["task-types"]);
    const ca = values.cacert === undefined ? undefined : readCaFile(values.cacert);
    let intervals;
    try {
      intervals = intervalsFromEnv();
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    // read once and removed, so that exec commands never inherit the secret
    const registrationSecret = process.env.STEVEDORE_WORKER_REGISTRATION_SECRET || undefined;
    delete process.env.STEVEDORE_WORKER_REGISTRATION_SECRET;
    const dockerHost = process.env.DOCKER_HOST?.startsWith("unix://") ? process.env.DOCKER_HOST.slice(7) : undefined;
    const stateFile = values.state || defaultStateFile();
    const worker = new Worker({
      manager,
      taskTypes,
      nickname: values.nickname || defaultNickname(),
      stateFile,
      registrationSecret,
      dockerSocket: values["docker-socket"] || dockerHost || "/run/docker.sock",
      intervals,
      shamanCache: values["shaman-cache"] || defaultShamanCache(stateFile),
      ca,
    });
    const onSignal = (sig: NodeJS.Signals) => {
      if (signalled) {
        process.stderr.write(`stevedore: ${sig} again: exiting without signing off\n`);
        process.exit(1);
      }
      signalled = true;
      worker.stop();
      // the stop is bounded (command grace + sign-off); past that, exit anyway
      setTimeout(() => {
        process.stderr.write("stevedore: shutdown took too long; exiting\n");
        process.exit(1);
      }, intervals.killGraceMs + intervals.signOffTimeoutMs + 5_000).unref();
    };
    let signalled = false;
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    try {
      return await worker.run();
    } catch (err) {
      if (err instanceof WorkerFatal) throw new CommandError(err.message);
      throw new CommandError((err as Error).message);
    } finally {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
    }
  },
};

function parseTaskTypes(raw: string | undefined): string[] {
  if (raw === undefined) return [...TASK_TYPES];
  const types = [...new Set(raw.split(",").map((t) => t.trim()).filter(Boolean))];
  if (!types.length) throw new UsageError("--task-types needs at least one type");
  const unknown = types.filter((t) => !(TASK_TYPES as readonly string[]).includes(t));
  if (unknown.length) throw new UsageError(`unknown task type ${unknown.join(", ")}: use ${TASK_TYPES.join(", ")}`);
  return types;
}
