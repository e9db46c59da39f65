// What the query-socket commands share: finding the config, the socket and a token.
import { configPath, loadConfig, ConfigError, type Config } from "../config/index.js";
import { readTokens, TokenStoreError } from "../tokens/index.js";
import { CommandError } from "./command.js";

export function loadCliConfig(flag: string | undefined): Config {
  const { path, explicit } = configPath(flag);
  try {
    return loadConfig(path, explicit);
  } catch (err) {
    if (err instanceof ConfigError) throw new CommandError(`config: ${err.errors[0]}${err.errors.length > 1 ? ` (and ${err.errors.length - 1} more)` : ""}`);
    throw err;
  }
}

/** --token, else $STEVEDORE_QUERY_TOKEN, else any deployment's token from the tokens file (root). */
export async function findToken(flag: string | undefined, config: Config): Promise<string> {
  if (flag) return flag;
  const env = process.env.STEVEDORE_QUERY_TOKEN;
  if (env) return env;
  const hint = "pass --token, set STEVEDORE_QUERY_TOKEN, or create one with 'stevedore token get <deployment>'";
  let tokens;
  try {
    tokens = await readTokens(config.static.state_dir);
  } catch (err) {
    if (err instanceof TokenStoreError) throw new CommandError(`no query token: ${err.message}; ${hint}`);
    throw err;
  }
  const first = [...tokens.keys()].sort()[0];
  if (first === undefined) throw new CommandError(`no query token: the tokens file has none; ${hint}`);
  return tokens.get(first)!.token;
}

export function querySocket(config: Config, flag?: string): string {
  if (flag) return flag;
  const path = config.static.query_socket_path;
  if (path === "") throw new CommandError("the query socket is disabled (query_socket_path is empty): set it, or pass --socket");
  return path;
}

export const QUERY_OPTIONS = {
  json: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  token: { type: "string" },
  config: { type: "string", short: "c" },
  socket: { type: "string" },
} as const;

export const QUERY_OPTIONS_HELP = `  --json           print the socket's JSON answer
  --token TOKEN    a query token (default: $STEVEDORE_QUERY_TOKEN, else, as root,
                   any deployment's token from the tokens file)
  -q, --quiet      print ids only, one a line (listings)
  --config FILE    config file (for query_socket_path and state_dir)
  --socket PATH    the query socket (default: query_socket_path of the config)`;
