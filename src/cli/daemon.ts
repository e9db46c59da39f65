// `stevedore daemon`: run the daemon in the foreground.
import { runDaemon } from "../daemon/index.js";
import { parse, type Command } from "./command.js";

export const daemonCommand: Command = {
  name: "daemon",
  summary: "run the daemon in the foreground",
  usage: `usage: stevedore daemon [--config FILE]

Runs stevedore in the foreground (systemd runs this). The config file is FILE,
else $STEVEDORE_CONFIG, else /etc/stevedore/stevedore.conf (a missing default
file means all defaults). SIGHUP reloads the config; SIGTERM/SIGINT stop.
Exits 1, with the cause on one line, when the config does not load or a
configured listener cannot bind (port in use, permission, a socket path taken).
Under systemd (NOTIFY_SOCKET) it reports READY=1 once every listener is bound.`,
  async run(args) {
    const { values } = parse(args, { config: { type: "string", short: "c" } }, false);
    return runDaemon(values.config);
  },
};
