// server.listen as a promise: resolves once listening, rejects with the bind error.
import { createServer, type ListenOptions, type Server } from "node:net";

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

// What an operator should read instead of an errno (stevedore(8), EXIT STATUS).
const BIND_ERRORS: Record<string, string> = {
  EADDRINUSE: "address already in use",
  EACCES: "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)",
  EPERM: "operation not permitted",
  EADDRNOTAVAIL: "address not available on this host",
  ENOTFOUND: "host name does not resolve",
  EAI_AGAIN: "host name does not resolve (temporary failure)",
  EAFNOSUPPORT: "address family not supported",
};

/** A bind error as one readable phrase ("address already in use"), never a raw errno. */
export function describeBindError(err: unknown, kind: "tcp" | "unix" = "tcp"): string {
  const e = err as NodeJS.ErrnoException;
  if (kind === "unix" && e?.code === "EACCES") return "permission denied (run as root or choose a directory the daemon may write)";
  const known = e?.code ? BIND_ERRORS[e.code] : undefined;
  if (known) return known;
  return String(e?.message ?? err);
}

/** Could a TCP listener bind host:port now? Binds and closes at once; → undefined or the reason. */
export function probeBind(host: string, port: number): Promise<string | undefined> {
  const server = createServer();
  return listen(server, { host, port, exclusive: true }).then(
    () => new Promise<undefined>((resolve) => server.close(() => resolve(undefined))),
    (err: unknown) => describeBindError(err),
  );
}
