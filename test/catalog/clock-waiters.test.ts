import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RevisionClock } from "../../src/catalog/clock.js";
import { WaiterList } from "../../src/catalog/waiters.js";
import type { Revision } from "../../src/catalog/types.js";

test("revision clock: strictly increasing, persisted, first after restart above the last", async () => {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-clock-"));
  try {
    let now = 1000;
    const clock = new RevisionClock(dir, () => now);
    const seen = Array.from({ length: 20 }, () => clock.next()); // 20 changes inside one second
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! > seen[i - 1]!);
    assert.equal(seen[0], 1000);
    await clock.flushed();
    assert.equal((await readFile(join(dir, "revision"), "utf8")).trim(), String(seen.at(-1)));
    const restarted = new RevisionClock(dir, () => now); // same second: persisted + 1
    assert.equal(restarted.next(), seen.at(-1)! + 1);
    now = 5000;
    assert.equal(restarted.next(), 5000);
    await restarted.flushed();
    await writeFile(join(dir, "revision"), "garbage\n");
    const fresh = new RevisionClock(dir, () => 7);
    assert.equal(fresh.next(), 7);
    await fresh.flushed();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("waiter list: 1,000 answered and 1,000 abandoned leave it empty", async () => {
  let rev: Revision = { seq: 1, ts: 100, containers: [], deployments: [] };
  const list = new WaiterList(() => rev);
  let answered = 0;
  for (let i = 0; i < 1000; i++) {
    const o = list.wait(100, 60_000, 10_000, (r) => {
      assert.equal(r.changed, true);
      answered++;
    });
    assert.equal(o.kind, "waiting");
  }
  const cancels: (() => void)[] = [];
  for (let i = 0; i < 1000; i++) {
    const o = list.wait(undefined, 60_000, 10_000, () => assert.fail("an abandoned waiter must not be answered"));
    assert.equal(o.kind, "waiting");
    if (o.kind === "waiting") cancels.push(o.cancel);
  }
  assert.equal(list.size, 2000);
  for (const c of cancels) c(); // the clients disconnected
  assert.equal(list.size, 1000);
  rev = { ...rev, seq: 2, ts: 101 };
  list.notify(rev);
  assert.equal(answered, 1000);
  assert.equal(list.size, 0);
  // older since answers at once; the limit refuses rather than grows
  assert.equal(list.wait(100, 1000, 10, () => {}).kind, "now");
  const small = new WaiterList(() => rev);
  const a = small.wait(undefined, 1000, 1, () => {});
  assert.equal(small.wait(undefined, 1000, 1, () => {}).kind, "full");
  if (a.kind === "waiting") a.cancel();
  // timeout removes the waiter
  const timed = await new Promise<boolean>((res) => small.wait(undefined, 5, 1, (r) => res(r.changed)));
  assert.equal(timed, false);
  assert.equal(small.size, 0);
});
