// The certificate manager at unit level: renewal time with jitter (fixed clock and draw), the
// challenge rotation order, and expired certificates of vanished hosts removed (not logged as errors).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, mkdir, copyFile, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AcmeManager, dueAt, rotated, type AcmeSettings } from "../../src/proxy/acme/manager.js";
import { setLogLevel, setLogSink } from "../../src/log.js";
import { waitFor } from "../helpers/docker.js";
import { makeCert } from "../proxy/command/helpers.js";

const DAY = 86400_000;

test("dueAt: a third of the lifetime (or renew_before_days) before expiry, jitter up to a tenth of the window (≤ 1 day), back-off and spacing win", () => {
  const T = Date.UTC(2026, 0, 1);
  const cert = { notBefore: T, notAfter: T + 90 * DAY, obtained: T };
  const base = { cert, next: 0, eager: 0 };
  // default window: 30 days; jitter 0 → exactly 60 days in; the most jitter moves it a day earlier (a tenth of 30 d is capped at 1 d)
  assert.equal(dueAt({ ...base, jitter: 0 }, 0), T + 60 * DAY);
  assert.equal(dueAt({ ...base, jitter: 0.5 }, 0), T + 60 * DAY - DAY / 2);
  assert.equal(dueAt({ ...base, jitter: 0.999 }, 0), T + 60 * DAY - 0.999 * DAY);
  // renew 5 days before: window 5 d, jitter up to half a day
  assert.equal(dueAt({ ...base, jitter: 1 }, 5), T + 85 * DAY - DAY / 2);
  // a short certificate (6 days): window 2 d, jitter up to 0.2 d
  const short = { notBefore: T, notAfter: T + 6 * DAY, obtained: T };
  assert.equal(dueAt({ cert: short, next: 0, eager: 0, jitter: 1 }, 0), T + 4 * DAY - 0.2 * DAY);
  // a back-off (next) later than the renewal time wins
  assert.equal(dueAt({ ...base, jitter: 0, next: T + 70 * DAY }, 0), T + 70 * DAY);
  // no certificate: due at once, unless backing off
  assert.equal(dueAt({ next: 0, eager: 0, jitter: 0.3 }, 0), 0);
  assert.equal(dueAt({ next: T + 5000, eager: 0, jitter: 0.3 }, 0), T + 5000);
  // a window as long as the lifetime: 10 s after it was obtained, doubling per eager renewal, at most a day
  assert.equal(dueAt({ ...base, jitter: 0 }, 3650), T + 10_000);
  assert.equal(dueAt({ ...base, jitter: 0, eager: 3 }, 3650), T + 80_000);
  assert.equal(dueAt({ ...base, jitter: 0, eager: 40 }, 3650), T + DAY);
  // many hosts with random draws spread over the jitter span, never past the renewal time
  const spread = Array.from({ length: 1000 }, (_, i) => dueAt({ ...base, jitter: i / 1000 }, 0));
  assert.ok(spread.every((d) => d <= T + 60 * DAY && d > T + 59 * DAY));
});

test("rotated: the challenge order of the next attempt", () => {
  const types = ["http-01", "tls-alpn-01"];
  assert.deepEqual(rotated(types, 0), ["http-01", "tls-alpn-01"]);
  assert.deepEqual(rotated(types, 1), ["tls-alpn-01", "http-01"]);
  assert.deepEqual(rotated(types, 2), ["http-01", "tls-alpn-01"], "wraps (the list may have shrunk by a reload)");
  assert.deepEqual(rotated(["http-01"], 1), ["http-01"]);
  assert.deepEqual(rotated([], 3), []);
});

test("expired certificates: removed at start and when a vanished host's expires, logged at info once, never as an error", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-acme-mgr-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const certs = join(dir, "acme", "certs");
  await mkdir(certs, { recursive: true });
  for (const h of ["old.acme.test", "live.acme.test"]) {
    await makeCert(dir, [h], h); // valid for 2 days
    await copyFile(join(dir, `${h}.crt`), join(certs, `${h}.crt`));
    await copyFile(join(dir, `${h}.key`), join(certs, `${h}.key`));
  }
  const lines: string[] = [];
  const restore = setLogSink((l) => lines.push(l));
  setLogLevel("info"); // the helpers quiet the log to warn
  const realNow = Date.now;
  t.after(() => {
    Date.now = realNow;
    restore();
  });
  const settings: AcmeSettings = { enabled: true, email: "", directoryUrl: "https://127.0.0.1:9/dir", caFile: "", renewBeforeDays: 0, challenges: ["http-01"] };

  // 3 days on, both stored certificates have expired: removed at start
  Date.now = () => realNow() + 3 * DAY;
  const past = new AcmeManager(join(dir, "acme"), () => settings);
  await past.load();
  Date.now = realNow;
  assert.deepEqual((await readdir(certs)).sort(), [], "both are expired 3 days on: all files removed");
  assert.equal(lines.filter((l) => l.includes("acme certificate expired; files removed")).length, 2, lines.join("\n"));
  assert.ok(!lines.some((l) => l.includes("level=error")), lines.join("\n"));

  // again with fresh files: "live" is loaded; it vanishes (want nothing), then expires while running
  for (const h of ["live.acme.test"]) {
    await copyFile(join(dir, `${h}.crt`), join(certs, `${h}.crt`));
    await copyFile(join(dir, `${h}.key`), join(certs, `${h}.key`));
  }
  lines.length = 0;
  const m = new AcmeManager(join(dir, "acme"), () => settings);
  t.after(() => m.stop());
  await m.load();
  assert.ok(m.cert("live.acme.test"));
  m.want([]); // the host vanished: kept until expiry
  assert.equal((await readdir(certs)).length, 2, "kept on disk before expiry");
  Date.now = () => realNow() + 3 * DAY;
  m.want([]); // the next scheduling pass after expiry
  await waitFor("expired files removed", async () => (await readdir(certs)).length === 0, 5000, 20);
  Date.now = realNow;
  assert.equal(lines.filter((l) => l.includes("acme certificate expired; files removed")).length, 1);
  assert.deepEqual(m.rows(), [], "no longer listed");
  assert.ok(!lines.some((l) => l.includes("level=error")), lines.join("\n"));
});
