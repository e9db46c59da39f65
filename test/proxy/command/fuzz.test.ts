// Fuzz the NUL-JSON reader and the message decoder with 10,000 seeded mutations of valid frames:
// nothing throws, and over a real connection every frame gets exactly one final answer.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { decodeRequest } from "../../../src/proxy/command/decode.js";
import { FrameReader } from "../../../src/proxy/command/frame.js";
import { startCommand, type Harness } from "./helpers.js";
import { rng } from "../../helpers/random.js";

/** mulberry32: a small seeded PRNG so failures reproduce */

const SEEDS = [
  { id: "1", version: 0, data: { type: "ADD_HTTP_FRONT", data: { app_id: "a", hostname: "x.example.com", path_begin: "/p" } } },
  { id: "2", version: 0, type: "PROXY", data: { type: "ADD_BACKEND", data: { app_id: "a", backend_id: "b", address: "127.0.0.1:80" } } },
  { id: "3", version: 0, data: { type: "REMOVE_HTTP_FRONT", app_id: "a", hostname: "x.example.com", path_begin: "/p", port: 1 } },
  { id: "4", version: 0, data: { type: "ADD_BACKEND", data: { app_id: "a", ip_address: "::1", port: 8080 } } },
  { id: "5", version: 0, data: { type: "REMOVE_CERTIFICATE", data: "ab".repeat(32) } },
  { id: "6", version: 0, type: "ADD_CERTIFICATE", data: { certificate: { certificate: "x", key: "y", certificate_chain: [] }, names: ["a.b"] } },
  { id: "7", version: 0, type: "STATUS", worker_id: "0" },
  { id: "8", version: 0, data: { type: "DUMP_STATE" } },
  { id: "9", version: 0, data: { type: "ADD_APPLICATION", data: { app_id: "a", sticky_session: true, load_balancing_policy: "random" } } },
  { id: "10", version: 0, type: "PROXY", data: { type: "ADD_HTTPS_FRONT", data: { app_id: "a", hostname: "*.a.b", fingerprint: "cd".repeat(32) } } },
].map((s) => JSON.stringify(s));
const TOKENS = ['"', "{", "}", "[", "]", ":", ",", "\\", "null", "true", "0", "-1", "1e999", '"type"', '"data"', '"PROXY"', '"id"', "\u00e9", "\ud83d", "\u0001"];

/** One mutated frame: a few byte flips, token inserts, deletions, truncations; never a NUL byte. */
function mutate(r: () => number): Buffer {
  let s = SEEDS[Math.floor(r() * SEEDS.length)]!;
  const n = 1 + Math.floor(r() * 4);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(r() * (s.length + 1));
    const op = r();
    if (op < 0.3) s = s.slice(0, at) + TOKENS[Math.floor(r() * TOKENS.length)] + s.slice(at);
    else if (op < 0.55) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(r() * 8));
    else if (op < 0.7) s = s.slice(0, at);
    else s = s.slice(0, at) + String.fromCharCode(1 + Math.floor(r() * 0x2ff)) + s.slice(at + 1);
  }
  const buf = Buffer.from(s);
  if (r() < 0.05 && buf.length) buf[Math.floor(r() * buf.length)] = 0x80 + Math.floor(r() * 0x7f); // invalid UTF-8
  for (let i = 0; i < buf.length; i++) if (buf[i] === 0) buf[i] = 0x20;
  return buf;
}

const N = 10_000;

test("decoder: 10,000 mutated frames never throw and always yield an order or a message", () => {
  const r = rng(42);
  for (let i = 0; i < N; i++) {
    const text = mutate(r).toString("utf8");
    const d = decodeRequest(text);
    if (d.ok) assert.equal(typeof d.order.type, "string");
    else assert.ok(d.message.length > 0 && typeof d.id === "string");
  }
});

test("reader: 10,000 mutated frames cut at random points come out whole", () => {
  const r = rng(7);
  const frames = Array.from({ length: N }, () => mutate(r));
  const stream = Buffer.concat(frames.flatMap((f) => [f, Buffer.from([0])]));
  const reader = new FrameReader(1 << 20);
  let got = 0;
  for (let at = 0; at < stream.length; ) {
    const len = 1 + Math.floor(r() * 300);
    for (const ev of reader.push(stream.subarray(at, at + len))) {
      assert.notEqual(ev.kind, "too-large");
      if (ev.kind === "frame") assert.equal(ev.text, frames[got]!.toString("utf8"));
      got++;
    }
    at += len;
  }
  assert.equal(got, N);
});

let h: Harness;
before(async () => {
  h = await startCommand();
});
after(() => h.close());

test("socket: 10,000 mutated frames are each answered (a final Ok/Error per frame)", async () => {
  const r = rng(1234);
  const c = await h.client();
  const frames = Array.from({ length: N }, () => mutate(r));
  // stop orders would end the harness; count what the mutations produced instead of sending them
  const stops = frames.filter((f) => { const d = decodeRequest(f.toString("utf8")); return d.ok && /STOP|SAVE_STATE|LOAD_STATE/.test(d.order.type); });
  const sendable = frames.filter((f) => !stops.includes(f));
  for (let i = 0; i < sendable.length; i += 500) {
    const batch = sendable.slice(i, i + 500);
    const before = c.finals;
    c.socket.write(Buffer.concat(batch.flatMap((f) => [f, Buffer.from([0])])));
    await c.waitFor(() => c.finals >= before + batch.length, 20_000);
  }
  assert.equal(c.finals, sendable.length);
  assert.ok(sendable.length > N * 0.99);
  for (const a of c.answers) assert.ok(["Ok", "Error"].includes(a.status) && typeof a.message === "string");
});
