// A binary heap whose items know their own index (`pos`), so any item can be removed or
// re-keyed in O(log n) without a search. `pos` is -1 while an item is outside every heap.

export interface Positioned {
  pos: number;
}

export class IndexedHeap<T extends Positioned> {
  /** The heap array; items[0] is the best. Read-only for callers (the scheduler walks it). */
  readonly items: T[] = [];

  /** `before(a, b)`: a must come out before b. */
  constructor(private readonly before: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    item.pos = this.items.length;
    this.items.push(item);
    this.up(item.pos);
  }

  remove(item: T): void {
    const at = item.pos;
    const last = this.items.pop()!;
    item.pos = -1;
    if (last === item) return;
    this.items[at] = last;
    last.pos = at;
    this.fix(last);
  }

  clear(): void {
    for (const item of this.items) item.pos = -1;
    this.items.length = 0;
  }

  /** Restores order after `item`'s key changed. */
  fix(item: T): void {
    if (!this.up(item.pos)) this.down(item.pos);
  }

  private up(at: number): boolean {
    const items = this.items;
    const item = items[at]!;
    let moved = false;
    while (at > 0) {
      const parentAt = (at - 1) >> 1;
      const parent = items[parentAt]!;
      if (!this.before(item, parent)) break;
      items[at] = parent;
      parent.pos = at;
      at = parentAt;
      moved = true;
    }
    items[at] = item;
    item.pos = at;
    return moved;
  }

  private down(at: number): void {
    const items = this.items;
    const n = items.length;
    const item = items[at]!;
    for (;;) {
      let child = 2 * at + 1;
      if (child >= n) break;
      if (child + 1 < n && this.before(items[child + 1]!, items[child]!)) child++;
      const best = items[child]!;
      if (!this.before(best, item)) break;
      items[at] = best;
      best.pos = at;
      at = child;
    }
    items[at] = item;
    item.pos = at;
  }
}

/**
 * A min-heap of items by a number key kept in the heap itself, so sifting reads one array and
 * not the items (with 100,000 tasks most items are cache misses). Keys never change in place.
 */
export class KeyedHeap<T extends Positioned> {
  readonly items: T[] = [];
  private readonly keys: number[] = [];

  get size(): number {
    return this.items.length;
  }

  push(item: T, key: number): void {
    this.items.push(item);
    this.keys.push(key);
    this.place(this.items.length - 1, item, key);
  }

  remove(item: T): void {
    const at = item.pos;
    const last = this.items.pop()!;
    const lastKey = this.keys.pop()!;
    item.pos = -1;
    if (last === item) return;
    this.place(at, last, lastKey);
  }

  /** Puts (item, key) at `at` and sifts it up or down to its place. */
  private place(at: number, item: T, key: number): void {
    const items = this.items;
    const keys = this.keys;
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if (keys[parent]! <= key) break;
      items[at] = items[parent]!;
      keys[at] = keys[parent]!;
      items[at]!.pos = at;
      at = parent;
    }
    const n = items.length;
    for (;;) {
      let child = 2 * at + 1;
      if (child >= n) break;
      if (child + 1 < n && keys[child + 1]! < keys[child]!) child++;
      if (keys[child]! >= key) break;
      items[at] = items[child]!;
      keys[at] = keys[child]!;
      items[at]!.pos = at;
      at = child;
    }
    items[at] = item;
    keys[at] = key;
    item.pos = at;
  }
}
