// One product, not five toys: a service created through the core API with ingress labels shows
// up in the query socket, is counted by the admin `status`, and is routed by the proxy.
import { test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { connect } from "node:net";
import { needDocker, ensureTestImage, removeLabeled, waitFor } from "../helpers/docker.js";
import { startDaemon, BUNDLE, type TestDaemon } from "../helpers/daemon.js";
import { CoreClient } from "../core/client.js";
import { get } from "../query/http.js";

const RUN = randomBytes(3).toString("hex");
const LABEL = `stevedore.test.run=${RUN}`;
const DEPLOYMENT = `e2e-${RUN}`;
const SUBDOMAIN = `web${RUN}`;
const DOMAIN = "e2e.test";

function cli(d: TestDaemon, ...args: string[]) {
  return spawnSync(process.execPath, [BUNDLE, ...args], {
    encoding: "utf8",
    env: { ...process.env, STEVEDORE_CONFIG: d.configPath, STEVEDORE_STATE_DIR: "", STEVEDORE_QUERY_SOCKET: "", STEVEDORE_QUERY_TOKEN: "" },
  });
}

function admin(d: TestDaemon, command: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let data = "";
    const sock = connect(d.adminSocket, () => sock.end(`${command}\n`));
    sock.setEncoding("utf8").on("data", (c: string) => (data += c));
    sock.on("error", reject).on("close", () => resolve(JSON.parse(data) as Record<string, unknown>));
  });
}

function viaProxy(d: TestDaemon, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: d.httpPort, path: "/", headers: { Host: host }, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject).end();
  });
}

test("a core service with ingress labels appears in the query socket, admin status and the proxy", async (t) => {
  if (!(await needDocker(t))) return;
  const image = await ensureTestImage();
  const d = await startDaemon({ config: `ingress_domain = "${DOMAIN}"`, disable: ["https", "manager"] });
  t.after(async () => {
    await d.cleanup();
    await removeLabeled(LABEL);
  });
  const core = await CoreClient.forStateDir(d.corePort, d.stateDir);
  const token = cli(d, "token", "get", "e2e-reader").stdout.trim();
  assert.match(token, /^[0-9a-f]{64}$/);

  const created = await core.create({
    id: `e2e-svc-${RUN}`,
    image,
    bind_dir: "/data",
    // busybox httpd as PID 1 ignores SIGTERM; a shell that traps it stops at once
    cmd: ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait"],
    deployment: DEPLOYMENT,
    labels: {
      "stevedore.test": "e2e", "stevedore.test.run": RUN,
      "stevedore.ingress.enabled": "true", "stevedore.ingress.subdomain": SUBDOMAIN, "stevedore.ingress.port": "8080",
    },
  });
  assert.equal(created.status, 204, created.text);

  // registered by the core API: listed before it has ever run
  await waitFor("deployment listed", async () => {
    const r = await get(d.querySocket, "/deployments", { token });
    return r.status === 200 && (r.json as { name: string }[]).some((x) => x.name === DEPLOYMENT);
  });

  assert.equal((await core.ctl(`e2e-svc-${RUN}`, "start")).status, 204);
  const service = await waitFor("running service with ingress in /services?ingress=true", async () => {
    const r = await get(d.querySocket, "/services?ingress=true", { token });
    return (r.json as Record<string, unknown>[]).find((s) => s.deployment === DEPLOYMENT && s.running === true);
  });
  assert.deepEqual(service.ingress, { enabled: true, subdomain: SUBDOMAIN, port: 8080 });
  assert.equal(service.service, `e2e-svc-${RUN}`);

  const status = await get(d.querySocket, `/status/${DEPLOYMENT}`, { token });
  assert.equal(status.status, 200);
  assert.equal(status.json.healthy, true);
  assert.equal(status.json.project_name, `stevedore-${DEPLOYMENT}`);

  const host = `${SUBDOMAIN}.${DOMAIN}`;
  const routed = await waitFor("routed by the proxy", async () => {
    const r = await viaProxy(d, host);
    return r.status === 200 ? r : undefined;
  });
  assert.equal(routed.body, "stevedore test image\n");

  const st = await admin(d, "status");
  assert.equal(st.status, "ok");
  assert.ok((st.sites as number) >= 1, "the ingress host counts as a site");
  assert.ok((st.services as number) >= 1 && (st.deployments as number) >= 2);

  assert.equal((await core.ctl(`e2e-svc-${RUN}`, "stop")).status, 204);
  await waitFor("stopped service leaves the proxy's rotation", async () => (await viaProxy(d, host)).status === 503);
  assert.equal((await core.call("DELETE", `/service/e2e-svc-${RUN}`)).status, 204);
  await waitFor("deleted service gone from /deployments", async () => {
    const r = await get(d.querySocket, "/deployments", { token });
    return !(r.json as { name: string }[]).some((x) => x.name === DEPLOYMENT);
  });
});
