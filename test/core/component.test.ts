// The core component in-process: listener modes (disabled, TLS, the non-loopback warning), the
// registered-deployments source it gives the catalog, and the small pure pieces.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { mkdtemp, rm, readFile, chmod } from "node:fs/promises";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { parseConfig, type DynamicConfig } from "../../src/config/index.js";
import { Catalog } from "../../src/catalog/index.js";
import { DockerClient, DockerError, DockerUnavailable } from "../../src/docker/index.js";
import { createCoreComponent } from "../../src/core/index.js";
import { errorStatus, isLoopbackHost } from "../../src/core/server.js";
import { KeyChecker, loadOrCreateKey } from "../../src/core/key.js";
import { createBody, parseCreateBody } from "../../src/core/params.js";
import { HttpError } from "../../src/http/index.js";
import { setLogSink } from "../../src/log.js";
import type { DaemonContext } from "../../src/component/index.js";
import { needDocker, ensureTestImage, removeLabeled, run, waitFor, DOCKER_SOCKET } from "../helpers/docker.js";
import { randomBytes } from "node:crypto";
import { CoreClient } from "./client.js";
import { RUN, RUN_LABEL, labels } from "./run.js";

class FakeCatalog extends EventEmitter {
  sources = new Map<string, () => Iterable<string>>();
  refreshes = 0;
  addRegisteredSource(name: string, list: () => Iterable<string>) {
    this.sources.set(name, list);
  }
  refreshRegistered() {
    this.refreshes++;
  }
}

async function component(extra: string, makeCatalog?: (docker: DockerClient, stateDir: string, dyn: () => DynamicConfig) => Promise<FakeCatalog | Catalog>) {
  const dir = await mkdtemp(join(tmpdir(), `coretest-comp--${RUN}`));
  const config = parseConfig(`state_dir = "${join(dir, "state")}"\n${extra}\n`, "test.conf", {});
  const docker = new DockerClient(DOCKER_SOCKET);
  const catalog = makeCatalog ? await makeCatalog(docker, join(dir, "state"), () => config.dynamic) : new FakeCatalog();
  const ctx = { config, dynamic: () => config.dynamic, docker, catalog, startedAt: 0, components: [], requestStop: async () => {}, reload: async () => ({ errors: [], restartRequired: [] }) } as unknown as DaemonContext;
  const lines: string[] = [];
  const restore = setLogSink((l) => lines.push(l));
  const c = createCoreComponent(ctx);
  try {
    await c.start();
  } finally {
    restore();
  }
  return {
    c, dir, catalog, lines, stateDir: join(dir, "state"),
    port: () => Number(String(c.status().address).split(":").pop()),
    async close() {
      await c.stop(true, performance.now() + 1000);
      if (catalog instanceof Catalog) await catalog.stop();
      docker.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

test("core_listen \"\" disables the core API", async () => {
  const x = await component(`core_listen = ""`);
  assert.equal(x.c.status().state, "disabled");
  await x.close();
});

test("a non-loopback address without TLS logs a warning; loopback does not", async () => {
  const open = await component(`core_listen = "0.0.0.0:0"`);
  assert.equal(open.c.status().state, "listening");
  assert.ok(open.lines.some((l) => /level=warn .*non-loopback address without TLS/.test(l)), open.lines.join("\n"));
  await open.close();
  const local = await component(`core_listen = "127.0.0.1:0"`);
  assert.ok(!local.lines.some((l) => /level=warn/.test(l)));
  await local.close();
});

test("TLS: with core_tls_cert/key the API speaks HTTPS, no warning on a non-loopback address", async () => {
  const certDir = await mkdtemp(join(tmpdir(), `coretest-tls--${RUN}`));
  try {
    const cert = join(certDir, "c.pem");
    const key = join(certDir, "k.pem");
    await run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost"]);
    const x = await component(`core_listen = "0.0.0.0:0"\ncore_tls_cert = "${cert}"\ncore_tls_key = "${key}"`);
    try {
      assert.ok(!x.lines.some((l) => /level=warn/.test(l)), x.lines.join("\n"));
      const coreKey = (await readFile(join(x.stateDir, "corekey.bin"))).toString("base64");
      const status = await new Promise<number>((resolve, reject) => {
        httpsRequest({ host: "127.0.0.1", port: x.port(), path: "/service/nope", rejectUnauthorized: false, headers: { "X-Duxcore-CoreKey": coreKey } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).on("error", reject).end();
      });
      assert.equal(status, 404);
    } finally {
      await x.close();
    }
  } finally {
    await rm(certDir, { recursive: true, force: true });
  }
});

test("core deployments are a registered source of the catalog, refreshed on create and delete", async (t) => {
  if (!(await needDocker(t))) return;
  const image = await ensureTestImage();
  const x = await component(`core_listen = "127.0.0.1:0"\ncore_deployment = "core-reg-${RUN}"`);
  try {
    const list = (x.catalog as FakeCatalog).sources.get("core");
    assert.ok(list, "source registered");
    assert.deepEqual([...list()], []);
    const api = await CoreClient.forStateDir(x.port(), x.stateDir);
    const before = (x.catalog as FakeCatalog).refreshes;
    assert.equal((await api.create({ id: `coretest-reg-${RUN}`, image, bind_dir: "/data", labels })).status, 204);
    assert.equal((await api.create({ id: `coretest-reg2-${RUN}`, image, bind_dir: "/data", deployment: `core-other-${RUN}`, labels })).status, 204);
    assert.ok((x.catalog as FakeCatalog).refreshes >= before + 2);
    assert.deepEqual([...list()].sort(), [`core-other-${RUN}`, `core-reg-${RUN}`]);
    assert.equal((await api.call("DELETE", `/service/coretest-reg2-${RUN}`)).status, 204);
    assert.deepEqual([...list()], [`core-reg-${RUN}`]);
    assert.equal((await api.call("DELETE", `/service/coretest-reg-${RUN}`)).status, 204);
  } finally {
    await x.close();
    await removeLabeled(RUN_LABEL);
  }
});

test("with the real catalog: a core service is listed under its deployment with its ingress labels", async (t) => {
  if (!(await needDocker(t))) return;
  const image = await ensureTestImage();
  const run = randomBytes(3).toString("hex");
  const deployment = `core-cat-${run}`;
  const id = `coretest-cat-${run}`;
  const x = await component(`core_listen = "127.0.0.1:0"\ncore_deployment = "${deployment}"`, async (docker, stateDir, dynamic) => {
    const catalog = new Catalog({ docker, stateDir, dynamic });
    await catalog.start();
    return catalog;
  });
  try {
    const catalog = x.catalog as Catalog;
    const api = await CoreClient.forStateDir(x.port(), x.stateDir);
    const r = await api.create({
      id, image, bind_dir: "/data", labels: { ...labels, "stevedore.ingress.enabled": "true", "stevedore.ingress.subdomain": `app-${run}`, "stevedore.ingress.port": "8080" },
    });
    assert.equal(r.status, 204, r.text);
    assert.equal((await api.ctl(id, "start")).status, 204);
    const info = await waitFor("the service in the catalog", () => catalog.current().containers.find((c) => c.deployment === deployment && c.running), 10_000);
    assert.equal(info.service, id);
    assert.equal(info.name, id);
    assert.deepEqual({ enabled: info.ingress?.enabled, subdomain: info.ingress?.subdomain, port: info.ingress?.port }, { enabled: true, subdomain: `app-${run}`, port: 8080 });
    assert.ok(catalog.current().deployments.includes(deployment));
    assert.equal((await api.call("DELETE", `/service/${id}`)).status, 204);
    await waitFor("deployment gone", () => !catalog.current().deployments.includes(deployment), 10_000);
  } finally {
    await x.close();
    await removeLabeled(RUN_LABEL);
  }
});

test("key: made once with 32 bytes; checker accepts only the exact key", async () => {
  const dir = await mkdtemp(join(tmpdir(), `coretest-key--${RUN}`));
  try {
    const path = join(dir, "sub", "corekey.bin");
    const a = await loadOrCreateKey(path);
    assert.equal(a.created, true);
    assert.equal(a.key.length, 32);
    const b = await loadOrCreateKey(path);
    assert.equal(b.created, false);
    assert.deepEqual(b.key, a.key);
    await chmod(path, 0o644);
    const lines: string[] = [];
    const restore = setLogSink((l) => lines.push(l));
    try {
      await loadOrCreateKey(path);
    } finally {
      restore();
    }
    assert.ok(lines.some((l) => /level=warn .*readable by others/.test(l)), lines.join("\n"));
    const k = new KeyChecker(a.key);
    const b64 = a.key.toString("base64");
    assert.equal(k.check(b64), true);
    assert.equal(k.check(` ${b64} `), true);
    for (const bad of [undefined, "", "!!", b64.slice(1), b64 + "AA==", createHash("sha256").update(a.key).digest("base64"), [b64, b64]])
      assert.equal(k.check(bad as string), false, String(bad));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("error mapping: Docker statuses, unavailability, client errors; 500 only for our own bugs", () => {
  assert.deepEqual(errorStatus(new DockerError(404, "No such container: x", "inspect")), { status: 404, message: "docker: No such container: x" });
  assert.equal(errorStatus(new DockerError(409, "conflict", "create")).status, 409);
  assert.equal(errorStatus(new DockerError(400, "bad", "create")).status, 400);
  assert.equal(errorStatus(new DockerError(500, "port is already allocated", "start")).status, 502);
  assert.equal(errorStatus(new DockerUnavailable("ping", new Error("ENOENT"))).status, 503);
  assert.equal(errorStatus(new HttpError(415, "x")).status, 415);
  assert.equal(errorStatus(new TypeError("oops")).status, 500);
  assert.ok(isLoopbackHost("127.0.0.1") && isLoopbackHost("::1") && isLoopbackHost("localhost") && isLoopbackHost("127.1.2.3"));
  assert.ok(!isLoopbackHost("0.0.0.0") && !isLoopbackHost("::") && !isLoopbackHost("10.0.0.1"));
});

test("mapping: defaults, port_map array and object, CPU period, labels", () => {
  const p = parseCreateBody({ type: "raw", params: { id: "a1", image: "img", bind_dir: "/d", port_map: { "80/tcp": { HostPort: "8080" }, "53/udp": [{ HostIp: "127.0.0.1", HostPort: "5353" }, { HostPort: "" }] }, max_cpu: 25000, max_ram: 1 << 26 } });
  const body = createBody(p, { A: "1" }, "/state/binds/a1", "core") as Record<string, any>;
  assert.equal(body.OpenStdin, true);
  assert.equal(body.Tty, true);
  assert.equal(body.StdinOnce, false);
  assert.deepEqual(body.Env, ["A=1"]);
  assert.deepEqual(body.ExposedPorts, { "80/tcp": {}, "53/udp": {} });
  assert.deepEqual(body.HostConfig.PortBindings, { "80/tcp": [{ HostIp: "", HostPort: "8080" }], "53/udp": [{ HostIp: "127.0.0.1", HostPort: "5353" }, { HostIp: "", HostPort: "" }] });
  assert.equal(body.HostConfig.CpuPeriod, 100000);
  assert.equal(body.HostConfig.CpuQuota, 25000);
  assert.equal(body.HostConfig.Memory, 1 << 26);
  assert.deepEqual(body.HostConfig.Binds, ["/state/binds/a1:/d"]);
  assert.deepEqual(body.Labels, { "stevedore.core.id": "a1", "stevedore.deployment": "core", "stevedore.service": "a1" });
  assert.equal("Cmd" in body, false);
  assert.throws(() => parseCreateBody({ type: "raw", params: { id: "a1", image: "img", bind_dir: "/d", max_cpu: 10 } }), /max_cpu must be between/);
  assert.equal(parseCreateBody({ type: "raw", params: { id: "a1", image: "img", bind_dir: "/d", bind_contents: "shaman:abc" } }).bind_contents, "shaman:abc");
  for (const bad of ["shaman:", "shaman:a", "shaman:../x", "shaman:a-b", `shaman:${"a".repeat(65)}`]) {
    assert.throws(() => parseCreateBody({ type: "raw", params: { id: "a1", image: "img", bind_dir: "/d", bind_contents: bad } }), /shaman:ID needs a checkout ID/, bad);
  }
  assert.throws(() => parseCreateBody({ type: "raw", params: { id: "a1", image: "img", bind_dir: "/d", port_map: { "80/tcp": { HostPort: "99999" } } } }), /HostPort/);
  assert.throws(() => parseCreateBody([]), /JSON object/);
});
