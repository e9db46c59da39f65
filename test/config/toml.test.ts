import { test } from "node:test";
import assert from "node:assert/strict";
import { parseToml, MAX_LINE, MAX_ERRORS } from "../../src/config/toml.js";

const parse = (text: string) => parseToml(text);
const value = (text: string, key = "k") => {
  const r = parse(text);
  assert.deepEqual(r.errors, []);
  return r.doc.root.get(key)?.value;
};
const errorOf = (text: string) => {
  const r = parse(text);
  assert.equal(r.errors.length, 1, JSON.stringify(r.errors));
  return r.errors[0]!;
};

test("values: basic and literal strings, escapes, integers, booleans, arrays", () => {
  assert.equal(value('k = "a\\tb\\u00e9\\U0001F600\\"\\\\"'), 'a\tbé😀"\\');
  assert.equal(value("k = 'C:\\path\\no escapes'"), "C:\\path\\no escapes");
  assert.equal(value("k = 1_000"), 1000);
  assert.equal(value("k = -0"), 0);
  assert.equal(value("k = +42"), 42);
  assert.equal(value("k = true"), true);
  assert.deepEqual(value('k = ["a", \'b\', "c",]'), ["a", "b", "c"]);
  assert.deepEqual(value("k = []"), []);
  assert.equal(value('"k" = "quoted key"'), "quoted key");
  assert.equal(value('k = "has # hash" # comment'), "has # hash");
  assert.equal(value("k = 'it''s'".replace("''", "")), "its");
});

test("comments, blank lines, CRLF and a BOM", () => {
  const r = parse('\ufeff# top\r\n\r\nk = 1\r\n  # indented\r\n[[site]] # c\r\nhostname = "x"\r\n');
  assert.deepEqual(r.errors, []);
  assert.equal(r.doc.root.get("k")?.value, 1);
  assert.equal(r.doc.arrays.get("site")?.[0]?.table.get("hostname")?.value, "x");
  assert.equal(r.doc.arrays.get("site")?.[0]?.line, 5);
});

test("errors carry the line number and every one is collected", () => {
  const r = parse('a = 1\nb = \nc = 1.5\nd = "open\ne = [1]\na = 2\nf.g = 1\n[bad name]\n= 3\nno equals\n');
  assert.deepEqual(
    r.errors.map((e) => e.line),
    [2, 3, 4, 5, 6, 7, 8, 9, 10],
  );
  assert.match(r.errors[4]!.message, /duplicate key a \(first on line 1\)/);
  assert.match(r.errors[5]!.message, /dotted keys are not supported/);
});

test("unsupported TOML is an error, not a silent misread", () => {
  for (const text of ['k = """x"""', "k = 0x10", "k = 1e3", "k = 2026-01-01", "k = { a = 1 }", 'k = ["a",\n"b"]', "k = [[]]", "k = 99999999999999999999", 'k = "\\x41"', 'k = "\\ud800"'])
    assert.ok(parse(text).errors.length >= 1, text);
});

test("control characters (other than tab) anywhere are errors", () => {
  assert.match(errorOf('k = "a\x01b"').message, /control character/);
  assert.match(errorOf("# comment \x00").message, /control character/);
  assert.match(errorOf("k = 1\r2").message, /control character/);
  assert.equal(value('k =\t"tab\tok"'), "tab\tok");
});

test("limits: line length, number of errors", () => {
  assert.match(errorOf(`k = "${"x".repeat(MAX_LINE)}"`).message, /line longer than/);
  const r = parse("bad\n".repeat(1000));
  assert.equal(r.errors.length, MAX_ERRORS + 1);
  assert.match(r.errors.at(-1)!.message, /too many errors/);
});

test("tables: [section], [[array]], duplicates, keys after a broken header are not root keys", () => {
  const r = parse('[s]\na = 1\n[s]\n[[t]]\nb = 1\n[[t]]\nb = 2\n[x y]\nc = 3\n');
  assert.equal(r.doc.sections.get("s")?.table.get("a")?.value, 1);
  assert.equal(r.doc.arrays.get("t")?.length, 2);
  assert.deepEqual(r.errors.map((e) => e.line), [3, 8]);
  assert.equal(r.doc.root.size, 0);
});
