// Which admin socket the CLI talks to: --socket, else the config's admin_socket_path.
import { configPath, loadConfig, readConfigText, ConfigError, KEYS, type Key, type Values } from "../config/index.js";
import { parseToml } from "../config/index.js";
import { adminCall } from "../admin/index.js";
import { CommandError } from "./command.js";

export const ADMIN_OPTIONS = {
  config: { type: "string", short: "c" },
  socket: { type: "string" },
} as const;

/** The socket path. A config that does not validate (the reason one runs `reload`) still names
 *  its socket: fall back to a lenient read of admin_socket_path, then to the default. */
export function adminSocketPath(flags: { config?: string; socket?: string }): string {
  if (flags.socket) return flags.socket;
  const { path } = configPath(flags.config);
  const socket = lenientValue(flags.config, "admin_socket_path");
  if (socket === "") throw new CommandError(`the admin socket is disabled (admin_socket_path = "" in ${path}): set it, or pass --socket`);
  return socket;
}

/** One key of the config, read leniently: the validated value, else (the file has errors — often the
 *  reason one runs these commands) the file's own value when it has the key's type, else the default. */
export function lenientValue<K extends Key>(flag: string | undefined, key: K): Values[K] {
  const { path, explicit } = configPath(flag);
  try {
    const c = loadConfig(path, explicit);
    return ((c.static as Record<string, unknown>)[key] ?? (c.dynamic as Record<string, unknown>)[key]) as Values[K];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
  }
  const fallback = KEYS[key].default as Values[K];
  try {
    const v = parseToml(readConfigText(path)).doc.root.get(key)?.value;
    return typeof v === typeof fallback ? (v as Values[K]) : fallback;
  } catch {
    return fallback;
  }
}

/** adminCall with CLI errors (exit 1, one clear line). */
export async function callAdmin(socket: string, command: string): Promise<Record<string, unknown>> {
  try {
    return await adminCall(socket, command);
  } catch (err) {
    throw new CommandError((err as Error).message);
  }
}
