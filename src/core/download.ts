// Download bind_contents over http(s): connect and read timeouts, a redirect limit and a size limit.
import { request as httpRequest, type IncomingMessage, type ClientRequest } from "node:http";
import { request as httpsRequest } from "node:https";

/** The download failed (→ 502). */
export class DownloadError extends Error {}
/** The download is larger than the limit (→ 413). */
export class DownloadTooLarge extends Error {}

export interface DownloadOptions {
  maxBytes: number;
  timeoutMs: number;
  maxRedirects: number;
}

/** Open the URL, following redirects; resolves with a 2xx response whose declared length fits. */
export async function openDownload(url: string, opts: DownloadOptions): Promise<IncomingMessage> {
  let current = parseHttpUrl(url);
  for (let redirects = 0; ; redirects++) {
    const res = await get(current, opts.timeoutMs);
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location !== undefined) {
      res.resume();
      if (redirects >= opts.maxRedirects) throw new DownloadError(`bind_contents download: more than ${opts.maxRedirects} redirects`);
      let next: URL;
      try {
        next = new URL(res.headers.location, current);
      } catch {
        throw new DownloadError(`bind_contents download: bad redirect location`);
      }
      current = parseHttpUrl(next.href);
      continue;
    }
    if (status < 200 || status >= 300) {
      res.resume();
      throw new DownloadError(`bind_contents download failed: HTTP ${status} from ${current.origin}`);
    }
    const declared = Number(res.headers["content-length"]);
    if (Number.isFinite(declared) && declared > opts.maxBytes) {
      res.destroy();
      throw new DownloadTooLarge(`bind_contents larger than ${opts.maxBytes} bytes (Content-Length ${declared})`);
    }
    return res;
  }
}

export function parseHttpUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new DownloadError(`bind_contents is not a URL`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new DownloadError(`bind_contents must be an http or https URL`);
  return u;
}

function get(url: URL, timeoutMs: number): Promise<IncomingMessage> {
  const request = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    let req: ClientRequest;
    const fail = (msg: string) => req.destroy(new DownloadError(`bind_contents download: ${msg}`));
    req = request(url, { method: "GET", headers: { "User-Agent": "stevedore", "Accept-Encoding": "identity" } });
    const connectTimer = setTimeout(() => fail(`connect timeout after ${timeoutMs} ms`), timeoutMs);
    req.once("socket", (sock) => {
      if (!sock.connecting) clearTimeout(connectTimer);
      else sock.once("connect", () => clearTimeout(connectTimer));
    });
    // idle (read) timeout: no bytes for timeoutMs, before and after the headers
    req.setTimeout(timeoutMs, () => fail(`no data for ${timeoutMs} ms`));
    req.once("response", (res) => {
      clearTimeout(connectTimer);
      resolve(res);
    });
    req.once("error", (err) => {
      clearTimeout(connectTimer);
      reject(err instanceof DownloadError ? err : new DownloadError(`bind_contents download failed: ${err.message}`));
    });
    req.end();
  });
}

/** Yield the body's chunks, failing past maxBytes (→ 413) or on a read error/timeout (→ 502). */
export async function* limitedBody(res: IncomingMessage, maxBytes: number): AsyncGenerator<Buffer, void, void> {
  let total = 0;
  try {
    for await (const chunk of res) {
      total += (chunk as Buffer).length;
      if (total > maxBytes) throw new DownloadTooLarge(`bind_contents larger than ${maxBytes} bytes`);
      yield chunk as Buffer;
    }
  } catch (err) {
    if (err instanceof DownloadTooLarge || err instanceof DownloadError) throw err;
    throw new DownloadError(`bind_contents download failed: ${(err as Error).message}`);
  } finally {
    res.destroy();
  }
}
