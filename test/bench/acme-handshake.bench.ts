// TLS handshakes per second through the proxy's HTTPS listener with 200 ACME hosts loaded, against
// the same with one host (issue 15 goal: >= 0.9x, the SNI lookup stays flat). Certificates are
// stored under state_dir/acme/certs before start (self-signed, P-256), loaded like issued ones.
// Run: node --import tsx test/bench/acme-handshake.bench.ts
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:tls";
import { buildAlpnCert, pem } from "../../src/proxy/acme/der.js";
import { newKey } from "../../src/proxy/acme/client.js";
import { startProxy } from "../proxy/helpers.js";

const SECS = Number(process.env.BENCH_SECS ?? 2);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function proxyWith(hosts: number) {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-bench-acme-"));
  const certs = join(dir, "acme", "certs");
  await mkdir(certs, { recursive: true });
  let sites = "";
  for (let i = 0; i < hosts; i++) {
    const h = `h${i}.bench.test`;
    const { privateKey, publicKey } = newKey();
    await writeFile(join(certs, `${h}.crt`), pem("CERTIFICATE", buildAlpnCert(h, "x", privateKey, publicKey)));
    await writeFile(join(certs, `${h}.key`), privateKey.export({ format: "pem", type: "pkcs8" }) as string);
    sites += `[[site]]\nhostname = "${h}"\nbackends = ["127.0.0.1:9"]\ntls = "auto"\n`;
  }
  const p = await startProxy({ https: true, config: `state_dir = "${dir}"\nacme = true\nacme_directory_url = "https://127.0.0.1:9/dir"\n${sites}` });
  return { p, hosts, cleanup: async () => { await p.stop(); await rm(dir, { recursive: true, force: true }); } };
}

function handshake(port: number, servername: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: "127.0.0.1", servername, rejectUnauthorized: false, session: undefined }, () => {
      s.destroy();
      resolve();
    });
    s.on("error", reject);
  });
}

async function rate(port: number, hosts: number): Promise<number> {
  const until = performance.now() + SECS * 1000;
  let n = 0;
  while (performance.now() < until) {
    await handshake(port, `h${n % hosts}.bench.test`);
    n++;
  }
  return n / SECS;
}

const one = await proxyWith(1);
const many = await proxyWith(200);
try {
  await rate(one.p.httpsPort, 1);
  await rate(many.p.httpsPort, 200); // warm-up
  const r1: number[] = [];
  const r200: number[] = [];
  const r200one: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    r1.push(await rate(one.p.httpsPort, 1));
    r200.push(await rate(many.p.httpsPort, 200));
    r200one.push(await rate(many.p.httpsPort, 1));
  }
  const a = median(r1);
  const b = median(r200);
  console.log(`TLS handshakes/s (sequential, one client, ${ROUNDS} rounds of ${SECS} s, medians; noisy shared machine)`);
  console.log(`anchor: 1 ACME host loaded      ${a.toFixed(0)} /s`);
  console.log(`figure: 200 ACME hosts loaded   ${b.toFixed(0)} /s  (SNI names cycled over all 200)`);
  const c = median(r200one);
  console.log(`figure: 200 ACME hosts loaded   ${c.toFixed(0)} /s  (SNI always h0: the lookup alone)`);
  console.log(`ratio 200/1: ${(b / a).toFixed(2)}x cycled, ${(c / a).toFixed(2)}x same name (goal >= 0.9x)`);
} finally {
  await one.cleanup();
  await many.cleanup();
}
