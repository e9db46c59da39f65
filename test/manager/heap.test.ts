// The indexed heap and the deadline heap against sorting, over random pushes, removals and re-keys.
import { test } from "node:test";
import assert from "node:assert/strict";
import { IndexedHeap } from "../../src/manager/heap.js";
import { DeadlineHeap } from "../../src/manager/deadlines.js";
import { intRng } from "../helpers/random.js";

test("IndexedHeap: pops in order after random pushes, removals and key changes", () => {
  const rand = intRng(11);
  for (let round = 0; round < 200; round++) {
    const heap = new IndexedHeap<{ pos: number; key: number }>((a, b) => a.key < b.key);
    const live = new Set<{ pos: number; key: number }>();
    for (let i = 0; i < 200; i++) {
      const op = rand(4);
      const items = [...live];
      if (op <= 1 || items.length === 0) {
        const item = { pos: -1, key: rand(1000) };
        heap.push(item);
        live.add(item);
      } else if (op === 2) {
        const item = items[rand(items.length)]!;
        heap.remove(item);
        assert.equal(item.pos, -1);
        live.delete(item);
      } else {
        const item = items[rand(items.length)]!;
        item.key = rand(1000);
        heap.fix(item);
      }
      heap.items.forEach((item, at) => assert.equal(item.pos, at));
    }
    const expected = [...live].map((x) => x.key).sort((a, b) => a - b);
    const got: number[] = [];
    while (heap.size > 0) {
      const top = heap.peek()!;
      heap.remove(top);
      got.push(top.key);
    }
    assert.deepEqual(got, expected);
  }
});

test("DeadlineHeap: one entry per item, due items in key order", () => {
  const rand = intRng(12);
  const heap = new DeadlineHeap<{ dl: boolean; key: number }>();
  const items = Array.from({ length: 500 }, () => ({ dl: false, key: rand(10_000) }));
  for (const item of items) heap.schedule(item, item.key);
  for (const item of items) heap.schedule(item, 0); // already scheduled: ignored
  assert.equal(heap.size, 500);
  assert.equal(heap.popDue(-1), undefined);
  const got: number[] = [];
  for (let item = heap.popDue(5000); item; item = heap.popDue(5000)) {
    assert.equal(item.dl, false);
    got.push(item.key);
  }
  assert.deepEqual(got, items.map((i) => i.key).filter((k) => k <= 5000).sort((a, b) => a - b));
  assert.equal(heap.peekKey()! > 5000, true);
});
