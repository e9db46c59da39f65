// The hand-over object (UPGRADE_MASTER): the new master's inherited descriptors, ready/failed
// reports, unused descriptors closed; the old master's handed-over flag. The whole upgrade
// through the bundle is test/proxy/upgrade.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { createServer, type Server } from "node:net";
import { fstatSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Handover, HANDOVER_ENV } from "../../src/daemon/handover.js";
import { setLogSink } from "../../src/log.js";

/** A process stand-in: the env the old master set, and what the new master sends back. */
function fakeProcess(table: unknown) {
  const sent: unknown[] = [];
  let disconnected = false;
  const proc = {
    env: { [HANDOVER_ENV]: typeof table === "string" ? table : JSON.stringify(table) } as NodeJS.ProcessEnv,
    send: ((msg: unknown, _h: unknown, _o: unknown, cb: () => void) => (sent.push(msg), cb(), true)) as NodeJS.Process["send"],
    disconnect: () => void (disconnected = true),
  };
  return { proc, sent, disconnected: () => disconnected };
}

/** A server stand-in that records the descriptor it was asked to listen on (a real one cannot
 *  listen on a descriptor this process already listens on). */
function fakeServer() {
  const s = Object.assign(new EventEmitter(), {
    fds: [] as number[],
    listen(opts: { fd: number }, cb: () => void) {
      s.fds.push(opts.fd);
      setImmediate(cb);
    },
  });
  return s as typeof s & Server;
}

test("a normal start inherits nothing and reports nothing", async () => {
  const proc = { env: {} as NodeJS.ProcessEnv, send: undefined, disconnect: () => {} };
  const h = new Handover(proc);
  assert.equal(h.isSuccessor(), false);
  assert.equal(await h.inherit(createServer(), "query", "/x.sock"), false);
  assert.equal(await h.reportReady(), true);
  assert.equal(h.handedOver(), false);
});

test("the new master listens on the inherited descriptor, reports ready, and closes descriptors nobody took", async () => {
  const restore = setLogSink(() => {});
  const dir = mkdtempSync(join(tmpdir(), "handover-"));
  const unused = openSync(join(dir, "f"), "w");
  const address = "127.0.0.1:8080";
  const f = fakeProcess({ core: { fd: 9, address }, gone: { fd: unused, address: "127.0.0.1:1" } });
  const h = new Handover(f.proc);
  try {
    assert.equal(f.proc.env[HANDOVER_ENV], undefined, "the table is not passed on to children");
    assert.equal(h.isSuccessor(), true);
    const next = fakeServer();
    assert.equal(await h.inherit(next, "core", "127.0.0.1:9"), false, "another address: bind as usual");
    assert.equal(await h.inherit(next, "core", address), true);
    assert.deepEqual(next.fds, [9]);
    assert.equal(await h.inherit(fakeServer(), "core", address), false, "a descriptor is taken once");
    assert.equal(await h.reportReady(), true);
    assert.deepEqual(f.sent, [{ type: "ready" }]);
    assert.equal(f.disconnected(), true);
    assert.throws(() => fstatSync(unused), /EBADF/, "the descriptor nobody took is closed");
  } finally {
    rmSync(dir, { recursive: true, force: true });
    restore();
  }
});

test("a bad table or an inherited socket that cannot listen is reported as failed", async () => {
  const restore = setLogSink(() => {});
  try {
    const bad = fakeProcess("{not json");
    const h = new Handover(bad.proc);
    assert.equal(h.isSuccessor(), true);
    assert.equal(await h.reportReady(), false);
    assert.deepEqual(bad.sent, [{ type: "failed", reason: `${HANDOVER_ENV} is not valid JSON` }]);

    const f = fakeProcess({ admin: { fd: 999, address: "/a.sock" }, low: { fd: 2, address: "/b.sock" } });
    const h2 = new Handover(f.proc);
    assert.equal(await h2.inherit(createServer(), "low", "/b.sock"), false, "stdio descriptors are never inherited");
    await assert.rejects(h2.inherit(createServer(), "admin", "/a.sock"));
    assert.equal(await h2.reportReady(), false);
    assert.match((f.sent[0] as { reason: string }).reason, /^admin: cannot listen on the inherited socket/);
  } finally {
    restore();
  }
});

test("each daemon's hand-over is its own: no state shared between two objects", async () => {
  const a = new Handover({ env: {}, send: undefined, disconnect: () => {} });
  const b = new Handover({ env: {}, send: undefined, disconnect: () => {} });
  (a as unknown as { handed: boolean }).handed = true;
  assert.equal(a.handedOver(), true);
  assert.equal(b.handedOver(), false);
});
