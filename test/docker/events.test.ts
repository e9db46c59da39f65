import { test } from "node:test";
import assert from "node:assert/strict";
import { LineSplitter, parseEventLine } from "../../src/docker/events.js";

const lines = (s: LineSplitter, ...chunks: (string | Buffer)[]) =>
  chunks.flatMap((c) => s.push(typeof c === "string" ? Buffer.from(c) : c)).map((b) => b.toString("utf8"));

const ev = (action: string, id = "abc") => JSON.stringify({ Type: "container", Action: action, Actor: { ID: id, Attributes: {} }, time: 1, timeNano: 1 });

test("half an event waits for the rest", () => {
  const s = new LineSplitter();
  const e = ev("start") + "\n";
  assert.deepEqual(lines(s, e.slice(0, 20)), []);
  assert.equal(s.pending, 20);
  const out = lines(s, e.slice(20));
  assert.equal(out.length, 1);
  assert.equal(parseEventLine(Buffer.from(out[0]!))?.Action, "start");
  assert.equal(s.pending, 0);
});

test("several events in one chunk, CRLF and blank lines", () => {
  const s = new LineSplitter();
  const out = lines(s, `${ev("create")}\n${ev("start")}\r\n\n${ev("die").slice(0, 5)}`);
  assert.deepEqual(out.map((l) => parseEventLine(Buffer.from(l))?.Action), ["create", "start", undefined]);
  assert.equal(out[2], "");
  assert.equal(s.pending, 5);
});

test("a UTF-8 character split between chunks survives", () => {
  const s = new LineSplitter();
  const bytes = Buffer.from(ev("rename", "Grüße-😀") + "\n");
  const cut = bytes.indexOf(Buffer.from("😀")) + 2; // inside the 4-byte character
  const out = s.push(bytes.subarray(0, cut)).concat(s.push(bytes.subarray(cut)));
  assert.equal(out.length, 1);
  assert.equal(parseEventLine(out[0]!)?.Actor.ID, "Grüße-😀");
});

test("an over-long line is dropped once and the stream resynchronises at the next newline", () => {
  const dropped: number[] = [];
  const s = new LineSplitter(100, (n) => dropped.push(n));
  const long = "x".repeat(250);
  const out = lines(s, long.slice(0, 60), long.slice(60, 180), long.slice(180) + "\n" + ev("start").slice(0, 10), ev("start").slice(10) + "\n");
  assert.equal(dropped.length, 1);
  assert.equal(out.length, 1);
  assert.equal(parseEventLine(Buffer.from(out[0]!))?.Action, "start");
  // exactly at the limit is kept
  const t = new LineSplitter(10);
  assert.deepEqual(lines(t, "0123456789\n"), ["0123456789"]);
  assert.deepEqual(lines(t, "0123456789A\nok\n"), ["ok"]);
});

test("malformed lines are not events", () => {
  for (const l of ["", "{", "null", "[]", "42", '{"Action":"start"}', '{"Action":"x","Actor":{}}']) assert.equal(parseEventLine(Buffer.from(l)), undefined, l);
});

test("fuzz: any chunking yields the same lines (seeded)", () => {
  let seed = 0x5eed;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
  const alphabet = ["a", "é", "😀", "{", "\"", "\n", "\r\n", "x".repeat(50)];
  for (let round = 0; round < 300; round++) {
    let text = "";
    for (let i = 0, n = rnd(40); i < n; i++) text += alphabet[rnd(alphabet.length)];
    const bytes = Buffer.from(text);
    const max = 64;
    const expected: string[] = [];
    const parts = text.split("\n");
    parts.pop(); // the unfinished tail
    for (const p of parts) {
      const line = p.endsWith("\r") ? p.slice(0, -1) : p;
      if (Buffer.byteLength(p) <= max) expected.push(line);
    }
    const s = new LineSplitter(max);
    const got: string[] = [];
    for (let i = 0; i < bytes.length; ) {
      const n = 1 + rnd(9);
      for (const l of s.push(bytes.subarray(i, i + n))) got.push(l.toString("utf8"));
      i += n;
    }
    assert.deepEqual(got, expected, JSON.stringify(text));
  }
});
