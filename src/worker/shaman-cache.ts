// The worker's Shaman cache (--shaman-cache DIR): a checkout's files fetched from the manager by
// checksum (GET /files/{sha}/{size}), kept by checksum and verified on the way in, then copied into
// a fresh work directory per command so a task never writes into the cache.
import { createHash, randomBytes } from "node:crypto";
import { chmod, copyFile, mkdir, open, rename, rm, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { mapLimit } from "../base/index.js";
import { ensureDir, isCheckoutId, parseCdf, type CdfEntry } from "../store/index.js";
import { BadSettings } from "./commands.js";
import type { Credentials, ManagerHttp } from "./http-client.js";

/** downloads at once */
const FETCH_LANES = 4;
/** copies into the work directory at once */
const COPY_LANES = 8;

export interface CheckoutDir {
  dir: string;
  /** remove the work directory */
  dispose(): Promise<void>;
}

export class ShamanCache {
  private readonly blobsDir: string;
  private readonly tmpDir: string;
  private readonly workDir: string;
  /** one download per blob at a time */
  private readonly fetching = new Map<string, Promise<string>>();
  private ready: Promise<void> | undefined;

  constructor(readonly dir: string, private readonly http: ManagerHttp, private readonly idleMs: number) {
    this.blobsDir = join(dir, "blobs");
    this.tmpDir = join(dir, "tmp");
    this.workDir = join(dir, "work");
  }

  /** Make the directories and drop what an earlier run left in tmp/ and work/ (once). */
  private init(): Promise<void> {
    return (this.ready ??= (async () => {
      await ensureDir(this.dir, 0o700);
      for (const d of [this.tmpDir, this.workDir]) {
        await rm(d, { recursive: true, force: true });
        await ensureDir(d, 0o700);
      }
      await ensureDir(this.blobsDir, 0o700);
    })());
  }

  /**
   * Checkout `id` as a new directory of real files: its listing from the manager, every file not
   * cached fetched and verified, then copied. `log` gets one line of what was fetched.
   */
  async checkout(id: string, auth: Credentials, label: string, log: (line: string) => void, signal: AbortSignal): Promise<CheckoutDir> {
    if (!isCheckoutId(id)) throw new BadSettings(`checkout ${JSON.stringify(id)} is not a checkout ID (^[a-zA-Z0-9_]{2,64}$)`);
    await this.init();
    const listing = await this.http.fetch(`/checkout/files/${id}`, auth, this.idleMs);
    if (listing.status !== 200) throw new Error(`checkout ${id}: the manager answered ${listing.status}: ${listing.text.trim().slice(0, 200)}`);
    const parsed = parseCdf(await readAll(listing.body));
    // the paths are checked like any Checkout Definition File: nothing lands outside the work dir
    if (!parsed.ok) throw new Error(`checkout ${id}: bad listing from the manager: ${parsed.errors[0]}`);
    let fetched = 0;
    let bytes = 0;
    const blobs = await mapLimit(parsed.entries, FETCH_LANES, async (e) => {
      signal.throwIfAborted();
      const r = await this.blob(e, auth);
      if (r.fetched) {
        fetched++;
        bytes += e.size;
      }
      return r.path;
    });
    const dir = join(this.workDir, `${label}-${randomBytes(4).toString("hex")}`);
    await mkdir(dir, { mode: 0o755 });
    try {
      const dirs = new Set<string>();
      for (const e of parsed.entries) for (let i = e.path.indexOf("/"); i >= 0; i = e.path.indexOf("/", i + 1)) dirs.add(e.path.slice(0, i));
      for (const d of [...dirs].sort()) await mkdir(join(dir, d), { mode: 0o755 });
      await mapLimit(parsed.entries.map((e, i) => [e, blobs[i]!] as const), COPY_LANES, async ([e, blob]) => {
        signal.throwIfAborted();
        await copyFile(blob, join(dir, e.path));
        await chmod(join(dir, e.path), 0o644);
      });
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    log(`checkout ${id}: ${parsed.entries.length} files in ${dir} (fetched ${fetched}, ${bytes} bytes; the rest from the cache)`);
    return { dir, dispose: () => rm(dir, { recursive: true, force: true }) };
  }

  private blobPath(e: CdfEntry): string {
    return join(this.blobsDir, e.sha.slice(0, 2), `${e.sha}-${e.size}`);
  }

  /** the cached blob's path, fetched first when missing (or of the wrong size) */
  private async blob(e: CdfEntry, auth: Credentials): Promise<{ path: string; fetched: boolean }> {
    const path = this.blobPath(e);
    const st = await stat(path).catch(() => undefined);
    if (st?.isFile() && st.size === e.size) return { path, fetched: false };
    const key = `${e.sha}-${e.size}`;
    let p = this.fetching.get(key);
    if (!p) {
      p = this.download(e, auth, path).finally(() => this.fetching.delete(key));
      this.fetching.set(key, p);
    }
    return { path: await p, fetched: true };
  }

  /** GET the blob into tmp/ while hashing; only a complete, matching, fsynced copy is renamed in. */
  private async download(e: CdfEntry, auth: Credentials, path: string): Promise<string> {
    const a = await this.http.fetch(`/files/${e.sha}/${e.size}`, auth, this.idleMs);
    if (a.status !== 200) throw new Error(`file ${e.path}: the manager answered ${a.status}: ${a.text.trim().slice(0, 200)}`);
    const tmp = join(this.tmpDir, `${e.sha}-${e.size}-${randomBytes(4).toString("hex")}`);
    const fh = await open(tmp, "wx", 0o444);
    try {
      const hash = createHash("sha256");
      let size = 0;
      for await (const chunk of a.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > e.size) break;
        hash.update(chunk);
        let off = 0;
        while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
      }
      a.body.destroy();
      const sha = hash.digest("hex");
      if (size !== e.size || sha !== e.sha) throw new Error(`file ${e.path}: the manager sent ${size} bytes with SHA-256 ${sha}, not ${e.size} bytes with ${e.sha}`);
      await fh.sync();
      await fh.close();
      await ensureDir(join(path, ".."), 0o700);
      await rename(tmp, path);
      return path;
    } catch (err) {
      await fh.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      throw err;
    }
  }
}

async function readAll(body: AsyncIterable<Buffer>, max = 64 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > max) throw new Error(`checkout listing larger than ${max} bytes`);
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}
