// `stevedore daemon`: run the daemon in the foreground.
import { runDaemon } from "../daemon/index.js";
import { parse, type Command } from "./command.js";

export const daemonCommand: Command = {
  name: "daemon",
  summary: "run the daemon in the foreground",
  usage: `usage: stevedore daemon [--config FILE]

Runs stevedore in the foreground (systemd runs this). The config file is FILE,
else $STEVEDORE_CONFIG, else /etc/stevedore/stevedore.conf (a missing default
file means all defaults). SIGHUP reloads the config; SIGTERM/SIGINT stop.`,
  async run(args) {
    const { values } = parse(args, { config: { type: "string", short: "c" } }, false);
    return runDaemon(values.config);
  },
};
