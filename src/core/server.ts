// The core API component: HTTP(S) listener, X-Duxcore-CoreKey auth before routing, the seven routes.
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { readFile } from "node:fs/promises";
import { Transform, type TransformCallback } from "node:stream";
import { isIP } from "node:net";
import type { Component, DaemonContext } from "../component/index.js";
import { parseHostPort } from "../base/index.js";
import { DockerError, DockerUnavailable } from "../docker/index.js";
import { HttpError, listen, readBody, readJson, sendError, sendJson } from "../http/index.js";
import { log } from "../log.js";
import { untilDeadline } from "../deadline.js";
import { listenInherited } from "../component/index.js";
import { ArchiveError, ArchiveTooLarge } from "./tar.js";
import { DownloadError, DownloadTooLarge } from "./download.js";
import { KeyChecker, keyPath, loadOrCreateKey } from "./key.js";
import { ID_RE, parseCreateBody, parseEnvBody } from "./params.js";
import { CoreServices, type CtlOp } from "./services.js";

const MAX_CONNECTIONS = 256;
const REPO_RE = /^[a-z0-9]+(?:[._-][a-z0-9]+|__)*(?:\/[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*)*$|^[a-zA-Z0-9.-]+(?::[0-9]+)?(?:\/[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*)+$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;

type Handler = (req: IncomingMessage, res: ServerResponse, id: string | undefined, url: URL) => Promise<void>;
interface Route {
  re: RegExp;
  methods: Record<string, Handler>;
}

/** Map an error to the API's status and text; our own bugs are 500 and logged. */
export function errorStatus(err: unknown): { status: number; message: string } {
  if (err instanceof HttpError) return { status: err.status, message: err.message };
  if (err instanceof DockerUnavailable) return { status: 503, message: `docker unavailable: ${err.cause.message}` };
  if (err instanceof DockerError) {
    const status = [400, 404, 409].includes(err.status) ? err.status : 502;
    return { status, message: `docker: ${err.dockerMessage}` };
  }
  if (err instanceof ArchiveTooLarge || err instanceof DownloadTooLarge) return { status: 413, message: err.message };
  if (err instanceof ArchiveError) return { status: 400, message: `bad bind_contents archive: ${err.message}` };
  if (err instanceof DownloadError) return { status: 502, message: err.message };
  return { status: 500, message: "internal error" };
}

export function isLoopbackHost(host: string): boolean {
  if (host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  return host === "::1" || host === "0:0:0:0:0:0:0:1";
}

export function createCoreComponent(ctx: DaemonContext): Component {
  const config = ctx.config.static;
  let server: Server | undefined;
  let state: "listening" | "disabled" | "unavailable" | "stopped" = "stopped";
  let address = "";
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

  const bodyLimit = () => ctx.dynamic().core_max_body_bytes;
  /** endpoints without a body still read (and bound) whatever is sent */
  const noBody = async (req: IncomingMessage) => void (await readBody(req, bodyLimit()));
  const json = (req: IncomingMessage) => readJson(req, bodyLimit());
  const serviceRoutes: Route[] = [
    {
      re: /^\/service$/,
      methods: {
        POST: async (req, res) => {
          const params = parseCreateBody(await json(req));
          await services.create(params);
          noContent(res);
        },
      },
    },
    {
      re: /^\/service\/([^/]+)\/ctl$/,
      methods: {
        POST: async (req, res, id) => {
          const body = await json(req);
          const op = (body as { op?: unknown } | null)?.op;
          if (typeof body !== "object" || body === null || Array.isArray(body)) throw new HttpError(400, "body must be a JSON object {op}");
          const extra = Object.keys(body).filter((k) => k !== "op");
          if (extra.length) throw new HttpError(400, `unknown keys: ${extra.join(", ")}`);
          if (op !== "start" && op !== "stop" && op !== "restart" && op !== "kill") throw new HttpError(400, `op must be "start", "stop", "restart" or "kill"`);
          await services.ctl(id!, op as CtlOp);
          noContent(res);
        },
      },
    },
    {
      re: /^\/service\/([^/]+)\/stats$/,
      methods: { GET: async (req, res, id) => (await noBody(req), sendJson(res, 200, await services.stats(id!))) },
    },
    {
      re: /^\/service\/([^/]+)\/env$/,
      methods: {
        PATCH: async (req, res, id) => {
          const env = parseEnvBody(await json(req));
          await services.setEnv(id!, env);
          noContent(res);
        },
      },
    },
    {
      re: /^\/service\/([^/]+)$/,
      methods: {
        GET: async (req, res, id) => (await noBody(req), sendJson(res, 200, await services.inspect(id!))),
        DELETE: async (req, res, id) => {
          await noBody(req);
          await services.remove(id!);
          noContent(res);
        },
      },
    },
    {
      re: /^\/docker\/image$/,
      methods: { POST: (req, res, _id, url) => importImage(req, res, url) },
    },
  ];

  async function importImage(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const repo = url.searchParams.get("repo") || undefined;
    const tag = url.searchParams.get("tag") || undefined;
    if (repo !== undefined && (repo.length > 255 || !REPO_RE.test(repo))) throw new HttpError(400, "repo must be an image repository name");
    if (tag !== undefined && !TAG_RE.test(tag)) throw new HttpError(400, "tag must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
    if (tag !== undefined && repo === undefined) throw new HttpError(400, "tag needs repo");
    const limit = ctx.dynamic().core_image_max_bytes;
    const declared = Number(req.headers["content-length"]);
    if (Number.isFinite(declared) && declared > limit) throw new HttpError(413, `image larger than ${limit} bytes`);
    const counter = new ByteLimit(limit);
    req.once("error", (err) => counter.destroy(err));
    req.pipe(counter);
    try {
      const imageId = await services.importImage(counter, repo, tag);
      if (counter.exceeded) throw new HttpError(413, `image larger than ${limit} bytes`);
      sendJson(res, 200, { image_id: imageId });
    } catch (err) {
      if (counter.exceeded) throw new HttpError(413, `image larger than ${limit} bytes`);
      throw err;
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (!checker?.check(req.headers["x-duxcore-corekey"])) throw new HttpError(401, "invalid core key");
      let url: URL;
      try {
        url = new URL(req.url ?? "/", "http://core");
      } catch {
        throw new HttpError(400, "bad request target");
      }
      const path = url.pathname.startsWith("/v1/") ? url.pathname.slice(3) : url.pathname;
      for (const route of serviceRoutes) {
        const m = route.re.exec(path);
        if (!m) continue;
        const handler = route.methods[req.method ?? ""];
        if (!handler) throw new HttpError(405, `method ${req.method} not allowed`, { Allow: Object.keys(route.methods).join(", ") });
        let id: string | undefined;
        if (m[1] !== undefined) {
          try {
            id = decodeURIComponent(m[1]);
          } catch {
            id = "";
          }
          if (!ID_RE.test(id)) throw new HttpError(404, `no such service: ${JSON.stringify(id)}`);
        }
        await handler(req, res, id, url);
        return;
      }
      throw new HttpError(404, `no such endpoint: ${path}`);
    } catch (err) {
      const { status, message } = errorStatus(err);
      if (status === 500) log.error("core API request failed", { method: req.method, path: req.url?.split("?")[0], error: (err as Error).message });
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const headers: Record<string, string> = err instanceof HttpError ? { ...err.headers } : {};
      const hasBody = (req.headers["content-length"] ?? "0") !== "0" || req.headers["transfer-encoding"] !== undefined;
      if (hasBody && !req.readableEnded && !(await drainBounded(req))) headers.Connection = "close";
      sendError(res, status, message, headers);
    }
  }

  return {
    name: "core",
    async start() {
      if (config.core_listen === "") {
        state = "disabled";
        return;
      }
      try {
        const hp = parseHostPort(config.core_listen);
        if (!hp) throw new Error(`core_listen ${config.core_listen} must be host:port`);
        const { key, created } = await loadOrCreateKey(keyPath(config));
        if (created) log.info("core key created", { file: keyPath(config) });
        checker = new KeyChecker(key);
        await services.init();
        ctx.catalog.addRegisteredSource("core", () => services.registry.deployments());
        ctx.catalog.refreshRegistered();
        const tls = config.core_tls_cert !== "" && config.core_tls_key !== "";
        const onRequest = (req: IncomingMessage, res: ServerResponse) => void handle(req, res);
        const opts = { headersTimeout: 30_000, requestTimeout: 0, keepAliveTimeout: 5_000, maxHeaderSize: 16 * 1024 };
        server = tls
          ? createHttpsServer({ ...opts, cert: await readFile(config.core_tls_cert), key: await readFile(config.core_tls_key) }, onRequest)
          : createHttpServer(opts, onRequest);
        server.maxConnections = MAX_CONNECTIONS;
        if (!(await listenInherited(server, "core", config.core_listen)))
          await listen(server, { port: hp.port, host: hp.host });
        server.on("error", (err) => log.error("core API server error", { error: err.message }));
        const bound = server.address();
        address = typeof bound === "object" && bound ? `${bound.family === "IPv6" ? `[${bound.address}]` : bound.address}:${bound.port}` : config.core_listen;
        state = "listening";
        log.info("core API listening", { address, tls, services: services.registry.size });
        if (!tls && !isLoopbackHost(hp.host))
          log.warn("core API listens on a non-loopback address without TLS: the core key travels in clear text", { address });
      } catch (err) {
        state = "unavailable";
        server = undefined;
        log.error("core API unavailable", { listen: config.core_listen, error: (err as Error).message });
      }
    },
    async stop(graceful, deadline) {
      const srv = server;
      if (!srv) {
        if (state !== "disabled") state = "stopped";
        return;
      }
      const closed = new Promise<void>((resolve) => srv.close(() => resolve()));
      srv.closeIdleConnections();
      if (graceful) await untilDeadline(closed, deadline);
      srv.closeAllConnections();
      await closed;
      server = undefined;
      state = "stopped";
    },
    listeners() {
      return new Map(server && state === "listening" ? [["core", { server, address: config.core_listen }]] : []);
    },
    status() {
      return { state, address: address || undefined, services: services.registry.size };
    },
  };
}

const LINGER_BYTES = 16 * 1024 * 1024;
const LINGER_MS = 5_000;

/** We fail a request before the client sent its whole body (413, 401, ...). Answering and closing
 *  at once would make the kernel reset the connection and the client lose our answer; so first read
 *  and discard a bounded amount of what it still sends. False when the bound was hit. */
function drainBounded(req: IncomingMessage): Promise<boolean> {
  if (req.readableEnded) return Promise.resolve(true);
  return new Promise((resolve) => {
    let seen = 0;
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("close", onClose);
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), LINGER_MS);
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > LINGER_BYTES) finish(false);
    };
    const onEnd = () => finish(true);
    const onClose = () => finish(req.readableEnded);
    req.on("data", onData);
    req.once("end", onEnd);
    req.once("close", onClose);
    req.resume();
  });
}

function noContent(res: ServerResponse): void {
  res.writeHead(204);
  res.end();
}

/** Passes bytes through until `limit`; past it, ends with an error and remembers why. */
class ByteLimit extends Transform {
  private seen = 0;
  exceeded = false;
  constructor(private readonly limit: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) {
      this.exceeded = true;
      done(new Error(`more than ${this.limit} bytes`));
      return;
    }
    done(null, chunk);
  }
}
