// [[site]] hosts with tls = "auto" against a real Pebble: TLS-ALPN-01 alone (validated on our HTTPS
// listener), HTTP-01 with Pebble rejecting nonces at random, renewal forced by a long renew window.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { freePort, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { waitFor } from "../helpers/docker.js";
import { makePebble, pebbleAvailable, type Pebble } from "./pebble.js";

const exec = promisify(execFile);
let daemon: TestDaemon | undefined;
let pebble: Pebble | undefined;
after(async () => {
  await daemon?.cleanup();
  await pebble?.cleanup();
});

/** serial and issuer of the certificate served for `host`, when it names the host */
async function served(host: string): Promise<{ serial: string; issuer: string } | undefined> {
  const r = await exec("sh", ["-c", `openssl s_client -connect 127.0.0.1:${daemon!.httpsPort} -servername ${host} </dev/null 2>/dev/null | openssl x509 -noout -serial -issuer -ext subjectAltName`]).catch(() => undefined);
  if (!r || !r.stdout.includes(`DNS:${host}`)) return undefined;
  return { serial: /serial=(\w+)/.exec(r.stdout)?.[1] ?? "", issuer: /issuer=(.*)/.exec(r.stdout)?.[1] ?? "" };
}

/** deadHttp: Pebble validates http-01 against a port where nothing listens (port 80 closed to the CA) */
async function setup(t: { skip(m: string): void }, acme: string, sites: string[], pebbleEnv: Record<string, string> = {}, deadHttp = false): Promise<boolean> {
  if (!pebbleAvailable()) {
    t.skip("pebble not installed");
    return false;
  }
  await daemon?.cleanup();
  await pebble?.cleanup();
  daemon = await startDaemon({ disable: ["query", "admin", "core", "manager"] });
  await daemon.stop();
  pebble = await makePebble(deadHttp ? await freePort() : daemon.httpPort, daemon.httpsPort);
  await pebble.start(pebbleEnv);
  const siteLines = sites.map((h) => `[[site]]\nhostname = "${h}"\nbackends = ["127.0.0.1:9"]\ntls = "auto"\n`).join("\n");
  await daemon.writeConfig(`acme = true\nacme_directory_url = "${pebble.directory}"\nacme_ca_file = "${pebble.caFile}"\n${acme}\n${siteLines}`);
  await daemon.restart();
  return true;
}

test("TLS-ALPN-01 alone: Pebble validates on our HTTPS listener (acme-tls/1)", async (t) => {
  if (!(await setup(t, `acme_challenges = ["tls-alpn-01"]`, ["alpn-a.acme.test", "alpn-b.acme.test"]))) return;
  for (const h of ["alpn-a.acme.test", "alpn-b.acme.test"]) {
    // while the order is pending, a client without ALPN may see the challenge certificate (nothing else is there yet)
    const s = await waitFor(`Pebble's certificate for ${h}`, async () => {
      const c = await served(h);
      return c && /Pebble/i.test(c.issuer) ? c : undefined;
    }, 60_000, 200);
    assert.match(s.issuer, /Pebble/i);
  }
  assert.ok(!daemon!.logs.some((l) => l.includes("acme order failed")), "no failed order");
  // only tls-alpn-01 was answered, and Pebble validated it (the authorizations went valid)
  assert.equal(daemon!.logs.filter((l) => l.includes('msg="acme challenge"') && l.includes("type=tls-alpn-01")).length, 2);
  assert.ok(!daemon!.logs.some((l) => l.includes('msg="acme challenge"') && l.includes("http-01")));
  assert.ok(pebble!.logs.filter((l) => /There are now \d+ accounts/.test(l)).length === 1, "one account for both orders");
});

test("HTTP-01 with PEBBLE_WFE_NONCEREJECT: badNonce retried, orders complete; renewal by a long window", async (t) => {
  if (!(await setup(t, `acme_challenges = ["http-01"]\nacme_renew_before_days = 3650`, ["nonce.acme.test"], { PEBBLE_WFE_NONCEREJECT: "40" }))) return;
  const first = await waitFor("Pebble's first certificate", async () => {
    const c = await served("nonce.acme.test");
    return c && /Pebble/i.test(c.issuer) ? c : undefined;
  }, 60_000, 200);
  // the window is longer than the lifetime: a renewal follows (spaced out, never a tight loop)
  const second = await waitFor("renewed certificate", async () => {
    const s = await served("nonce.acme.test");
    return s && s.serial !== first.serial && /Pebble/i.test(s.issuer) ? s : undefined;
  }, 60_000, 250);
  assert.notEqual(second.serial, first.serial);
  assert.ok(daemon!.logs.some((l) => l.includes('msg="acme order"') && l.includes("renewal=true")));
  assert.ok(daemon!.logs.some((l) => l.includes("renew window is as long as the certificate lifetime")));
  const retries = Math.max(...daemon!.logs.map((l) => Number(/bad_nonce_retries=(\d+)/.exec(l)?.[1] ?? 0)));
  assert.ok(retries > 0, "Pebble rejected nonces and the client retried");
  const orders = daemon!.logs.filter((l) => l.includes('msg="acme order"')).length;
  assert.ok(orders <= 3, `renewals spaced out (${orders} orders)`);
});

test("http-01 unreachable for the CA: the next order tries tls-alpn-01 and gets the certificate", async (t) => {
  // default acme_challenges: ["http-01", "tls-alpn-01"]
  if (!(await setup(t, "", ["rotate.acme.test"], {}, true))) return;
  const s = await waitFor("Pebble's certificate after the fallback", async () => {
    const c = await served("rotate.acme.test");
    return c && /Pebble/i.test(c.issuer) ? c : undefined;
  }, 30_000, 200);
  assert.match(s.issuer, /Pebble/i);
  const lines = daemon!.logs.filter((l) => l.includes('msg="acme challenge"') || l.includes("acme order failed"));
  assert.match(lines[0]!, /acme challenge.*type=http-01/);
  assert.match(lines[1]!, /acme order failed.*next_challenge=tls-alpn-01/);
  assert.match(lines[2]!, /acme challenge.*type=tls-alpn-01/);
  assert.equal(lines.length, 3, lines.join("\n"));
});
