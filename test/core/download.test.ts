// bind_contents downloads in-process: redirects, statuses, limits, timeouts, and the whole fill.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server, type ServerResponse } from "node:http";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDownload, limitedBody, DownloadError, DownloadTooLarge } from "../../src/core/download.js";
import { fillFromUrl } from "../../src/core/binds.js";
import { ArchiveError } from "../../src/core/tar.js";
import { tgz } from "./tarbuild.js";

let server: Server;
let base = "";
const routes: Record<string, (res: ServerResponse) => void> = {
  ok: (res) => res.end("hello"),
  "redirect-1": (res) => res.writeHead(301, { Location: "/ok" }).end(),
  "redirect-abs": (res) => res.writeHead(307, { Location: `${base}/redirect-1` }).end(),
  "redirect-ftp": (res) => res.writeHead(302, { Location: "ftp://example.invalid/x" }).end(),
  loop: (res) => res.writeHead(302, { Location: "/loop" }).end(),
  gone: (res) => res.writeHead(410).end(),
  big: (res) => res.writeHead(200, { "Content-Length": 100 }).end(Buffer.alloc(100)),
  chunked: (res) => res.end(Buffer.alloc(100)),
  hang: () => {},
  archive: (res) => res.end(tgz([{ name: "d/f", data: "in the archive" }])),
  notgz: (res) => res.end("not gzip at all"),
};

before(async () => {
  server = createServer((req, res) => (routes[(req.url ?? "/").slice(1)] ?? ((r: ServerResponse) => r.writeHead(404).end()))(res));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

// The silence timeout is generous where data comes: a test process stalled by a loaded machine runs
// its timers before it reads the socket, so a short one would fire although the server answered.
const opts = { maxBytes: 50, timeoutMs: 5000, maxRedirects: 5 };
async function body(path: string, o = opts): Promise<string> {
  const res = await openDownload(`${base}/${path}`, o);
  const chunks: Buffer[] = [];
  for await (const c of limitedBody(res, o.maxBytes)) chunks.push(c);
  return Buffer.concat(chunks).toString();
}

test("follows relative and absolute redirects up to the limit", async () => {
  assert.equal(await body("ok"), "hello");
  assert.equal(await body("redirect-abs"), "hello");
  await assert.rejects(body("redirect-abs", { ...opts, maxRedirects: 1 }), /more than 1 redirects/);
  await assert.rejects(body("loop"), (e: Error) => e instanceof DownloadError && /more than 5 redirects/.test(e.message));
  await assert.rejects(body("redirect-ftp"), /http or https/);
});

test("non-2xx → DownloadError naming the status; limits → DownloadTooLarge; silence → timeout", async () => {
  await assert.rejects(body("gone"), (e: Error) => e instanceof DownloadError && /HTTP 410/.test(e.message));
  await assert.rejects(body("missing"), /HTTP 404/);
  await assert.rejects(body("big"), (e: Error) => e instanceof DownloadTooLarge && /Content-Length 100/.test(e.message));
  await assert.rejects(body("chunked"), DownloadTooLarge);
  const t0 = performance.now();
  await assert.rejects(body("hang", { ...opts, timeoutMs: 300 }), /no data for 300 ms/);
  assert.ok(performance.now() - t0 < 5000, "cut at the timeout, not left hanging");
  await assert.rejects(openDownload("http://127.0.0.1:1/x", opts), /download failed/);
  await assert.rejects(openDownload("not a url", opts), /not a URL/);
});

test("fillFromUrl extracts a downloaded archive; a bad one is an ArchiveError", async () => {
  const dir = await mkdtemp(join(tmpdir(), "coretest-fill-"));
  try {
    await fillFromUrl(join(dir), `${base}/archive`, { maxBytes: 1 << 20, timeoutMs: 5000, maxRedirects: 5 });
    assert.equal(await readFile(join(dir, "d/f"), "utf8"), "in the archive");
    await assert.rejects(fillFromUrl(join(dir, "x"), `${base}/notgz`, { maxBytes: 1 << 20, timeoutMs: 5000, maxRedirects: 5 }), ArchiveError);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
