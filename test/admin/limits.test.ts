// Input limits of the admin socket, each answered as specified and the connection closed.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { adminRaw, parseReply, ONLY_ADMIN } from "../helpers/admin.js";

const INVALID = { status: "error", message: "invalid input" };
let d: TestDaemon;
before(async () => {
  d = await startDaemon({ disable: [...ONLY_ADMIN] });
});
after(() => d.cleanup());

test("a client silent for 5 s gets invalid input and is closed (also after a partial line)", async () => {
  const [silent, partial] = await Promise.all([adminRaw(d.adminSocket, undefined, { timeoutMs: 20_000 }), adminRaw(d.adminSocket, "stat", { timeoutMs: 20_000 })]);
  for (const r of [silent, partial]) {
    assert.deepEqual(parseReply(r.reply), INVALID);
    // 5 s, with room for a loaded machine (without the timeout it would never close)
    assert.ok(r.ms >= 4900 && r.ms < 10_000, `closed after ${r.ms} ms`);
  }
});

test("4 KiB without a newline: invalid input and closed; exactly 4096 bytes before the newline is still a line", async () => {
  const long = await adminRaw(d.adminSocket, "a".repeat(4097));
  assert.deepEqual(parseReply(long.reply), INVALID);
  assert.ok(long.ms < 4000, "answered at once, not at the silence timeout");
  // a client that keeps sending (1 MiB) is cut off after the limit, not read to the end
  assert.deepEqual(parseReply((await adminRaw(d.adminSocket, Buffer.alloc(1 << 20, 0x61))).reply), INVALID);
  const edge = await adminRaw(d.adminSocket, "status" + " ".repeat(4090) + "\n");
  assert.equal(parseReply(edge.reply).status, "ok");
  const over = await adminRaw(d.adminSocket, "status" + " ".repeat(4091) + "\n");
  assert.deepEqual(parseReply(over.reply), INVALID);
});

test("\\r\\n and surrounding spaces are accepted", async () => {
  for (const input of ["status\r\n", "  status  \n", " status\r\n", "status   \r\n"]) {
    const r = parseReply((await adminRaw(d.adminSocket, input)).reply);
    assert.equal(r.status, "ok", JSON.stringify(input));
    assert.ok("uptime_secs" in r);
  }
});

test("binary garbage, non-UTF-8 and control characters: invalid input", async () => {
  const inputs = [
    Buffer.from([0x00, 0x01, 0x02, 0xff, 0xfe, 0x0a]),
    Buffer.from([0xff, 0x73, 0x74, 0x0a]),
    Buffer.from("status\x07\n"),
    Buffer.from("status\r\r\n"),
    Buffer.from("sta\ttus\n"),
    Buffer.from("\x7f\n"),
    Buffer.from("status\u0085\n"),
    Buffer.from([0xed, 0xa0, 0x80, 0x0a]), // an encoded surrogate is not UTF-8
  ];
  for (const input of inputs) assert.deepEqual(parseReply((await adminRaw(d.adminSocket, input)).reply), INVALID, input.toString("hex"));
});

test("two commands on one line: invalid input (status and reload take no arguments)", async () => {
  assert.deepEqual(parseReply((await adminRaw(d.adminSocket, "status reload\n")).reply), INVALID);
  assert.deepEqual(parseReply((await adminRaw(d.adminSocket, "reload status\n")).reply), INVALID);
  assert.deepEqual(parseReply((await adminRaw(d.adminSocket, "reload;status\n")).reply), { status: "error", message: "unknown command: reload;status" });
});

test("two lines in one write: only the first is answered, then the connection closes", async () => {
  const r = await adminRaw(d.adminSocket, "bogus\nstatus\n");
  assert.deepEqual(parseReply(r.reply), { status: "error", message: "unknown command: bogus" });
});

test("concurrent admin connections are bounded: beyond 64 the answer is too many connections", async () => {
  const idle: Socket[] = [];
  try {
    for (let i = 0; i < 64; i++) {
      const s = connect(d.adminSocket);
      s.on("error", () => {});
      await new Promise((r) => s.once("connect", r));
      idle.push(s);
    }
    // the daemon has counted them once its status shows them
    const deadline = performance.now() + 15_000;
    let extra;
    for (;;) {
      extra = parseReply((await adminRaw(d.adminSocket, "status\n")).reply);
      if (extra.status === "error" || performance.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(extra, { status: "error", message: "too many connections" });
  } finally {
    for (const s of idle) s.destroy();
  }
  // the slots come back
  const deadline = performance.now() + 15_000;
  for (;;) {
    const r = parseReply((await adminRaw(d.adminSocket, "status\n")).reply);
    if (r.status === "ok") break;
    assert.ok(performance.now() < deadline, "slots freed");
    await new Promise((res) => setTimeout(res, 20));
  }
});

test("fuzz: 300 random and mutated inputs over real connections, each one well-formed answer", async () => {
  let seed = 0x5eed;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
  const seeds = ["status\n", "reload\n", "  status\r\n", "unknown\n", "\n"];
  const inputs: Buffer[] = [];
  for (let i = 0; i < 300; i++) {
    let b: Buffer;
    if (i % 3 === 0) {
      b = Buffer.alloc(rand(64));
      for (let j = 0; j < b.length; j++) b[j] = rand(256);
      b = Buffer.concat([b, Buffer.from("\n")]);
    } else {
      b = Buffer.from(seeds[rand(seeds.length)]!);
      for (let k = rand(4); k > 0; k--) b[rand(b.length)] = rand(256);
      if (!b.includes(0x0a)) b = Buffer.concat([b, Buffer.from("\n")]);
    }
    inputs.push(b);
  }
  for (let i = 0; i < inputs.length; i += 20) {
    const replies = await Promise.all(inputs.slice(i, i + 20).map((b) => adminRaw(d.adminSocket, b)));
    for (const r of replies) {
      const reply = parseReply(r.reply);
      assert.ok(reply.status === "ok" || (reply.status === "error" && typeof reply.message === "string"), r.reply);
    }
  }
  assert.equal(parseReply((await adminRaw(d.adminSocket, "status\n")).reply).status, "ok", "still serving");
});
