// `stevedore reload`: reload the config over the admin socket.
import { ADMIN_OPTIONS, adminSocketPath, callAdmin } from "./admin-socket.js";
import { CommandError, parse, type Command } from "./command.js";

/** Exit status of a reload that left static keys waiting for a restart (stevedore(8), EXIT STATUS). */
export const RESTART_REQUIRED = 3;

export const reloadCommand: Command = {
  name: "reload",
  summary: "reload the daemon's config file (admin socket)",
  usage: `usage: stevedore reload [--config FILE] [--socket PATH]

Asks the running daemon over its admin socket to re-read its config file (the
same as SIGHUP, but with an answer). Prints "reloaded" and exits 0, or prints
every error and exits 1; a failed reload leaves the running config unchanged.
When static keys changed (listener addresses, paths...: they apply at the next
restart), prints "reloaded; restart required for: KEY, ..." and exits 3.`,
  async run(args) {
    const { values } = parse(args, ADMIN_OPTIONS, false);
    const reply = await callAdmin(adminSocketPath(values), "reload");
    if (reply.status !== "ok") throw new CommandError(`reload failed: ${String(reply.message ?? "unknown error")}`);
    const waiting = Array.isArray(reply.restart_required) ? reply.restart_required.map(String) : [];
    if (!waiting.length) {
      process.stdout.write("reloaded\n");
      return 0;
    }
    process.stdout.write(`reloaded; restart required for: ${waiting.join(", ")}\n`);
    return RESTART_REQUIRED;
  },
};
