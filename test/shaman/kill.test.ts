// kill -9 trials of Shaman during uploads and checkout creation: at restart no temp file, no half checkout, no blob with wrong content, every 204 kept.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, readlink, rm, lstat } from "node:fs/promises";
import { request, Agent } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";
import { setLogSink } from "../../src/log.js";
import { ShamanStore, checkoutRelPath } from "../../src/store/index.js";
import { intRng } from "../helpers/random.js";

const SERVER = fileURLToPath(new URL("./kill-server.ts", import.meta.url));
/** two lanes side by side, each a run of trials on one store */
const LANES = 2;
const TRIALS_PER_LANE = 100;
/** client loops per trial (uploads and checkout creations at once) */
const CLIENTS = 4;
const DEADLINE_MS = 30_000;

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const agent = new Agent({ keepAlive: false, maxSockets: 64 });

interface Blob {
  sha: string;
  size: number;
  data: Buffer;
}

/** What one lane knows: contents it may upload, blobs answered 204 (or 208: stored), checkouts answered 200. */
interface LaneState {
  pool: Blob[];
  acked: Map<string, Blob>;
  /** checkout id → its definition, for every create sent (answered or not) */
  sent: Map<string, string>;
  created: Set<string>;
  counts: Record<string, number>;
}

function call(base: string, method: string, path: string, body: Buffer, headers: Record<string, string | number> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(base + path, { method, agent, headers: { "Content-Length": body.length, ...headers } }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode!, text }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** One client: uploads (some wrong, some gzip, some of the same file at once) and checkouts of acknowledged blobs, until the server dies. */
async function client(base: string, lane: LaneState, rand: (n: number) => number, tag: string, onAnswer: () => void): Promise<void> {
  for (let n = 0; ; n++) {
    try {
      const roll = rand(10);
      if (roll < 5 || lane.acked.size < 5) {
        // mostly a new file (a 204 to lose), else one of the last few (uploads of one file overlap)
        if (rand(2) === 0) lane.pool.push(newBlob(rand, `${tag} ${n}`));
        const b = lane.pool[lane.pool.length - 1 - rand(Math.min(8, lane.pool.length))]!;
        const wrong = rand(6) === 0;
        const gzip = rand(4) === 0;
        const declared = wrong ? sha(Buffer.concat([b.data, Buffer.from("x")])) : b.sha;
        const headers: Record<string, string> = { "X-Shaman-Can-Defer-Upload": rand(2) ? "true" : "false", "X-Shaman-Original-Filename": `f${n}` };
        if (gzip) headers["Content-Encoding"] = "gzip";
        const r = await call(base, "POST", `/files/${declared}/${b.size}`, gzip ? gzipSync(b.data) : b.data, headers);
        // a wrong upload is refused, unless another upload of that (checksum, size) is under way
        // and this one may defer (the other one is judged on its own content)
        if (wrong) assert.ok(r.status === 417 || (r.status === 208 && headers["X-Shaman-Can-Defer-Upload"] === "true"), `wrong checksum answered ${r.status}`);
        else {
          assert.ok(r.status === 204 || r.status === 208, `upload answered ${r.status} ${r.text}`);
          // 208 from a deferral does not mean stored; 204 does, and so does 208 for a stored file (unknowable here)
          if (r.status === 204) lane.acked.set(b.sha, b);
        }
        lane.counts[wrong ? "417" : String(r.status)] = (lane.counts[wrong ? "417" : String(r.status)] ?? 0) + 1;
      } else {
        const known = [...lane.acked.values()];
        const files = 20 + rand(300);
        let cdf = "";
        for (let i = 0; i < files; i++) {
          const b = known[rand(known.length)]!;
          cdf += `${b.sha} ${b.size} d${i % 7}/s${i % 3}/file ${i}.bin\n`;
        }
        const id = `c_${tag}_${n}`;
        lane.sent.set(id, cdf);
        const r = await call(base, "POST", `/checkout/create/${id}`, Buffer.from(cdf), { "Content-Type": "text/plain" });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.text, checkoutRelPath(id));
        lane.created.add(id);
        lane.counts.checkout = (lane.counts.checkout ?? 0) + 1;
      }
      onAnswer();
    } catch (err) {
      if (err instanceof assert.AssertionError) throw err;
      return; // the server is gone
    }
  }
}

/** sizes from empty to 1 MiB, most small */
function newBlob(rand: (n: number) => number, label: string): Blob {
  const size = rand(20) === 0 ? 0 : rand(4) === 0 ? rand(1 << 20) : rand(16 * 1024);
  const data = Buffer.alloc(size);
  for (let k = 0; k < size; k += 4096) data[k] = rand(256);
  data.write(label.slice(0, size));
  return { sha: sha(data), size, data };
}

/** Every file under `dir` (links not followed), relative. */
async function tree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(join(d, e.name), p);
      else out.set(p, e.isSymbolicLink() ? await readlink(join(d, e.name)) : "<not a link>");
    }
  };
  await walk(dir, "");
  return out;
}

/** The restart's checks: nothing half-done is left and nothing acknowledged is lost. */
async function verify(root: string, lane: LaneState, verified: Set<string>, context: string): Promise<void> {
  const store = await ShamanStore.open(root); // the start-up cleanup under test
  assert.deepEqual(await readdir(store.uploadingDir), [], `${context}: temp files left`);
  assert.deepEqual(await readdir(store.buildingDir), [], `${context}: half-built checkouts left`);
  // every blob has the content its name says (each checked once: blobs never change)
  for (const a of await readdir(store.storedDir)) {
    for (const b of await readdir(join(store.storedDir, a))) {
      for (const name of await readdir(join(store.storedDir, a, b))) {
        const path = join(store.storedDir, a, b, name);
        if (verified.has(path)) continue;
        const data = await readFile(path);
        assert.equal(sha(data), a + b, `${context}: ${path} has other content`);
        assert.equal(`${data.length}.blob`, name, `${context}: ${path} has another size`);
        verified.add(path);
      }
    }
  }
  for (const b of lane.acked.values()) assert.ok(await store.isStored(b), `${context}: ${b.sha}/${b.size} was answered 204 but is not stored`);
  // a checkout is there whole or not at all; every one answered 200 is there
  for (const a of await readdir(store.checkoutsDir)) {
    for (const id of await readdir(join(store.checkoutsDir, a))) {
      const cdf = lane.sent.get(id);
      assert.ok(cdf, `${context}: checkout ${id} was never asked for`);
      const want = new Map(cdf.trimEnd().split("\n").map((l) => {
        const [s, size, ...path] = l.split(" ");
        return [path.join(" "), store.blobPath({ sha: s!, size: Number(size) })];
      }));
      assert.deepEqual(await tree(join(store.checkoutsDir, a, id)), want, `${context}: checkout ${id} is not whole`);
    }
  }
  for (const id of lane.created) assert.ok((await lstat(store.checkoutPath(id)).catch(() => undefined))?.isDirectory(), `${context}: checkout ${id} answered 200 is gone`);
}

async function trial(script: string, root: string, lane: LaneState, rand: (n: number) => number, tag: string): Promise<void> {
  const child = spawn(process.execPath, [script, root], { stdio: ["pipe", "pipe", "inherit"] });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  try {
    const base = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("server did not start")), DEADLINE_MS);
      createInterface({ input: child.stdout! }).once("line", (line) => {
        clearTimeout(timer);
        resolve(`http://${line.replace(/^listening /, "")}`);
      });
      void exited.then(() => reject(new Error("server exited at start")));
    });
    let answers = 0;
    let firstAnswer = () => {};
    const answered = new Promise<void>((r) => (firstAnswer = r));
    const clients = Array.from({ length: CLIENTS }, (_, i) => client(base, lane, intRng(rand(1 << 30)), `${tag}_${i}`, () => {
      if (++answers === 1) firstAnswer();
    }));
    await Promise.race([answered, new Promise((_, rej) => setTimeout(() => rej(new Error("no answer in time")), DEADLINE_MS).unref())]);
    if (rand(3) === 0) child.stdin!.write("arm\n"); // right after an answer (and often inside another request)
    else await new Promise((r) => setTimeout(r, rand(200)));
    child.kill("SIGKILL");
    await exited;
    await Promise.all(clients);
  } finally {
    child.kill("SIGKILL");
    await exited;
  }
}

test(`${LANES * TRIALS_PER_LANE} kill -9 trials during uploads and checkout creation`, { timeout: 360_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-shaman-kill-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  t.after(setLogSink(() => {}));
  // one bundle: a trial starts as plain node, not node --import tsx (~0.5 s of CPU each)
  const script = join(dir, "server.mjs");
  await build({ entryPoints: [SERVER], bundle: true, platform: "node", format: "esm", target: "node20", outfile: script, logLevel: "warning" });
  const totals: Record<string, number> = {};
  const run = async (laneNo: number) => {
    const rand = intRng(0x5a4a + laneNo);
    const pool: Blob[] = [newBlob(rand, `lane ${laneNo}`)];
    const lane: LaneState = { pool, acked: new Map(), sent: new Map(), created: new Set(), counts: {} };
    const root = join(dir, `lane${laneNo}`);
    const verified = new Set<string>();
    for (let i = 0; i < TRIALS_PER_LANE; i++) {
      await trial(script, root, lane, rand, `${laneNo}_${i}`);
      await verify(root, lane, verified, `lane ${laneNo} trial ${i}`);
    }
    lane.counts.checkout_sent = lane.sent.size;
    for (const [k, v] of Object.entries(lane.counts)) totals[k] = (totals[k] ?? 0) + v;
  };
  await Promise.all(Array.from({ length: LANES }, (_, i) => run(i)));
  t.diagnostic(`answers: ${JSON.stringify(totals)}`);
  assert.ok((totals["204"] ?? 0) > 50 && (totals.checkout ?? 0) > 20 && (totals.checkout_sent ?? 0) > 60, `too little work between kills: ${JSON.stringify(totals)}`);
});
