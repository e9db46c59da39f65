// EventHub: live frames, replay after a reconnect from the ring (and its wrap-around), reset when the id is too old or foreign.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EventHub } from "../../src/manager/events.js";
import type { Incoming } from "../../src/http/index.js";

/** A stand-in for the answer stream: collects what is written. */
function fakeIncoming(): { inc: Incoming; text: () => string } {
  const chunks: Buffer[] = [];
  const inc = {
    writeHead() {},
    write(b: Buffer) {
      chunks.push(b);
      return true;
    },
    onClose() {},
    end() {},
    destroy() {},
    socket: { writableLength: 0, once() {} },
  } as unknown as Incoming;
  return { inc, text: () => Buffer.concat(chunks).toString() };
}

const ids = (text: string) => [...text.matchAll(/^id: [0-9a-z]+-(\d+)$/gm)].map((m) => Number(m[1]));

test("events: a subscriber gets each published event as an SSE frame with the document as data", () => {
  const hub = new EventHub();
  const c = fakeIncoming();
  assert.equal(hub.subscribe(c.inc, {}), true);
  hub.publish("job", { _id: "j1", status: "queued" });
  hub.publish("log", { task: "t1", text: "hello" }, "t1"); // not this subscriber's task
  assert.match(c.text(), /id: [0-9a-z]+-1\nevent: job\ndata: \{"_id":"j1","status":"queued"\}\n\n/);
  assert.doesNotMatch(c.text(), /event: log/);
  hub.close();
});

test("events: a reconnect replays what followed its last id, also after the ring wrapped; too old or foreign ids get a reset", () => {
  const hub = new EventHub();
  const first = fakeIncoming();
  hub.subscribe(first.inc, {});
  hub.publish("task", { n: 0 });
  const epochId = /id: ([0-9a-z]+)-1/.exec(first.text())![1]!;
  for (let n = 1; n < 5000; n++) hub.publish("task", { n }); // seq 1..5000, the ring keeps the last 4096
  const again = fakeIncoming();
  hub.subscribe(again.inc, { lastEventId: `${epochId}-4990` });
  assert.deepEqual(ids(again.text()), [4991, 4992, 4993, 4994, 4995, 4996, 4997, 4998, 4999, 5000]);
  assert.match(again.text(), /data: \{"n":4999\}/);
  const oldest = fakeIncoming();
  hub.subscribe(oldest.inc, { lastEventId: `${epochId}-${5000 - 4096}` }); // the oldest kept is 905
  assert.equal(ids(oldest.text()).length, 4096);
  for (const lastEventId of [`${epochId}-${5000 - 4097}`, `zzz-4990`, `${epochId}-5001`]) {
    const c = fakeIncoming();
    hub.subscribe(c.inc, { lastEventId });
    assert.match(c.text(), /event: reset/, lastEventId);
    assert.deepEqual(ids(c.text()), [5000], lastEventId);
  }
  hub.close();
});

test("events: endSession ends the streams its signed-out token opened, no other", () => {
  const hub = new EventHub();
  const ended: string[] = [];
  const open = (name: string, session?: string) => {
    const c = fakeIncoming();
    (c.inc as unknown as { end: () => void }).end = () => ended.push(name);
    hub.subscribe(c.inc, { session });
  };
  open("a1", "tok-a");
  open("b", "tok-b");
  open("a2", "tok-a");
  open("bearer");
  hub.endSession("tok-a");
  assert.deepEqual(ended, ["a1", "a2"]);
  hub.endSession("tok-none");
  assert.deepEqual(ended, ["a1", "a2"]);
  assert.equal(hub.subscribers, 2);
  hub.close();
});
