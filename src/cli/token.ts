// `stevedore token`: query tokens in the state directory (get, regenerate, revoke, list).
import { getToken, listTokens, regenerateToken, revokeToken, TokenStoreError, LockTimeout } from "../tokens/index.js";
import { CommandError, UsageError, parse, table, type Command } from "./command.js";
import { loadCliConfig } from "./query-common.js";

const USAGE = `usage: stevedore token get|regenerate|revoke DEPLOYMENT [--config FILE]
       stevedore token list [--json|-q] [--config FILE]

Query socket tokens, one per deployment, kept in STATE_DIR/tokens.json (0600).
Works whether or not the daemon runs; a running daemon applies changes within 1 s.
  get DEPLOYMENT         print the deployment's token, making one if it has none
  regenerate DEPLOYMENT  make a new token and print it (the old one stops working)
  revoke DEPLOYMENT      remove the token (exit 1 if there was none)
  list                   the deployments that have a token (never the tokens)
  --json                 (list) JSON output
  -q, --quiet            (list) deployment names only, one a line
  --config FILE          config file (for state_dir; $STEVEDORE_STATE_DIR overrides)`;

export const tokenCommand: Command = {
  name: "token",
  summary: "manage query socket tokens (get, regenerate, revoke, list)",
  usage: USAGE,
  async run(args) {
    const { values, positionals } = parse(args, { json: { type: "boolean" }, quiet: { type: "boolean", short: "q" }, config: { type: "string", short: "c" } });
    const [action, name, ...extra] = positionals;
    if (extra.length) throw new UsageError("too many arguments");
    if (action === undefined) throw new UsageError("token needs an action: get, regenerate, revoke or list");
    const stateDir = loadCliConfig(values.config).static.state_dir;
    try {
      if (action === "list") {
        if (name !== undefined) throw new UsageError("token list takes no deployment");
        const list = await listTokens(stateDir);
        if (values.quiet) process.stdout.write(list.map((t) => t.deployment + "\n").join(""));
        else if (values.json) process.stdout.write(JSON.stringify(list, null, 2) + "\n");
        else process.stdout.write(table(["DEPLOYMENT", "CREATED"], list.map((t) => [t.deployment, t.created])));
        return 0;
      }
      if (!["get", "regenerate", "revoke"].includes(action)) throw new UsageError(`unknown token action: ${action}`);
      if (name === undefined) throw new UsageError(`token ${action} needs a deployment name`);
      if (values.json || values.quiet) throw new UsageError(`--${values.json ? "json" : "quiet"} applies to token list only`);
      if (action === "get") process.stdout.write((await getToken(stateDir, name)) + "\n");
      else if (action === "regenerate") process.stdout.write((await regenerateToken(stateDir, name)) + "\n");
      else if (!(await revokeToken(stateDir, name))) throw new CommandError(`deployment ${name} has no token`);
      return 0;
    } catch (err) {
      if (err instanceof TokenStoreError || err instanceof LockTimeout) throw new CommandError(err.message);
      throw err;
    }
  },
};
