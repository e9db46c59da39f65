// The metrics registry: reset() gives tests a fresh process registry (no leakage from an earlier
// test), handles kept by modules stay valid across it, scrape hooks are named (no pile-up).
import { test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { Registry, encode, metrics, registerProcessMetrics } from "../../src/metrics/index.js";
import { createApiServer } from "../../src/http/index.js";
import { setLogSink } from "../../src/log.js";
import { parseExposition, sampleValue } from "../helpers/prometheus.js";

setLogSink(() => {});

const scrape = (r: Registry) => parseExposition(encode(r));

test("reset: values back to zero, families and module handles kept, collect functions and hooks dropped", () => {
  const r = new Registry();
  const c = r.counter("t_total", "c", ["k"]);
  const kept = c.labels("a"); // a module may keep a series' cell
  kept.inc(5);
  const h = r.histogram("t_seconds", "h", [], [1]);
  h.labels().observe(0.5);
  let stale = 0;
  r.gauge("t_gauge", "g", [], () => [[[], ++stale]]);
  let hooks = 0;
  r.onScrape("test", () => hooks++);
  assert.equal(sampleValue(scrape(r), "t_total", { k: "a" }), 5);
  assert.equal(hooks, 1, "a scrape runs the hook");
  r.reset();
  const fresh = scrape(r);
  assert.equal(sampleValue(fresh, "t_total", { k: "a" }), 0);
  assert.equal(sampleValue(fresh, "t_seconds_count"), 0);
  assert.equal(sampleValue(fresh, "t_seconds_bucket", { le: "1" }), 0);
  assert.equal(sampleValue(fresh, "t_gauge"), undefined, "the earlier collect function is gone");
  assert.equal(hooks, 1, "the earlier hook is gone");
  kept.inc();
  c.labels("a").inc();
  assert.equal(sampleValue(scrape(r), "t_total", { k: "a" }), 2, "the kept cell is still the series");
  assert.equal(r.counter("t_total", "c", ["k"]), c, "the definition stays");
});

test("scrape hooks are named: registering the process series again replaces its hook", () => {
  const r = new Registry();
  const calls: string[] = [];
  r.onScrape("x", () => calls.push("first"));
  r.onScrape("x", () => calls.push("second"));
  r.refresh();
  assert.deepEqual(calls, ["second"]);
  registerProcessMetrics(r);
  registerProcessMetrics(r);
  r.refresh();
  const fams = scrape(r);
  assert.ok(sampleValue(fams, "process_resident_memory_bytes")! > 0);
  assert.equal([...fams.keys()].filter((n) => n === "process_cpu_seconds_total").length, 1);
});

function get(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    request({ host: "127.0.0.1", port, path, agent: false }, (res) => res.resume().on("end", () => resolve(res.statusCode ?? 0))).on("error", reject).end();
  });
}

test("the process registry: what one test recorded is gone for the next after metrics.reset()", async () => {
  const labels = { api: "registry-test", method: "GET", code: "2xx" };
  const requests = async (n: number) => {
    const api = createApiServer({ name: "registry-test", listen: "127.0.0.1:0", routes: [{ method: "GET", path: "/", handler: () => ({ status: 200, body: {} }) }], limits: () => ({ maxBodyBytes: 1024, maxConnections: 10, headMs: 5000, idleMs: 5000, maxHeaderBytes: 8192 }) });
    await api.start();
    try {
      for (let i = 0; i < n; i++) assert.equal(await get(Number(api.address.split(":").pop()), "/"), 200);
    } finally {
      await api.stop(false, 0);
    }
  };
  metrics.reset();
  await requests(3); // "an earlier test"
  assert.equal(sampleValue(scrape(metrics), "stevedore_api_requests_total", labels), 3);
  metrics.reset(); // the next test starts here
  assert.equal(sampleValue(scrape(metrics), "stevedore_api_requests_total", labels), 0);
  await requests(1);
  assert.equal(sampleValue(scrape(metrics), "stevedore_api_requests_total", labels), 1);
});
