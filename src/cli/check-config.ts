// `stevedore check-config`: load and validate a config file without starting the daemon.
import { configPath, loadConfig, ConfigError } from "../config/index.js";
import { parse, type Command } from "./command.js";

export const checkConfigCommand: Command = {
  name: "check-config",
  summary: "validate the config file and list every error",
  usage: `usage: stevedore check-config [--config FILE]

Reads the config file (FILE, else $STEVEDORE_CONFIG, else /etc/stevedore/stevedore.conf)
the way the daemon does and validates every key. Prints "ok" and exits 0 when it is
valid; otherwise prints every error (file:line: message), one per line on stderr,
and exits 1. Certificate files named by the config are loaded by the daemon only.`,
  async run(args) {
    const { values } = parse(args, { config: { type: "string", short: "c" } }, false);
    const { path, explicit } = configPath(values.config);
    try {
      loadConfig(path, explicit);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      process.stderr.write(err.errors.map((e) => `stevedore: ${e}\n`).join(""));
      return 1;
    }
    process.stdout.write("ok\n");
    return 0;
  },
};
