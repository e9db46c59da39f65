// A real Pebble ACME CA for tests: its HTTPS cert from a test CA made with openssl, challtestsrv as
// its DNS server answering every name with 127.0.0.1, validation against the daemon's ports.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdtemp, writeFile, readFile, rm } from "node:fs/promises";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../helpers/daemon.js";
import { waitFor } from "../helpers/docker.js";

export interface Pebble {
  dir: string;
  /** the directory URL for acme_directory_url */
  directory: string;
  /** the test CA that signed Pebble's own HTTPS certificate (for acme_ca_file) */
  caFile: string;
  /** Pebble's root for the certificates it issues (fetched from its management port) */
  rootFile: string;
  logs: string[];
  start(env?: Record<string, string>): Promise<void>;
  stop(): Promise<void>;
  cleanup(): Promise<void>;
}

export function pebbleAvailable(): boolean {
  try {
    execFileSync("sh", ["-c", "command -v pebble && command -v pebble-challtestsrv"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function get(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, timeout: 5000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** httpPort/tlsPort: where Pebble's VA connects for HTTP-01 / TLS-ALPN-01 (the daemon's listeners) */
export async function makePebble(httpPort: number, tlsPort: number): Promise<Pebble> {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-pebble-"));
  const ossl = (...a: string[]) => execFileSync("openssl", a, { cwd: dir, stdio: "ignore" });
  ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=stevedore test CA");
  ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "pebble.key", "-out", "pebble.csr", "-subj", "/CN=localhost");
  await writeFile(join(dir, "ext.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  ossl("x509", "-req", "-in", "pebble.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "pebble.pem", "-days", "2", "-extfile", "ext.cnf");
  const [acmePort, mgmtPort, dnsPort, chalMgmt] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const config = { pebble: { listenAddress: `127.0.0.1:${acmePort}`, managementListenAddress: `127.0.0.1:${mgmtPort}`, certificate: join(dir, "pebble.pem"), privateKey: join(dir, "pebble.key"), httpPort, tlsPort, ocspResponderURL: "", externalAccountBindingRequired: false } };
  await writeFile(join(dir, "pebble.json"), JSON.stringify(config));
  const caFile = join(dir, "ca.pem");
  const ca = await readFile(caFile, "utf8");
  const procs: ChildProcess[] = [];
  const logs: string[] = [];
  const track = (p: ChildProcess, name: string) => {
    for (const s of [p.stdout, p.stderr]) s?.on("data", (c: Buffer) => logs.push(...c.toString().split("\n").filter(Boolean).map((l) => `${name}: ${l}`)));
    procs.push(p);
  };
  const p: Pebble = {
    dir,
    directory: `https://127.0.0.1:${acmePort}/dir`,
    caFile,
    rootFile: join(dir, "pebble-root.pem"),
    logs,
    async start(env = {}) {
      if (procs.length === 0) {
        track(spawn("pebble-challtestsrv", ["-defaultIPv4", "127.0.0.1", "-defaultIPv6", "", "-dns01", `127.0.0.1:${dnsPort}`, "-http01", "", "-https01", "", "-tlsalpn01", "", "-management", `127.0.0.1:${chalMgmt}`], { stdio: ["ignore", "pipe", "pipe"] }), "challtestsrv");
      }
      track(spawn("pebble", ["-config", join(dir, "pebble.json"), "-dnsserver", `127.0.0.1:${dnsPort}`], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, PEBBLE_VA_NOSLEEP: "1", PEBBLE_AUTHZREUSE: "0", ...env } }), "pebble");
      await waitFor("pebble directory", async () => (await get(p.directory, ca)).status === 200, 20_000, 50);
      const root = await get(`https://127.0.0.1:${mgmtPort}/roots/0`, ca);
      if (root.status !== 200) throw new Error(`pebble root: ${root.status}`);
      await writeFile(p.rootFile, root.body);
    },
    async stop() {
      // pebble only (challtestsrv stays): the CA is down, DNS answers go on
      const pb = procs.filter((x) => x.spawnargs[0] === "pebble" && x.exitCode === null && x.signalCode === null);
      for (const x of pb) {
        const done = new Promise((r) => x.once("exit", r));
        x.kill("SIGKILL");
        await done;
      }
      procs.splice(0, procs.length, ...procs.filter((x) => !pb.includes(x)));
    },
    async cleanup() {
      for (const x of procs) if (x.exitCode === null && x.signalCode === null) x.kill("SIGKILL");
      await rm(dir, { recursive: true, force: true });
    },
  };
  return p;
}
