// The proxy inside the bundled daemon: config sites, streaming with constant memory, reload
// without dropping in-flight requests, HTTPS with a site certificate, graceful stop.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { readFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "node:http";
import { request as httpsRequest } from "node:https";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { run, waitFor } from "../helpers/docker.js";
import { backend, get, type Backend } from "./helpers.js";

const OFF = ["query", "admin", "command", "core", "manager"] as ("query" | "admin" | "command" | "core" | "manager")[];
const MB = 1024 * 1024;
const TOTAL = 100 * MB;
let big: Backend;
let other: Backend;
let release: (() => void)[] = [];

before(async () => {
  const chunk = Buffer.alloc(64 * 1024, 120);
  big = await backend("big", (req, res) => {
    if (req.url === "/upload") {
      let n = 0;
      req.on("data", (c: Buffer) => (n += c.length));
      req.on("end", () => res.end(String(n)));
      return;
    }
    if (req.url === "/download") {
      req.resume();
      res.writeHead(200, { "content-length": String(TOTAL) });
      let sent = 0;
      const pump = () => {
        while (sent < TOTAL) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once("drain", pump);
        }
        res.end();
      };
      return pump();
    }
    if (req.url === "/slow") {
      req.resume();
      release.push(() => res.end("slow done"));
      return;
    }
    req.resume();
    res.end("big");
  });
  other = await backend("other");
});
after(async () => {
  await big.close();
  await other.close();
});

function rssKiB(pid: number): Promise<number> {
  return readFile(`/proc/${pid}/status`, "utf8").then((s) => Number(/VmRSS:\s+(\d+)/.exec(s)![1]));
}

/** Sample the daemon's RSS while `work` runs; resolves with the peak growth over the start (KiB). */
async function peakGrowth(pid: number, work: () => Promise<void>): Promise<number> {
  const start = await rssKiB(pid);
  let peak = start;
  const timer = setInterval(() => void rssKiB(pid).then((v) => (peak = Math.max(peak, v)), () => {}), 50);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  peak = Math.max(peak, await rssKiB(pid));
  return peak - start;
}

function upload(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunk = Buffer.alloc(64 * 1024, 97);
    const req = request({ host: "127.0.0.1", port, path: "/upload", method: "POST", headers: { host: "site.test" }, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (c) => (body += c)).on("end", () => resolve(body));
    });
    req.on("error", reject);
    let sent = 0;
    const pump = () => {
      while (sent < TOTAL) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once("drain", pump);
      }
      req.end();
    };
    pump();
  });
}

function download(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/download", headers: { host: "site.test" }, agent: false }, (res) => {
      let n = 0;
      res.on("data", (c: Buffer) => (n += c.length)).on("end", () => resolve(n)).on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

const siteConf = (port: number, host = "site.test") => `[[site]]\nhostname = "${host}"\nbackends = ["127.0.0.1:${port}"]\n`;

test("config site through the daemon: 100 MB up and down streamed with constant proxy memory", async () => {
  const d = await startDaemon({ disable: [...OFF, "https"], config: siteConf(big.port) });
  try {
    assert.equal((await get(d.httpPort, "site.test")).body, "big");
    assert.equal((await get(d.httpPort, "nope.test")).status, 404);
    // warm up the pools and JIT before measuring
    await get(d.httpPort, "site.test");
    const pid = d.proc.pid!;
    let received = "";
    // the first transfer lets the heap settle at its working size; a buffering proxy would grow
    // by ~100 MB on every transfer, a streaming one stays flat
    await upload(d.httpPort);
    const up = await peakGrowth(pid, async () => void (received = await upload(d.httpPort)));
    assert.equal(received, String(TOTAL));
    let got = 0;
    const down = await peakGrowth(pid, async () => void (got = await download(d.httpPort)));
    assert.equal(got, TOTAL);
    console.log(`rss growth up=${up} KiB down=${down} KiB`);
    assert.ok(up < 30 * 1024, `RSS grew ${up} KiB during a 100 MB upload`);
    assert.ok(down < 30 * 1024, `RSS grew ${down} KiB during a 100 MB download`);
  } finally {
    await d.cleanup();
  }
});

test("kill -HUP with new sites re-routes; the request in flight during the reload completes", async () => {
  const d = await startDaemon({ disable: [...OFF, "https"], config: siteConf(big.port) });
  try {
    release = [];
    const inflight = get(d.httpPort, "site.test", "/slow");
    await waitFor("slow request at the backend", () => release.length === 1);
    await d.writeConfig(siteConf(other.port) + siteConf(other.port, "new.test"));
    d.proc.kill("SIGHUP");
    await d.waitForLog(/msg="config reloaded"/);
    assert.equal((await get(d.httpPort, "site.test")).body, "other");
    assert.equal((await get(d.httpPort, "new.test")).body, "other");
    release[0]!();
    const r = await inflight;
    assert.equal(r.status, 200);
    assert.equal(r.body, "slow done");
  } finally {
    await d.cleanup();
  }
});

test("HTTPS through the daemon with a site certificate; SIGTERM lets the in-flight request finish", async () => {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-dtls-"));
  const crt = join(dir, "s.crt");
  const key = join(dir, "s.key");
  await run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=site", "-addext", "subjectAltName=DNS:site.test"]);
  let d: TestDaemon | undefined;
  try {
    d = await startDaemon({ disable: OFF, config: `${siteConf(big.port)}tls_cert = "${crt}"\ntls_key = "${key}"\n` });
    const port = d.httpsPort;
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest({ host: "127.0.0.1", port, servername: "site.test", headers: { host: "site.test" }, ca: [], rejectUnauthorized: false, agent: false }, (res) => {
        assert.equal((res.socket as unknown as { getPeerCertificate(): { subject: { CN: string } } }).getPeerCertificate().subject.CN, "site");
        let b = "";
        res.setEncoding("utf8").on("data", (c) => (b += c)).on("end", () => resolve(b));
      });
      req.on("error", reject);
      req.end();
    });
    assert.equal(body, "big");
    release = [];
    const inflight = get(d.httpPort, "site.test", "/slow");
    await waitFor("slow request at the backend", () => release.length === 1);
    const exited = d.stop("SIGTERM");
    await d.waitForLog(/signal received/);
    release[0]!();
    assert.equal((await inflight).body, "slow done");
    assert.equal(await exited, 0);
  } finally {
    await d?.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
});
