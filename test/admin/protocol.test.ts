// The admin protocol in-process: framing, line rules, dispatch, status fields, and a fuzz of
// 10,000 random and mutated inputs through the same LineReader + dispatch the socket uses.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { dispatch, encodeReply, LineReader, parseLine, MAX_LINE_BYTES, type Handler, type Reply } from "../../src/admin/protocol.js";
import { statusReply, countSites } from "../../src/admin/commands.js";
import type { DaemonContext, Component } from "../../src/component/index.js";
import type { CatalogView, Revision } from "../../src/catalog/types.js";
import { parseConfig } from "../../src/config/index.js";
import { intRng as prng } from "../helpers/random.js";

const b = (s: string) => Buffer.from(s, "utf8");
const handlers: Record<string, Handler> = {
  status: (args) => (args.length ? { status: "error", message: "invalid input" } : { status: "ok", uptime_secs: 1, sites: 0 }),
  reload: async () => ({ status: "ok" }),
  boom: () => {
    throw new Error("bug");
  },
};

test("parseLine: words, trailing \\r and spaces; invalid: empty, non-UTF-8, controls, BOM, too long", () => {
  assert.deepEqual(parseLine(b("status")), ["status"]);
  assert.deepEqual(parseLine(b("  status  \r")), ["status"]);
  assert.deepEqual(parseLine(b("cmd  a b")), ["cmd", "a", "b"]);
  for (const bad of ["", "   ", "\r", "a\tb", "a\x00", "a\x1b", "a\x7f", "a\u0085", "\ufeffstatus", "status\r\r"]) assert.equal(parseLine(b(bad)), undefined, JSON.stringify(bad));
  assert.equal(parseLine(Buffer.from([0xff])), undefined);
  assert.equal(parseLine(Buffer.from([0xe2, 0x82])), undefined, "truncated UTF-8");
  assert.equal(parseLine(Buffer.alloc(MAX_LINE_BYTES + 1, 0x61)), undefined);
  assert.deepEqual(parseLine(b("héllo wörld")), ["héllo", "wörld"]);
});

test("LineReader: first newline ends the line, across chunks; more than 4 KiB without one is too long", () => {
  const r = new LineReader();
  assert.equal(r.feed(b("sta")), undefined);
  assert.deepEqual(r.feed(b("tus\nreload\n")), b("status"));
  const long = new LineReader();
  assert.equal(long.feed(Buffer.alloc(MAX_LINE_BYTES, 0x61)), undefined);
  assert.equal(long.feed(b("a")), "too-long");
  const edge = new LineReader();
  assert.equal(edge.feed(Buffer.alloc(MAX_LINE_BYTES, 0x61)), undefined);
  assert.equal((edge.feed(b("\n")) as Buffer).length, MAX_LINE_BYTES);
  const eof = new LineReader();
  eof.feed(b("status"));
  assert.deepEqual(eof.end(), b("status"));
});

test("dispatch: unknown command names the first word; no prototype lookups; a handler bug is an error reply", async () => {
  assert.deepEqual(await dispatch(b("status"), handlers), { status: "ok", uptime_secs: 1, sites: 0 });
  assert.deepEqual(await dispatch(b("nope a b"), handlers), { status: "error", message: "unknown command: nope" });
  for (const proto of ["constructor", "__proto__", "toString", "hasOwnProperty"])
    assert.deepEqual(await dispatch(b(proto), handlers), { status: "error", message: `unknown command: ${proto}` });
  const seen: unknown[] = [];
  assert.deepEqual(await dispatch(b("boom"), handlers, (e) => seen.push(e)), { status: "error", message: "internal error" });
  assert.equal(seen.length, 1);
  assert.equal(encodeReply({ status: "ok" }), '{"status":"ok"}\n');
  assert.equal(encodeReply({ status: "error", message: "unknown command: a\nb" }), '{"status":"error","message":"unknown command: a\\nb"}\n');
});

function fakeContext(opts: { sites?: string; components?: Partial<Component>[]; containers?: [string, string][] } = {}): DaemonContext {
  const rev: Revision = {
    seq: 3,
    ts: 1,
    containers: (opts.containers ?? []).map(([deployment, service], i) => ({ id: String(i), name: `c${i}`, deployment, service } as never)),
    deployments: [...new Set((opts.containers ?? []).map(([d]) => d))].sort(),
  };
  const catalog = Object.assign(new EventEmitter(), {
    current: () => rev,
    dockerState: () => "ok" as const,
    waiterCount: () => 7,
  }) as unknown as CatalogView;
  const config = parseConfig(opts.sites ?? "", "t.conf", {});
  return {
    config,
    dynamic: () => config.dynamic,
    catalog,
    startedAt: performance.now() - 65_400,
    components: (opts.components ?? []).map((c) => ({ name: "x", status: () => ({ state: "listening" }), ...c }) as Component),
  } as unknown as DaemonContext;
}

const site = (h: string, p = "/") => `[[site]]\nhostname = "${h}"\npath = "${p}"\nbackends = ["127.0.0.1:1"]\n`;

test("status: the spec's three fields first, then version, deployments, services, docker, listeners, pending_polls", () => {
  const ctx = fakeContext({
    sites: site("a.example.com") + site("A.EXAMPLE.COM", "/x") + site("b.example.com"),
    containers: [["web", "app"], ["web", "app"], ["web", "db"], ["mail", "smtp"]],
    components: [{ name: "admin", status: () => ({ state: "listening", address: "/run/a.sock" }) }, { name: "proxy", status: () => { throw new Error("oops"); } }],
  });
  const r = statusReply(ctx) as Record<string, unknown>;
  assert.deepEqual(Object.keys(r), ["status", "uptime_secs", "sites", "version", "deployments", "services", "docker", "listeners", "pending_polls"]);
  assert.equal(r.uptime_secs, 65);
  assert.equal(r.sites, 2);
  assert.equal(r.deployments, 2);
  assert.equal(r.services, 3);
  assert.equal(r.docker, "ok");
  assert.equal(r.pending_polls, 7);
  assert.deepEqual(r.listeners, { admin: { state: "listening", address: "/run/a.sock" }, proxy: { state: "unknown", error: "oops" } });
});

test("sites: the routed host names of components when any provides them, else the config's [[site]] host names", () => {
  assert.equal(countSites(fakeContext({ sites: site("a.example.com") })), 1);
  const ctx = fakeContext({
    sites: site("a.example.com"),
    components: [{ name: "proxy", routedHostnames: () => ["a.example.com", "B.example.com", "b.example.com", "c.example.com"] }],
  });
  assert.equal(countSites(ctx), 3);
});


test("fuzz: 10,000 random and mutated inputs through LineReader + dispatch, in random chunks", async () => {
  const rand = prng(0xad317);
  const seeds = ["status\n", "reload\n", " status \r\n", "status reload\n", "unknown x\n", "\n", "status\nreload\n"];
  const started = performance.now();
  for (let i = 0; i < 10_000; i++) {
    let input: Buffer;
    if (i % 2) {
      input = Buffer.alloc(rand(i % 100 === 1 ? 6000 : 80));
      for (let j = 0; j < input.length; j++) input[j] = rand(256);
    } else {
      input = Buffer.from(seeds[rand(seeds.length)]!);
      for (let k = rand(4); k > 0; k--) {
        const p = rand(input.length + 1);
        input = Buffer.concat([input.subarray(0, p), Buffer.from([rand(256)]), input.subarray(p + rand(2))]);
      }
    }
    // feed in random chunks, exactly as the socket does
    const reader = new LineReader();
    let line: Buffer | "too-long" | undefined;
    for (let pos = 0; pos < input.length && line === undefined; ) {
      const n = 1 + rand(64);
      line = reader.feed(input.subarray(pos, pos + n));
      pos += n;
    }
    line ??= reader.end();
    const reply: Reply = line === "too-long" ? { status: "error", message: "invalid input" } : await dispatch(line, handlers);
    const text = encodeReply(reply);
    assert.equal(text.indexOf("\n"), text.length - 1, "one line");
    const parsed = JSON.parse(text) as Record<string, unknown>;
    assert.ok(parsed.status === "ok" || (parsed.status === "error" && typeof parsed.message === "string"), text);
    // the reference: what the first line of the input must give
    const nl = input.indexOf(0x0a);
    const first = nl < 0 ? input : input.subarray(0, nl);
    if (first.length > MAX_LINE_BYTES) assert.equal(parsed.message, "invalid input");
    else if (parseLine(first) === undefined) assert.deepEqual(parsed, { status: "error", message: "invalid input" });
  }
  assert.ok(performance.now() - started < 20_000);
});
