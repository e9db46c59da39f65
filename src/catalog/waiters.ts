// The long-poll waiters: bounded, woken by a newer revision, a deadline, or the daemon stopping.
import type { Revision, WaitOutcome, WaitResult } from "./types.js";

export type { WaitOutcome, WaitResult };


interface Waiter {
  done: (r: WaitResult) => void;
  timer: NodeJS.Timeout;
}

/**
 * Pending long-polls. Checking the current revision and registering happen in one synchronous
 * step, so no wake-up is lost. A waiter leaves the set when answered, timed out or cancelled
 * (client disconnect), so the set never outgrows the open requests.
 */
export class WaiterList {
  private waiters = new Set<Waiter>();

  constructor(private current: () => Revision) {}

  get size(): number {
    return this.waiters.size;
  }

  /** Wait for a revision whose timestamp is newer than `since` (undefined: the next revision). */
  wait(since: number | undefined, timeoutMs: number, limit: number, done: (r: WaitResult) => void): WaitOutcome {
    const now = this.current();
    if (since !== undefined && since < now.ts) return { kind: "now", revision: now };
    if (this.waiters.size >= limit) return { kind: "full" };
    const waiter: Waiter = {
      done,
      timer: setTimeout(() => {
        this.waiters.delete(waiter);
        done({ changed: false, revision: this.current() });
      }, timeoutMs),
    };
    this.waiters.add(waiter);
    return {
      kind: "waiting",
      cancel: () => {
        if (this.waiters.delete(waiter)) clearTimeout(waiter.timer);
      },
    };
  }

  /** A new revision: answer every waiter (each was waiting for something newer than the previous one). */
  notify(revision: Revision): void {
    this.answerAll({ changed: true, revision });
  }

  /** Daemon stop: answer every pending poll `changed` so clients reconnect and refetch. */
  releaseAll(): void {
    this.answerAll({ changed: true, revision: this.current() });
  }

  private answerAll(result: WaitResult): void {
    const all = this.waiters;
    this.waiters = new Set();
    for (const w of all) {
      clearTimeout(w.timer);
      w.done(result);
    }
  }
}
