// Shaman in the bundled daemon: on the manager listener under its user JWT, `stevedore shaman
// push/status/gc` against it, and the start-up cleanup of what a crash leaves.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, writeFile, symlink } from "node:fs/promises";
import { join } from "node:path";
import { BUNDLE, CONTROL_CHARS, runBundleOnTty, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { mintUserToken } from "../../src/manager/auth.js";

let d: TestDaemon;
let base: string;
let token: string;

before(async () => {
  d = await startDaemon({ disable: ["query", "core", "http", "https"] });
  base = `http://127.0.0.1:${d.managerPort}`;
  token = await mintUserToken(d.stateDir, { subject: "shaman-test", ttlSecs: 600 });
});

after(async () => {
  await d.cleanup();
});

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BUNDLE, ...args], { env: { ...process.env, STEVEDORE_MANAGER_TOKEN: "" }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    p.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    p.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

function curl(args: string[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    execFile("curl", ["-sS", "-w", "\n%{http_code}", ...args], { encoding: "utf8" }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`curl failed: ${stderr}`));
      const nl = stdout.lastIndexOf("\n");
      resolve({ status: Number(stdout.slice(nl + 1)), body: stdout.slice(0, nl) });
    });
  });
}

const sha = (b: string) => createHash("sha256").update(b).digest("hex");

test("the Shaman endpoints are user paths of the manager: 401 without a token, served with one", async () => {
  const line = `${sha("x")} 1 x`;
  const no = await curl(["-X", "POST", "-H", "Content-Type: text/plain", "--data-binary", line, `${base}/checkout/requirements`]);
  assert.equal(no.status, 401);
  for (const path of ["/shaman/status", "/files/" + sha("x") + "/1"]) assert.equal((await curl([`${base}${path}`])).status, 401, path);
  const yes = await curl(["-X", "POST", "-H", `Authorization: Bearer ${token}`, "-H", "Content-Type: text/plain", "--data-binary", line, `${base}/checkout/requirements`]);
  assert.deepEqual(yes, { status: 200, body: "file-unknown x\n" });
});

test("shaman push uploads what is missing and creates the checkout; a second push uploads nothing", async () => {
  const tree = join(d.dir, "tree");
  await mkdir(join(tree, "textures", "wood"), { recursive: true });
  await writeFile(join(tree, "scene.blend"), "blend data ".repeat(10_000));
  await writeFile(join(tree, "textures", "wood", "oak.png"), "png");
  await writeFile(join(tree, "textures", "same.png"), "png"); // same content: one upload
  await writeFile(join(tree, "name with spaces ö.txt"), "hello");
  await symlink("scene.blend", join(tree, "link.blend"));
  const args = ["--manager", base, "--config", d.configPath, "--json"];
  const first = await cli(["shaman", "push", tree, "--checkout", "shot_01", ...args]);
  assert.equal(first.code, 0, first.stderr);
  const r1 = JSON.parse(first.stdout);
  assert.deepEqual({ ...r1, bytes: undefined }, { checkout: "shot_01", path: "01/shot_01", files: 5, bytes: undefined, uploaded_files: 3, uploaded_bytes: 110_000 + 3 + 5, unchanged: false });
  const root = join(d.stateDir, "shaman", "checkouts", "01", "shot_01");
  assert.equal(await readFile(join(root, "textures", "wood", "oak.png"), "utf8"), "png");
  assert.equal(await readFile(join(root, "name with spaces ö.txt"), "utf8"), "hello");
  assert.equal((await readFile(join(root, "link.blend"))).length, 110_000);

  const second = await cli(["shaman", "push", tree, "--checkout", "shot_02", ...args]);
  assert.equal(second.code, 0, second.stderr);
  const r2 = JSON.parse(second.stdout);
  assert.equal(r2.uploaded_files, 0);
  assert.equal(r2.uploaded_bytes, 0);
  assert.equal(r2.path, "02/shot_02");

  // the same tree to the same ID: found there with these files, nothing uploaded or created
  const again = await cli(["shaman", "push", tree, "--checkout", "shot_02", "--manager", base, "--config", d.configPath]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /^checkout shot_02: 02\/shot_02 \(5 files, .*; unchanged, it exists with these files\)\n$/);
  assert.equal(d.logs.filter((l) => /checkout created.*shot_02/.test(l)).length, 1, "created once");
  // what push asks: the listing's ETag is the definition's SHA-256; If-None-Match with it is 304
  const auth = ["-H", `Authorization: Bearer ${token}`];
  const listing = await curl([...auth, "-D", "-", `${base}/checkout/files/shot_02`]);
  const etag = /^etag: (".*")\r?$/im.exec(listing.body)?.[1];
  assert.equal(etag, `"${sha(listing.body.slice(listing.body.indexOf("\r\n\r\n") + 4))}"`);
  assert.equal((await curl([...auth, "-H", `If-None-Match: ${etag}`, `${base}/checkout/files/shot_02`])).status, 304);
  assert.equal((await curl([...auth, "-H", `If-None-Match: "${sha("other")}"`, `${base}/checkout/files/shot_02`])).status, 200);
  assert.equal((await curl([...auth, `${base}/checkout/files/no_such`])).status, 404);
  // other files under an existing ID: refused, the checkout left as it was
  await writeFile(join(tree, "textures", "same.png"), "changed");
  const changed = await cli(["shaman", "push", tree, "--checkout", "shot_02", "--manager", base, "--config", d.configPath]);
  assert.equal(changed.code, 1);
  assert.match(changed.stderr, /^stevedore: checkout shot_02 already exists with other files/);
  assert.equal(await readFile(join(d.stateDir, "shaman", "checkouts", "02", "shot_02", "textures", "same.png"), "utf8"), "png");
  await writeFile(join(tree, "textures", "same.png"), "png");
  const human = await cli(["shaman", "push", tree, "--checkout", "shot_03", "--manager", base, "--config", d.configPath]);
  assert.equal(human.code, 0);
  assert.match(human.stdout, /^checkout shot_03: 03\/shot_03 \(5 files, .*; uploaded 0 files, 0 B\)\n$/);
});

test("shaman status and gc talk to the daemon; usage errors exit 2", async () => {
  const st = await cli(["shaman", "status", "--json", "--config", d.configPath]);
  assert.equal(st.code, 0, st.stderr);
  const s = JSON.parse(st.stdout);
  assert.deepEqual({ blobs: s.blobs, checkouts: s.checkouts, uploads_in_flight: s.uploads_in_flight }, { blobs: 3, checkouts: 3, uploads_in_flight: 0 });
  const human = await cli(["shaman", "status", "--config", d.configPath]);
  assert.match(human.stdout, /^blobs: +3 \(.*\)\ncheckouts: +3\nuploads in flight: 0\nlast GC: +none since the daemon started\n$/);
  const dry = await cli(["shaman", "gc", "--dry-run", "--config", d.configPath]);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /^would free 0 blobs, 0 B \(scanned 3, linked by checkouts 3, recent 0; \d+ ms\)\n$/);
  const real = await cli(["shaman", "gc", "--json", "--config", d.configPath]);
  assert.equal(JSON.parse(real.stdout).dry_run, false);
  assert.match((await cli(["shaman", "status", "--config", d.configPath])).stdout, /last GC: +\d{4}-.*freed 0 blobs/);
  for (const bad of [["shaman"], ["shaman", "push", "x"], ["shaman", "push", "x", "--checkout", "a-b"], ["shaman", "gc", "extra"], ["shaman", "status", "--dry-run"], ["shaman", "nope"]]) {
    const r = await cli([...bad, "--config", d.configPath]);
    assert.equal(r.code, 2, bad.join(" "));
    assert.match(r.stderr, /^stevedore: /);
  }
  const help = await cli(["shaman", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /stevedore shaman push DIR --checkout ID/);
});

test("a restart removes what a crash left in uploading/ and checkouts-building/", async () => {
  await d.stop("SIGKILL");
  const shaman = join(d.stateDir, "shaman");
  await writeFile(join(shaman, "uploading", `${sha("x")}-1-deadbeef.tmp`), "x");
  await mkdir(join(shaman, "checkouts-building", "half-abc", "dir"), { recursive: true });
  await d.restart();
  assert.deepEqual(await readdir(join(shaman, "uploading")), []);
  assert.deepEqual(await readdir(join(shaman, "checkouts-building")), []);
  assert.deepEqual((await readdir(join(shaman, "checkouts"))).sort(), ["01", "02", "03"]);
  await d.waitForLog(/shaman: removed leftovers/);
});

// last: it adds blobs and checkouts the tests above count
test("shaman push on a terminal: one files-and-bytes progress line rewritten in place and cleared; piped: no progress, no control characters", async () => {
  const tree = join(d.dir, "tty-tree");
  await mkdir(join(tree, "frames"), { recursive: true });
  // twelve files of 200 KiB, each different: all twelve are uploaded
  for (let i = 0; i < 12; i++) await writeFile(join(tree, "frames", `f${i}.exr`), Buffer.alloc(200 * 1024, `frame ${i} `));
  const tty = await runBundleOnTty(["shaman", "push", tree, "--checkout", "shot_tty", "--manager", base, "--config", d.configPath], { STEVEDORE_MANAGER_TOKEN: "" });
  assert.equal(tty.code, 0, tty.out);
  const summary = "checkout shot_tty: ty/shot_tty (12 files, 2.3 MiB; uploaded 12 files, 2.3 MiB)\n";
  assert.ok(tty.out.endsWith(`\r\x1b[K${summary}`), `the progress line is cleared before the summary: ${JSON.stringify(tty.out)}`);
  const progress = tty.out.slice(0, -summary.length).split("\r\x1b[K").slice(1, -1);
  // the first upload line is drawn as soon as the count is known; files and bytes, done and to do
  const uploads = progress.filter((p) => p.startsWith("uploading: "));
  assert.equal(uploads[0], "uploading: 0/12 files, 0 B/2.3 MiB", JSON.stringify(progress));
  for (const p of uploads) assert.match(p, /^uploading: \d+\/12 files, [\d.]+ (B|KiB|MiB)\/2\.3 MiB$/);
  for (const p of progress) assert.ok(!p.includes("\n"), `one line, rewritten: ${JSON.stringify(p)}`);
  // piped: the summary alone
  await writeFile(join(tree, "frames", "f0.exr"), Buffer.alloc(200 * 1024, "frame 0 changed "));
  const piped = await cli(["shaman", "push", tree, "--checkout", "shot_pipe", "--manager", base, "--config", d.configPath]);
  assert.equal(piped.code, 0, piped.stderr);
  assert.equal(piped.stderr, "");
  assert.equal(piped.stdout, "checkout shot_pipe: pe/shot_pipe (12 files, 2.3 MiB; uploaded 1 files, 200.0 KiB)\n");
  assert.doesNotMatch(piped.stdout, CONTROL_CHARS);
});
