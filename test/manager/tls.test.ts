// The manager over TLS through the bundled daemon (manager_tls_cert/manager_tls_key, a certificate
// of a private CA made with openssl): the reference worker, `stevedore jobs` and `stevedore shaman
// push` over https:// trusting the CA with --cacert (and refusing without it), and the dashboard's
// cookie marked Secure.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { join } from "node:path";
import { BUNDLE, runBundle, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { NO_DOCKER } from "../helpers/admin.js";

let d: TestDaemon;
let ca: string;
let worker: ChildProcess | undefined;

/** a CA and a server certificate for 127.0.0.1 signed by it */
function makeCerts(dir: string): { ca: string; cert: string; key: string } {
  const p = (name: string) => join(dir, name);
  const ossl = (...args: string[]) => execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
  ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "2", "-subj", "/CN=stevedore test CA");
  ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", p("server.key"), "-out", p("server.csr"), "-subj", "/CN=127.0.0.1");
  execFileSync("sh", ["-c", `printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > '${p("ext.cnf")}'`]);
  ossl("x509", "-req", "-in", p("server.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"), "-CAcreateserial", "-out", p("server.pem"), "-days", "2", "-extfile", p("ext.cnf"));
  return { ca: p("ca.pem"), cert: p("server.pem"), key: p("server.key") };
}

before(async () => {
  d = await startDaemon({ env: NO_DOCKER, disable: ["query", "command", "core", "http", "https"], readyLog: /msg="ready"/ });
  const certs = makeCerts(d.dir);
  ca = certs.ca;
  await d.writeConfig(`manager_tls_cert = "${certs.cert}"\nmanager_tls_key = "${certs.key}"`);
  await d.restart();
  await d.waitForLog(/manager API listening.*tls=true/);
});
after(async () => {
  worker?.kill("SIGKILL");
  await d?.cleanup();
});

/** the CLI against the daemon's config (its manager URL is https:// since manager_tls_cert is set) */
const cli = (...args: string[]) => runBundle([...args, "--config", d.configPath], { STEVEDORE_MANAGER_TOKEN: "", STEVEDORE_STATE_DIR: "" });

test("the CLI refuses the manager's certificate unless told to trust its CA (--cacert)", async () => {
  const r = await cli("jobs", "list");
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /^stevedore: .*(certificate|issuer)/im);
  const ok = await cli("jobs", "list", "--json", "--cacert", ca);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(JSON.parse(ok.stdout).jobs, []);
  const bad = await cli("jobs", "list", "--cacert", join(d.dir, "missing.pem"));
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^stevedore: cannot read --cacert/);
});

test("a worker over https:// runs a job submitted with stevedore jobs submit --wait over https://", async () => {
  worker = spawn(process.execPath, [BUNDLE, "worker", "--manager", `https://127.0.0.1:${d.managerPort}`, "--cacert", ca, "--state", join(d.dir, "worker.json"), "--nickname", "tls-worker", "--task-types", "echo"], {
    env: { ...process.env, STEVEDORE_CONFIG: "", STEVEDORE_WORKER_IDLE_MS: "100", STEVEDORE_WORKER_FLUSH_MS: "100", STEVEDORE_WORKER_REGISTRATION_SECRET: "" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let workerLog = "";
  worker.stderr!.setEncoding("utf8").on("data", (c: string) => (workerLog += c));
  const jobFile = join(d.dir, "job.json");
  await writeFile(jobFile, JSON.stringify({ name: "tls-job", tasks: [{ name: "hello", task_type: "echo", commands: [{ name: "echo", settings: { message: "over tls" } }] }] }));
  const r = await cli("jobs", "submit", jobFile, "--wait", "--cacert", ca);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}\nworker:\n${workerLog}`);
  const workers = await cli("workers", "--json", "--cacert", ca);
  assert.equal(workers.code, 0, workers.stderr);
  assert.ok((JSON.parse(workers.stdout).workers as { nickname: string }[]).some((w) => w.nickname === "tls-worker"));
  const exited = new Promise((res) => worker!.once("exit", res));
  worker.kill("SIGTERM");
  assert.equal(await exited, 0, workerLog);
  worker = undefined;
});

test("stevedore shaman push over https://; a second push uploads nothing", async () => {
  const tree = join(d.dir, "tree");
  await mkdir(join(tree, "sub"), { recursive: true });
  await writeFile(join(tree, "a.txt"), "alpha\n");
  await writeFile(join(tree, "sub", "b.bin"), Buffer.alloc(100_000, 7));
  const first = await cli("shaman", "push", tree, "--checkout", "tls_push", "--json", "--cacert", ca);
  assert.equal(first.code, 0, first.stderr);
  const again = await cli("shaman", "push", tree, "--checkout", "tls_push_2", "--json", "--cacert", ca);
  assert.equal(again.code, 0, again.stderr);
  const s1 = JSON.parse(first.stdout) as Record<string, unknown>;
  const s2 = JSON.parse(again.stdout) as Record<string, unknown>;
  assert.equal(s1.uploaded_files, 2, first.stdout);
  assert.equal(s2.uploaded_files, 0, again.stdout);
});

test("the dashboard's sign-in cookie is Secure over TLS", async () => {
  const link = await cli("dashboard", "--json");
  assert.equal(link.code, 0, link.stderr);
  const url = new URL(JSON.parse(link.stdout).url as string);
  assert.equal(url.protocol, "https:");
  const res = await new Promise<{ status: number; cookie: string }>((resolve, reject) => {
    const req = request(url, { ca: readFileSync(ca), agent: false }, (r) => {
      r.resume();
      resolve({ status: r.statusCode ?? 0, cookie: String(r.headers["set-cookie"] ?? "") });
    });
    req.on("error", reject);
    req.end();
  });
  assert.equal(res.status, 303);
  assert.match(res.cookie, /^jwtToken=[^;]+;.*HttpOnly/);
  assert.match(res.cookie, /; Secure(;|$)/);
});
