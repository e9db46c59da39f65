// Bind directories: <state_dir>/binds/<id>. Filled from bind_contents in a temp dir beside the
// final one, renamed into place; removed only inside the binds root, never following a link out.
import { mkdtemp, rename, rm, lstat, readdir, chmod } from "node:fs/promises";
import { copyCheckout, ensureDir, shamanRoot } from "../store/index.js";
import { join, resolve, sep } from "node:path";
import { randomBytes } from "node:crypto";
import { createGunzip } from "node:zlib";
import { openDownload, limitedBody, type DownloadOptions } from "./download.js";
import { Extractor, fsSink, type ExtractLimits } from "./extract.js";
import { ArchiveError } from "./tar.js";
import { ID_RE } from "./params.js";
import { log } from "../log.js";

export const MAX_ARCHIVE_ENTRIES = 100_000;

export class BindDirs {
  readonly root: string;
  /** the Shaman store, for bind_contents "shaman:<checkoutID>" */
  private readonly shaman: string;

  constructor(stateDir: string) {
    this.root = resolve(stateDir, "binds");
    this.shaman = shamanRoot(stateDir);
  }

  /** Create the root (0700; containers see only their own dir through the mount) and clear leftovers of an interrupted run. */
  async init(): Promise<void> {
    await ensureDir(this.root, 0o700);
    const st = await lstat(this.root);
    if (!st.isDirectory()) throw new Error(`${this.root} is not a directory`);
    for (const name of await readdir(this.root)) {
      if (name.startsWith(".tmp-") || name.startsWith(".del-")) await rm(join(this.root, name), { recursive: true, force: true });
    }
  }

  /** The dir of one service; ids are validated (no "/", never "." or ".."), checked again here. */
  path(id: string): string {
    const p = join(this.root, id);
    if (!ID_RE.test(id) || !p.startsWith(this.root + sep)) throw new Error(`bad service id for a bind dir: ${id}`);
    return p;
  }

  /** Make the bind dir of `id`: empty, or filled from `contents` (a .tar.gz URL, or "shaman:<checkoutID>":
   *  that checkout's files copied). Nothing is left on failure. */
  async create(id: string, contents: string | undefined, download: DownloadOptions & { maxEntries?: number }): Promise<void> {
    const final = this.path(id);
    await this.remove(id); // an orphan of an interrupted create (the registry has no such service)
    const tmp = await mkdtemp(join(this.root, `.tmp-${id}-`));
    try {
      await chmod(tmp, 0o755);
      if (contents?.startsWith("shaman:")) await fillFromCheckout(tmp, this.shaman, contents.slice(7), download.maxBytes);
      else if (contents !== undefined) await fillFromUrl(tmp, contents, download);
      await rename(tmp, final);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true }).catch(() => {});
      throw err;
    }
  }

  /** Remove the bind dir of `id`: renamed aside first (so it vanishes at once), then deleted without following links. */
  async remove(id: string): Promise<void> {
    const dir = this.path(id);
    const aside = join(this.root, `.del-${id}-${randomBytes(4).toString("hex")}`);
    try {
      await rename(dir, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    // rm never follows symlinks (it unlinks them), and `aside` is a direct child of the root
    await rm(aside, { recursive: true, force: true });
  }

  async exists(id: string): Promise<boolean> {
    try {
      await lstat(this.path(id));
      return true;
    } catch {
      return false;
    }
  }
}

/** Copy a Shaman checkout into `dir` (files, not links: the service must not reach the store).
 *  Throws CheckoutNotFound / CheckoutTooLarge (over `maxBytes`). */
async function fillFromCheckout(dir: string, shaman: string, id: string, maxBytes: number): Promise<void> {
  const r = await copyCheckout(shaman, id, dir, maxBytes);
  log.debug("bind contents copied from a Shaman checkout", { dir, checkout: id, files: r.files, bytes: r.bytes });
}

/** Download + gunzip + extract into `dir`. Throws DownloadError/DownloadTooLarge/ArchiveError/ArchiveTooLarge. */
export async function fillFromUrl(dir: string, url: string, opts: DownloadOptions & { maxEntries?: number }): Promise<void> {
  const res = await openDownload(url, opts);
  try {
    await extractTarGz(limitedBody(res, opts.maxBytes), dir, { maxBytes: opts.maxBytes, maxEntries: opts.maxEntries ?? MAX_ARCHIVE_ENTRIES }, () => res.destroy());
  } finally {
    res.destroy();
  }
  log.debug("bind contents extracted", { dir });
}

/** Gunzip a byte source and extract the tar into `dir`. Errors of the source win over the gzip/tar errors they cause. */
export async function extractTarGz(source: AsyncIterable<Buffer>, dir: string, limits: ExtractLimits, abortSource: () => void = () => {}): Promise<void> {
  const gunzip = createGunzip();
  let feedError: unknown;
  const feeding = (async () => {
    try {
      for await (const chunk of source) {
        if (gunzip.destroyed) break;
        if (!gunzip.write(chunk)) await drainOrClose(gunzip);
      }
      if (!gunzip.destroyed) gunzip.end();
    } catch (err) {
      feedError = err;
      gunzip.destroy(err as Error);
    }
  })();
  try {
    await new Extractor(fsSink(dir), limits).run(gzipErrorsAsArchiveErrors(gunzip, () => feedError));
  } catch (err) {
    const cause = feedError ?? err;
    abortSource(); // the feeder may be waiting on the network
    gunzip.destroy();
    await feeding;
    throw cause;
  }
  await feeding;
  if (feedError) throw feedError;
}

async function* gzipErrorsAsArchiveErrors(gunzip: AsyncIterable<Buffer>, feedError: () => unknown): AsyncGenerator<Buffer, void, void> {
  try {
    for await (const chunk of gunzip) yield chunk;
  } catch (err) {
    if (feedError()) throw feedError();
    throw new ArchiveError(`bad gzip data: ${(err as Error).message}`);
  }
}

function drainOrClose(stream: import("node:stream").Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
  });
}
