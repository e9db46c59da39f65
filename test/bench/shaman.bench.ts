// Shaman against its anchors, in the same run, on the bundled daemon (the manager listener, a user JWT):
// (1) upload of one big file, MB/s vs `sha256sum` of the same file (goal ≥ 0.7×);
// (2) /checkout/requirements of 100,000 lines vs a bare loop of fs.stat of the same blob paths, and
//     /checkout/create of 10,000 files vs a bare loop of mkdir + fs.symlink making the same tree (goal ≥ 0.5×);
// (3) `stevedore shaman push` of a 10,000-file tree, second run (nothing to upload) vs
//     `find DIR -type f -print0 | xargs -0 sha256sum` (goal ≤ 1.5×; -print0: the paths hold spaces);
// (4) "stored → 208 without reading the body": time to the 208 for curl re-uploading a stored file
//     of BENCH_SHAMAN_UPLOAD_MIB, answer first (ours) vs the order before it, drain first (16 MiB of
//     the body read before the answer), both in-process JSON API servers on one store.
// Run: make build && node --import tsx test/bench/shaman.bench.ts
//   BENCH_SHAMAN_UPLOAD_MIB (default 256; 1024 for the 1 GiB), BENCH_ROUNDS (default 3),
//   BENCH_SHAMAN_PARTS (default "upload,checkout,push,stored").
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, rm, stat, symlink, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import { createApiServer, type ApiRequest, type ApiServer } from "../../src/http/index.js";
import { mintUserToken } from "../../src/manager/auth.js";
import { shamanRoutes } from "../../src/shaman/index.js";
import { ShamanStore } from "../../src/store/index.js";
import { BUNDLE, startDaemon, type TestDaemon } from "../helpers/daemon.js";

const UPLOAD_MIB = Number(process.env.BENCH_SHAMAN_UPLOAD_MIB ?? 256);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const PARTS = (process.env.BENCH_SHAMAN_PARTS ?? "upload,checkout,push,stored").split(",");
const REQ_LINES = 100_000;
const TREE_FILES = 10_000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (x: number) => x.toFixed(x >= 100 ? 0 : 2);

let d: TestDaemon;
let token: string;
const store = () => join(d.stateDir, "shaman");
const blobPath = (sha: string, size: number) => join(store(), "stored", sha.slice(0, 2), sha.slice(2), `${size}.blob`);

function call(method: string, path: string, body: Buffer | string | (() => NodeJS.ReadableStream), headers: Record<string, string | number> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const h: Record<string, string | number> = { Authorization: `Bearer ${token}`, ...headers };
    if (typeof body !== "function") h["Content-Length"] = Buffer.byteLength(body);
    const req = request({ host: "127.0.0.1", port: d.managerPort, method, path, headers: h, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, text: Buffer.concat(chunks).toString("utf8") }));
    });
    req.on("error", reject);
    if (typeof body === "function") body().pipe(req);
    else req.end(body);
  });
}

function timed(cmd: string, args: string[]): Promise<{ ms: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, STEVEDORE_MANAGER_TOKEN: "" } });
    let stdout = "";
    p.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    p.on("error", reject);
    p.on("close", (code) => (code === 0 ? resolve({ ms: performance.now() - t0, stdout }) : reject(new Error(`${cmd} ${args.join(" ")} exited ${code}`))));
  });
}

async function uploadPart(): Promise<void> {
  const size = UPLOAD_MIB * 1024 * 1024;
  const file = join(d.dir, "big.bin");
  const fh = await open(file, "w");
  const chunk = randomBytes(4 * 1024 * 1024);
  for (let off = 0; off < size; off += chunk.length) {
    chunk.writeUInt32LE(off / chunk.length, 0);
    await fh.write(chunk);
  }
  await fh.close();
  const sha = (await timed("sha256sum", [file])).stdout.slice(0, 64);
  const ours: number[] = [];
  const anchor: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    anchor.push(size / 1e6 / ((await timed("sha256sum", [file])).ms / 1000));
    const t0 = performance.now();
    const res = await call("POST", `/files/${sha}/${size}`, () => createReadStream(file, { highWaterMark: 1024 * 1024 }), { "Content-Length": size, "Content-Type": "application/octet-stream" });
    const ms = performance.now() - t0;
    if (res.status !== 204) throw new Error(`upload answered ${res.status} ${res.text}`);
    ours.push(size / 1e6 / (ms / 1000));
    await rm(blobPath(sha, size)); // the next round uploads again
  }
  await rm(file);
  const o = median(ours);
  const a = median(anchor);
  console.log(`upload ${UPLOAD_MIB} MiB: ${fmt(o)} MB/s (rounds ${ours.map(fmt).join(", ")}); anchor sha256sum: ${fmt(a)} MB/s (${anchor.map(fmt).join(", ")}); ratio ${fmt(o / a)}x (goal >= 0.7)`);
}

/** 10,000 blobs written straight into the store (as an upload would leave them), small and distinct */
async function seedBlobs(): Promise<{ sha: string; size: number }[]> {
  const blobs: { sha: string; size: number }[] = [];
  for (let i = 0; i < TREE_FILES; i++) {
    const data = Buffer.from(`blob ${i} ${"x".repeat(i % 200)}\n`);
    const sha = createHash("sha256").update(data).digest("hex");
    await mkdir(join(blobPath(sha, data.length), ".."), { recursive: true });
    await writeFile(blobPath(sha, data.length), data, { mode: 0o444 });
    blobs.push({ sha, size: data.length });
  }
  return blobs;
}

const treePath = (i: number) => `shots/d${i % 100}/s${i % 7}/frame ${i}.exr`;

async function checkoutPart(): Promise<void> {
  const blobs = await seedBlobs();
  // requirements: 100,000 distinct files, the 10,000 stored and 90,000 unknown
  const lines: string[] = [];
  const paths: string[] = [];
  for (let i = 0; i < REQ_LINES; i++) {
    const b = i < TREE_FILES ? blobs[i]! : { sha: createHash("sha256").update(`unknown ${i}`).digest("hex"), size: i };
    lines.push(`${b.sha} ${b.size} req/${i}.bin`);
    paths.push(blobPath(b.sha, b.size));
  }
  const reqCdf = lines.join("\n");
  const createCdf = blobs.map((b, i) => `${b.sha} ${b.size} ${treePath(i)}`).join("\n");
  const req: number[] = [];
  const reqAnchor: number[] = [];
  const create: number[] = [];
  const createAnchor: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    let t0 = performance.now();
    for (const p of paths) await stat(p).catch(() => undefined);
    reqAnchor.push(performance.now() - t0);
    t0 = performance.now();
    const a = await call("POST", "/checkout/requirements", reqCdf, { "Content-Type": "text/plain" });
    req.push(performance.now() - t0);
    if (a.status !== 200 || a.text.split("\n").length !== REQ_LINES - TREE_FILES + 1) throw new Error(`requirements answered ${a.status}`);

    const bare = join(d.dir, `bare-${r}`);
    t0 = performance.now();
    const made = new Set<string>();
    for (let i = 0; i < blobs.length; i++) {
      const p = join(bare, treePath(i));
      const parent = join(p, "..");
      if (!made.has(parent)) {
        await mkdir(parent, { recursive: true });
        made.add(parent);
      }
      await symlink(blobPath(blobs[i]!.sha, blobs[i]!.size), p);
    }
    createAnchor.push(performance.now() - t0);
    t0 = performance.now();
    const c = await call("POST", `/checkout/create/bench_${r}`, createCdf, { "Content-Type": "text/plain" });
    create.push(performance.now() - t0);
    if (c.status !== 200) throw new Error(`create answered ${c.status} ${c.text.slice(0, 200)}`);
    await rm(bare, { recursive: true });
  }
  const [rq, ra, cr, ca] = [median(req), median(reqAnchor), median(create), median(createAnchor)];
  console.log(`requirements ${REQ_LINES} lines: ${fmt(rq)} ms (${req.map(fmt).join(", ")}); anchor bare fs.stat loop: ${fmt(ra)} ms; ratio ${fmt(ra / rq)}x (goal >= 0.5)`);
  console.log(`checkout create ${TREE_FILES} files: ${fmt(cr)} ms (${create.map(fmt).join(", ")}); anchor bare mkdir+fs.symlink loop: ${fmt(ca)} ms (${createAnchor.map(fmt).join(", ")}); ratio ${fmt(ca / cr)}x (goal >= 0.5)`);
}

async function pushPart(): Promise<void> {
  const tree = join(d.dir, "tree");
  for (let i = 0; i < TREE_FILES; i++) {
    const p = join(tree, treePath(i));
    if (i < 700) await mkdir(join(p, ".."), { recursive: true });
    await writeFile(p, randomBytes(1024 + (i % 8) * 1024));
  }
  const push = [BUNDLE, "shaman", "push", tree, "--checkout", "bench_push", "--manager", `http://127.0.0.1:${d.managerPort}`, "--config", d.configPath, "--json", "--jobs", "8"];
  const first = await timed(process.execPath, push);
  console.log(`push first run (uploads ${TREE_FILES} files): ${fmt(first.ms)} ms`);
  const ours: number[] = [];
  const anchor: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    anchor.push((await timed("sh", ["-c", `find '${tree}' -type f -print0 | xargs -0 sha256sum > /dev/null`])).ms);
    const again = await timed(process.execPath, push);
    const out = JSON.parse(again.stdout) as { uploaded_files: number; unchanged: boolean };
    if (out.uploaded_files !== 0 || !out.unchanged) throw new Error(`second push did work: ${again.stdout}`);
    ours.push(again.ms);
  }
  const [o, a] = [median(ours), median(anchor)];
  console.log(`push second run ${TREE_FILES} files: ${fmt(o)} ms (${ours.map(fmt).join(", ")}); anchor find | xargs sha256sum: ${fmt(a)} ms (${anchor.map(fmt).join(", ")}); ratio ${fmt(o / a)}x (goal <= 1.5)`);
}

/** the linger bound: what the server read of a body before answering, before "answer first" */
const DRAIN_FIRST_BYTES = 16 * 1024 * 1024;

/** the order before "answer first": up to 16 MiB of a body read and dropped, then the answer */
async function drainFirst(req: ApiRequest): Promise<void> {
  if (!req.inc.head.hasBody) return;
  let n = 0;
  for await (const c of req.stream(Number.MAX_SAFE_INTEGER)) if ((n += (c as Buffer).length) >= DRAIN_FIRST_BYTES) break;
}

/** curl's upload of a file (streamed from disk, no Expect: as Shaman clients send it): status and
 *  ms until it is done (it stops sending at the answer, so: time to the 208) */
function curlUpload(url: string, file: string): Promise<{ status: number; ms: number; sent: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn("curl", ["-sS", "-o", "/dev/null", "-X", "POST", "-H", "Expect:", "-T", file, "-w", "%{http_code} %{time_total} %{size_upload}", url], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
    p.on("error", reject);
    p.on("close", (code) => {
      const [status, secs, sent] = out.trim().split(" ").map(Number);
      if (code !== 0) return reject(new Error(`curl exited ${code}`));
      resolve({ status: status!, ms: secs! * 1000, sent: sent! });
    });
  });
}

async function storedPart(): Promise<void> {
  const size = UPLOAD_MIB * 1024 * 1024;
  const file = join(d.dir, "stored.bin");
  const fh = await open(file, "w");
  const chunk = randomBytes(4 * 1024 * 1024);
  for (let off = 0; off < size; off += chunk.length) {
    chunk.writeUInt32LE(off / chunk.length, 0);
    await fh.write(chunk);
  }
  await fh.close();
  const sha = (await timed("sha256sum", [file])).stdout.slice(0, 64);
  const shamanStore = await ShamanStore.open(join(d.dir, "stored-store"));
  const deps = { store: shamanStore, maxFileSize: () => 2 * size, gc: () => shamanStore.gc({ maxAgeMs: 86400_000, dryRun: true }), lastGc: () => undefined };
  const limits = () => ({ maxBodyBytes: 1024 * 1024, maxConnections: 100, headMs: 10_000, idleMs: 30_000, maxHeaderBytes: 16 * 1024 });
  const servers: ApiServer[] = [];
  const serve = async (name: string, before?: (req: ApiRequest) => Promise<void>) => {
    const api = createApiServer({ name, listen: "127.0.0.1:0", routes: shamanRoutes(deps), before, limits });
    await api.start();
    servers.push(api);
    return `http://${api.address}/files/${sha}/${size}`;
  };
  try {
    const ours = await serve("answer-first");
    const anchorUrl = await serve("drain-first", drainFirst);
    if ((await curlUpload(ours, file)).status !== 204) throw new Error("the first upload did not store the file");
    const o: number[] = [];
    const a: number[] = [];
    const sent: [number[], number[]] = [[], []];
    for (let r = 0; r < ROUNDS; r++) {
      for (const [i, url, out] of [[0, ours, o], [1, anchorUrl, a]] as const) {
        const res = await curlUpload(url, file);
        if (res.status !== 208) throw new Error(`re-upload answered ${res.status}`);
        out.push(res.ms);
        sent[i].push(res.sent / 1024 / 1024);
      }
    }
    const [om, am] = [median(o), median(a)];
    console.log(`stored ${UPLOAD_MIB} MiB re-uploaded (curl -T): 208 after ${fmt(om)} ms (${o.map(fmt).join(", ")}), curl sent ${fmt(median(sent[0]))} MiB; anchor drain-first (16 MiB read before the answer): ${fmt(am)} ms (${a.map(fmt).join(", ")}), curl sent ${fmt(median(sent[1]))} MiB; ratio ${fmt(am / om)}x faster`);
  } finally {
    for (const s of servers) await s.stop(false, performance.now());
    await rm(file);
  }
}

d = await startDaemon({ disable: ["query", "core", "http", "https", "admin", "command"] });
try {
  token = await mintUserToken(d.stateDir, { subject: "bench", ttlSecs: 3600 });
  if (PARTS.includes("upload")) await uploadPart();
  if (PARTS.includes("checkout")) await checkoutPart();
  if (PARTS.includes("push")) await pushPart();
  if (PARTS.includes("stored")) await storedPart();
} finally {
  await d.cleanup();
}
