// metrics_listen: GET /metrics in the Prometheus text format, parsed strictly; values move with traffic.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { closedPort, freePort, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { waitFor } from "../helpers/docker.js";
import { parseExposition, sampleValue } from "../helpers/prometheus.js";
import { backend, get, type Backend } from "../proxy/helpers.js";
import { Registry, encode } from "../../src/metrics/index.js";

let b: Backend;
let d: TestDaemon;
let port: number;

before(async () => {
  b = await backend("metrics-backend");
  port = await freePort();
  const refused = await closedPort();
  const site = `[[site]]\nhostname = "metrics.test"\nbackends = ["127.0.0.1:${b.port}"]\n[[site]]\nhostname = "down.metrics.test"\nbackends = ["127.0.0.1:${refused}"]\n`;
  d = await startDaemon({ disable: ["query", "command", "https"], config: `metrics_listen = "127.0.0.1:${port}"\naccess_log = "off"\n${site}` });
});
after(async () => {
  await d?.cleanup();
  await b?.close();
});

function fetch(path: string, method = "GET"): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (c) => (body += c)).on("end", () => resolve({ status: res.statusCode!, type: String(res.headers["content-type"]), body }));
    });
    req.on("error", reject);
    req.end();
  });
}

async function scrape() {
  const r = await fetch("/metrics");
  assert.equal(r.status, 200);
  assert.equal(r.type, "text/plain; version=0.0.4; charset=utf-8");
  return parseExposition(r.body);
}

test("the exposition parses strictly and carries every documented family", async () => {
  const fams = await scrape();
  for (const name of [
    "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_max_fds", "process_start_time_seconds",
    "stevedore_proxy_requests_total", "stevedore_proxy_upstream_errors_total", "stevedore_proxy_request_duration_seconds",
    "stevedore_proxy_upstream_duration_seconds", "stevedore_proxy_open_connections", "stevedore_proxy_inflight_requests",
    "stevedore_catalog_revision", "stevedore_docker_event_lag_seconds", "stevedore_query_pollers", "stevedore_api_requests_total",
    "stevedore_reloads_total", "stevedore_manager_workers", "stevedore_manager_tasks",
  ])
    assert.ok(fams.has(name), `${name} missing`);
  assert.equal(fams.get("stevedore_proxy_request_duration_seconds")!.type, "histogram");
  assert.ok(sampleValue(fams, "process_resident_memory_bytes")! > 0);
  assert.ok(sampleValue(fams, "process_open_fds")! > 0);
  assert.equal((await fetch("/other")).status, 404);
  assert.equal((await fetch("/metrics", "POST")).status, 405);
});

test("a proxied request, a 404, an upstream error and a reload move their series", async () => {
  const before = await scrape();
  const routed = { route: "metrics.test/", source: "config", code: "2xx" };
  const none = { route: "", source: "none", code: "4xx" };
  const n0 = sampleValue(before, "stevedore_proxy_requests_total", routed) ?? 0;
  const m0 = sampleValue(before, "stevedore_proxy_requests_total", none) ?? 0;
  const h0 = sampleValue(before, "stevedore_proxy_request_duration_seconds_count", { route: "metrics.test/" }) ?? 0;
  const r0 = sampleValue(before, "stevedore_reloads_total", { result: "ok" })!;
  const a0 = sampleValue(before, "stevedore_api_requests_total", { api: "manager", method: "GET", code: "4xx" }) ?? 0;
  assert.equal((await get(d.httpPort, "metrics.test", "/x")).status, 200);
  assert.equal((await get(d.httpPort, "no-route.metrics.test", "/x")).status, 404);
  assert.equal((await get(d.httpPort, "down.metrics.test", "/x")).status, 502);
  assert.equal((await get(d.managerPort, "127.0.0.1", "/api/no-such-thing")).status >= 400, true);
  const from = d.logs.length;
  d.proc.kill("SIGHUP");
  await waitFor("reload", () => d.logs.slice(from).some((l) => /config reloaded/.test(l)));
  const after = await waitFor("counters moved", async () => {
    const f = await scrape();
    return (sampleValue(f, "stevedore_proxy_requests_total", routed) ?? 0) > n0 && f;
  }, 10_000);
  assert.equal(sampleValue(after, "stevedore_proxy_requests_total", routed), n0 + 1);
  assert.equal(sampleValue(after, "stevedore_proxy_requests_total", none), m0 + 1);
  assert.equal(sampleValue(after, "stevedore_proxy_request_duration_seconds_count", { route: "metrics.test/" }), h0 + 1);
  assert.equal(sampleValue(after, "stevedore_proxy_upstream_duration_seconds_count", { route: "metrics.test/" }), h0 + 1);
  assert.equal(sampleValue(after, "stevedore_reloads_total", { result: "ok" }), r0 + 1);
  assert.ok((sampleValue(after, "stevedore_proxy_upstream_errors_total", { route: "down.metrics.test/", kind: "connect" }) ?? 0) >= 1);
  assert.ok((sampleValue(after, "stevedore_api_requests_total", { api: "manager", method: "GET", code: "4xx" }) ?? 0) > a0);
});

test("encode escapes label values and HELP text; the strict parser reads them back", () => {
  const r = new Registry();
  const c = r.counter("t_total", "help with \\ and\nnewline", ["a", "b"]);
  c.labels('quote " back \\ nl \n', "x").inc(3);
  const g = r.gauge("t_gauge", "g", [], () => [[[], -1.5]]);
  void g;
  const h = r.histogram("t_seconds", "h", ["r"], [0.1, 1]);
  h.labels("x").observe(0.05);
  h.labels("x").observe(0.5);
  h.labels("x").observe(5);
  const text = encode(r);
  const fams = parseExposition(text);
  assert.equal(fams.get("t_total")!.help, "help with \\ and\nnewline");
  assert.equal(sampleValue(fams, "t_total", { a: 'quote " back \\ nl \n', b: "x" }), 3);
  assert.equal(sampleValue(fams, "t_gauge"), -1.5);
  assert.equal(sampleValue(fams, "t_seconds_bucket", { r: "x", le: "0.1" }), 1);
  assert.equal(sampleValue(fams, "t_seconds_bucket", { r: "x", le: "1" }), 2);
  assert.equal(sampleValue(fams, "t_seconds_bucket", { r: "x", le: "+Inf" }), 3);
  assert.equal(sampleValue(fams, "t_seconds_count", { r: "x" }), 3);
  assert.equal(sampleValue(fams, "t_seconds_sum", { r: "x" }), 5.55);
});

test("the strict parser refuses malformed expositions", () => {
  const bad = [
    "a 1", // no final line feed
    "a{b=\"x\\q\"} 1\n", // bad escape
    "# TYPE a counter\na -1\n", // negative counter
    "a 1\nb 1\na 2\n", // not contiguous (and duplicate)
    "a 1\n# TYPE a gauge\n", // TYPE after samples
    "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n", // not cumulative
    "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", // no +Inf
    "a{1b=\"x\"} 1\n", // bad label name
    "a 1x\n", // bad value
    "a{b=\"x\",b=\"y\"} 1\n", // label twice
    "\n", // empty line
  ];
  for (const text of bad) assert.throws(() => parseExposition(text), Error, JSON.stringify(text));
});
