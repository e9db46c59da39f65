// Docker errors: the Engine's answers (DockerError) and an unreachable Engine (DockerUnavailable).
/** Docker answered with an error status; `status` and Docker's own `message` are kept for callers. */
export class DockerError extends Error {
  constructor(readonly status: number, readonly dockerMessage: string, readonly operation: string) {
    super(`${operation}: ${dockerMessage} (docker ${status})`);
  }
}

/** The Docker socket could not be reached (no socket, refused, reset, timed out). */
export class DockerUnavailable extends Error {
  constructor(readonly operation: string, override readonly cause: Error) {
    super(`docker unavailable: ${operation}: ${cause.message}`);
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof DockerError && err.status === 404;
}
