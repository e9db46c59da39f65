// Which admin socket the CLI talks to: --socket, else the config's admin_socket_path.
import { configPath, loadConfig, readConfigText, ConfigError, KEYS } from "../config/index.js";
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
  const { path, explicit } = configPath(flags.config);
  let socket: string;
  try {
    socket = loadConfig(path, explicit).static.admin_socket_path;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    socket = lenientSocketPath(path) ?? KEYS.admin_socket_path.default;
  }
  if (socket === "") throw new CommandError(`the admin socket is disabled (admin_socket_path = "" in ${path})`);
  return socket;
}

function lenientSocketPath(path: string): string | undefined {
  try {
    const v = parseToml(readConfigText(path)).doc.root.get("admin_socket_path")?.value;
    return typeof v === "string" ? v : undefined;
  } catch {
    return undefined;
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
