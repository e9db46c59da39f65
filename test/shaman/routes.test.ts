// The Shaman endpoints over real HTTP (node:http and curl) on the JSON API server: every status,
// the anchor race of concurrent uploads, CDF fuzz over the wire, traversal, status and GC.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { request, Agent, type IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { createApiServer, HttpError, type ApiServer } from "../../src/http/index.js";
import { setLogSink } from "../../src/log.js";
import { shamanRoutes, escapeHeader } from "../../src/shaman/index.js";
import { ShamanStore, type GcResult } from "../../src/store/index.js";
import { intRng, mutate } from "../helpers/random.js";

const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");
const TOKEN = "Bearer test-user";
let dir: string;
let store: ShamanStore;
let server: ApiServer;
let base: string;
let maxFileSize = 1024 * 1024;
const logs: string[] = [];
let restoreLog = () => {};

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "stevedore-shaman-http-"));
  store = await ShamanStore.open(join(dir, "shaman"));
  await mkdir(join(dir, "in"));
  restoreLog = setLogSink((l) => logs.push(l));
  server = createApiServer({
    name: "shaman-test",
    listen: "127.0.0.1:0",
    routes: shamanRoutes({
      store,
      maxFileSize: () => maxFileSize,
      gc: (dryRun) => store.gc({ maxAgeMs: 86400_000, dryRun }),
      lastGc: () => undefined,
    }),
    before: (req) => {
      if (req.header("authorization") !== TOKEN) throw new HttpError(401, "user token required");
      req.user = { kind: "user", subject: "tester" };
    },
    limits: () => ({ maxBodyBytes: 16 * 1024 * 1024, maxConnections: 1000, headMs: 10_000, idleMs: 30_000, maxHeaderBytes: 16 * 1024 }),
  });
  await server.start();
  base = `http://${server.address}`;
});

after(async () => {
  await server.stop(false, performance.now());
  restoreLog();
  await rm(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  headers: IncomingMessage["headers"];
  body: Buffer;
}

const agent = new Agent({ keepAlive: false, maxSockets: 100 });

/** one request; `body` as a Buffer, or a function that writes it to the open request */
function call(method: string, path: string, opts: { headers?: Record<string, string | number>; body?: Buffer | ((req: ReturnType<typeof request>) => void) } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(base + path, { method, agent, headers: { Authorization: TOKEN, ...opts.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    if (typeof opts.body === "function") opts.body(req);
    else req.end(opts.body);
  });
}

function curl(args: string[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    execFile("curl", ["-sS", "-w", "\n%{http_code}", "-H", `Authorization: ${TOKEN}`, ...args], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`curl failed: ${stderr}`));
      const nl = stdout.lastIndexOf("\n");
      resolve({ status: Number(stdout.slice(nl + 1)), body: stdout.slice(0, nl) });
    });
  });
}

async function cdfFile(text: string | Buffer): Promise<string> {
  const f = join(dir, "in", `cdf-${Math.random().toString(36).slice(2)}.txt`);
  await writeFile(f, text);
  return f;
}

const textPost = async (path: string, cdf: string | Buffer, type = "text/plain") =>
  curl(["-X", "POST", "-H", `Content-Type: ${type}`, "--data-binary", `@${await cdfFile(cdf)}`, base + path]);

const upload = (data: Buffer, headers: Record<string, string | number> = {}, k = { sha: sha(data), size: data.length }) =>
  call("POST", `/files/${k.sha}/${k.size}`, { headers: { "Content-Length": data.length, ...headers }, body: data });

test("auth is the caller's: no token → 401", async () => {
  const r = await call("OPTIONS", `/files/${sha("x")}/1`, { headers: { Authorization: "" } });
  assert.equal(r.status, 401);
});

test("POST /files: 204 stored, 208 when stored (body not needed), 417 mismatch, 400 bad path, 413 too large, 415 encoding", async () => {
  const data = Buffer.from("upload me once");
  assert.equal((await upload(data)).status, 204);
  assert.equal((await upload(data)).status, 208);
  assert.equal((await call("GET", `/files/${sha(data)}/${data.length}`)).body.toString(), "upload me once");
  const other = Buffer.from("something else");
  assert.equal((await upload(other, {}, { sha: sha("nope"), size: other.length })).status, 417);
  assert.equal((await upload(other, {}, { sha: sha(other), size: other.length + 5 })).status, 417);
  assert.equal((await upload(other, { "Content-Encoding": "gzip" }, { sha: sha(other), size: other.length })).status, 417);
  assert.equal((await upload(gzipSync(other), { "Content-Encoding": "gzip" }, { sha: sha(other), size: other.length })).status, 204);
  assert.equal((await upload(other, { "Content-Encoding": "br" }, { sha: sha("b"), size: other.length })).status, 415);
  for (const [s, n] of [["abc", "1"], [sha("x").slice(1) + "g", "1"], [sha("x"), "-1"], [sha("x"), "1.5"], [sha("x"), "01"], [sha("x"), "x"]]) {
    const r = await call("POST", `/files/${s}/${n}`, { headers: { "Content-Length": 1 }, body: Buffer.from("x") });
    assert.equal(r.status, 400, `${s}/${n}`);
    assert.match(JSON.parse(r.body.toString()).error, /checksum|filesize/);
    assert.equal((await call("OPTIONS", `/files/${s}/${n}`)).status, 400);
  }
  const big = await call("POST", `/files/${sha("big")}/${maxFileSize + 1}`, { headers: { "Content-Length": 3 }, body: Buffer.from("big") });
  assert.equal(big.status, 413);
  assert.match(JSON.parse(big.body.toString()).error, /shaman_max_file_size/);
  assert.deepEqual(await readdir(store.uploadingDir), []);
});

test("a body longer than the file, chunked: 417 and nothing stored", async () => {
  const data = Buffer.alloc(200_000, 3);
  const k = { sha: sha(data.subarray(0, 1000)), size: 1000 };
  const r = await call("POST", `/files/${k.sha}/${k.size}`, {
    body: (req) => {
      req.write(data.subarray(0, 100_000));
      req.end(data.subarray(100_000));
    },
  });
  assert.equal(r.status, 417);
  assert.equal(await store.state(k), "unknown");
});

test("OPTIONS: 404 unknown, 420 uploading, 200 stored; GET 404 unknown", async () => {
  const data = Buffer.alloc(100_000, 9);
  const path = `/files/${sha(data)}/${data.length}`;
  assert.equal((await call("OPTIONS", path)).status, 404);
  assert.equal((await call("GET", path)).status, 404);
  let req!: ReturnType<typeof request>;
  const pending = call("POST", path, { headers: { "Content-Length": data.length }, body: (r) => ((req = r), r.write(data.subarray(0, 10))) });
  await waitFor(async () => (await call("OPTIONS", path)).status === 420);
  // another client that may defer is told 208 at once (its body is not awaited)
  assert.equal((await upload(data, { "X-Shaman-Can-Defer-Upload": "true" })).status, 208);
  assert.equal(await store.state({ sha: sha(data), size: data.length }), "uploading");
  req.end(data.subarray(10));
  assert.equal((await pending).status, 204);
  assert.equal((await call("OPTIONS", path)).status, 200);
  const got = await call("GET", path);
  assert.equal(got.status, 200);
  assert.equal(got.headers["content-type"], "application/octet-stream");
  assert.deepEqual(got.body, data);
});

test("X-Shaman-Original-Filename: raw Latin-1 bytes accepted, logged escaped", async () => {
  // curl sends the header file's bytes as they are: a raw 0xF6
  const data = Buffer.from("latin1 name");
  const headerFile = join(dir, "in", "latin1-headers.txt");
  await writeFile(headerFile, Buffer.concat([Buffer.from("X-Shaman-Original-Filename: Sch"), Buffer.from([0xf6]), Buffer.from("n.blend\n")]));
  const r = await curl(["-X", "POST", "-H", `@${headerFile}`, "--data-binary", "latin1 name", `${base}/files/${sha(data)}/${data.length}`]);
  assert.equal(r.status, 204);
  assert.ok(logs.some((l) => l.includes(`filename="Sch%F6n.blend"`)), logs.filter((l) => l.includes("filename")).join("\n"));
  // and from node:http (a Latin-1 string is sent as its bytes)
  const raw = Buffer.from("raw 0xf6");
  const res = await new Promise<number>((resolve, reject) => {
    const req = request(`${base}/files/${sha(raw)}/${raw.length}`, { method: "POST", headers: { Authorization: TOKEN, "Content-Length": raw.length, "X-Shaman-Original-Filename": "b\xe4r" } }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on("error", reject);
    req.end(raw);
  });
  assert.equal(res, 204);
  assert.ok(logs.some((l) => l.includes(`filename="b%E4r"`)));
  assert.equal(escapeHeader("a%b\x01"), "a%25b%01");
});

test("anchor race: ten concurrent uploads, the first to finish is wrong; nobody hears 208 before a correct copy is stored", async () => {
  const data = Buffer.alloc(256 * 1024, 5);
  const wrong = Buffer.alloc(data.length, 6);
  const k = { sha: sha(data), size: data.length };
  const reqs: ReturnType<typeof request>[] = [];
  const answers: { i: number; status: number; storedAtAnswer: boolean }[] = [];
  const all = Array.from({ length: 10 }, (_, i) =>
    call("POST", `/files/${k.sha}/${k.size}`, { headers: { "Content-Length": data.length }, body: (r) => ((reqs[i] = r), r.write(data.subarray(0, 1000))) }).then(async (a) => {
      answers.push({ i, status: a.status, storedAtAnswer: await store.isStored(k) });
      return a;
    }),
  );
  await waitFor(async () => store.uploadsInFlight === 10);
  // the first to finish sends a wrong body: 417, and the other nine keep uploading
  reqs[0]!.end(wrong.subarray(1000));
  await waitFor(async () => answers.length === 1);
  assert.deepEqual(answers[0], { i: 0, status: 417, storedAtAnswer: false });
  // the nine are still receiving (a wrong 208 would have ended them with the failure)
  assert.equal(store.uploadsInFlight, 9);
  assert.equal((await call("OPTIONS", `/files/${k.sha}/${k.size}`)).status, 420);
  assert.equal(answers.length, 1);
  // the second finishes correctly: 204, and the rest are answered 208 without sending the rest
  reqs[1]!.end(data.subarray(1000));
  const results = await Promise.all(all);
  assert.deepEqual(results.map((r) => r.status), [417, 204, 208, 208, 208, 208, 208, 208, 208, 208]);
  for (const a of answers) if (a.status === 208) assert.ok(a.storedAtAnswer, `client ${a.i} heard 208 before the file was stored`);
  assert.deepEqual(await readFile(store.blobPath(k)), data);
  assert.deepEqual(await readdir(store.uploadingDir), []);
  for (const r of reqs.slice(2)) r.destroy();
});

const A = Buffer.from("file a");
const B = Buffer.from("file b");
const line = (b: Buffer, p: string) => `${sha(b)} ${b.length} ${p}`;

test("requirements (curl): 415 without text/plain, 400 with every bad line, file-unknown/already-uploading once per file, empty when nothing to do", async () => {
  assert.equal((await upload(A)).status, 204);
  const cdf = [line(A, "a.txt"), line(B, "b.txt"), line(B, "again/b.txt"), line(A, "dir/a copy.txt")].join("\n");
  assert.deepEqual(await textPost("/checkout/requirements", cdf), { status: 200, body: "file-unknown b.txt\n" });
  const r415 = await textPost("/checkout/requirements", cdf, "application/octet-stream");
  assert.equal(r415.status, 415);
  assert.match(r415.body, /^ERROR Content-Type must be text\/plain\n$/);
  const bad = await textPost("/checkout/requirements", `${line(A, "ok")}\nbroken\n${line(A, "../up")}`);
  assert.equal(bad.status, 400);
  assert.equal(bad.body, 'ERROR invalid line 2: expected {sha256} {size} {path}\nERROR invalid line 3: path must not contain ".."\n');
  assert.deepEqual(await textPost("/checkout/requirements", line(A, "a.txt")), { status: 200, body: "" });
  // a file being uploaded
  let req!: ReturnType<typeof request>;
  const pending = call("POST", `/files/${sha(B)}/${B.length}`, { headers: { "Content-Length": B.length }, body: (r) => ((req = r), r.write(B.subarray(0, 2))) });
  await waitFor(async () => store.uploadsInFlight === 1);
  assert.deepEqual(await textPost("/checkout/requirements", cdf), { status: 200, body: "already-uploading b.txt\n" });
  req.end(B.subarray(2));
  assert.equal((await pending).status, 204);
});

test("create (curl): 400 bad id, 400 unknown files and nothing made, 200 with the relative path, 409 exists", async () => {
  const C = Buffer.from("file c, never uploaded");
  const cdf = [line(A, "scene/a.txt"), line(C, "c.txt")].join("\n");
  for (const id of ["x", "bad-id", "a".repeat(65), "%2E%2E"]) {
    const r = await textPost(`/checkout/create/${id}`, line(A, "a"));
    assert.equal(r.status, 400, id);
    assert.match(r.body, /^ERROR checkout ID must match/);
  }
  assert.deepEqual(await textPost("/checkout/create/shot_010", cdf), { status: 400, body: "file-unknown c.txt\n" });
  assert.deepEqual(await readdir(store.checkoutsDir), []);
  assert.deepEqual(await readdir(store.buildingDir), []);
  assert.equal((await textPost("/checkout/create/shot_010", "\n")).status, 400);
  assert.deepEqual(await textPost("/checkout/create/shot_010", line(A, "scene/a.txt")), { status: 200, body: "10/shot_010" });
  assert.equal(await readFile(join(store.checkoutsDir, "10/shot_010/scene/a.txt"), "utf8"), "file a");
  const again = await textPost("/checkout/create/shot_010", line(A, "scene/a.txt"));
  assert.equal(again.status, 409);
  assert.match(again.body, /^ERROR checkout shot_010 already exists\n$/);
  assert.equal((await textPost("/checkout/create/shot_011", line(A, "x"), "application/json")).status, 415);
});

test("CDF fuzz over HTTP: mutated files get 200 or a clean 400 of ERROR lines; nothing lands outside the checkouts", async () => {
  const rand = intRng(99);
  const seed: Buffer = Buffer.from([line(A, "scene/a.txt"), line(B, "tex/b.png"), line(A, "deep/er/a.txt")].join("\n"));
  const pieces = ["\n", " ", "/", "../", "..", "\0", A.toString(), "/etc/", "\xf6", "a/../../b", "0"];
  const inputs = Array.from({ length: 10_000 }, () => {
    let buf = seed;
    for (let k = 1 + rand(3); k > 0; k--) buf = mutate(buf, rand, pieces);
    return buf;
  });
  const keepAlive = new Agent({ keepAlive: true, maxSockets: 8 });
  let created = 0;
  let next = 0;
  const lane = async () => {
    while (next < inputs.length) {
      const i = next++;
      const id = `fuzz_${i}`;
      const path = i % 10 === 0 ? `/checkout/create/${id}` : "/checkout/requirements";
      const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(base + path, { method: "POST", agent: keepAlive, headers: { Authorization: TOKEN, "Content-Type": "text/plain", "Content-Length": inputs[i]!.length } }, (res) => {
          let body = "";
          res.setEncoding("utf8").on("data", (c: string) => (body += c)).on("end", () => resolve({ status: res.statusCode!, body }));
        });
        req.on("error", reject);
        req.end(inputs[i]);
      });
      if (r.status === 200) {
        if (path !== "/checkout/requirements") created++;
        continue;
      }
      assert.equal(r.status, 400, `input ${i}: ${r.status} ${r.body}`);
      assert.match(r.body, /^((ERROR invalid line \d+: [^\n]+|ERROR \.\.\. and \d+ more invalid lines|ERROR the checkout definition file names no files|file-unknown [^\n]+)\n)+$/, `input ${i}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, lane));
  keepAlive.destroy();
  assert.ok(created > 0);
  assert.deepEqual((await readdir(dir)).sort(), ["in", "shaman"]);
  assert.deepEqual((await readdir(join(dir, "shaman"))).sort(), ["checkout-sums", "checkouts", "checkouts-building", "stored", "uploading"]);
  assert.deepEqual(await readdir(store.buildingDir), []);
});

test("GET /shaman/status and POST /shaman/gc (dry run, then for real)", async () => {
  const st = JSON.parse((await call("GET", "/shaman/status")).body.toString());
  assert.equal(typeof st.blobs, "number");
  assert.ok(st.blobs >= 3 && st.bytes > 0 && st.checkouts >= 1 && st.uploads_in_flight === 0, JSON.stringify(st));
  const lonely = Buffer.from("nobody links me");
  assert.equal((await upload(lonely)).status, 204);
  const long = new Date(Date.now() - 2 * 86400_000);
  await utimes(store.blobPath({ sha: sha(lonely), size: lonely.length }), long, long);
  const dry = JSON.parse((await call("POST", "/shaman/gc", { headers: { "Content-Type": "application/json" }, body: Buffer.from('{"dry_run":true}') })).body.toString()) as GcResult;
  assert.equal(dry.dry_run, true);
  assert.equal(dry.freed_blobs, 1);
  assert.deepEqual(dry.sample, [`${sha(lonely)}/${lonely.length}`]);
  assert.equal((await call("OPTIONS", `/files/${sha(lonely)}/${lonely.length}`)).status, 200);
  const real = JSON.parse((await call("POST", "/shaman/gc")).body.toString()) as GcResult;
  assert.equal(real.freed_blobs, 1);
  assert.equal((await call("OPTIONS", `/files/${sha(lonely)}/${lonely.length}`)).status, 404);
  assert.equal((await call("POST", "/shaman/gc", { body: Buffer.from('{"dry_run":"yes"}') })).status, 400);
});

async function waitFor(cond: () => Promise<boolean> | boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}
