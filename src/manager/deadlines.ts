// Time-outs without scanning: a min-heap of (base time, item) with lazy deletion. An item has at
// most one entry (its `dl` flag); refreshing its base time (a ping) only writes the item. When an
// entry comes due the caller re-checks the item's current base and re-schedules it if it moved,
// or drops it if the item no longer needs a deadline. Keys are base times, not due times, so a
// reloaded time-out applies to every item at once.

export interface Deadlined {
  dl: boolean;
}

export class DeadlineHeap<T extends Deadlined> {
  private readonly keys: number[] = [];
  private readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  /** Gives `item` an entry at `key` unless it has one (an older one: re-checked when due). */
  schedule(item: T, key: number): void {
    if (item.dl) return;
    item.dl = true;
    let at = this.items.length;
    this.keys.push(key);
    this.items.push(item);
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if (this.keys[parent]! <= key) break;
      this.keys[at] = this.keys[parent]!;
      this.items[at] = this.items[parent]!;
      at = parent;
    }
    this.keys[at] = key;
    this.items[at] = item;
  }

  /** The earliest key, or undefined when empty. */
  peekKey(): number | undefined {
    return this.keys[0];
  }

  /** Removes and returns the earliest item when its key is <= `limit`. */
  popDue(limit: number): T | undefined {
    if (this.items.length === 0 || this.keys[0]! > limit) return undefined;
    const item = this.items[0]!;
    item.dl = false;
    const lastKey = this.keys.pop()!;
    const lastItem = this.items.pop()!;
    const n = this.items.length;
    if (n > 0) {
      let at = 0;
      for (;;) {
        let child = 2 * at + 1;
        if (child >= n) break;
        if (child + 1 < n && this.keys[child + 1]! < this.keys[child]!) child++;
        if (this.keys[child]! >= lastKey) break;
        this.keys[at] = this.keys[child]!;
        this.items[at] = this.items[child]!;
        at = child;
      }
      this.keys[at] = lastKey;
      this.items[at] = lastItem;
    }
    return item;
  }

  clear(): void {
    for (const item of this.items) item.dl = false;
    this.keys.length = 0;
    this.items.length = 0;
  }
}
