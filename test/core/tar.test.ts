import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, mkdir, readdir, readFile, readlink, lstat, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { extractTarGz } from "../../src/core/binds.js";
import { Extractor, type ExtractSink } from "../../src/core/extract.js";
import { ArchiveError, ArchiveTooLarge, parsePax } from "../../src/core/tar.js";
import { tar, tgz, header, fixChecksum, type Member } from "./tarbuild.js";
import { rng } from "../helpers/random.js";

const LIMITS = { maxBytes: 1024 * 1024, maxEntries: 1000 };

async function withDirs(fn: (root: string, dest: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), "coretest-tar-"));
  const dest = join(root, "dest");
  await mkdir(dest);
  try {
    await fn(root, dest);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

const extract = (buf: Buffer, dest: string, limits = LIMITS) => extractTarGz((async function* () { yield buf; })(), dest, limits);

/** every path under dir (relative), symlinks not followed */
async function tree(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix + e.name;
    out.push(e.isDirectory() ? rel + "/" : e.isSymbolicLink() ? rel + "@" : rel);
    if (e.isDirectory()) out.push(...(await tree(join(dir, e.name), rel + "/")));
  }
  return out.sort();
}

test("extracts nested dirs, files with modes, a safe symlink, pax and GNU long names, hard link as a copy", async () => {
  await withDirs(async (_root, dest) => {
    const longDir = "d".repeat(120);
    const longName = `${longDir}/${"f".repeat(150)}.txt`;
    const gnuName = `g/${"n".repeat(200)}`;
    await extract(tgz([
      { name: "./", type: "5" },
      { name: "a/", type: "5" },
      { name: "a/b/c/deep.txt", data: "deep\n", mode: 0o640 },
      { name: "a/run.sh", data: "#!/bin/sh\n", mode: 0o4755 },
      { name: "link-to-deep", type: "2", linkname: "a/b/c/deep.txt" },
      { name: "a/b/up", type: "2", linkname: "../run.sh" },
      { name: "PaxHeader-ignored", pax: { path: longName }, data: "pax long\n" },
      { name: "ignored", gnuLongName: gnuName, data: "gnu long\n" },
      { name: "hard", type: "1", linkname: "a/b/c/deep.txt" },
      { name: "x", pax: { path: "paxlink", linkpath: "a/b/c/deep.txt" }, type: "2" },
    ]), dest);
    assert.equal(await readFile(join(dest, "a/b/c/deep.txt"), "utf8"), "deep\n");
    assert.equal((await lstat(join(dest, "a/b/c/deep.txt"))).mode & 0o7777, 0o640);
    assert.equal((await lstat(join(dest, "a/run.sh"))).mode & 0o7777, 0o755, "setuid bits dropped");
    assert.equal(await readlink(join(dest, "link-to-deep")), "a/b/c/deep.txt");
    assert.equal(await readFile(join(dest, "a/b/up"), "utf8"), "#!/bin/sh\n");
    assert.equal(await readFile(join(dest, longName), "utf8"), "pax long\n");
    assert.equal(await readFile(join(dest, gnuName), "utf8"), "gnu long\n");
    assert.equal(await readFile(join(dest, "hard"), "utf8"), "deep\n");
    assert.equal((await lstat(join(dest, "hard"))).nlink, 1, "hard links are copied");
    assert.equal(await readlink(join(dest, "paxlink")), "a/b/c/deep.txt");
  });
});

test("pax size overrides the header size; base-256 sizes parse", async () => {
  await withDirs(async (_root, dest) => {
    await extract(tgz([{ name: "p", pax: { size: "3" }, data: "abc", size: 999 }]), dest);
    assert.equal(await readFile(join(dest, "p"), "utf8"), "abc");
  });
  await withDirs(async (_root, dest) => {
    const h = header("b", "0", 5, { base256Size: true });
    const buf = gzipSync(Buffer.concat([h, Buffer.from("hello"), Buffer.alloc(507), Buffer.alloc(1024)]));
    await extract(buf, dest);
    assert.equal(await readFile(join(dest, "b"), "utf8"), "hello");
  });
});

const HOSTILE: [string, Member[] | Buffer, RegExp, typeof ArchiveError | typeof ArchiveTooLarge][] = [
  ["dot-dot", [{ name: "../x", data: "x" }], /"\.\."/, ArchiveError],
  ["nested dot-dot", [{ name: "a/../../x", data: "x" }], /"\.\."/, ArchiveError],
  ["absolute", [{ name: "/etc/x", data: "x" }], /absolute/, ArchiveError],
  ["symlink to / then a file through it", [{ name: "root", type: "2", linkname: "/" }, { name: "root/etc/x", data: "x" }], /outside the tree/, ArchiveError],
  ["relative symlink out then a file through it", [{ name: "d/", type: "5" }, { name: "d/l", type: "2", linkname: "." }, { name: "d/l/x", data: "x" }], /through the symlink/, ArchiveError],
  ["symlink leaving by ..", [{ name: "a/l", type: "2", linkname: "../../etc" }], /outside the tree/, ArchiveError],
  ["symlink chain leaving", [{ name: "d/l1", type: "2", linkname: ".." }, { name: "l2", type: "2", linkname: "d/l1/.." }], /outside the tree/, ArchiveError],
  ["symlink re-pointed later", [{ name: "s", type: "2", linkname: "t/.." }, { name: "t", type: "2", linkname: ".." }], /outside the tree/, ArchiveError],
  ["hard link to /etc/passwd", [{ name: "pw", type: "1", linkname: "/etc/passwd" }], /absolute/, ArchiveError],
  ["hard link with ..", [{ name: "pw", type: "1", linkname: "../../etc/passwd" }], /"\.\."/, ArchiveError],
  ["hard link to a name not in the archive", [{ name: "pw", type: "1", linkname: "etc/passwd" }], /not a file of this archive/, ArchiveError],
  ["character device", [{ name: "null", type: "3" }], /character device/, ArchiveError],
  ["block device", [{ name: "sda", type: "4" }], /block device/, ArchiveError],
  ["FIFO", [{ name: "fifo", type: "6" }], /FIFO/, ArchiveError],
  ["2 GiB declared size", [{ name: "big", size: 2 * 1024 ** 3, data: "x" }], /larger than/, ArchiveTooLarge],
  ["pax path with ..", [{ name: "ok", pax: { path: "../evil" }, data: "x" }], /"\.\."/, ArchiveError],
  ["a name component longer than the filesystem allows", [{ name: "x", pax: { path: "d/" + "n".repeat(300) }, data: "x" }], /ENAMETOOLONG/, ArchiveError],
  ["GNU long name absolute", [{ name: "ok", gnuLongName: "/etc/evil", data: "x" }], /absolute/, ArchiveError],
];

for (const [what, members, message, type] of HOSTILE) {
  test(`hostile archive refused: ${what}`, async () => {
    await withDirs(async (root, dest) => {
      const buf = Buffer.isBuffer(members) ? members : tgz(members);
      await assert.rejects(extract(buf, dest), (err: Error) => err instanceof type && message.test(err.message));
      assert.deepEqual(await readdir(root), ["dest"], "nothing written beside the dest dir");
    });
  });
}

test("truncated gzip, truncated tar, bad checksum, missing end marker → ArchiveError", async () => {
  const good = tgz([{ name: "f", data: "x".repeat(5000) }]);
  const rawTar = tar([{ name: "f", data: "x".repeat(5000) }]);
  const badSum = Buffer.from(rawTar);
  badSum[0] = 0x41;
  const cases: [string, Buffer, RegExp][] = [
    ["truncated gzip", good.subarray(0, good.length - 20), /gzip/],
    ["not gzip", Buffer.from("plain text, not gzip"), /gzip/],
    ["truncated tar", gzipSync(rawTar.subarray(0, 1000)), /truncated/],
    ["bad checksum", gzipSync(badSum), /checksum/],
    ["no end marker", gzipSync(rawTar.subarray(0, rawTar.length - 1024)), /end marker/],
  ];
  for (const [what, buf, re] of cases) {
    await withDirs(async (_root, dest) => {
      await assert.rejects(extract(buf, dest), (err: Error) => err instanceof ArchiveError && re.test(err.message), what);
    });
  }
});

test("the total of file sizes is limited (413) before data is written", async () => {
  await withDirs(async (_root, dest) => {
    const buf = tgz([{ name: "a", data: "x".repeat(600) }, { name: "b", data: "y".repeat(600) }]);
    await assert.rejects(extract(buf, dest, { maxBytes: 1000, maxEntries: 10 }), ArchiveTooLarge);
    await assert.rejects(extract(tgz(Array.from({ length: 11 }, (_, i) => ({ name: `f${i}`, data: "" }))), dest, { maxBytes: 1000, maxEntries: 10 }), /more than 10 entries/);
  });
});

test("parsePax is strict about record lengths", () => {
  assert.deepEqual([...parsePax(Buffer.from("11 path=ab\n"))], [["path", "ab"]]);
  for (const bad of ["12 path=ab\n", "x path=ab\n", "11 pathab\n\n", "99999999999999999999999 a=b\n"]) assert.throws(() => parsePax(Buffer.from(bad)), ArchiveError, bad);
});

// ---- fuzz: seeded mutations of valid archives; the extractor must fail cleanly or succeed, writing
// only validated relative paths inside the tree (recorded by a sink), never crashing.


const SEEDS: Member[][] = [
  [{ name: "a/", type: "5" }, { name: "a/f", data: "hello" }, { name: "a/l", type: "2", linkname: "f" }, { name: "h", type: "1", linkname: "a/f" }],
  [{ name: "p", pax: { path: "x/".repeat(60) + "y", linkpath: "z" }, data: "pax" }, { name: "q", gnuLongName: "long/".repeat(30) + "n", data: "gnu" }],
  [{ name: "s1", type: "2", linkname: "d" }, { name: "d/", type: "5" }, { name: "d/s2", type: "2", linkname: "../s1" }, { name: "d/file", data: "z".repeat(700) }],
];

function mutate(base: Buffer, r: () => number): Buffer {
  const buf = Buffer.from(base);
  const n = 1 + Math.floor(r() * 6);
  for (let i = 0; i < n; i++) {
    const pos = Math.floor(r() * buf.length);
    const kind = r();
    if (kind < 0.5) buf[pos] = Math.floor(r() * 256);
    else if (kind < 0.7) buf[pos] = [0x2f, 0x2e, 0x00, 0x30, 0x31, 0x32, 0x33, 0x35, 0x36, 0x78, 0x4c, 0x4b, 0x80, 0xff][Math.floor(r() * 14)]!;
    else if (kind < 0.8) buf.write("../", pos, "latin1");
    else if (kind < 0.9) buf.write("/", pos, "latin1");
    else buf[pos] = 0x20;
  }
  // mostly re-sign the headers so mutations get past the checksum
  if (r() < 0.8) for (let off = 0; off + 512 <= buf.length; off += 512) if (buf.subarray(off + 257, off + 262).toString("latin1") === "ustar") fixChecksum(buf.subarray(off, off + 512));
  const cut = r() < 0.1 ? Math.floor(r() * buf.length) : buf.length;
  return buf.subarray(0, cut);
}

function recordingSink(paths: string[]): ExtractSink {
  const check = (rel: string) => {
    if (rel === "" || rel.startsWith("/") || rel.split("/").includes("..") || rel.includes("\0")) assert.fail(`unsafe path reached the sink: ${JSON.stringify(rel)}`);
    paths.push(rel);
  };
  return {
    mkdir: async (rel) => check(rel),
    file: async (rel, _mode, fill) => {
      check(rel);
      await fill(async () => {});
    },
    symlink: async (rel, target) => {
      check(rel);
      if (target.startsWith("/")) assert.fail(`absolute link target reached the sink: ${target}`);
    },
    copy: async (from, to) => (check(from), check(to)),
    remove: async (rel) => check(rel),
  };
}

test("fuzz: 10,000 mutated archives — no crash, only safe relative paths reach the writer", async () => {
  const r = rng(20261121);
  const bases = SEEDS.map((m) => tar(m));
  let ok = 0;
  let refused = 0;
  for (let i = 0; i < 10_000; i++) {
    const input = mutate(bases[i % bases.length]!, r);
    const paths: string[] = [];
    try {
      await new Extractor(recordingSink(paths), { maxBytes: 64 * 1024, maxEntries: 100 }).run((async function* () { yield input; })());
      ok++;
    } catch (err) {
      if (err instanceof assert.AssertionError) throw err;
      assert.ok(err instanceof ArchiveError || err instanceof ArchiveTooLarge, `unexpected ${(err as Error).stack}`);
      refused++;
    }
  }
  assert.ok(ok > 100 && refused > 1000, `both outcomes exercised: ok=${ok} refused=${refused}`);
});

test("fuzz on the real filesystem: 150 mutated archives never write outside the temp dir", async () => {
  await withDirs(async (root) => {
    const r = rng(7);
    const bases = SEEDS.map((m) => tar(m));
    await writeFile(join(root, "sentinel"), "s");
    for (let i = 0; i < 150; i++) {
      const dest = join(root, `d${i}`);
      await mkdir(dest);
      await extract(gzipSync(mutate(bases[i % bases.length]!, r)), dest).catch((err: Error) => {
        if (!(err instanceof ArchiveError || err instanceof ArchiveTooLarge)) throw err;
      });
      for (const p of await tree(dest)) assert.ok(!p.split("/").includes(".."), p);
      await rm(dest, { recursive: true, force: true });
    }
    assert.deepEqual(await readdir(root), ["dest", "sentinel"]);
    assert.deepEqual(await readdir(join(root, "dest")), []);
  });
});
