// `stevedore core key`: core API helpers (the core key).
import { keyPath, readKey } from "../core/index.js";
import { lenientValue } from "./admin-socket.js";
import { describeError, CommandError, UsageError, parse, type Command } from "./command.js";

export const coreCommand: Command = {
  name: "core",
  summary: "core API helpers (core key)",
  usage: `usage: stevedore core key [--config FILE]

Prints the core key (the X-Duxcore-CoreKey header value) in base64: the
contents of core_key_file, default <state_dir>/corekey.bin. The daemon makes
the key at its first start; run this as a user that may read the file.`,
  async run(args) {
    const { values, positionals } = parse(args, { config: { type: "string", short: "c" } });
    if (positionals.length !== 1 || positionals[0] !== "key") throw new UsageError(positionals.length ? `unknown core subcommand: ${positionals.join(" ")}` : "core needs a subcommand: key");
    // lenient, as status: a config with an unrelated error still names the key file
    const file = keyPath({ core_key_file: lenientValue(values.config, "core_key_file"), state_dir: lenientValue(values.config, "state_dir") });
    let key: Buffer | null;
    try {
      key = await readKey(file);
    } catch (err) {
      throw new CommandError(`cannot read the core key: ${describeError(err)}`);
    }
    if (!key) throw new CommandError(`no core key at ${file} (the daemon creates it at its first start with the core API enabled)`);
    process.stdout.write(key.toString("base64") + "\n");
    return 0;
  },
};
