// Client side of the admin socket, for `stevedore status` and `stevedore reload`.
import { connect } from "node:net";

/** The daemon is not there (no socket, nobody listening, no permission). */
export class AdminUnreachable extends Error {}

const MAX_REPLY_BYTES = 1024 * 1024;

/** Send one command, resolve with the parsed JSON reply. */
export function adminCall(path: string, command: string, timeoutMs = 60_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    const chunks: Buffer[] = [];
    let size = 0;
    let connected = false;
    const fail = (err: Error) => {
      clearTimeout(timer);
      sock.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`no reply from the admin socket ${path} within ${timeoutMs / 1000} s`)), timeoutMs);
    sock.once("connect", () => {
      connected = true;
      sock.write(command + "\n");
    });
    sock.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REPLY_BYTES) return fail(new Error("admin reply too large"));
      chunks.push(chunk);
    });
    sock.once("end", () => {
      clearTimeout(timer);
      sock.destroy();
      const text = Buffer.concat(chunks).toString("utf8");
      try {
        const reply = JSON.parse(text.trimEnd()) as unknown;
        if (typeof reply !== "object" || reply === null || Array.isArray(reply)) throw new Error("not an object");
        resolve(reply as Record<string, unknown>);
      } catch {
        reject(new Error(`malformed reply from the admin socket: ${JSON.stringify(text.slice(0, 200))}`));
      }
    });
    sock.once("error", (err: NodeJS.ErrnoException) => {
      if (connected) return fail(err);
      if (err.code === "ENOENT" || err.code === "ECONNREFUSED")
        return fail(new AdminUnreachable(`the daemon is not running (nothing listens on the admin socket ${path}): is the daemon running? start it (stevedore daemon, or systemctl start stevedore) or pass --socket`));
      if (err.code === "EACCES" || err.code === "EPERM")
        return fail(new AdminUnreachable(`permission denied on the admin socket ${path}: run as root or as a user that may open it`));
      fail(new AdminUnreachable(`cannot connect to the admin socket ${path}: ${err.message}`));
    });
  });
}
