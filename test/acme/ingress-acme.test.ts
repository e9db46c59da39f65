// Automatic HTTPS end to end with a real Pebble CA (HTTP-01 really validated against our listener):
// ingress container → certificate served → HTTP 308 → container gone and back → no second order;
// restart serves the stored certificate with the CA down; CA down → back-off, other hosts fine;
// a corrupt certificate file at start → logged, re-ordered.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startDaemon, BUNDLE, type TestDaemon } from "../helpers/daemon.js";
import { DOCKER_SOCKET, ensureTestImage, needDocker, removeLabeled, waitFor } from "../helpers/docker.js";
import { DockerClient } from "../../src/docker/index.js";
import { get } from "../proxy/helpers.js";
import { makePebble, pebbleAvailable, type Pebble } from "./pebble.js";

const exec = promisify(execFile);
const RUN = randomBytes(3).toString("hex");
const GROUP = `stevedore.test.group=acme-${RUN}`;
const DOMAIN = `acme${RUN}.test`;
const engine = new DockerClient(DOCKER_SOCKET);
let daemon: TestDaemon | undefined;
let pebble: Pebble | undefined;
after(async () => {
  await daemon?.cleanup();
  await pebble?.cleanup();
  await removeLabeled(GROUP);
  engine.close();
});

async function webContainer(sub: string): Promise<string> {
  const image = await ensureTestImage();
  const { Id } = await engine.createContainer(`acme-${RUN}-${sub}`, {
    Image: image,
    Cmd: ["/bin/sh", "-c", `mkdir -p /tmp/w && echo hello-${sub} > /tmp/w/index.html && exec httpd -f -p 8080 -h /tmp/w`],
    Labels: {
      [GROUP.split("=")[0]!]: GROUP.split("=")[1]!,
      "stevedore.deployment": `acme-${RUN}`,
      "stevedore.service": sub,
      "stevedore.ingress.enabled": "true",
      "stevedore.ingress.subdomain": sub,
      "stevedore.ingress.port": "8080",
    },
    HostConfig: { NetworkMode: "bridge" },
    StopTimeout: 1,
  } as never);
  await engine.startContainer(Id);
  return Id;
}

/** the issuer's CN of the certificate served for `host`, via openssl s_client */
async function servedIssuer(host: string): Promise<string | undefined> {
  const r = await exec("sh", ["-c", `openssl s_client -connect 127.0.0.1:${daemon!.httpsPort} -servername ${host} </dev/null 2>/dev/null | openssl x509 -noout -issuer -ext subjectAltName`]).catch(() => undefined);
  if (!r || !r.stdout.includes(`DNS:${host}`)) return undefined;
  return r.stdout;
}

async function curlHttps(host: string): Promise<string | undefined> {
  const r = await exec("curl", ["-sS", "--max-time", "5", "--cacert", pebble!.rootFile, "--resolve", `${host}:${daemon!.httpsPort}:127.0.0.1`, `https://${host}:${daemon!.httpsPort}/`]).catch(() => undefined);
  return r?.stdout.trim();
}

/** account.key after the first order: every restart reuses it */
let accountKey = "";

/** The served certificate once Pebble issued it: not any certificate naming the host (a fallback
 *  or challenge certificate may be served for it first). */
async function pebbleIssued(host: string): Promise<string | undefined> {
  const s = await servedIssuer(host);
  return s && /issuer=.*Pebble/i.test(s) ? s : undefined;
}

const orders = (host: string) => daemon!.logs.filter((l) => l.includes('msg="acme order"') && l.includes(host)).length;

test("ingress container → Pebble certificate served, 308 redirect, no second order on flapping", async (t) => {
  if (!(await needDocker(t))) return;
  if (!pebbleAvailable()) return t.skip("pebble not installed");
  daemon = await startDaemon({ disable: ["query", "admin", "core", "manager"], config: `ingress_domain = "${DOMAIN}"\ncatalog_debounce_ms = 10` });
  await daemon.stop();
  pebble = await makePebble(daemon.httpPort, daemon.httpsPort);
  await pebble.start();
  const acme = `acme = true\nacme_directory_url = "${pebble.directory}"\nacme_ca_file = "${pebble.caFile}"\nacme_email = "ops@example.org"\nacme_challenges = ["http-01"]`;
  await daemon.writeConfig(`ingress_domain = "${DOMAIN}"\ncatalog_debounce_ms = 10\n${acme}`);
  await daemon.restart();
  await daemon.waitForLog(/msg="catalog ready"/, 20_000);

  const host = `web.${DOMAIN}`;
  const id = await webContainer("web");
  const issuer = await waitFor("a Pebble certificate served for the host", () => pebbleIssued(host), 60_000, 200);
  assert.match(issuer, /Pebble/i);
  assert.equal(await curlHttps(host), "hello-web");
  assert.ok(daemon.logs.some((l) => l.includes('msg="acme account key created"')));

  const r = await get(daemon.httpPort, host, "/x?y=1");
  assert.equal(r.status, 308);
  assert.equal(r.headers.location, `https://${host}:${daemon.httpsPort}/x?y=1`);
  const chal = await get(daemon.httpPort, host, "/.well-known/acme-challenge/unknown");
  assert.notEqual(chal.status, 308, "the challenge path is never redirected");

  const certs = JSON.parse((await exec(process.execPath, [BUNDLE, "certs", "--json", "--socket", daemon.commandSocket])).stdout) as Record<string, string>[];
  const row = certs.find((c) => c.host === host)!;
  assert.equal(row.source, "acme");
  assert.match(row.issuer!, /Pebble/i);
  assert.ok(Date.parse(row.next_renewal!) > Date.now() && Date.parse(row.not_after!) > Date.parse(row.next_renewal!), JSON.stringify(row));
  assert.deepEqual(Object.keys(row).filter((k) => /[A-Z]/.test(k)), [], "snake_case keys, as proxy routes --json");
  const quiet = (await exec(process.execPath, [BUNDLE, "certs", "-q", "--socket", daemon.commandSocket])).stdout;
  assert.ok(quiet.split("\n").includes(host), quiet);
  assert.ok(quiet.trim().split("\n").every((l) => /^\S+$/.test(l)), `host names only: ${quiet}`);
  accountKey = await readFile(join(daemon.stateDir, "acme", "account.key"), "utf8");
  const routes = JSON.parse((await exec(process.execPath, [BUNDLE, "proxy", "routes", "--json", "--socket", daemon.commandSocket])).stdout) as { hostname: string; protocols: string[] }[];
  assert.deepEqual(routes.find((x) => x.hostname === host)?.protocols, ["http", "https"]);

  // flapping: the container goes away and comes back: its certificate stays, no second order
  await engine.removeContainer(id, { force: true } as never).catch(async () => exec("docker", ["rm", "-f", id]));
  await waitFor("route gone", async () => (await get(daemon!.httpPort, host)).status === 404, 20_000, 50);
  await webContainer("web");
  await waitFor("back on HTTPS", async () => (await curlHttps(host)) === "hello-web", 30_000, 100);
  assert.equal(orders(host), 1, "one order only");
});

test("restart with the CA down serves the stored certificate; a new host backs off, others unaffected", async (t) => {
  if (!daemon || !pebble) return t.skip("needs the first test");
  await pebble.stop();
  const host = `web.${DOMAIN}`;
  await daemon.restart();
  // served from disk at once: no order needed (the CA is down)
  await waitFor("stored certificate served after restart", () => pebbleIssued(host), 15_000, 50);
  assert.equal(orders(host), 0);
  await webContainer("other");
  const line = await daemon.waitForLog(/msg="acme order failed; retrying later".*other/, 40_000);
  assert.match(line, /retry_in_secs=\d+/);
  assert.match(line, /connection|ECONNREFUSED/);
  assert.equal(await curlHttps(host), "hello-web", "other hosts keep HTTPS");
  // the CA comes back: the failed host gets its certificate after the back-off
  await pebble.start();
  // the next retry may be up to 24 s away (5 s back-off doubling, ±20 %)
  await waitFor("the backed-off host gets its certificate", () => pebbleIssued(`other.${DOMAIN}`), 60_000, 200);
  const fails = daemon.logs.filter((l) => l.includes("acme order failed") && l.includes("other")).length;
  assert.ok(fails <= 4, `no tight loop (${fails} failures)`);
  // the account key of the first run is reused (Pebble forgot its accounts when it went down: the key makes the new one)
  assert.equal(await readFile(join(daemon.stateDir, "acme", "account.key"), "utf8"), accountKey);
  assert.ok(!daemon.logs.some((l) => l.includes("acme account key created")), "no second account key");
});

test("a corrupt certificate file at start is logged and re-ordered; the daemon runs", async (t) => {
  if (!daemon || !pebble) return t.skip("needs the first test");
  await daemon.stop();
  const host = `web.${DOMAIN}`;
  await writeFile(join(daemon.stateDir, "acme", "certs", `${host}.crt`), "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n");
  await daemon.restart();
  await daemon.waitForLog(/msg="acme certificate file unusable; ordering a new one".*web/, 20_000);
  await waitFor("re-ordered certificate served", async () => (await curlHttps(host)) === "hello-web", 60_000, 200);
  assert.equal(orders(host), 1);
  // a restart against a CA that knows the account: the same key, the account found again, not made anew
  assert.equal(await readFile(join(daemon.stateDir, "acme", "account.key"), "utf8"), accountKey);
  assert.ok(!daemon.logs.some((l) => l.includes("acme account key created")), "no second account key");
  assert.ok(!pebble.logs.some((l) => /There are now 2 accounts/.test(l)), "Pebble has one account after its restart");
});
