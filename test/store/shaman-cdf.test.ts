// Checkout Definition File parsing: the rules line by line, every bad line reported, and a fuzz run.
import { test } from "node:test";
import assert from "node:assert/strict";
import { posix } from "node:path";
import { parseCdf, pathProblem, CDF_LIMITS } from "../../src/store/index.js";
import { intRng, mutate } from "../helpers/random.js";

const A = "a".repeat(64);
const B = "0123456789abcdef".repeat(4);

function errorsOf(text: string | Buffer): string[] {
  const r = parseCdf(Buffer.isBuffer(text) ? text : Buffer.from(text));
  assert.equal(r.ok, false, `expected errors for ${JSON.stringify(text.toString())}`);
  return r.ok ? [] : r.errors;
}

test("good lines: checksum (lowercased), size, path with spaces; LF, CRLF and no final newline", () => {
  const r = parseCdf(Buffer.from(`${A} 10 dir/file one.blend\r\n${B.toUpperCase()} 0 other\n${A} 10 x/y/z`));
  assert.ok(r.ok);
  assert.deepEqual(r.entries, [
    { sha: A, size: 10, path: "dir/file one.blend", line: 1 },
    { sha: B, size: 0, path: "other", line: 2 },
    { sha: A, size: 10, path: "x/y/z", line: 3 },
  ]);
  assert.deepEqual(parseCdf(Buffer.alloc(0)), { ok: true, entries: [] });
  assert.ok(parseCdf(Buffer.from(`${A} 1 f\n`)).ok);
});

test("every bad line is reported with its number and reason", () => {
  const lines = [
    `${A} 1 ok`,
    `${A.slice(1)} 1 short-sum`,
    `${"g".repeat(64)} 1 not-hex`,
    `${A} -1 neg`,
    `${A} 01 leading-zero`,
    `${A} 1.5 fraction`,
    `${A} 99999999999999999 huge`,
    `${A} 1 /abs/path`,
    `${A} 1 ../up`,
    `${A} 1 a/../../b`,
    `${A} 1 a/./b`,
    `${A} 1 a//b`,
    `${A} 1 dir/`,
    `${A} 1 .`,
    `${A} 1 nul\0byte`,
    `${A} 1 ok`,
    ``,
    `${A} 1`,
    `${A}  1 double-space`,
    `${A} 1 ok/under-a-file`,
    `${A} 1 tab\there`,
    `${A} 1 ${"x".repeat(256)}`,
  ];
  const errs = errorsOf(lines.join("\n"));
  const byLine = new Map(errs.map((e) => [Number(/^invalid line (\d+): /.exec(e)![1]), e]));
  assert.deepEqual([...byLine.keys()], Array.from({ length: lines.length - 1 }, (_, i) => i + 2));
  assert.match(byLine.get(2)!, /checksum must be 64 hexadecimal/);
  assert.match(byLine.get(4)!, /not a non-negative decimal integer/);
  assert.match(byLine.get(7)!, /too large/);
  assert.match(byLine.get(8)!, /must be relative/);
  assert.match(byLine.get(9)!, /must not contain "\.\."/);
  assert.match(byLine.get(10)!, /must not contain "\.\."/);
  assert.match(byLine.get(11)!, /not clean/);
  assert.match(byLine.get(12)!, /not clean/);
  assert.match(byLine.get(15)!, /NUL/);
  assert.match(byLine.get(16)!, /duplicate path \(first on line 1\)/);
  assert.match(byLine.get(17)!, /empty line/);
  assert.match(byLine.get(18)!, /expected \{sha256\} \{size\} \{path\}/);
  assert.match(byLine.get(19)!, /not a non-negative decimal integer/);
  assert.match(byLine.get(20)!, /parent "ok" is a file on line 1/);
  assert.match(byLine.get(22)!, /segment longer than 255/);
});

test("a file and a directory of the same name conflict in either order; invalid UTF-8 is refused", () => {
  assert.match(errorsOf(`${A} 1 a/b\n${A} 1 a`)[0]!, /invalid line 2: path is a directory of the path on line 1/);
  assert.match(errorsOf(Buffer.concat([Buffer.from(`${A} 1 `), Buffer.from([0xf6])]))[0]!, /invalid line 1: not valid UTF-8/);
});

test("errors are bounded: past maxErrors one summary line", () => {
  const text = Array.from({ length: CDF_LIMITS.maxErrors + 5 }, () => "junk").join("\n");
  const errs = errorsOf(text);
  assert.equal(errs.length, CDF_LIMITS.maxErrors + 1);
  assert.equal(errs.at(-1), "... and 5 more invalid lines");
});

/** what the parser must guarantee of any path it accepts */
function assertSafe(path: string): void {
  assert.ok(path.length > 0 && !path.startsWith("/") && !path.includes("\0"), path);
  assert.equal(posix.normalize(path), path);
  assert.ok(!path.split("/").includes(".."), path);
  assert.ok(posix.join("/checkout", path).startsWith("/checkout/") && !posix.relative("/checkout", posix.join("/checkout", path)).split("/").includes(".."), path);
}

test("fuzz: 10,000 mutated files parse to entries that are all safe, or to line-numbered errors", () => {
  const rand = intRng(12);
  const seed: Buffer = Buffer.from([`${A} 10 dir/file one.blend`, `${B} 0 other`, `${A} 10 x/y/z`, `${B} 3 textures/wood.png`].join("\n"));
  const pieces = ["\n", "\r\n", " ", "/", "../", "..", "./", "\0", "//", A, "0", "-1", "1e3", "\xf6", "\xc3\xb6", "\xff\xfe", "a/b", "/etc/passwd"];
  let accepted = 0;
  for (let i = 0; i < 10_000; i++) {
    let buf = seed;
    for (let k = 1 + rand(4); k > 0; k--) buf = mutate(buf, rand, pieces);
    const r = parseCdf(buf);
    if (r.ok) {
      accepted++;
      const paths = new Set<string>();
      for (const e of r.entries) {
        assertSafe(e.path);
        assert.equal(pathProblem(e.path), "");
        assert.match(e.sha, /^[0-9a-f]{64}$/);
        assert.ok(Number.isSafeInteger(e.size) && e.size >= 0);
        assert.ok(!paths.has(e.path));
        paths.add(e.path);
      }
      for (const p of paths) for (let j = p.indexOf("/"); j >= 0; j = p.indexOf("/", j + 1)) assert.ok(!paths.has(p.slice(0, j)), `file under file: ${p}`);
    } else {
      assert.ok(r.errors.length > 0);
      for (const e of r.errors) assert.match(e, /^(invalid line \d+: .+|\.\.\. and \d+ more invalid lines)$/s);
    }
  }
  assert.ok(accepted > 100 && accepted < 9_900, `accepted ${accepted}`);
});
