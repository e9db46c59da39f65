// bind_contents "shaman:<checkoutID>" end to end: a tree pushed with `stevedore shaman push`, a
// service created through the core API from it, and the files seen inside the running container.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { lstat, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { needDocker, ensureTestImage, removeLabeled, run, dockerReachable } from "../helpers/docker.js";
import { startDaemon, BUNDLE, type TestDaemon } from "../helpers/daemon.js";
import { CoreClient } from "./client.js";
import { RUN, RUN_LABEL, labels } from "./run.js";

let d: TestDaemon;
let api: CoreClient;
let image: string;

function push(dir: string, checkout: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const args = [BUNDLE, "shaman", "push", dir, "--checkout", checkout, "--manager", `http://127.0.0.1:${d.managerPort}`, "--config", d.configPath, "--json"];
    const p = spawn(process.execPath, args, { env: { ...process.env, STEVEDORE_MANAGER_TOKEN: "" }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    p.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    p.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

const bindsDir = () => join(d.stateDir, "binds");

before(async () => {
  if (!(await dockerReachable())) return;
  image = await ensureTestImage();
  await removeLabeled(RUN_LABEL);
  d = await startDaemon({ disable: ["query", "admin", "command", "http", "https"], config: "core_bind_contents_max_bytes = 65536" });
  api = await CoreClient.forStateDir(d.corePort, d.stateDir);
});

after(async () => {
  await d?.cleanup();
  if (await dockerReachable()) await removeLabeled(RUN_LABEL);
});

test("bind_contents shaman:ID: the container sees the checkout's files, copied (no link into the store)", async (t) => {
  if (!(await needDocker(t))) return;
  const tree = join(d.dir, "tree");
  await mkdir(join(tree, "conf", "deep"), { recursive: true });
  await writeFile(join(tree, "index.html"), "<h1>hello</h1>\n");
  await writeFile(join(tree, "conf", "deep", "app.conf"), "x = 1\n");
  await writeFile(join(tree, "conf", "same.conf"), "x = 1\n"); // one blob, two files
  const pushed = await push(tree, `site_${RUN}`);
  assert.equal(pushed.code, 0, pushed.stderr);

  const id = `coretest-shaman-${RUN}`;
  const r = await api.create({ id, image, bind_dir: "/data", labels, bind_contents: `shaman:site_${RUN}`, cmd: ["sleep", "100000"] });
  assert.equal(r.status, 204, r.text);
  assert.equal((await api.ctl(id, "start")).status, 204);
  const exec = async (...cmd: string[]) => (await run("docker", ["exec", id, ...cmd])).stdout;
  assert.equal(await exec("cat", "/data/index.html"), "<h1>hello</h1>\n");
  assert.equal(await exec("cat", "/data/conf/deep/app.conf"), "x = 1\n");
  assert.equal(await exec("cat", "/data/conf/same.conf"), "x = 1\n");
  // regular files: no link the container could follow, and writing one leaves the store alone
  const links = "for f in /data/index.html /data/conf /data/conf/deep /data/conf/deep/app.conf /data/conf/same.conf; do [ -L $f ] && echo $f; done; true";
  assert.equal(await exec("sh", "-c", links), "");
  await run("docker", ["exec", id, "sh", "-c", "echo changed > /data/conf/same.conf"]);
  const host = join(bindsDir(), id);
  for (const p of ["index.html", "conf/deep/app.conf", "conf/same.conf"]) assert.ok((await lstat(join(host, p))).isFile(), p);
  const again = join(d.stateDir, "shaman", "checkouts", RUN.slice(-2), `site_${RUN}`, "conf", "same.conf");
  assert.equal(await readFile(again, "utf8"), "x = 1\n");
  assert.equal((await api.call("DELETE", `/service/${id}`)).status, 204);
});

test("bind_contents shaman:ID: unknown checkout → 400, too large → 413, bad id → 400; nothing left behind", async (t) => {
  if (!(await needDocker(t))) return;
  const big = join(d.dir, "big");
  await mkdir(big, { recursive: true });
  await writeFile(join(big, "blob.bin"), Buffer.alloc(70_000, 7));
  assert.equal((await push(big, `big_${RUN}`)).code, 0);
  const cases: [string, number, RegExp][] = [
    [`shaman:nope_${RUN}`, 400, /no such Shaman checkout: nope_/],
    [`shaman:big_${RUN}`, 413, /more than the limit of 65536/],
    ["shaman:a/../b", 400, /shaman:ID needs a checkout ID/],
  ];
  for (const [contents, status, re] of cases) {
    const id = `coretest-shaman-bad-${RUN}`;
    const r = await api.create({ id, image, bind_dir: "/data", labels, bind_contents: contents });
    assert.equal(r.status, status, `${contents}: ${r.text}`);
    assert.match(r.json.error, re);
    assert.equal((await api.call("GET", `/service/${id}`)).status, 404);
    assert.deepEqual((await readdir(bindsDir())).filter((n) => n.startsWith(".") || n === id), []);
  }
});
