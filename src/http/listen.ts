// server.listen as a promise: resolves once listening, rejects with the bind error.
import type { ListenOptions, Server } from "node:net";

/** `options`: a port and host, a Unix path, or `{ fd }` of an inherited listening socket. */
export function listen(server: Server, options: ListenOptions | { fd: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options as ListenOptions, () => {
      server.off("error", reject);
      resolve();
    });
  });
}
