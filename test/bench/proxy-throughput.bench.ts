// Throughput and latency through the proxy (the bundled daemon, a config site) against Debian's
// nginx proxying to the same local node backend with upstream keep-alive, both driven by wrk
// with the same connections and duration in one run; the direct backend is the latency anchor.
// Then: container start event → first request served through the proxy (needs Docker).
// Run: node --import tsx test/bench/proxy-throughput.bench.ts
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDaemon, freePort, type TestDaemon } from "../helpers/daemon.js";
import { dockerReachable, ensureTestImage, removeLabeled, run, waitFor } from "../helpers/docker.js";
import { DockerClient } from "../../src/docker/index.js";
import { get } from "../proxy/helpers.js";

const DURATION = process.env.BENCH_SECS ?? "5";
const CONNECTION_SETS = [1, 32];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const BACKEND = `
const http = require("node:http");
const body = Buffer.from("hello from the backend\\n");
const s = http.createServer((req, res) => { req.resume(); res.writeHead(200, { "content-type": "text/plain", "content-length": body.length }); res.end(body); });
s.keepAliveTimeout = 65000;
s.listen(Number(process.argv[1]), "127.0.0.1", () => process.send && process.send("up"));
`;

// The floor of node:http: a bare keep-alive proxy with no routing, no header rewriting, no
// retries or timeouts. Shows what share of the gap to nginx is Node's HTTP stack itself.
const BARE_PROXY = `
const http = require("node:http");
const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
const [port, backendPort] = process.argv.slice(1).map(Number);
http.createServer((req, res) => {
  const u = http.request({ host: "127.0.0.1", port: backendPort, path: req.url, method: req.method, headers: req.headers, agent }, (ur) => { res.writeHead(ur.statusCode, ur.headers); ur.pipe(res); });
  u.on("error", () => { res.statusCode = 502; res.end(); });
  req.pipe(u);
}).listen(port, "127.0.0.1", () => process.send && process.send("up"));
`;

interface WrkResult { rps: number; p50: number; p99: number }

function toMs(v: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v);
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === "us" ? n / 1000 : m[2] === "s" ? n * 1000 : n;
}

async function wrk(url: string, connections: number, host: string): Promise<WrkResult> {
  const { stdout } = await run("wrk", ["-t1", `-c${connections}`, `-d${DURATION}s`, "--latency", "-H", `Host: ${host}`, url], { maxBuffer: 1 << 20 });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
  const p50 = toMs(/^\s+50%\s+(\S+)/m.exec(stdout)?.[1] ?? "");
  const p99 = toMs(/^\s+99%\s+(\S+)/m.exec(stdout)?.[1] ?? "");
  if (/Non-2xx/.test(stdout)) throw new Error(`wrk saw errors against ${url}:\n${stdout}`);
  return { rps, p50, p99 };
}

async function startNginx(dir: string, port: number, backendPort: number): Promise<ChildProcess> {
  for (const d of ["body", "proxy", "fastcgi", "uwsgi", "scgi", "logs"]) await mkdir(join(dir, d), { recursive: true });
  const conf = `daemon off; master_process off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/logs/error.log error;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream backend { server 127.0.0.1:${backendPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
    }
  }
}
`;
  await writeFile(join(dir, "nginx.conf"), conf);
  const proc = spawn("nginx", ["-c", join(dir, "nginx.conf"), "-p", dir], { stdio: ["ignore", "ignore", "inherit"] });
  await waitFor("nginx", async () => (await get(port, "bench.test").catch(() => undefined))?.status === 200, 5000, 20);
  return proc;
}

async function throughput(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-bench-proxy-"));
  const backendPort = await freePort();
  const nginxPort = await freePort();
  const barePort = await freePort();
  const backend = spawn(process.execPath, ["-e", BACKEND, String(backendPort)], { stdio: ["ignore", "ignore", "inherit", "ipc"] });
  await new Promise((r) => backend.once("message", r));
  const bare = spawn(process.execPath, ["-e", BARE_PROXY, String(barePort), String(backendPort)], { stdio: ["ignore", "ignore", "inherit", "ipc"] });
  await new Promise((r) => bare.once("message", r));
  let daemon: TestDaemon | undefined;
  let nginx: ChildProcess | undefined;
  try {
    daemon = await startDaemon({
      disable: ["query", "admin", "command", "core", "manager", "https"],
      config: `[[site]]\nhostname = "bench.test"\nbackends = ["127.0.0.1:${backendPort}"]`,
      env: { STEVEDORE_LOG_LEVEL: "warn" },
    });
    nginx = await startNginx(dir, nginxPort, backendPort);
    console.log(`proxy throughput: wrk -t1, ${DURATION} s per run, same node backend (${process.version})`);
    console.log("connections  target      req/s      p50 ms   p99 ms");
    const rows: string[] = [];
    for (const c of CONNECTION_SETS) {
      const direct = await wrk(`http://127.0.0.1:${backendPort}/`, c, "bench.test");
      const ngx = await wrk(`http://127.0.0.1:${nginxPort}/`, c, "bench.test");
      const ours = await wrk(`http://127.0.0.1:${daemon.httpPort}/`, c, "bench.test");
      const floor = await wrk(`http://127.0.0.1:${barePort}/`, c, "bench.test");
      for (const [name, r] of [["direct", direct], ["nginx", ngx], ["stevedore", ours], ["bare node", floor]] as const)
        console.log(`${String(c).padStart(11)}  ${name.padEnd(10)} ${r.rps.toFixed(0).padStart(8)}  ${r.p50.toFixed(3).padStart(8)} ${r.p99.toFixed(3).padStart(8)}`);
      rows.push(`${String(c).padStart(11)}  ${(ours.rps / ngx.rps).toFixed(2).padStart(16)} (goal ≥ 0.5)  ${(ours.p50 - direct.p50).toFixed(3).padStart(9)} ms (goal < 1)   nginx adds ${(ngx.p50 - direct.p50).toFixed(3)} ms; stevedore/bare node ${(ours.rps / floor.rps).toFixed(2)}`);
    }
    console.log("connections  req/s stevedore/nginx           added p50 over direct");
    for (const r of rows) console.log(r);
  } finally {
    nginx?.kill("SIGTERM");
    bare.kill("SIGTERM");
    backend.kill("SIGTERM");
    await daemon?.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Container start event (Docker's timeNano) → first request served through the proxy. */
async function reconfiguration(): Promise<void> {
  if (!(await dockerReachable())) {
    console.log("reconfiguration: skipped (no Docker engine)");
    return;
  }
  const RUN = process.pid.toString(36);
  const GROUP = `px-bench-${RUN}`;
  const image = await ensureTestImage();
  const docker = new DockerClient("/var/run/docker.sock");
  const daemon = await startDaemon({
    disable: ["query", "admin", "command", "core", "manager", "https"],
    config: 'ingress_domain = "bench.test"\n',
    env: { STEVEDORE_LOG_LEVEL: "warn" },
    readyLog: /msg="ready"/,
  });
  const viaProxy: number[] = [];
  const direct: number[] = [];
  try {
    for (let i = 0; i < 5; i++) {
      const sub = `r${RUN}${i}`;
      const { Id } = await docker.createContainer(`px-bench-${RUN}-${i}`, {
        Image: image,
        Labels: { "stevedore.test": "proxy", "stevedore.test.group": GROUP, "stevedore.deployment": GROUP, "stevedore.service": sub, "stevedore.ingress.enabled": "true", "stevedore.ingress.subdomain": sub, "stevedore.ingress.port": "8080" },
        HostConfig: { NetworkMode: "bridge" },
      } as never);
      const since = Math.floor(Date.now() / 1000) - 1;
      await docker.startContainer(Id);
      const ip = (await docker.inspectContainer(Id)).NetworkSettings?.Networks?.bridge?.IPAddress as string;
      let directAt = 0;
      let proxyAt = 0;
      await waitFor("served", async () => {
        if (!directAt && (await fetch(`http://${ip}:8080/`).then((r) => r.ok, () => false))) directAt = Date.now();
        if (!proxyAt && (await get(daemon.httpPort, `${sub}.bench.test`).then((r) => r.status === 200, () => false))) proxyAt = Date.now();
        return directAt > 0 && proxyAt > 0;
      }, 10_000, 2);
      const { stdout } = await run("docker", ["events", "--since", String(since), "--until", String(Math.ceil(Date.now() / 1000) + 1), "--filter", `container=${Id}`, "--filter", "event=start", "--format", "{{.TimeNano}}"]);
      const startNs = Number(stdout.trim().split("\n")[0]);
      viaProxy.push(proxyAt - startNs / 1e6);
      direct.push(directAt - startNs / 1e6);
    }
    const p = median(viaProxy);
    const d = median(direct);
    console.log("\ncontainer start event → first request served (median of 5, ms)");
    console.log("through the proxy   direct to the container (anchor)   ratio   goal");
    console.log(`${p.toFixed(0).padStart(17)}   ${d.toFixed(0).padStart(32)}   ${(p / d).toFixed(2).padStart(5)}   < 1000 ms`);
  } finally {
    await daemon.cleanup();
    await removeLabeled(`stevedore.test.group=${GROUP}`);
    docker.close();
  }
}

async function main() {
  await throughput();
  await reconfiguration();
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
