// Serializer, KeyedLock and mapLimit: order, exclusion, coalescing, bounded parallelism, errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { KeyedLock, Serializer, mapLimit } from "../../src/base/index.js";

/** A promise the test resolves by hand, and whether the code under test reached it. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((res) => (open = res));
  return { open, opened };
}

test("Serializer runs one at a time, in order, and survives a rejection", async () => {
  const s = new Serializer();
  const order: number[] = [];
  let active = 0;
  const job = (i: number) => s.run(async () => {
    active++;
    assert.equal(active, 1);
    assert.equal(s.locked, true);
    await Promise.resolve();
    order.push(i);
    active--;
    if (i === 2) throw new Error("boom");
    return i;
  });
  const results = await Promise.allSettled([0, 1, 2, 3, 4].map(job));
  assert.deepEqual(order, [0, 1, 2, 3, 4]);
  assert.equal(results[2]!.status, "rejected");
  assert.deepEqual(results[4], { status: "fulfilled", value: 4 });
  assert.equal(s.locked, false);
  assert.equal(s.pending, 0);
});

test("Serializer.idle waits for every run queued so far, and never rejects", async () => {
  const s = new Serializer();
  const g = gate();
  let done = false;
  void s.run(() => g.opened);
  void s.run(async () => {
    done = true;
    throw new Error("ignored by idle");
  }).catch(() => {});
  const idle = s.idle();
  assert.equal(s.pending, 2);
  g.open();
  await idle;
  assert.equal(done, true);
});

test("Serializer.coalesce: callers share a queued run, and a run that started is not shared", async () => {
  const s = new Serializer();
  const g = gate();
  let runs = 0;
  const write = async () => {
    runs++;
    if (runs === 1) await g.opened;
    return runs;
  };
  const first = s.coalesce(write); // starts at once
  await Promise.resolve(); // let it start
  const second = s.coalesce(write); // queued behind it
  const third = s.coalesce(write); // shares the queued one
  assert.equal(second, third);
  g.open();
  assert.deepEqual(await Promise.all([first, second, third]), [1, 2, 2]);
  assert.equal(runs, 2);
  assert.equal(await s.coalesce(write), 3);
});

test("KeyedLock: runs of one key in order, other keys in parallel, and forgets idle keys", async () => {
  const lock = new KeyedLock();
  const g = gate();
  const order: string[] = [];
  const a1 = lock.run("a", async () => {
    await g.opened;
    order.push("a1");
  });
  const a2 = lock.run("a", () => void order.push("a2"));
  await lock.run("b", () => void order.push("b")); // not behind "a"
  assert.deepEqual(order, ["b"]);
  assert.equal(lock.size, 1);
  g.open();
  await Promise.all([a1, a2]);
  assert.deepEqual(order, ["b", "a1", "a2"]);
  assert.equal(lock.size, 0);
  await assert.rejects(lock.run("c", () => Promise.reject(new Error("x"))), /x/);
  assert.equal(lock.size, 0);
});

test("KeyedLock.coalesce: callers of one key share its queued run, other keys run their own, idle keys are forgotten", async () => {
  const lock = new KeyedLock();
  const g = gate();
  const runs: string[] = [];
  const sync = (key: string) => async () => {
    const n = runs.push(key); // which run this is
    if (n === 1) await g.opened;
    return n;
  };
  const first = lock.coalesce("a", sync("a")); // starts at once
  await Promise.resolve();
  await Promise.resolve(); // let it start
  const queued = [lock.coalesce("a", sync("a")), lock.coalesce("a", sync("a")), lock.coalesce("a", sync("a"))];
  const other = await lock.coalesce("b", sync("b")); // not behind "a", not shared with it
  assert.equal(other, 2);
  assert.equal(lock.size, 1);
  g.open();
  const got = await Promise.all([first, ...queued]);
  assert.deepEqual(got, [1, 3, 3, 3], "the three queued callers shared one run");
  assert.deepEqual(runs, ["a", "b", "a"]);
  assert.equal(lock.size, 0);
  await assert.rejects(lock.coalesce("c", () => Promise.reject(new Error("x"))), /x/);
  assert.equal(lock.size, 0);
});

test("mapLimit keeps order, bounds the parallelism and rejects with the first error", async () => {
  let inFlight = 0;
  let most = 0;
  const out = await mapLimit([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
    most = Math.max(most, ++inFlight);
    await Promise.resolve();
    inFlight--;
    return n * 10;
  });
  assert.deepEqual(out, [10, 20, 30, 40, 50, 60, 70]);
  assert.equal(most, 3);
  const started: number[] = [];
  await assert.rejects(
    mapLimit([1, 2, 3, 4], 1, async (n) => {
      started.push(n);
      if (n === 2) throw new Error("two");
      return n;
    }),
    /two/,
  );
  assert.deepEqual(started, [1, 2]); // nothing new starts after a failure
  assert.deepEqual(await mapLimit([], 4, async () => 1), []);
});
