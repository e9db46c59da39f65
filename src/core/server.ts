// The core API component: the X-Duxcore-CoreKey check before routing, the seven routes (also under
// /v1), and the core's error mapping; served by the JSON API server (src/http/api-server.ts).
import type { Readable } from "node:stream";
import { isIP } from "node:net";
import type { Component, DaemonContext } from "../component/index.js";
import { parseHostPort } from "../base/index.js";
import { DockerError, DockerUnavailable } from "../docker/index.js";
import { HttpError, createApiServer, type ApiErrorStatus, type ApiRequest, type ApiResponse, type ApiRoute } from "../http/index.js";
import { log } from "../log.js";
import { CheckoutNotFound, CheckoutTooLarge } from "../store/index.js";
import { ArchiveError, ArchiveTooLarge } from "./tar.js";
import { DownloadError, DownloadTooLarge } from "./download.js";
import { KeyChecker, keyPath, loadOrCreateKey } from "./key.js";
import { ID_RE, parseCreateBody, parseEnvBody } from "./params.js";
import { CoreServices, type CtlOp } from "./services.js";

const MAX_CONNECTIONS = 256;
/** maxConnections: clients past the key check; as many silent or unkeyed ones are kept besides */
const LIMITS = { maxConnections: MAX_CONNECTIONS, idleMs: 5_000, maxHeaderBytes: 16 * 1024 };
const REPO_RE = /^[a-z0-9]+(?:[._-][a-z0-9]+|__)*(?:\/[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*)*$|^[a-zA-Z0-9.-]+(?::[0-9]+)?(?:\/[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*)+$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const NO_CONTENT: ApiResponse = { status: 204 };
const CTL_OPS: readonly string[] = ["start", "stop", "restart", "kill"];

/** Map an error to the API's status and text; our own bugs are 500 (logged by the server). */
export function errorStatus(err: unknown): ApiErrorStatus {
  if (err instanceof HttpError) return { status: err.status, message: err.message };
  if (err instanceof DockerUnavailable) return { status: 503, message: `docker unavailable: ${err.cause.message}` };
  if (err instanceof DockerError) {
    const status = [400, 404, 409].includes(err.status) ? err.status : 502;
    return { status, message: `docker: ${err.dockerMessage}` };
  }
  if (err instanceof ArchiveTooLarge || err instanceof DownloadTooLarge) return { status: 413, message: err.message };
  if (err instanceof ArchiveError) return { status: 400, message: `bad bind_contents archive: ${err.message}` };
  if (err instanceof DownloadError) return { status: 502, message: err.message };
  if (err instanceof CheckoutNotFound) return { status: 400, message: `bind_contents: ${err.message}` };
  if (err instanceof CheckoutTooLarge) return { status: 413, message: `bind_contents: ${err.message}` };
  return { status: 500, message: "internal error" };
}

export function isLoopbackHost(host: string): boolean {
  if (host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  return host === "::1" || host === "0:0:0:0:0:0:0:1";
}

function parseCtlBody(body: unknown): CtlOp {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new HttpError(400, "body must be a JSON object {op}");
  const extra = Object.keys(body).filter((k) => k !== "op");
  if (extra.length) throw new HttpError(400, `unknown keys: ${extra.join(", ")}`);
  const op = (body as { op?: unknown }).op;
  if (typeof op !== "string" || !CTL_OPS.includes(op)) throw new HttpError(400, `op must be "start", "stop", "restart" or "kill"`);
  return op as CtlOp;
}

const isTooLarge = (err: unknown) => err instanceof HttpError && err.status === 413;

/** the spec's routes, and the same under /v1 (what existing cores of this protocol call) */
function coreRoutes(services: CoreServices, imageMaxBytes: () => number): ApiRoute[] {
  // endpoints without a body still read (and bound) whatever is sent
  const routes: ApiRoute[] = [
    {
      method: "POST", path: "/service",
      handler: async (req) => (await services.create(parseCreateBody(await req.json())), NO_CONTENT),
    },
    {
      method: "POST", path: "/service/:id/ctl",
      handler: async (req) => (await services.ctl(req.params.id!, parseCtlBody(await req.json())), NO_CONTENT),
    },
    {
      method: "GET", path: "/service/:id/stats",
      handler: async (req) => (await req.body(), { status: 200, body: await services.stats(req.params.id!) }),
    },
    {
      method: "PATCH", path: "/service/:id/env",
      handler: async (req) => (await services.setEnv(req.params.id!, parseEnvBody(await req.json())), NO_CONTENT),
    },
    {
      method: "GET", path: "/service/:id",
      handler: async (req) => (await req.body(), { status: 200, body: await services.inspect(req.params.id!) }),
    },
    {
      method: "DELETE", path: "/service/:id",
      handler: async (req) => (await req.body(), await services.remove(req.params.id!), NO_CONTENT),
    },
    { method: "POST", path: "/docker/image", handler: (req) => importImage(req, services, imageMaxBytes()) },
  ];
  return [...routes, ...routes.map((r) => ({ ...r, path: `/v1${r.path}` }))];
}

/** The raw tar body streams to Docker, never buffered whole; past the limit → 413. */
async function importImage(req: ApiRequest, services: CoreServices, limit: number): Promise<ApiResponse> {
  const repo = req.query.get("repo") || undefined;
  const tag = req.query.get("tag") || undefined;
  if (repo !== undefined && (repo.length > 255 || !REPO_RE.test(repo))) throw new HttpError(400, "repo must be an image repository name");
  if (tag !== undefined && !TAG_RE.test(tag)) throw new HttpError(400, "tag must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
  if (tag !== undefined && repo === undefined) throw new HttpError(400, "tag needs repo");
  const tooLarge = () => new HttpError(413, `image larger than ${limit} bytes`);
  let body: Readable | undefined;
  try {
    body = req.stream(limit);
    const imageId = await services.importImage(body, repo, tag);
    // Docker may have taken the cut stream for a complete archive
    if (isTooLarge(body.errored)) throw tooLarge();
    return { status: 200, body: { image_id: imageId } };
  } catch (err) {
    if (isTooLarge(err) || isTooLarge(body?.errored)) throw tooLarge();
    throw err;
  }
}

export function createCoreComponent(ctx: DaemonContext): Component {
  const config = ctx.config.static;
  /** the key or the service registry could not be loaded: nothing is served */
  let setupFailed = false;
  let setupError = "";
  let checker: KeyChecker | undefined;
  const services = new CoreServices(
    ctx.docker,
    config.state_dir,
    () => {
      const dyn = ctx.dynamic();
      return {
        deployment: dyn.core_deployment,
        bindContentsMaxBytes: dyn.core_bind_contents_max_bytes,
        downloadTimeoutMs: dyn.core_download_timeout_secs * 1000,
        stopTimeoutSecs: dyn.core_stop_timeout_secs,
      };
    },
    () => ctx.catalog.refreshRegistered(),
  );
  const tls = config.core_tls_cert !== "" && config.core_tls_key !== "";
  const api = createApiServer({
    name: "core",
    listen: config.core_listen,
    tls: tls ? { certFile: config.core_tls_cert, keyFile: config.core_tls_key, handshakeMs: () => ctx.dynamic().tls_handshake_timeout_secs * 1000 } : undefined,
    routes: coreRoutes(services, () => ctx.dynamic().core_image_max_bytes),
    params: { id: ID_RE },
    before(req) {
      if (!checker?.check(req.header("x-duxcore-corekey"))) throw new HttpError(401, "invalid core key");
    },
    errorStatus,
    limits: () => ({ maxBodyBytes: ctx.dynamic().core_max_body_bytes, headMs: ctx.dynamic().api_header_timeout_secs * 1000, ...LIMITS }),
    inherit: ctx.inherit,
  });

  return {
    name: "core",
    async start() {
      if (config.core_listen === "") return api.start(); // disabled
      const hp = parseHostPort(config.core_listen);
      try {
        if (!hp) throw new Error(`core_listen ${config.core_listen} must be host:port`);
        const { key, created } = await loadOrCreateKey(keyPath(config));
        if (created) log.info("core key created", { file: keyPath(config) });
        checker = new KeyChecker(key);
        await services.init();
        ctx.catalog.addRegisteredSource("core", () => services.registry.deployments());
        ctx.catalog.refreshRegistered();
      } catch (err) {
        setupFailed = true;
        setupError = (err as Error).message;
        log.error("core API unavailable", { listen: config.core_listen, error: (err as Error).message });
        return;
      }
      await api.start();
      if (api.status().state === "listening" && !tls && !isLoopbackHost(hp.host))
        log.warn("core API listens on a non-loopback address without TLS: the core key travels in clear text", { address: api.address });
    },
    async stop(graceful, deadline) {
      setupFailed = false;
      await api.stop(graceful, deadline);
    },
    listeners: () => api.listeners(),
    status() {
      const s = api.status();
      return { ...s, ...(setupFailed && { state: "unavailable", address: config.core_listen, reason: setupError }), services: services.registry.size };
    },
  };
}
