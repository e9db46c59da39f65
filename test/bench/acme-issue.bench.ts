// Time from `docker run` of an ingress container to the first successful HTTPS request through the
// proxy with a certificate issued by a real Pebble (HTTP-01, PEBBLE_VA_NOSLEEP=1), against the same
// flow's time to the first successful HTTP request (issue 15 goal: HTTPS < 5 s).
// Run: make build && node --import tsx test/bench/acme-issue.bench.ts
import { randomBytes } from "node:crypto";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { startDaemon } from "../helpers/daemon.js";
import { ensureTestImage, removeLabeled, waitFor } from "../helpers/docker.js";
import { get } from "../proxy/helpers.js";
import { makePebble } from "../acme/pebble.js";

const exec = promisify(execFile);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const RUN = randomBytes(3).toString("hex");
const LABEL = `stevedore.test.group=acme-bench-${RUN}`;
const DOMAIN = `bench${RUN}.test`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const image = await ensureTestImage();
const d = await startDaemon({ disable: ["query", "admin", "core", "manager"] });
await d.stop();
const pebble = await makePebble(d.httpPort, d.httpsPort);
await pebble.start();
await d.writeConfig(`ingress_domain = "${DOMAIN}"\ncatalog_debounce_ms = 10\nacme = true\nacme_directory_url = "${pebble.directory}"\nacme_ca_file = "${pebble.caFile}"\nacme_challenges = ["http-01"]`);
await d.restart();
await d.waitForLog(/msg="catalog ready"/, 10_000);

async function dockerRun(sub: string): Promise<void> {
  await exec("docker", ["run", "-d", "--rm", "--label", LABEL, "--label", "stevedore.ingress.enabled=true", "--label", `stevedore.ingress.subdomain=${sub}`, "--label", "stevedore.ingress.port=8080",
    "--label", `stevedore.deployment=acme-bench-${RUN}`, "--label", `stevedore.service=${sub}`, image, "/bin/sh", "-c", `mkdir -p /tmp/w && echo ok > /tmp/w/index.html && exec httpd -f -p 8080 -h /tmp/w`]);
}

async function https(host: string): Promise<boolean> {
  const r = await exec("curl", ["-sS", "--max-time", "3", "--cacert", pebble.rootFile, "--resolve", `${host}:${d.httpsPort}:127.0.0.1`, `https://${host}:${d.httpsPort}/`]).catch(() => undefined);
  return r?.stdout.trim() === "ok";
}

const tHttp: number[] = [];
const tHttps: number[] = [];
try {
  for (let i = 0; i < ROUNDS; i++) {
    const plain = `plain${i}`;
    const t0 = performance.now();
    await dockerRun(plain);
    // HTTP-only flow: a host that is not an ACME host would answer 200 on HTTP; ours answer 200
    // until the certificate arrives (then 308), so the first 200 is the HTTP figure
    await waitFor("HTTP 200", async () => (await get(d.httpPort, `${plain}.${DOMAIN}`)).status === 200, 30_000, 20);
    tHttp.push(performance.now() - t0);
    const sec = `tls${i}`;
    const t1 = performance.now();
    await dockerRun(sec);
    await waitFor("HTTPS 200 with a Pebble certificate", () => https(`${sec}.${DOMAIN}`), 60_000, 50);
    tHttps.push(performance.now() - t1);
  }
  console.log(`docker run -> first successful request through the proxy, ${ROUNDS} rounds, medians (noisy shared machine)`);
  console.log(`anchor: HTTP only                 ${median(tHttp).toFixed(0)} ms`);
  console.log(`figure: HTTPS, Pebble certificate ${median(tHttps).toFixed(0)} ms (goal < 5000 ms)`);
  console.log(`ratio: ${(median(tHttps) / median(tHttp)).toFixed(2)}x; orders: ${d.logs.filter((l) => l.includes('msg="acme order"')).length}`);
} finally {
  await d.cleanup();
  await pebble.cleanup();
  await removeLabeled(LABEL);
}
