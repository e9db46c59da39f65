// `stevedore admin COMMAND`: send one command to the admin socket and print its JSON answer.
import { ADMIN_OPTIONS, adminSocketPath, callAdmin } from "./admin-socket.js";
import { CommandError, UsageError, parse, table, type Command } from "./command.js";

export const adminCommand: Command = {
  name: "admin",
  summary: "send one command to the admin socket (help, config, status, reload)",
  usage: `usage: stevedore admin help|config|status|reload [--json] [--config FILE] [--socket PATH]

Sends one command to the daemon's admin socket and prints the answer:
  help     the socket's commands (a table; --json: the answer as is)
  config   the effective config in force (every key, defaults filled in) as JSON,
           secrets redacted ("[redacted]"): registration secrets, tokens, JWT
           secrets, inline private keys; paths to key files are shown
  status   the answer of 'stevedore status --json'
  reload   the answer of a reload
Exit 0 when the daemon answered "ok", 1 when it answered an error.`,
  async run(args) {
    const { values, positionals } = parse(args, { ...ADMIN_OPTIONS, json: { type: "boolean" } });
    if (positionals.length !== 1) throw new UsageError(positionals.length ? "admin takes one command" : "admin needs a command: help, config, status or reload");
    const command = positionals[0]!;
    if (!/^[a-z]+$/.test(command)) throw new UsageError(`invalid admin command ${JSON.stringify(command)}`);
    const reply = await callAdmin(adminSocketPath(values), command);
    if (reply.status !== "ok") throw new CommandError(`admin ${command} failed: ${String(reply.message ?? "unknown error")}`);
    if (command === "help" && !values.json) {
      const commands = (reply.commands ?? {}) as Record<string, string>;
      process.stdout.write(table(["COMMAND", "DESCRIPTION"], Object.entries(commands)));
    } else process.stdout.write(JSON.stringify(reply, null, 2) + "\n");
    return 0;
  },
};
