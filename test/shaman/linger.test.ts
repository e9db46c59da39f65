// Shaman's "stored → 208 without reading the body" on the wire: the 208 (stored, deferred, or an
// upload superseded by another) comes while the client has sent a small part of a large body and
// waits; curl uploading a large stored file gets 208 and exits 0; a short rest of a body is dropped
// after the 208 and the connection serves the next request.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApiServer, HttpError, type ApiServer } from "../../src/http/index.js";
import { setLogSink } from "../../src/log.js";
import { shamanRoutes } from "../../src/shaman/index.js";
import { ShamanStore } from "../../src/store/index.js";
import { waitFor } from "../helpers/docker.js";
import { rawClient, send } from "../helpers/raw-socket.js";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const TOKEN = "Bearer linger-user";
const BIG = 40 * 1024 * 1024; // more than the 16 MiB linger bound
let dir: string;
let store: ShamanStore;
let server: ApiServer;
let port: number;
let restoreLog = () => {};

/** distinct content per name, `size` bytes */
function content(name: string, size: number): Buffer {
  const b = Buffer.alloc(size);
  const seed = createHash("sha256").update(name).digest();
  for (let off = 0; off < size; off += seed.length) seed.copy(b, off);
  b.writeUInt32LE(size, 0);
  return b;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "stevedore-shaman-linger-"));
  store = await ShamanStore.open(join(dir, "shaman"));
  restoreLog = setLogSink(() => {});
  server = createApiServer({
    name: "shaman-linger",
    listen: "127.0.0.1:0",
    routes: shamanRoutes({ store, maxFileSize: () => 1024 * 1024 * 1024, gc: () => store.gc({ maxAgeMs: 86400_000, dryRun: true }), lastGc: () => undefined }),
    before: (req) => {
      if (req.header("authorization") !== TOKEN) throw new HttpError(401, "user token required");
    },
    limits: () => ({ maxBodyBytes: 1024 * 1024, maxConnections: 100, headMs: 10_000, idleMs: 30_000, maxHeaderBytes: 16 * 1024 }),
  });
  await server.start();
  port = Number(server.address.split(":").pop());
});

after(async () => {
  await server.stop(false, performance.now());
  restoreLog();
  await rm(dir, { recursive: true, force: true });
});

const raw = () => rawClient(port);

const postHead = (data: Buffer, extra = "") => `POST /files/${sha(data)}/${data.length} HTTP/1.1\r\nHost: x\r\nAuthorization: ${TOKEN}\r\nContent-Length: ${data.length}\r\n${extra}\r\n`;
const statusOf = (text: string) => Number(/^HTTP\/1.1 (\d+) /.exec(text)?.[1] ?? 0);

function curl(args: string[]): Promise<{ code: number; status: number; uploaded: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_upload}", "-H", `Authorization: ${TOKEN}`, ...args], { encoding: "utf8" }, (err, stdout, stderr) => {
      const [status, uploaded] = stdout.trim().split(" ").map(Number);
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, status: status ?? 0, uploaded: uploaded ?? 0, stderr });
    });
  });
}

let bigFile = "";
let big: Buffer;

test("a large file stored by curl (Expect: 100-continue, the 100 sent when the body is read); uploading it again: curl gets 208 and exits 0, with Expect without sending the body, without Expect stopping early", async () => {
  big = content("big", BIG);
  bigFile = join(dir, "big.bin");
  await writeFile(bigFile, big);
  const url = `http://127.0.0.1:${port}/files/${sha(big)}/${BIG}`;
  const first = await curl(["-X", "POST", "-T", bigFile, url]);
  assert.deepEqual([first.code, first.status], [0, 204], first.stderr);
  for (const expect of [[], ["-H", "Expect:"]]) {
    for (const how of [["-T", bigFile], ["--data-binary", `@${bigFile}`]]) {
      const r = await curl(["-X", "POST", ...expect, ...how, url]);
      assert.deepEqual([r.code, r.status], [0, 208], `${expect.join(" ")} ${how[0]}: ${r.stderr}`);
      if (expect.length === 0) assert.equal(r.uploaded, 0, "no 100 Continue: the body was never sent");
      else assert.ok(r.uploaded < BIG, `curl stopped sending (${r.uploaded} of ${BIG} bytes)`);
    }
  }
});

test("stored → 208 while the client has sent 64 KiB of 40 MiB and waits for the answer: nothing was read first; the close lingers without a reset", async () => {
  assert.ok(big, "stored by the test before");
  const c = await raw();
  await send(c.s, Buffer.concat([Buffer.from(postHead(big)), big.subarray(0, 64 * 1024)]));
  await waitFor("208 before the body", () => c.text().includes("\r\n\r\n"), 3000);
  assert.equal(statusOf(c.text()), 208);
  assert.match(c.text(), /\r\nConnection: close\r\n/);
  await waitFor("our side shut down", () => c.ended(), 3000);
  await send(c.s, big.subarray(64 * 1024, 1024 * 1024)); // read and dropped, no reset
  c.s.end();
  await waitFor("closed", () => c.closed(), 3000);
  assert.equal(c.error(), undefined);
});

test("Expect: 100-continue: a stored file is answered 208 without a 100 and Connection: close; a new one gets the 100, then its 204", async () => {
  const known = await raw();
  await send(known.s, postHead(big, "Expect: 100-continue\r\n"));
  await waitFor("208", () => known.text().includes("\r\n\r\n"), 3000);
  assert.equal(statusOf(known.text()), 208, "no interim answer first");
  assert.match(known.text(), /\r\nConnection: close\r\n/);
  known.s.end();
  await waitFor("closed", () => known.closed(), 3000);
  const fresh = content("expect-fresh", 100_000);
  const c = await raw();
  await send(c.s, postHead(fresh, "Expect: 100-continue\r\n"));
  await waitFor("100", () => c.text().includes("\r\n\r\n"), 3000);
  assert.equal(c.text(), "HTTP/1.1 100 Continue\r\n\r\n");
  await send(c.s, fresh);
  await waitFor("204", () => /\r\n\r\nHTTP\/1.1 204 [^]*\r\n\r\n$/.test(c.text()), 5000);
  assert.doesNotMatch(c.text(), /Connection: close/i, "read in full: the connection stays");
  c.s.destroy();
});

test("a small stored file: 208 at once, the rest of the body dropped after it, the next request on the same connection", async () => {
  const small = content("small", 1024 * 1024);
  const stored = await curl(["-X", "POST", "-H", "Expect:", "--data-binary", `@${await writeTmp("small.bin", small)}`, `http://127.0.0.1:${port}/files/${sha(small)}/${small.length}`]);
  assert.equal(stored.status, 204);
  const c = await raw();
  await send(c.s, Buffer.concat([Buffer.from(postHead(small)), small.subarray(0, 10_000)]));
  await waitFor("208", () => c.text().includes("\r\n\r\n"), 3000);
  assert.equal(statusOf(c.text()), 208);
  assert.doesNotMatch(c.text(), /Connection: close/i);
  const at = c.text().length;
  await send(c.s, Buffer.concat([small.subarray(10_000), Buffer.from(`OPTIONS /files/${sha(small)}/${small.length} HTTP/1.1\r\nHost: x\r\nAuthorization: ${TOKEN}\r\n\r\n`)]));
  await waitFor("the next answer", () => c.text().length > at && c.text().slice(at).includes("\r\n\r\n"), 3000);
  assert.equal(statusOf(c.text().slice(at)), 200, "OPTIONS on the same connection: stored");
  c.s.end();
  await waitFor("closed", () => c.closed(), 3000);
});

async function writeTmp(name: string, data: Buffer): Promise<string> {
  const f = join(dir, name);
  await writeFile(f, data);
  return f;
}

test("another upload under way: 208 at once for a deferring client that sent 64 KiB; a non-deferring one superseded by the first storing the file hears 208 without sending more", async () => {
  const data = content("concurrent", 20 * 1024 * 1024);
  const k = { sha: sha(data), size: data.length };
  // the first upload: head and 1 MiB, then it waits
  const first = await raw();
  await send(first.s, Buffer.concat([Buffer.from(postHead(data)), data.subarray(0, 1024 * 1024)]));
  await waitFor("uploading", async () => (await store.state(k)) === "uploading", 3000);
  // a deferring client: 208 at once
  const deferring = await raw();
  await send(deferring.s, Buffer.concat([Buffer.from(postHead(data, "X-Shaman-Can-Defer-Upload: true\r\n")), data.subarray(0, 64 * 1024)]));
  await waitFor("208 for the deferring client", () => deferring.text().includes("\r\n\r\n"), 3000);
  assert.equal(statusOf(deferring.text()), 208);
  // a second full upload, not deferring: it sends 64 KiB and waits
  const second = await raw();
  await send(second.s, Buffer.concat([Buffer.from(postHead(data)), data.subarray(0, 64 * 1024)]));
  // the first finishes: stored, and the second hears 208 without having sent more
  await send(first.s, data.subarray(1024 * 1024));
  await waitFor("204 for the first", () => first.text().includes("\r\n\r\n"), 10_000);
  assert.equal(statusOf(first.text()), 204);
  await waitFor("208 for the superseded one", () => second.text().includes("\r\n\r\n"), 5000);
  assert.equal(statusOf(second.text()), 208);
  assert.equal(await store.state(k), "stored");
  for (const c of [first, deferring, second]) c.s.destroy();
});
