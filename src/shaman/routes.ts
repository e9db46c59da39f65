// The Shaman endpoints (see stevedore(8), SHAMAN): uploads and downloads of files by checksum and
// size, checkout requirements and creation (text/plain), and the store's status and GC for the CLI.
import type { FileHandle } from "node:fs/promises";
import { HttpError, httpDate, optionalJsonObject, type ApiRequest, type ApiResponse, type ApiRoute, type Incoming } from "../http/index.js";
import { CheckoutError, CheckoutNotFound, cdfText, checkoutFiles, definitionSha, readCheckoutSum, isCheckoutId, parseCdf, SHA256_HEX_RE, sizeProblem, type BlobKey, type CdfEntry, type GcResult, type ShamanStats, type ShamanStore } from "../store/index.js";
import { log } from "../log.js";

export interface ShamanDeps {
  store: ShamanStore;
  /** shaman_max_file_size now */
  maxFileSize(): number;
  /** a GC now (waits for one under way) */
  gc(dryRun: boolean): Promise<GcResult>;
  /** the last finished GC that deleted (not a dry run), with its end time */
  lastGc(): (GcResult & { finished: string }) | undefined;
}

/** a Checkout Definition File of 100,000 lines with long paths fits */
export const MAX_CDF_BYTES = 64 * 1024 * 1024;
const MAX_LOGGED_NAME = 256;
/** slack over the declared size for the gzip framing of incompressible data */
const GZIP_SLACK = (size: number) => Math.ceil(size / 64) + 64 * 1024;

/** the (checksum, size) of a /files/ path: 400 unless 64 hex and a non-negative integer */
function blobKey(req: ApiRequest): BlobKey {
  const { checksum = "", filesize = "" } = req.params;
  if (!SHA256_HEX_RE.test(checksum)) throw new HttpError(400, "checksum must be 64 hexadecimal characters");
  const problem = sizeProblem(filesize);
  if (problem) throw new HttpError(400, problem.replace(/^size/, "filesize"));
  return { sha: checksum.toLowerCase(), size: Number(filesize) };
}

/** A header as sent (Latin-1 bytes, UTF-8 from others) made safe for a log line: bytes outside
 *  printable ASCII, and "%", as %XX; bounded. */
export function escapeHeader(value: string): string {
  let out = "";
  for (const ch of value.slice(0, MAX_LOGGED_NAME)) {
    const c = ch.charCodeAt(0);
    out += c >= 0x20 && c < 0x7f && ch !== "%" ? ch : c <= 0xff ? `%${c.toString(16).toUpperCase().padStart(2, "0")}` : encodeURIComponent(ch);
  }
  return value.length > MAX_LOGGED_NAME ? out + "..." : out;
}

function subjectOf(req: ApiRequest): string | undefined {
  const subject = (req.user as { subject?: unknown } | undefined)?.subject;
  return typeof subject === "string" ? subject : undefined;
}

function encodingOf(req: ApiRequest): "identity" | "gzip" {
  const enc = (req.header("content-encoding") ?? "identity").trim().toLowerCase();
  if (enc === "identity" || enc === "") return "identity";
  if (enc === "gzip" || enc === "x-gzip") return "gzip";
  throw new HttpError(415, `unsupported Content-Encoding ${JSON.stringify(enc.slice(0, 64))} (identity or gzip)`);
}

async function upload(deps: ShamanDeps, req: ApiRequest): Promise<ApiResponse> {
  const k = blobKey(req);
  const max = deps.maxFileSize();
  if (k.size > max) throw new HttpError(413, `file of ${k.size} bytes is larger than shaman_max_file_size (${max})`);
  const encoding = encodingOf(req);
  const declared = req.header("content-length");
  if (encoding === "identity" && declared !== undefined && declared.trim() !== String(k.size)) {
    throw new HttpError(417, `Content-Length ${declared.trim().slice(0, 20)} is not the declared file size ${k.size}`);
  }
  const limit = encoding === "gzip" ? Math.min(max, k.size) + GZIP_SLACK(k.size) : max;
  const filename = req.header("x-shaman-original-filename");
  const fields = { checksum: k.sha, size: k.size, filename: filename === undefined ? undefined : escapeHeader(filename), user: subjectOf(req) };
  const r = await deps.store.upload(k, () => req.stream(limit), { encoding, canDefer: req.header("x-shaman-can-defer-upload")?.trim().toLowerCase() === "true" });
  switch (r.outcome) {
    case "stored":
      log.info("shaman: file stored", fields);
      return { status: 204 };
    case "exists":
      log.debug("shaman: file already stored", fields);
      return { status: 208 };
    case "deferred":
      log.debug("shaman: upload deferred, another one is under way", fields);
      return { status: 208 };
    case "mismatch":
      log.info("shaman: upload refused", { ...fields, reason: r.reason });
      throw new HttpError(417, r.reason);
  }
}

/** GET: the blob, streamed with backpressure; void (answered through req.inc) */
async function download(deps: ShamanDeps, req: ApiRequest): Promise<ApiResponse | void> {
  const k = blobKey(req);
  const fh = await deps.store.openBlob(k);
  if (!fh) throw new HttpError(404, "file not stored");
  try {
    await streamFile(req.inc, fh, k.size);
  } finally {
    await fh.close();
  }
}

async function streamFile(inc: Incoming, fh: FileHandle, size: number): Promise<void> {
  let closed = false;
  let wake = () => {};
  inc.onClose(() => {
    closed = true;
    wake();
  });
  inc.writeHead(200, "OK", ["Date", httpDate(), "Content-Type", "application/octet-stream", "Content-Length", String(size)]);
  let sent = 0;
  for await (const chunk of fh.createReadStream({ autoClose: false, highWaterMark: 256 * 1024 }) as AsyncIterable<Buffer>) {
    if (closed) return;
    sent += chunk.length;
    if (!inc.write(chunk)) {
      await new Promise<void>((resolve) => {
        wake = resolve;
        inc.onDrain(resolve);
      });
    }
  }
  if (closed) return;
  if (sent !== size) return inc.destroy(); // changed underneath: cut rather than lie
  inc.end();
}

/** The text endpoints answer errors as `ERROR message` lines (and the missing files as their lines). */
function textErrors(handler: (req: ApiRequest) => Promise<ApiResponse>): (req: ApiRequest) => Promise<ApiResponse> {
  return async (req) => {
    try {
      return await handler(req);
    } catch (err) {
      if (err instanceof CheckoutError) {
        const body = err.status === 400 && err.lines.every((l) => l.startsWith("file-unknown ")) ? err.lines : err.lines.map((l) => `ERROR ${l}`);
        return { status: err.status, body: body.join("\n") + "\n" };
      }
      if (err instanceof HttpError) return { status: err.status, body: `ERROR ${err.message}\n`, headers: err.headers };
      throw err;
    }
  };
}

/** the request's Checkout Definition File: 415 unless text/plain, 413 past the bound, 400 listing every bad line */
async function readCdf(req: ApiRequest): Promise<CdfEntry[]> {
  const type = req.header("content-type") ?? "";
  if (!/^text\/plain\s*(;|$)/i.test(type.trim())) throw new HttpError(415, "Content-Type must be text/plain");
  const parsed = parseCdf(await req.body(MAX_CDF_BYTES));
  if (!parsed.ok) throw new CheckoutError(400, parsed.errors);
  return parsed.entries;
}


export function shamanRoutes(deps: ShamanDeps): ApiRoute[] {
  const { store } = deps;
  return [
    { method: "POST", path: "/files/:checksum/:filesize", handler: (req) => upload(deps, req) },
    {
      method: "OPTIONS",
      path: "/files/:checksum/:filesize",
      handler: async (req) => {
        const state = await store.state(blobKey(req));
        return { status: state === "stored" ? 200 : state === "uploading" ? 420 : 404 };
      },
    },
    { method: "GET", path: "/files/:checksum/:filesize", handler: (req) => download(deps, req) },
    {
      method: "POST",
      path: "/checkout/requirements",
      handler: textErrors(async (req) => {
        const needed = await store.requirements(await readCdf(req));
        return { status: 200, body: needed.map((r) => `${r.status} ${r.path}\n`).join("") };
      }),
    },
    {
      method: "POST",
      path: "/checkout/create/:checkoutID",
      handler: textErrors(async (req) => {
        const id = req.params.checkoutID ?? "";
        if (!isCheckoutId(id)) throw new HttpError(400, "checkout ID must match ^[a-zA-Z0-9_]{2,64}$");
        const entries = await readCdf(req);
        const rel = await store.createCheckout(id, entries);
        log.info("shaman: checkout created", { checkout: id, files: entries.length, user: subjectOf(req) });
        return { status: 200, body: rel };
      }),
    },
    {
      // an extension: the checkout's files as Checkout Definition File lines (workers fetch them)
      method: "GET",
      path: "/checkout/files/:checkoutID",
      // ETag: the definition's SHA-256; If-None-Match with it is 304 without listing the tree
      // when the sum was kept at creation (`stevedore shaman push` run again asks this way)
      handler: textErrors(async (req) => {
        const id = req.params.checkoutID ?? "";
        const wanted = req.header("if-none-match")?.trim();
        const kept = await readCheckoutSum(store.root, id);
        if (kept && wanted === `"${kept}"`) return { status: 304, headers: { ETag: `"${kept}"` } };
        try {
          const files = await checkoutFiles(store.root, id);
          const etag = `"${definitionSha(files)}"`;
          if (wanted === etag) return { status: 304, headers: { ETag: etag } };
          return { status: 200, body: cdfText(files), headers: { ETag: etag } };
        } catch (err) {
          if (err instanceof CheckoutNotFound) throw new HttpError(404, err.message);
          throw err;
        }
      }),
    },
    {
      method: "GET",
      path: "/shaman/status",
      handler: async (): Promise<ApiResponse> => {
        const stats: ShamanStats & { last_gc?: unknown } = await store.stats();
        const last = deps.lastGc();
        if (last) stats.last_gc = last;
        return { status: 200, body: stats };
      },
    },
    {
      method: "POST",
      path: "/shaman/gc",
      handler: async (req) => {
        const opts = await optionalJsonObject(req, 64 * 1024);
        if (opts.dry_run !== undefined && typeof opts.dry_run !== "boolean") throw new HttpError(400, "dry_run must be a boolean");
        log.info("shaman: GC requested", { dry_run: opts.dry_run === true, user: subjectOf(req) });
        return { status: 200, body: await deps.gc(opts.dry_run === true) };
      },
    },
  ];
}
