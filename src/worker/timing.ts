// Waiting in the worker: sleeps that a stop cuts short, and capped exponential back-off with jitter.

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Doubling delays from `minMs` to `maxMs`, each ±20 % so a fleet of workers does not retry in step. */
export class Backoff {
  private next: number;

  constructor(private readonly minMs: number, private readonly maxMs: number, private readonly random: () => number = Math.random) {
    this.next = minMs;
  }

  /** the delay to wait now; the following one doubles (capped) */
  delay(): number {
    const base = this.next;
    this.next = Math.min(this.maxMs, this.next * 2);
    const jittered = base * (0.8 + 0.4 * this.random());
    return Math.max(1, Math.round(Math.min(jittered, this.maxMs)));
  }

  reset(): void {
    this.next = this.minMs;
  }
}
