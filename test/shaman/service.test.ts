// The Shaman service the manager runs: its GC runs on the period, deletes old unlinked blobs, and
// stop() ends the timer (no run after it).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm, utimes } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { DaemonContext } from "../../src/component/index.js";
import { setLogSink } from "../../src/log.js";
import { shamanService } from "../../src/shaman/index.js";
import { ShamanStore } from "../../src/store/index.js";

test("the GC runs every shaman_gc_period_secs and stops with the service", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-shaman-svc-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const lines: string[] = [];
  t.after(setLogSink((l) => lines.push(l)));
  // a period of 20 ms (the config's minimum is 60 s; the service reads whatever is in force)
  const dynamic = { shaman_gc_period_secs: 0.02, shaman_gc_max_age_secs: 3600, shaman_max_file_size: 1024 };
  const ctx = { config: { static: { state_dir: dir } }, dynamic: () => dynamic } as unknown as DaemonContext;
  const svc = shamanService(ctx);
  const routes = await svc.start();
  assert.ok(routes.some((r) => r.method === "POST" && r.path === "/checkout/create/:checkoutID"));
  // an old blob, stored through a second handle on the same directory
  const store = await ShamanStore.open(join(dir, "shaman"));
  const data = Buffer.from("old");
  const k = { sha: createHash("sha256").update(data).digest("hex"), size: data.length };
  await store.upload(k, () => Readable.from([data]), { encoding: "identity", canDefer: false });
  const long = new Date(Date.now() - 2 * 3600_000);
  await utimes(store.blobPath(k), long, long);
  const deadline = Date.now() + 15_000;
  while (await store.isStored(k)) {
    assert.ok(Date.now() < deadline, "the scheduled GC did not delete the old blob");
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.ok(typeof svc.status().last_gc === "string");
  await svc.stop();
  const runs = lines.filter((l) => l.includes("shaman: GC done")).length;
  // a period from now: had the timer survived stop(), more runs would show by then
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(lines.filter((l) => l.includes("shaman: GC done")).length, runs);
});
