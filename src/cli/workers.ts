// `stevedore workers ...`: the manager's workers, and status requests to them (sleep, wake, shutdown).
import { UsageError, parse, table, type Command } from "./command.js";
import { MANAGER_OPTIONS, MANAGER_OPTIONS_HELP, printJson } from "./jobs.js";
import { callOk, managerTarget } from "./manager-client.js";
import { loadCliConfig } from "./query-common.js";

interface WorkerJson {
  _id: string;
  nickname: string;
  address: string;
  status: string;
  platform: string;
  current_task: string;
  last_activity: string;
  supported_task_types: string[];
  software: string;
}

const REQUESTS: Record<string, string> = { sleep: "asleep", wake: "awake", shutdown: "shutdown" };

export const workersCommand: Command = {
  name: "workers",
  summary: "list task-farm workers; ask one to sleep, wake or shut down (manager)",
  usage: `usage: stevedore workers [--json|-q]
       stevedore workers sleep|wake|shutdown ID [--lazy]
   (each also takes [--manager URL] [--config FILE])

Lists the workers registered with the manager (GET /api/workers), or asks one
to change status (POST /api/workers/ID/status-request): sleep (asleep: it takes
no tasks until woken), wake (awake) or shutdown (it signs off and exits).
  --lazy           let the worker finish its current task first (default: the
                   running task is stopped and handed back at once)
  --json           (list) print the manager's JSON
  -q, --quiet      (list) worker ids only, one a line
${MANAGER_OPTIONS_HELP}`,
  async run(args) {
    const { values, positionals } = parse(args, { ...MANAGER_OPTIONS, json: { type: "boolean" }, quiet: { type: "boolean", short: "q" }, lazy: { type: "boolean" } });
    const [action, id, ...extra] = positionals;
    if (extra.length) throw new UsageError("too many arguments");
    const target = () => managerTarget(values.manager, loadCliConfig(values.config), process.env, values.cacert);
    if (action === undefined) {
      if (values.lazy) throw new UsageError("--lazy applies to sleep, wake and shutdown only");
      const body = (await callOk(target(), "GET", "/api/workers")).body as { workers: WorkerJson[] };
      if (values.quiet) return process.stdout.write((body?.workers ?? []).map((w) => w._id + "\n").join("")), 0;
      if (values.json) return printJson(body), 0;
      const rows = (body?.workers ?? []).map((w) => [
        w._id, w.nickname, w.status, w.address || "-", w.current_task || "-", (w.supported_task_types ?? []).join(","), w.last_activity || "-",
      ]);
      process.stdout.write(table(["ID", "NICKNAME", "STATUS", "ADDRESS", "TASK", "TYPES", "LAST ACTIVITY"], rows));
      return 0;
    }
    const status = REQUESTS[action];
    if (!status) throw new UsageError(`unknown workers action: ${action} (use sleep, wake or shutdown)`);
    if (id === undefined) throw new UsageError(`workers ${action} needs a worker id`);
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) throw new UsageError(`invalid worker id ${JSON.stringify(id)}`);
    if (values.json || values.quiet) throw new UsageError(`--${values.json ? "json" : "quiet"} applies to the worker list only`);
    await callOk(target(), "POST", `/api/workers/${encodeURIComponent(id)}/status-request`, { status, lazy: values.lazy === true }, `no worker ${id}`);
    process.stdout.write(`worker ${id}: ${status} requested${values.lazy ? " (lazy)" : ""}\n`);
    return 0;
  },
};
