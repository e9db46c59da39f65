// NUL framing, frame limit, concurrency by id, bad input answered, connection bounds.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { join } from "node:path";
import { waitFor } from "../../helpers/docker.js";
import { startCommand, type Harness } from "./helpers.js";
import { FrameReader } from "../../../src/proxy/command/frame.js";
import { MAX_CONNECTIONS } from "../../../src/proxy/command/server.js";

let h: Harness;
before(async () => {
  h = await startCommand();
});
after(() => h.close());

const status = (id: string) => JSON.stringify({ id, version: 0, type: "STATUS" });

test("FrameReader: many frames per read, frames across reads, UTF-8 split across reads", () => {
  const r = new FrameReader(100);
  assert.deepEqual(r.push(Buffer.from("a\0b\0c")), [{ kind: "frame", text: "a" }, { kind: "frame", text: "b" }]);
  const euro = Buffer.from("€\0"); // 3 bytes + NUL
  assert.deepEqual(r.push(euro.subarray(0, 1)), []);
  assert.deepEqual(r.push(euro.subarray(1, 2)), []);
  assert.deepEqual(r.push(euro.subarray(2)), [{ kind: "frame", text: "c€" }]);
  assert.deepEqual(r.push(Buffer.from([0xff, 0])), [{ kind: "bad-utf8" }]);
  assert.deepEqual(r.push(Buffer.alloc(101, 0x61)), [{ kind: "too-large", limit: 100 }]);
  assert.deepEqual(r.push(Buffer.from("x\0")), [], "a failed reader stays failed");
  const exact = new FrameReader(3);
  assert.deepEqual(exact.push(Buffer.from("abc\0abcd")), [{ kind: "frame", text: "abc" }, { kind: "too-large", limit: 3 }]);
});

test("100 messages in one write are all answered", async () => {
  const c = await h.client();
  c.socket.write(Array.from({ length: 100 }, (_, i) => status(`m${i}`) + "\0").join(""));
  for (let i = 0; i < 100; i++) assert.equal((await c.waitFor((a) => a.id === `m${i}`)).status, "Ok");
  assert.equal(c.answers.length, 100);
});

test("one message written one byte at a time (with a multi-byte character) is answered", async () => {
  const c = await h.client();
  const bytes = Buffer.from(JSON.stringify({ id: "slow-€", version: 0, type: "STATUS" }) + "\0");
  for (const b of bytes) {
    c.socket.write(Buffer.from([b]));
    await new Promise((r) => setImmediate(r));
  }
  const a = await c.waitFor((x) => x.id === "slow-€");
  assert.equal(a.status, "Ok");
});

test("a 2 MiB frame gets Error with id \"\" and the connection is closed", async () => {
  const c = await h.client();
  const closed = new Promise((r) => c.socket.once("close", r));
  c.socket.write(Buffer.alloc(2 * 1024 * 1024, 0x20));
  const a = await c.waitFor(() => true);
  assert.deepEqual(a, { id: "", version: 0, status: "Error", message: "frame larger than 1048576 bytes; closing the connection" });
  await closed;
});

test("50 concurrent requests on one connection are answered by id", async () => {
  const c = await h.client();
  const reqs = Array.from({ length: 50 }, (_, i) =>
    i % 2 === 0
      ? { id: `c${i}`, version: 0, data: { type: "ADD_BACKEND", data: { app_id: "conc", ip_address: "127.0.0.1", port: 10_000 + i } } }
      : { id: `c${i}`, version: 0, type: "DUMP_STATE" });
  const answers = await Promise.all(reqs.map((r) => c.request(r)));
  for (const [i, a] of answers.entries()) {
    assert.equal(a.id, `c${i}`);
    assert.equal(a.status, "Ok");
    if (i % 2 === 0) assert.equal(a.message, `backend 127.0.0.1:${10_000 + i} (127.0.0.1:${10_000 + i}) added to application conc`);
    else assert.equal(a.message, "state");
  }
  assert.equal(h.comp.state.backends().filter((b) => b.appId === "conc").length, 25);
});

test("every kind of bad input is answered with an Error naming the problem", async () => {
  const c = await h.client();
  const cases: [frame: string | Buffer, id: string, message: string | RegExp][] = [
    ["{not json", "", /^invalid JSON: /],
    ['{"id":"broken", "version":0, "type": STATUS}', "broken", /^invalid JSON: /],
    ["[1,2]", "", "a request must be a JSON object"],
    ['"STATUS"', "", "a request must be a JSON object"],
    ['{"version":0,"type":"STATUS"}', "", "missing id"],
    ['{"id":7,"type":"STATUS"}', "", "id must be a string"],
    [JSON.stringify({ id: "x".repeat(300), type: "STATUS" }), "", "id longer than 256 characters"],
    ['{"id":"v","version":"0","type":"STATUS"}', "v", "version must be a non-negative integer"],
    ['{"id":"v2","version":2,"type":"STATUS"}', "v2", "unsupported protocol version 2"],
    ['{"id":"w","worker_id":true,"type":"STATUS"}', "w", "worker_id must be a number or a string"],
    ['{"id":"t","type":5}', "t", "type must be a string"],
    ['{"id":"u","type":"FROB"}', "u", 'unknown message type "FROB"'],
    ['{"id":"u2","data":{"type":"FROB"}}', "u2", 'unknown message type "FROB"'],
    ['{"id":"nt"}', "nt", "missing type (expected a top-level type or data.type)"],
    ['{"id":"nt2","data":{}}', "nt2", "missing data.type"],
    ['{"id":"nt3","data":[1]}', "nt3", "data must be an object with a type"],
    ['{"id":"nt4","data":{"type":1}}', "nt4", "data.type must be a string"],
    ['{"id":"p","type":"PROXY","data":"x"}', "p", "PROXY: data must be an object with a string type"],
    ['{"id":"md","type":"ADD_BACKEND"}', "md", "ADD_BACKEND: missing data"],
    ['{"id":"do","type":"ADD_BACKEND","data":[]}', "do", "ADD_BACKEND: data must be an object"],
    ['{"id":"f1","data":{"type":"ADD_BACKEND","data":{"ip_address":"127.0.0.1","port":1}}}', "f1", "ADD_BACKEND: missing field app_id"],
    ['{"id":"f2","data":{"type":"ADD_BACKEND","data":{"app_id":"a","port":1}}}', "f2", "ADD_BACKEND: missing field ip_address (or address)"],
    ['{"id":"f3","data":{"type":"ADD_BACKEND","data":{"app_id":"a","ip_address":"127.0.0.1"}}}', "f3", "ADD_BACKEND: missing field port"],
    ['{"id":"f4","data":{"type":"ADD_BACKEND","data":{"app_id":"a","ip_address":"127.0.0.1","port":"80"}}}', "f4", "ADD_BACKEND: port must be an integer from 1 to 65535"],
    ['{"id":"f5","data":{"type":"ADD_BACKEND","data":{"app_id":"a","ip_address":"localhost","port":80}}}', "f5", 'ADD_BACKEND: ip_address must be an IPv4 or IPv6 address, got "localhost"'],
    ['{"id":"f6","data":{"type":"ADD_BACKEND","data":{"app_id":"a","address":"1.2.3.4"}}}', "f6", 'ADD_BACKEND: address must be "ip:port" (IPv6 as "[ip]:port"), got "1.2.3.4"'],
    ['{"id":"f7","data":{"type":"ADD_BACKEND","data":{"app_id":5,"address":"1.2.3.4:5"}}}', "f7", "ADD_BACKEND: app_id must be a string"],
    ['{"id":"f8","data":{"type":"ADD_HTTP_FRONT","data":{"app_id":"a","hostname":"a..b"}}}', "f8", 'ADD_HTTP_FRONT: hostname "a..b" is not a host name or a one-label wildcard (*.example.com)'],
    ['{"id":"f9","data":{"type":"ADD_HTTP_FRONT","data":{"app_id":"a","hostname":"*.*.b"}}}', "f9", 'ADD_HTTP_FRONT: hostname "*.*.b" is not a host name or a one-label wildcard (*.example.com)'],
    ['{"id":"f10","data":{"type":"ADD_HTTP_FRONT","data":{"app_id":"a","hostname":"a.b","path_begin":"x"}}}', "f10", 'ADD_HTTP_FRONT: path_begin must be empty or start with "/", got "x"'],
    ['{"id":"f11","data":{"type":"ADD_HTTPS_FRONT","data":{"app_id":"a","hostname":"a.b"}}}', "f11", "ADD_HTTPS_FRONT: missing field fingerprint"],
    ['{"id":"f12","data":{"type":"REMOVE_CERTIFICATE","data":"abc"}}', "f12", 'REMOVE_CERTIFICATE: data must be a SHA-256 fingerprint (64 hex digits), got "abc"'],
    ['{"id":"f13","data":{"type":"ADD_APPLICATION","data":{"app_id":"a","sticky_session":"yes"}}}', "f13", "ADD_APPLICATION: sticky_session must be a boolean"],
    ['{"id":"f14","data":{"type":"ADD_APPLICATION","data":{"app_id":"a","load_balancing_policy":"fastest"}}}', "f14", 'ADD_APPLICATION: load_balancing_policy must be roundrobin, random or leastconnections, got "fastest"'],
    ['{"id":"f15","data":{"type":"ADD_CERTIFICATE","data":{"certificate":"x"}}}', "f15", "ADD_CERTIFICATE: missing field key"],
    ['{"id":"f16","data":{"type":"ADD_CERTIFICATE","data":{"certificate":"x","key":"y","certificate_chain":"z"}}}', "f16", "ADD_CERTIFICATE: certificate_chain must be an array of strings"],
    ['{"id":"f17","type":"SAVE_STATE","data":{}}', "f17", "SAVE_STATE: missing field path"],
    ['{"id":"f18","data":{"type":"ADD_HTTP_FRONT","data":{"app_id":"","hostname":"a.b"}}}', "f18", "ADD_HTTP_FRONT: app_id must not be empty"],
    [Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), "", "frame is not valid UTF-8"],
    ["", "", /^invalid JSON: /],
  ];
  for (const [frame, id, message] of cases) {
    const before = c.answers.length;
    c.send(frame);
    const a = await c.waitFor(() => c.answers.length > before);
    assert.equal(a, c.answers[before]);
    assert.equal(a.id, id, String(frame));
    assert.equal(a.status, "Error", String(frame));
    if (typeof message === "string") assert.equal(a.message, message);
    else assert.match(a.message, message);
  }
  // and the connection still works
  assert.equal((await c.request({ id: "after", type: "STATUS" })).status, "Ok");
});

test("connections are bounded: the one over the limit gets an Error and is closed", async () => {
  const socks = await Promise.all(Array.from({ length: MAX_CONNECTIONS }, () => new Promise<import("node:net").Socket>((res, rej) => {
    const s = connect(h.socket, () => res(s));
    s.once("error", rej);
  })));
  // the harness clients of earlier tests may still be open, so the extra one surely exceeds it
  const extra = connect(h.socket);
  let got = "";
  extra.setEncoding("utf8").on("data", (d: string) => (got += d));
  await new Promise((r) => extra.once("close", r));
  assert.match(got, /"status":"Error","message":"too many connections \(limit 64\)"/);
  for (const s of socks) s.destroy();
});

test("the socket is created with mode 0600", async () => {
  const { stat } = await import("node:fs/promises");
  assert.equal((await stat(h.socket)).mode & 0o777, 0o600);
});

test("per-connection work is bounded: at most MAX_IN_FLIGHT requests run, the rest wait unread", async (t) => {
  const { CommandServer, MAX_IN_FLIGHT } = await import("../../../src/proxy/command/server.js");
  const { ProxyState } = await import("../../../src/proxy/command/state.js");
  const { commandRoutes } = await import("../../../src/proxy/command/routes.js");
  const { CommandClient } = await import("../../../src/proxy/command/client.js");
  const state = new ProxyState();
  let release: () => void = () => {};
  const gate = new Promise<undefined>((r) => (release = () => r(undefined)));
  const srv = new CommandServer(1 << 20, {
    state, stateDir: h.dir, persist: () => gate, routes: () => commandRoutes(state),
    softStop: () => {}, hardStop: () => {}, runState: () => "RUNNING", exclusive: (fn) => fn(),
    upgrading: () => false, upgrade: async () => ({ ok: false, reason: "test" }),
  });
  const path = join(h.dir, "bounded.sock");
  await new Promise<void>((r) => srv.server.listen(path, r));
  t.after(() => srv.close(performance.now()));
  const c = await CommandClient.connect(path);
  t.after(() => c.close());
  const n = 100;
  const all = Promise.all(Array.from({ length: n }, (_, i) =>
    c.request({ id: `g${i}`, version: 0, data: { type: "ADD_BACKEND", data: { app_id: "g", ip_address: "127.0.0.1", port: 1 + i } } })));
  // every started request applies its change and waits for the (held) save
  await waitFor("in-flight requests", () => state.backends().length >= MAX_IN_FLIGHT);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(state.backends().length, MAX_IN_FLIGHT, "no more than MAX_IN_FLIGHT requests started");
  assert.equal(c.answers.length, 0);
  release();
  const answers = await all;
  assert.equal(answers.filter((a) => a.status === "Ok").length, n);
  assert.equal(state.backends().length, n);
});

test("frames before an oversized one in the same read are answered before the Error", async () => {
  const c = await h.client();
  const closed = new Promise((r) => c.socket.once("close", r));
  c.socket.write(Buffer.concat([Buffer.from(status("first") + "\0" + status("second") + "\0"), Buffer.alloc(1024 * 1024 + 1, 0x20)]));
  await closed;
  assert.deepEqual(c.answers.map((a) => [a.id, a.status]), [["first", "Ok"], ["second", "Ok"], ["", "Error"]]);
});
