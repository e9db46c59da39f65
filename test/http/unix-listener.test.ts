// Unix listeners against a hostile socket directory (issue 16 item 2): a directory others may write
// to is refused (the caller keeps running without that socket), the socket is born with its mode
// (no chmod by path), and the temporary name is unpredictable.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { chmod, lstat, mkdtemp, mkdir, rm, unlink, writeFile } from "node:fs/promises";
import { watch } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { listenUnix, unsafeSocketDir } from "../../src/http/index.js";
import { setLogSink } from "../../src/log.js";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "unix-listener-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test("a socket directory writable by others without the sticky bit is refused with a clear error", async () => {
  await withDir(async (dir) => {
    const open = join(dir, "open");
    await mkdir(open);
    await chmod(open, 0o777);
    const lines: string[] = [];
    const restore = setLogSink((l) => lines.push(l));
    const server = createServer();
    try {
      const r = await listenUnix(server, join(open, "query.sock"), 0o666, "query");
      assert.equal(r.ok, false);
      assert.equal(!r.ok && r.reason, "unsafe-dir");
      assert.match(!r.ok ? r.message : "", /query disabled: socket directory .* is writable by group or others/);
      assert.ok(lines.some((l) => l.includes("level=error") && l.includes("writable by group or others")));
      assert.equal(server.listening, false);
      await assert.rejects(lstat(join(open, "query.sock")));
    } finally {
      restore();
    }
    // group-writable too; sticky and ours is fine (like /tmp)
    await chmod(open, 0o770);
    assert.ok(await unsafeSocketDir(open));
    await chmod(open, 0o1777);
    assert.equal(await unsafeSocketDir(open), undefined);
    const s2 = createServer();
    assert.deepEqual(await listenUnix(s2, join(open, "q.sock"), 0o600, "query"), { ok: true });
    s2.close();
  });
});

test("the socket has its mode without a chmod, the umask is restored, the temp name is random", async () => {
  await withDir(async (dir) => {
    const seen: string[] = [];
    const w = watch(dir, (_event, name) => name && seen.push(String(name)));
    const before = process.umask();
    try {
      for (const [i, mode] of [0o600, 0o660, 0o666].entries()) {
        const server = createServer();
        assert.deepEqual(await listenUnix(server, join(dir, `s${i}.sock`), mode, "test"), { ok: true });
        const st = await lstat(join(dir, `s${i}.sock`));
        assert.ok(st.isSocket());
        assert.equal(st.mode & 0o777, mode);
        server.close();
      }
      assert.equal(process.umask(), before);
      // creations in parallel: serialized, each with its own mode
      const servers = [0o600, 0o666, 0o640, 0o660].map((mode, i) => ({ mode, path: join(dir, `p${i}.sock`), server: createServer() }));
      await Promise.all(servers.map((s) => listenUnix(s.server, s.path, s.mode, "test")));
      for (const s of servers) {
        assert.equal((await lstat(s.path)).mode & 0o777, s.mode);
        s.server.close();
      }
    } finally {
      w.close();
    }
    const temps = [...new Set(seen.filter((n) => n.endsWith(".tmp")))];
    assert.ok(temps.length > 0, "the temp names were seen");
    for (const t of temps) {
      assert.match(t, /^\.[a-z0-9]+\.sock\.[0-9a-f]{24}\.tmp$/);
      assert.ok(!t.includes(`.${process.pid}.`), "the temp name does not contain the pid");
    }
  });
});

test("a bound socket swapped before it is in place is refused: another file at the temp name, another socket at the path", async () => {
  await withDir(async (dir) => {
    const lines: string[] = [];
    const restore = setLogSink((l) => lines.push(l));
    const other = createServer();
    const s1 = createServer();
    const s2 = createServer();
    try {
      // between bind and check: the temp name is now a regular file (another user's)
      const r1 = await listenUnix(s1, join(dir, "a.sock"), 0o600, "query", {}, {
        afterBind: async (tmp) => {
          await unlink(tmp);
          await writeFile(tmp, "not ours\n");
        },
      });
      assert.deepEqual(r1, { ok: false, reason: "swapped", message: `query socket ${join(dir, "a.sock")}: the bound socket was replaced before it was in place; query disabled` });
      assert.equal(s1.listening, false);
      await assert.rejects(lstat(join(dir, "a.sock")), "nothing renamed into place");

      // between rename and check: the path now holds another socket (another inode)
      const path = join(dir, "b.sock");
      const r2 = await listenUnix(s2, path, 0o600, "admin", {}, {
        afterRename: async (placed) => {
          await unlink(placed);
          await new Promise<void>((resolve) => other.listen(placed, resolve));
        },
      });
      assert.equal(!r2.ok && r2.reason, "swapped");
      assert.equal(s2.listening, false);
      assert.ok((await lstat(path)).isSocket(), "the replacement is left alone");
      assert.equal(lines.filter((l) => l.includes("level=error") && l.includes("was replaced before it was in place")).length, 2);
    } finally {
      for (const s of [other, s1, s2]) s.close(); // (a failing run leaves them listening)
      restore();
    }
  });
});
