// Every message type in every accepted shape, with its exact answer (design/proxy.md "Command
// socket protocol"), driven through the real socket of an in-process command component.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startCommand, makeCert, type Harness, type TestCert } from "./helpers.js";

let h: Harness;
let A: TestCert;
let B: TestCert;
before(async () => {
  h = await startCommand();
  A = await makeCert(h.dir, ["a.example.com", "*.example.com"], "a");
  B = await makeCert(h.dir, ["b.example.org"], "b");
});
after(() => h.close());

type Row = [name: string, request: Record<string, unknown>, status: "Ok" | "Error", message: string, data?: unknown];
const spec = (id: string, type: string, data?: unknown) => ({ id, version: 0, data: data === undefined ? { type } : { type, data } });
const proxy = (id: string, type: string, data?: unknown) => ({ id, version: 0, type: "PROXY", data: data === undefined ? { type } : { type, data } });
const outer = (id: string, type: string, data?: unknown) => ({ id, version: 0, type, ...(data !== undefined && { data }) });

test("every message type in every accepted shape gets its exact answer", async () => {
  const c = await h.client();
  const front = { app_id: "app1", hostname: "example.com", path_begin: "/hello" };
  const rows: Row[] = [
    ["ADD_APPLICATION spec", spec("1", "ADD_APPLICATION", { app_id: "app1", sticky_session: true, load_balancing_policy: "random" }), "Ok", "application app1 added"],
    ["ADD_APPLICATION PROXY", proxy("2", "ADD_APPLICATION", { app_id: "app1", sticky_session: true, load_balancing_policy: "random" }), "Ok", "already present"],
    ["ADD_APPLICATION outer type", outer("3", "ADD_APPLICATION", { app_id: "app1", https_redirect: true, load_balancing_policy: "LEAST_CONNECTIONS" }), "Ok", "application app1 updated"],
    ["ADD_HTTP_FRONT spec", spec("4", "ADD_HTTP_FRONT", front), "Ok", "http frontend example.com/hello (application app1) added"],
    ["ADD_HTTP_FRONT PROXY, upper-case host", proxy("5", "ADD_HTTP_FRONT", { ...front, hostname: "EXAMPLE.com" }), "Ok", "already present"],
    ["ADD_HTTP_FRONT outer type, worker_id string", { ...outer("6", "ADD_HTTP_FRONT", front), worker_id: "0" }, "Ok", "already present"],
    ["ADD_HTTP_FRONT wildcard, no path, worker_id number", { ...spec("7", "ADD_HTTP_FRONT", { app_id: "app2", hostname: "*.example.com" }), worker_id: 0 }, "Ok", "http frontend *.example.com (application app2) added"],
    ["ADD_HTTP_FRONT same route other app", spec("8", "ADD_HTTP_FRONT", { ...front, app_id: "app2" }), "Error", "frontend http example.com/hello is already used by application app1"],
    ["REMOVE_HTTP_FRONT flat (spec)", { id: "9", version: 0, data: { type: "REMOVE_HTTP_FRONT", ...front, port: 4242 } }, "Ok", "http frontend example.com/hello (application app1) removed"],
    ["REMOVE_HTTP_FRONT nested, absent", spec("10", "REMOVE_HTTP_FRONT", front), "Error", "No such frontend: http example.com/hello (application app1)"],
    ["ADD_HTTP_FRONT again", proxy("11", "ADD_HTTP_FRONT", front), "Ok", "http frontend example.com/hello (application app1) added"],
    ["REMOVE_HTTP_FRONT nested", spec("12", "REMOVE_HTTP_FRONT", front), "Ok", "http frontend example.com/hello (application app1) removed"],
    ["REMOVE_HTTP_FRONT PROXY flat, absent", { id: "13", version: 0, type: "PROXY", data: { type: "REMOVE_HTTP_FRONT", ...front } }, "Error", "No such frontend: http example.com/hello (application app1)"],
    ["ADD_BACKEND spec", spec("14", "ADD_BACKEND", { app_id: "app1", ip_address: "127.0.0.1", port: 8080 }), "Ok", "backend 127.0.0.1:8080 (127.0.0.1:8080) added to application app1"],
    ["ADD_BACKEND address form", proxy("15", "ADD_BACKEND", { app_id: "app1", backend_id: "b2", address: "127.0.0.2:8081" }), "Ok", "backend b2 (127.0.0.2:8081) added to application app1"],
    ["ADD_BACKEND IPv6 address form, default id", outer("16", "ADD_BACKEND", { app_id: "app1", address: "[::1]:9000" }), "Ok", "backend [::1]:9000 ([::1]:9000) added to application app1"],
    ["ADD_BACKEND again", proxy("17", "ADD_BACKEND", { app_id: "app1", ip_address: "127.0.0.1", port: 8080 }), "Ok", "already present"],
    ["ADD_BACKEND id taken by another address", spec("18", "ADD_BACKEND", { app_id: "app1", backend_id: "b2", address: "127.0.0.3:1" }), "Error", "backend b2 of application app1 already exists with address 127.0.0.2:8081"],
    ["REMOVE_BACKEND spec", spec("19", "REMOVE_BACKEND", { app_id: "app1", ip_address: "127.0.0.1", port: 8080 }), "Ok", "backend 127.0.0.1:8080 (127.0.0.1:8080) of application app1 removed"],
    ["REMOVE_BACKEND address form", proxy("20", "REMOVE_BACKEND", { app_id: "app1", backend_id: "b2", address: "127.0.0.2:8081" }), "Ok", "backend b2 (127.0.0.2:8081) of application app1 removed"],
    ["REMOVE_BACKEND absent", spec("21", "REMOVE_BACKEND", { app_id: "app1", ip_address: "127.0.0.1", port: 8080 }), "Error", "No such backend 127.0.0.1:8080 in application app1"],
    ["ADD_CERTIFICATE flat (spec)", () => spec("22", "ADD_CERTIFICATE", { certificate: A.cert, certificate_chain: [], key: A.key }), "Ok", "certificate A added", () => ({ fingerprint: A.fingerprint, names: ["a.example.com", "*.example.com"] })],
    ["ADD_CERTIFICATE nested with names", () => proxy("23", "ADD_CERTIFICATE", { certificate: { certificate: B.cert, certificate_chain: [A.cert], key: B.key }, names: ["B.example.org", "www.b.example.org"] }), "Ok", "certificate B added", () => ({ fingerprint: B.fingerprint, names: ["b.example.org", "www.b.example.org"] })],
    ["ADD_CERTIFICATE again", () => outer("24", "ADD_CERTIFICATE", { certificate: A.cert, key: A.key }), "Ok", "already present", () => ({ fingerprint: A.fingerprint, names: ["a.example.com", "*.example.com"] })],
    ["ADD_CERTIFICATE key of another cert", () => spec("25", "ADD_CERTIFICATE", { certificate: A.cert, key: B.key }), "Error", "key does not match the certificate"],
    ["ADD_CERTIFICATE garbage cert", () => spec("26", "ADD_CERTIFICATE", { certificate: "-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n", key: A.key }), "Error", "certificate does not parse as a PEM X.509 certificate"],
    ["ADD_CERTIFICATE garbage key", () => spec("27", "ADD_CERTIFICATE", { certificate: A.cert, key: "nope" }), "Error", "key does not parse as a PEM private key"],
    ["ADD_HTTPS_FRONT unknown fingerprint", spec("28", "ADD_HTTPS_FRONT", { ...front, fingerprint: "ab".repeat(32) }), "Error", `No such certificate ${"ab".repeat(32)}: add it with ADD_CERTIFICATE first`],
    ["ADD_HTTPS_FRONT spec", () => spec("29", "ADD_HTTPS_FRONT", { ...front, fingerprint: A.fingerprint.toUpperCase() }), "Ok", "https frontend example.com/hello (application app1) added"],
    ["ADD_HTTPS_FRONT PROXY", () => proxy("30", "ADD_HTTPS_FRONT", { ...front, fingerprint: A.fingerprint }), "Ok", "already present"],
    ["ADD_HTTPS_FRONT other certificate", () => proxy("31", "ADD_HTTPS_FRONT", { ...front, fingerprint: B.fingerprint }), "Error", "frontend https example.com/hello (application app1) already uses certificate A"],
    ["REMOVE_CERTIFICATE in use", () => spec("32", "REMOVE_CERTIFICATE", A.fingerprint), "Error", "certificate A is used by https frontends: example.com/hello (application app1)"],
    ["REMOVE_HTTPS_FRONT spec", () => spec("33", "REMOVE_HTTPS_FRONT", { ...front, fingerprint: A.fingerprint }), "Ok", "https frontend example.com/hello (application app1) removed"],
    ["REMOVE_HTTPS_FRONT PROXY, absent", proxy("34", "REMOVE_HTTPS_FRONT", front), "Error", "No such frontend: https example.com/hello (application app1)"],
    ["REMOVE_CERTIFICATE bare string", () => spec("35", "REMOVE_CERTIFICATE", A.fingerprint), "Ok", "certificate A removed"],
    ["REMOVE_CERTIFICATE {fingerprint} PROXY", () => proxy("36", "REMOVE_CERTIFICATE", { fingerprint: B.fingerprint }), "Ok", "certificate B removed"],
    ["REMOVE_CERTIFICATE absent", () => outer("37", "REMOVE_CERTIFICATE", { fingerprint: B.fingerprint }), "Error", "No such certificate B"],
    ["ROUTES", outer("38", "ROUTES"), "Ok", "routes", [{ hostname: "*.example.com", pathBegin: "", source: "command", protocols: ["http"], app: "app2", backends: [] }]],
    ["STATUS top-level", outer("39", "STATUS"), "Ok", "workers", [{ id: 0, pid: process.pid, run_state: "RUNNING" }]],
    ["STATUS data.type", spec("40", "STATUS"), "Ok", "workers", [{ id: 0, pid: process.pid, run_state: "RUNNING" }]],
    ["STATUS PROXY", proxy("41", "STATUS"), "Ok", "workers", [{ id: 0, pid: process.pid, run_state: "RUNNING" }]],
    ["DUMP_STATE top-level", outer("42", "DUMP_STATE"), "Ok", "state", {
      applications: [
        { app_id: "app1", sticky_session: false, https_redirect: true, load_balancing_policy: "leastconnections" },
        { app_id: "app2", sticky_session: false, https_redirect: false, load_balancing_policy: "roundrobin" },
      ],
      http_fronts: [{ app_id: "app2", hostname: "*.example.com", path_begin: "" }],
      https_fronts: [],
      backends: [{ app_id: "app1", backend_id: "[::1]:9000", address: "[::1]:9000" }],
      certificates: {},
    }],
    ["UPGRADE_MASTER top-level", outer("43", "UPGRADE_MASTER"), "Error", "upgrade failed: test: no new master; this master keeps serving"],
    ["UPGRADE_MASTER data.type", spec("44", "UPGRADE_MASTER"), "Error", "upgrade failed: test: no new master; this master keeps serving"],
    ["REMOVE_APPLICATION spec", spec("45", "REMOVE_APPLICATION", { app_id: "app1" }), "Ok", "application app1 removed with 0 frontends and 1 backends"],
    ["REMOVE_APPLICATION bare string, absent", proxy("46", "REMOVE_APPLICATION", "app1"), "Error", "No such application app1"],
    ["REMOVE_APPLICATION outer", outer("47", "REMOVE_APPLICATION", { app_id: "app2" }), "Ok", "application app2 removed with 1 frontends and 0 backends"],
    ["DUMP_STATE data.type, empty", spec("48", "DUMP_STATE"), "Ok", "state", { applications: [], http_fronts: [], https_fronts: [], backends: [], certificates: {} }],
    ["version 1", { ...spec("49", "STATUS"), version: 1 }, "Error", "unsupported protocol version 1"],
    ["worker_id of no worker", { ...spec("50", "STATUS"), worker_id: 3 }, "Error", 'no such worker: "3" (this proxy has one worker, id 0)'],
  ].map((r) => r as Row);
  for (const row of rows) {
    const [name, reqOrFn, status, messageTpl, dataOrFn] = row as unknown as [string, unknown, string, string, unknown];
    const req = (typeof reqOrFn === "function" ? reqOrFn() : reqOrFn) as Record<string, unknown>;
    const message = messageTpl.replace(/certificate A\b/, `certificate ${A.fingerprint}`).replace(/certificate B\b/, `certificate ${B.fingerprint}`);
    const data = typeof dataOrFn === "function" ? dataOrFn() : dataOrFn;
    const got = await c.request(req);
    const want = { id: req.id, version: 0, status, message, ...(data !== undefined && { data }) };
    assert.deepEqual(got, want, name);
  }
});

test("SOFT_STOP (top-level and data.type): Processing, requestStop(true), Ok when the component stops", async () => {
  for (const req of [outer("s1", "SOFT_STOP"), spec("s2", "SOFT_STOP"), proxy("s3", "SOFT_STOP")]) {
    const hh = await startCommand();
    const c = await hh.client();
    c.send(req);
    const first = await c.waitFor((a) => a.id === req.id);
    assert.deepEqual(first, { id: req.id, version: 0, status: "Processing", message: "soft stop: draining in-flight requests" });
    assert.deepEqual(hh.stops, [true]);
    const st = await c.request(outer("st", "STATUS"));
    assert.deepEqual(st.data, [{ id: 0, pid: process.pid, run_state: "STOPPING" }]);
    await hh.comp.stop(true, performance.now() + 1000); // what the daemon does after the others drained
    const final = await c.waitFor((a) => a.id === req.id && a.status !== "Processing");
    assert.deepEqual(final, { id: req.id, version: 0, status: "Ok", message: "soft stop done" });
    await hh.close();
  }
});

test("HARD_STOP (top-level and data.type): Ok, then requestStop(false)", async () => {
  for (const req of [outer("h1", "HARD_STOP"), spec("h2", "HARD_STOP")]) {
    const hh = await startCommand();
    const c = await hh.client();
    const a = await c.request(req);
    assert.deepEqual(a, { id: req.id, version: 0, status: "Ok", message: "hard stop" });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(hh.stops, [false]);
    await hh.close();
  }
});
