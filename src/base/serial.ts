// Running async work one at a time: Serializer (FIFO, optionally coalescing), KeyedLock (one
// Serializer per key) and mapLimit (bounded parallel map).

/**
 * A FIFO queue of async runs: run(fn) starts fn only after every earlier run has settled. A run's
 * result or rejection goes to its caller only; a rejection never blocks the runs after it.
 */
export class Serializer {
  private tail: Promise<unknown> = Promise.resolve();
  private queued: Promise<unknown> | undefined;
  private active = false;
  private count = 0;

  run<T>(fn: () => T | Promise<T>): Promise<T> {
    this.count++;
    const result = this.tail.then(async () => {
      this.active = true;
      try {
        return await fn();
      } finally {
        this.active = false;
        this.count--;
      }
    });
    this.tail = result.catch(() => {});
    return result;
  }

  /**
   * Like run(), but while a coalesced run is queued and has not started yet, callers share it
   * instead of queuing another: a burst of "write the latest state" collapses into one write that
   * starts after this call, so each caller's change is in it. Pass the same kind of fn each time.
   */
  coalesce<T>(fn: () => T | Promise<T>): Promise<T> {
    if (this.queued) return this.queued as Promise<T>;
    const mine = this.run(() => {
      this.queued = undefined;
      return fn();
    });
    this.queued = mine;
    return mine;
  }

  /** Resolves once every run queued so far has settled (never rejects). */
  async idle(): Promise<void> {
    await this.tail;
  }

  /** A run is in progress. */
  get locked(): boolean {
    return this.active;
  }

  /** Runs queued or in progress. */
  get pending(): number {
    return this.count;
  }
}

/** One Serializer per key: run(key, fn) waits for every earlier run of the same key only; coalesce(key, fn)
 *  shares the key's queued run. */
export class KeyedLock {
  private readonly queues = new Map<string, Serializer>();

  run<T>(key: string, fn: () => T | Promise<T>): Promise<T> {
    return this.on(key, (queue) => queue.run(fn));
  }

  /** Serializer.coalesce per key: callers of one key share its queued run (not started yet). */
  coalesce<T>(key: string, fn: () => T | Promise<T>): Promise<T> {
    return this.on(key, (queue) => queue.coalesce(fn));
  }

  private async on<T>(key: string, use: (queue: Serializer) => Promise<T>): Promise<T> {
    let queue = this.queues.get(key);
    if (!queue) this.queues.set(key, (queue = new Serializer()));
    try {
      return await use(queue);
    } finally {
      if (queue.pending === 0 && this.queues.get(key) === queue) this.queues.delete(key);
    }
  }

  /** Keys with a run queued or in progress (bounded by the callers' own concurrency). */
  get size(): number {
    return this.queues.size;
  }
}

/** Run `fn` over `items` with at most `limit` in flight; results in input order. After a
 *  failure no new item starts; it settles every lane, then rejects with the first error. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let error: { err: unknown } | undefined;
  const lane = async () => {
    while (next < items.length && !error) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!);
      } catch (err) {
        error ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (error) throw error.err;
  return out;
}
