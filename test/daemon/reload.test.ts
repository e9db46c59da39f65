// The Reloader: one mutex around read → parse → validate → prepare → swap.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig, type DynamicConfig } from "../../src/config/index.js";
import { Reloader } from "../../src/daemon/reload.js";
import { waitFor } from "../helpers/docker.js";
import { setLogSink, setLogLevel } from "../../src/log.js";

function setup(text: string) {
  const dir = mkdtempSync(join(tmpdir(), "stevedore-cfg-"));
  const path = join(dir, "s.conf");
  writeFileSync(path, text);
  const config = loadConfig(path, true, {});
  return { path, config, write: (t: string) => writeFileSync(path, t), done: () => rmSync(dir, { recursive: true, force: true }) };
}
const sites = (n: number) => Array.from({ length: n }, (_, i) => `[[site]]\nhostname = "h${i}.example.com"\nbackends = ["127.0.0.1:1"]\n`).join("");
const captureLogs = () => {
  const lines: string[] = [];
  setLogLevel("debug");
  const restore = setLogSink((l) => lines.push(l));
  return { lines, restore: () => (restore(), setLogLevel("info")) };
};

test("concurrent reloads never overlap, and each one re-reads the file when it gets the lock", async () => {
  const f = setup(sites(1));
  const logs = captureLogs();
  let active = 0;
  let maxActive = 0;
  const prepared: number[] = [];
  const r = new Reloader(f.path, true, f.config, async (next) => {
    active++;
    maxActive = Math.max(maxActive, active);
    prepared.push(next.sites.length);
    await new Promise((res) => setTimeout(res, 5));
    active--;
    return [];
  }, {});
  try {
    const pending: Promise<string[]>[] = [];
    for (let v = 2; v <= 11; v++) {
      f.write(sites(v));
      pending.push(r.reload().then((x) => x.errors));
    }
    for (const errs of await Promise.all(pending)) assert.deepEqual(errs, []);
    assert.equal(maxActive, 1);
    assert.equal(r.dynamic.sites.length, 11, "the newest file is in force");
    // every reload that had waited read the file as it was when it got the lock: the newest
    assert.equal(prepared[0], 11);
    assert.ok(prepared.every((n) => n === 11), JSON.stringify(prepared));
    const marks = logs.lines.filter((l) => /reload (begin|end)/.test(l)).map((l) => /(begin|end)/.exec(l)![1]);
    assert.deepEqual(marks, Array.from({ length: 10 }, () => ["begin", "end"]).flat());
  } finally {
    logs.restore();
    f.done();
  }
});

test("a reload waiting behind a slow one applies the file written meanwhile", async () => {
  const f = setup(sites(1));
  let release!: () => void;
  const gate = new Promise<void>((res) => (release = res));
  let calls = 0;
  let firstInPrepare = false;
  const r = new Reloader(f.path, true, f.config, async () => {
    if (calls++ === 0) {
      firstInPrepare = true;
      await gate;
    }
    return [];
  }, {});
  try {
    f.write(sites(2));
    const first = r.reload();
    await waitFor("the first reload to hold the lock in prepare", () => firstInPrepare, undefined, 1);
    assert.equal(calls, 1);
    f.write(sites(3));
    const second = r.reload();
    release();
    assert.deepEqual((await first).errors, []);
    assert.deepEqual((await second).errors, []);
    assert.equal(r.dynamic.sites.length, 3);
  } finally {
    f.done();
  }
});

test("a failed reload changes nothing: parse errors, prepare errors, a prepare that throws", async () => {
  const f = setup(sites(2));
  const logs = captureLogs();
  let failPrepare: "no" | "errors" | "throw" = "no";
  const swaps: DynamicConfig[] = [];
  const r = new Reloader(f.path, true, f.config, async () => {
    if (failPrepare === "errors") return ["cert.pem: cannot load", "key.pem: cannot load"];
    if (failPrepare === "throw") throw new Error("component exploded");
    return [];
  }, {});
  r.onSwap((d) => swaps.push(d));
  const before = r.dynamic;
  try {
    f.write(`${sites(3)}\nnope = 1\nlog_level = "shout"\n`);
    const errs = (await r.reload()).errors;
    assert.equal(errs.length, 2);
    assert.ok(errs.every((e) => e.startsWith(`${f.path}:`)), errs.join("\n"));
    f.write(sites(4));
    failPrepare = "errors";
    assert.deepEqual((await r.reload()).errors, ["cert.pem: cannot load", "key.pem: cannot load"]);
    failPrepare = "throw";
    assert.deepEqual((await r.reload()).errors, ["component exploded"]);
    assert.equal(r.dynamic, before);
    assert.deepEqual(swaps, []);
    assert.ok(logs.lines.some((l) => /level=error msg="reload error" error=.*unknown key nope/.test(l)));
    assert.ok(logs.lines.some((l) => /level=error msg="reload failed, config unchanged" errors=2/.test(l)));
    failPrepare = "no";
    assert.deepEqual((await r.reload()).errors, []);
    assert.equal(r.dynamic.sites.length, 4);
    assert.equal(swaps.length, 1);
  } finally {
    logs.restore();
    f.done();
  }
});

test("the swap is atomic: a reference taken before keeps the old config; listeners see the new one", async () => {
  const f = setup('log_level = "info"\n' + sites(1));
  const r = new Reloader(f.path, true, f.config, undefined, {});
  const seen: string[] = [];
  r.onSwap(() => {
    throw new Error("a broken listener does not stop the others");
  });
  r.onSwap((d) => seen.push(d.log_level));
  try {
    const held = r.dynamic;
    f.write('log_level = "warn"\n' + sites(2));
    assert.deepEqual((await r.reload()).errors, []);
    assert.equal(held.log_level, "info");
    assert.equal(held.sites.length, 1);
    assert.equal(r.dynamic.log_level, "warn");
    assert.deepEqual(seen, ["warn"]);
  } finally {
    setLogLevel("info");
    f.done();
  }
});

test("a changed static key logs restart required (without its value) and keeps the running value", async () => {
  const f = setup('manager_registration_secret = "old-secret"\ncore_listen = "127.0.0.1:8000"\n');
  const logs = captureLogs();
  const r = new Reloader(f.path, true, f.config, undefined, {});
  try {
    f.write('manager_registration_secret = "new-secret"\ncore_listen = "127.0.0.1:9000"\nlog_level = "debug"\n');
    assert.deepEqual(await r.reload(), { errors: [], restartRequired: ["core_listen", "manager_registration_secret"] });
    const warns = logs.lines.filter((l) => /restart required/.test(l)).map((l) => l.replace(/^time=\S+ /, ""));
    assert.deepEqual(warns.sort(), [
      'level=warn msg="restart required" key=core_listen',
      'level=warn msg="restart required" key=manager_registration_secret',
    ]);
    assert.ok(!logs.lines.some((l) => l.includes("secret\"") || l.includes("new-secret")));
    assert.equal(f.config.static.core_listen, "127.0.0.1:8000", "the running static config is untouched");
    assert.equal(r.dynamic.log_level, "debug", "dynamic keys of the same file applied");
  } finally {
    logs.restore();
    f.done();
  }
});

test("restart_required names every static key that differs from the running value, also after later reloads", async () => {
  const f = setup('core_listen = "127.0.0.1:8000"\n');
  const r = new Reloader(f.path, true, f.config, undefined, {});
  try {
    assert.deepEqual(await r.reload(), { errors: [], restartRequired: [] });
    f.write('core_listen = "127.0.0.1:9000"\n');
    assert.deepEqual((await r.reload()).restartRequired, ["core_listen"]);
    f.write('core_listen = "127.0.0.1:9000"\nlog_level = "warn"\n');
    assert.deepEqual((await r.reload()).restartRequired, ["core_listen"], "still waiting for the restart");
    f.write('core_listen = "127.0.0.1:8000"\n');
    assert.deepEqual((await r.reload()).restartRequired, [], "back to the running value");
  } finally {
    setLogLevel("info");
    f.done();
  }
});

test("a changed static key whose check fails (a listener that cannot bind) fails the whole reload", async () => {
  const f = setup('core_listen = "127.0.0.1:8000"\nlog_level = "info"\n');
  const logs = captureLogs();
  const checked: string[][] = [];
  const r = new Reloader(f.path, true, f.config, undefined, {}, async (changed, next) => {
    checked.push(changed);
    return next.core_listen.endsWith(":9001") ? [`core_listen = ${next.core_listen}: cannot bind: address already in use`] : [];
  });
  try {
    const before = r.dynamic;
    f.write('core_listen = "127.0.0.1:9001"\nlog_level = "warn"\n');
    assert.deepEqual(await r.reload(), { errors: ["core_listen = 127.0.0.1:9001: cannot bind: address already in use"], restartRequired: [] });
    assert.equal(r.dynamic, before, "nothing applied");
    assert.ok(!logs.lines.some((l) => /restart required/.test(l)));
    f.write('core_listen = "127.0.0.1:9002"\nlog_level = "warn"\n');
    assert.deepEqual(await r.reload(), { errors: [], restartRequired: ["core_listen"] });
    assert.equal(r.dynamic.log_level, "warn");
    assert.deepEqual(checked, [["core_listen"], ["core_listen"]]);
  } finally {
    logs.restore();
    f.done();
  }
});
