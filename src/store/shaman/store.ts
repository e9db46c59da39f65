// The Shaman store: content-addressed blobs (uploads hashed while streamed, atomically renamed into
// place), symlink checkouts built aside and renamed in, crash leftovers removed at open, and GC.
import { createHash, randomBytes } from "node:crypto";
import { lstat, mkdir, open, readdir, readlink, rename, rm, rmdir, stat, symlink, unlink, utimes, type FileHandle } from "node:fs/promises";
import { join, resolve } from "node:path";
import { pipeline, type Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { mapLimit, Serializer } from "../../base/index.js";
import { log } from "../../log.js";
import { fsyncDir } from "../atomic.js";
import { ensureDir } from "../dirs.js";
import type { CdfEntry } from "./cdf.js";
import { checkoutRelPath, isCheckoutId } from "./checkout-id.js";
import { definitionSha, writeCheckoutSum } from "./checkout-read.js";

export { checkoutRelPath, isCheckoutId };

/** one file of the store: its SHA-256 (lowercase hex) and size */
export interface BlobKey {
  sha: string;
  size: number;
}

export type BlobState = "stored" | "uploading" | "unknown";

/** how an upload ended (a failure that is not a mismatch throws) */
export type UploadOutcome =
  | { outcome: "stored" }
  /** stored before or by a concurrent upload (this one's body was not read, or dropped) */
  | { outcome: "exists" }
  /** another upload is under way and the client may defer */
  | { outcome: "deferred" }
  | { outcome: "mismatch"; reason: string };

export interface UploadOptions {
  encoding: "identity" | "gzip";
  /** answer "deferred" at once when another upload of the same file is under way */
  canDefer: boolean;
}

export interface Requirement {
  status: "file-unknown" | "already-uploading";
  path: string;
}

export interface ShamanStats {
  blobs: number;
  bytes: number;
  checkouts: number;
  uploads_in_flight: number;
}

export interface GcOptions {
  /** blobs whose time (stored or last touched) is older than this may go */
  maxAgeMs: number;
  /** count only */
  dryRun: boolean;
  signal?: AbortSignal;
  /** tests: runs after the checkouts' links are read, before the blobs are */
  onLinksCollected?: () => Promise<void>;
}

export interface GcResult {
  dry_run: boolean;
  /** blobs looked at, linked by a checkout, younger than the max age (or touched) */
  scanned: number;
  linked: number;
  kept_recent: number;
  /** deleted, or what would be deleted on a dry run */
  freed_blobs: number;
  freed_bytes: number;
  /** up to 100 of them, "sha/size" */
  sample: string[];
  ms: number;
}

/** A checkout cannot be made: `status` for the HTTP answer, `lines` its text. */
export class CheckoutError extends Error {
  constructor(readonly status: number, readonly lines: string[]) {
    super(lines.join("; "));
  }
}

/** A disk error while building checkout `id`, for the client: 507 when the disk is full, else
 *  500; the message names no server path (the full error goes to the log). */
function diskError(id: string, err: unknown): CheckoutError {
  const e = err as NodeJS.ErrnoException;
  log.error("shaman: checkout creation failed; nothing was left behind", { checkout: id, error: e?.message ?? String(err) });
  if (e?.code === "ENOSPC" || e?.code === "EDQUOT") return new CheckoutError(507, [`cannot create checkout ${id}: no space left on the device`]);
  return new CheckoutError(500, [`cannot create checkout ${id}: disk error${e?.code ? ` (${e.code})` : ""}`]);
}

const BLOB_NAME_RE = /^(0|[1-9][0-9]*)\.blob$/;
const HEX2_RE = /^[0-9a-f]{2}$/;
const HEX62_RE = /^[0-9a-f]{62}$/;
/** stat() calls in flight for requirements and checkouts */
const STAT_LANES = 32;
const SAMPLE = 100;

const keyOf = (k: BlobKey) => `${k.sha}/${k.size}`;

/** Concurrent uploads of one file: `done` resolves when one of them has stored it. */
interface UploadGroup {
  active: number;
  done: Promise<void>;
  succeed: () => void;
}


export class ShamanStore {
  readonly storedDir: string;
  readonly uploadingDir: string;
  readonly checkoutsDir: string;
  /** checkouts being built (renamed into checkoutsDir when complete) */
  readonly buildingDir: string;
  private readonly uploads = new Map<string, UploadGroup>();
  /** keys touched since the running GC's scan started (undefined: no GC running) */
  private gcTouched: Set<string> | undefined;
  /** keys the GC is deleting now, with the deletion */
  private readonly deleting = new Map<string, Promise<void>>();
  /** checkouts being created, by id */
  private readonly creating = new Map<string, Promise<unknown>>();
  private readonly gcRuns = new Serializer();

  private constructor(readonly root: string) {
    this.storedDir = join(root, "stored");
    this.uploadingDir = join(root, "uploading");
    this.checkoutsDir = join(root, "checkouts");
    this.buildingDir = join(root, "checkouts-building");
  }

  /** Open the store under `root` (`<state_dir>/shaman`): make its directories, remove what a
   *  crash left behind (partial uploads, half-built checkouts). */
  static async open(root: string): Promise<ShamanStore> {
    const store = new ShamanStore(resolve(root));
    await ensureDir(store.root, 0o755);
    await ensureDir(store.storedDir, 0o755);
    await ensureDir(store.checkoutsDir, 0o755);
    for (const dir of [store.uploadingDir, store.buildingDir]) {
      await ensureDir(dir, 0o700);
      const leftovers = await readdir(dir);
      for (const name of leftovers) await rm(join(dir, name), { recursive: true, force: true });
      if (leftovers.length) log.info("shaman: removed leftovers of an earlier run", { dir, entries: leftovers.length });
    }
    return store;
  }

  blobPath(k: BlobKey): string {
    return join(this.storedDir, k.sha.slice(0, 2), k.sha.slice(2), `${k.size}.blob`);
  }

  checkoutPath(id: string): string {
    return join(this.checkoutsDir, checkoutRelPath(id));
  }

  get uploadsInFlight(): number {
    let n = 0;
    for (const g of this.uploads.values()) n += g.active;
    return n;
  }

  async isStored(k: BlobKey): Promise<boolean> {
    try {
      const st = await stat(this.blobPath(k));
      return st.isFile() && st.size === k.size;
    } catch {
      return false;
    }
  }

  async state(k: BlobKey): Promise<BlobState> {
    if (await this.isStored(k)) return "stored";
    return this.uploads.has(keyOf(k)) ? "uploading" : "unknown";
  }

  /** Refresh a stored blob's time against GC; false when it is not stored. */
  async touch(k: BlobKey): Promise<boolean> {
    await this.claim(k);
    const now = new Date();
    try {
      await utimes(this.blobPath(k), now, now);
    } catch {
      return false;
    }
    return this.isStored(k);
  }

  /** A blob is about to be used or stored: a running GC keeps it, and a deletion under way ends first. */
  private async claim(k: BlobKey): Promise<void> {
    const key = keyOf(k);
    this.gcTouched?.add(key);
    const deletion = this.deleting.get(key);
    if (deletion) await deletion;
  }

  // ---- uploads ----

  /**
   * Store a file from `openBody()`, hashing it on the way. The body is not opened when the file
   * is stored already (or the upload may be deferred). Several uploads of one file may run; the
   * first to store it ends the others ("exists", their bodies dropped); a failed one ends nothing.
   */
  async upload(k: BlobKey, openBody: () => Readable, opts: UploadOptions): Promise<UploadOutcome> {
    const key = keyOf(k);
    // touched, not only seen: a GC deleting it meanwhile is waited for and then it is not stored
    if (await this.touch(k)) return { outcome: "exists" };
    let group = this.uploads.get(key);
    if (group && opts.canDefer) return { outcome: "deferred" };
    if (!group) {
      let succeed = () => {};
      const done = new Promise<void>((r) => (succeed = r));
      group = { active: 0, done, succeed };
      this.uploads.set(key, group);
    }
    group.active++;
    const tmp = join(this.uploadingDir, `${k.sha}-${k.size}-${randomBytes(6).toString("hex")}.tmp`);
    let fh: FileHandle | undefined;
    try {
      fh = await open(tmp, "wx", 0o600);
      const received = await this.receive(k, openBody(), opts.encoding, fh, group.done);
      if (received.outcome !== "stored") return received;
      await fh.sync();
      await fh.chmod(0o444); // checkouts link here: writing through a link must fail
      await fh.close();
      fh = undefined;
      await this.claim(k);
      await this.install(tmp, k);
      group.succeed();
      return { outcome: "stored" };
    } finally {
      await fh?.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      if (--group.active === 0 && this.uploads.get(key) === group) this.uploads.delete(key);
    }
  }

  /** Hash and write the body; "stored" here means complete and matching (not yet renamed). */
  private receive(k: BlobKey, source: Readable, encoding: UploadOptions["encoding"], fh: FileHandle, superseded: Promise<void>): Promise<UploadOutcome> {
    return new Promise<UploadOutcome>((resolveOutcome, reject) => {
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        fn();
      };
      // another upload stored the file: stop reading ours
      void superseded.then(() => settle(() => {
        source.destroy();
        resolveOutcome({ outcome: "exists" });
      }));
      const input: Readable = encoding === "gzip" ? pipeline(source, createGunzip(), () => {}) : source;
      const hash = createHash("sha256");
      let size = 0;
      const run = async () => {
        for await (const chunk of input as AsyncIterable<Buffer>) {
          if (settled) return;
          size += chunk.length;
          if (size > k.size) return { outcome: "mismatch", reason: `more than the declared ${k.size} bytes` } as const;
          hash.update(chunk);
          let off = 0;
          while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
        }
        if (size !== k.size) return { outcome: "mismatch", reason: `received ${size} bytes, declared ${k.size}` } as const;
        const got = hash.digest("hex");
        if (got !== k.sha) return { outcome: "mismatch", reason: `received content has SHA-256 ${got}` } as const;
        return { outcome: "stored" } as const;
      };
      run().then(
        (r) => settle(() => {
          if (r && r.outcome === "mismatch") source.destroy(); // the rest is not wanted
          resolveOutcome(r ?? { outcome: "exists" });
        }),
        (err: Error) => settle(() => {
          source.destroy();
          // a broken gzip stream is the client's content, not a failure of ours
          if ((err as NodeJS.ErrnoException).code?.startsWith("Z_")) resolveOutcome({ outcome: "mismatch", reason: `bad gzip data: ${err.message}` });
          else reject(err);
        }),
      );
    });
  }

  /** Rename a complete, fsynced temp file into stored/ and make the rename durable. */
  private async install(tmp: string, k: BlobKey): Promise<void> {
    const path = this.blobPath(k);
    const dir = join(path, "..");
    for (let attempt = 0; ; attempt++) {
      await ensureDir(dir, 0o755);
      try {
        await rename(tmp, path);
        break;
      } catch (err) {
        // the GC removed the (then empty) directory between the two calls: make it again
        if ((err as NodeJS.ErrnoException).code !== "ENOENT" || attempt >= 3) throw err;
      }
    }
    await fsyncDir(dir);
    await fsyncDir(join(dir, ".."));
    await fsyncDir(this.storedDir);
  }

  /** Open a stored blob for reading; undefined when it is not stored. */
  async openBlob(k: BlobKey): Promise<FileHandle | undefined> {
    try {
      const fh = await open(this.blobPath(k), "r");
      await this.claim(k);
      return fh;
    } catch {
      return undefined;
    }
  }

  // ---- checkouts ----

  /** For each distinct file: unknown or being uploaded (stored ones are touched against GC). */
  async requirements(entries: readonly CdfEntry[]): Promise<Requirement[]> {
    const distinct = distinctFiles(entries);
    const states = await mapLimit(distinct, STAT_LANES, async (e): Promise<Requirement | undefined> => {
      if (await this.touch(e)) return undefined;
      return { status: this.uploads.has(keyOf(e)) ? "already-uploading" : "file-unknown", path: e.path };
    });
    return states.filter((r): r is Requirement => r !== undefined);
  }

  /**
   * Make checkout `id` from `entries`: a symlink tree built in a temp directory, then renamed into
   * place, so a failure leaves nothing. Resolves with the path relative to the checkouts directory.
   * CheckoutError: 400 (bad id, empty, files not stored), 409 (exists).
   */
  async createCheckout(id: string, entries: readonly CdfEntry[]): Promise<string> {
    if (!isCheckoutId(id)) throw new CheckoutError(400, ["checkout ID must match ^[a-zA-Z0-9_]{2,64}$"]);
    if (entries.length === 0) throw new CheckoutError(400, ["the checkout definition file names no files"]);
    if (this.creating.has(id)) throw new CheckoutError(409, [`checkout ${id} is being created`]);
    const work = this.create(id, entries);
    this.creating.set(id, work.catch(() => {}));
    try {
      return await work;
    } finally {
      this.creating.delete(id);
    }
  }

  private async create(id: string, entries: readonly CdfEntry[]): Promise<string> {
    const target = this.checkoutPath(id);
    if (await exists(target)) throw new CheckoutError(409, [`checkout ${id} already exists`]);
    const distinct = distinctFiles(entries);
    const missing = await mapLimit(distinct, STAT_LANES, async (e) => {
      await this.claim(e);
      return (await this.isStored(e)) ? undefined : e.path;
    });
    const unknown = missing.filter((p): p is string => p !== undefined);
    if (unknown.length) throw new CheckoutError(400, unknown.map((p) => `file-unknown ${p}`));
    const build = join(this.buildingDir, `${id}-${randomBytes(6).toString("hex")}`);
    try {
      await this.buildTree(build, entries);
      await ensureDir(join(target, ".."), 0o755);
      await rename(build, target);
    } catch (err) {
      await rm(build, { recursive: true, force: true }).catch(() => {});
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOTEMPTY" || code === "EEXIST") throw new CheckoutError(409, [`checkout ${id} already exists`]);
      throw diskError(id, err);
    }
    await fsyncDir(join(target, ".."));
    await fsyncDir(this.checkoutsDir);
    await writeCheckoutSum(this.root, id, definitionSha(entries));
    return checkoutRelPath(id);
  }

  /** The symlinks under `build` (a new directory), every directory fsynced. Paths were checked by
   *  the parser: relative, clean, no "..", no file under another file; so every parent made here
   *  is a real directory inside `build`. */
  private async buildTree(build: string, entries: readonly CdfEntry[]): Promise<void> {
    await mkdir(build, { mode: 0o755 });
    const dirs = new Set<string>([build]);
    const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    for (const e of sorted) {
      const path = join(build, e.path);
      const parent = join(path, "..");
      if (!dirs.has(parent)) {
        await mkdir(parent, { recursive: true, mode: 0o755 });
        for (let d = parent; !dirs.has(d); d = join(d, "..")) dirs.add(d);
      }
      await symlink(this.blobPath(e), path);
    }
    await mapLimit([...dirs], STAT_LANES, (d) => fsyncDir(d));
  }

  // ---- GC and stats ----

  /**
   * Delete blobs whose time is older than `maxAgeMs` and that no checkout links to (one being
   * created is waited for); a blob touched or stored after the scan started is kept. `dryRun`: only count.
   */
  gc(opts: GcOptions): Promise<GcResult> {
    return this.gcRuns.run(() => this.collect(opts));
  }

  private async collect(opts: GcOptions): Promise<GcResult> {
    const started = performance.now();
    const scanStart = Date.now();
    const cutoff = scanStart - opts.maxAgeMs;
    const touched = new Set<string>();
    this.gcTouched = touched;
    const r: GcResult = { dry_run: opts.dryRun, scanned: 0, linked: 0, kept_recent: 0, freed_blobs: 0, freed_bytes: 0, sample: [], ms: 0 };
    try {
      // checkouts that started before the scan claimed their blobs before it: let them finish
      // (those starting later claim into `touched`), then every link is under checkouts/
      await Promise.all(this.creating.values());
      const linked = new Set<string>();
      await this.collectLinks(this.checkoutsDir, linked, opts.signal);
      await opts.onLinksCollected?.();
      for await (const blob of this.blobs(opts.signal)) {
        r.scanned++;
        if (linked.has(blob.path)) {
          r.linked++;
          continue;
        }
        if (blob.mtimeMs > cutoff || touched.has(keyOf(blob))) {
          r.kept_recent++;
          continue;
        }
        if (!opts.dryRun && !(await this.deleteBlob(blob, cutoff, touched))) {
          r.kept_recent++;
          continue;
        }
        r.freed_blobs++;
        r.freed_bytes += blob.size;
        if (r.sample.length < SAMPLE) r.sample.push(keyOf(blob));
      }
    } finally {
      if (this.gcTouched === touched) this.gcTouched = undefined;
    }
    r.ms = Math.round(performance.now() - started);
    return r;
  }

  /** Delete one blob unless it was touched meanwhile; true when deleted. */
  private async deleteBlob(blob: BlobKey & { path: string }, cutoff: number, touched: Set<string>): Promise<boolean> {
    const key = keyOf(blob);
    if (touched.has(key) || this.deleting.has(key)) return false;
    let deleted = false;
    const deletion = (async () => {
      const st = await stat(blob.path).catch(() => undefined);
      if (!st || st.mtimeMs > cutoff) return; // gone, or touched after our readdir
      await unlink(blob.path);
      deleted = true;
      const dir = join(blob.path, "..");
      await rmdir(dir).catch(() => {}); // only when empty
      await rmdir(join(dir, "..")).catch(() => {});
    })();
    // claim() waits on this: nothing uses or stores the key until the deletion is over
    this.deleting.set(key, deletion.catch(() => {}));
    try {
      await deletion;
    } finally {
      this.deleting.delete(key);
    }
    return deleted;
  }

  /** Every symlink target under `dir` that points into stored/ (the blob's path). */
  private async collectLinks(dir: string, into: Set<string>, signal?: AbortSignal): Promise<void> {
    const prefix = this.storedDir + "/";
    const walk = async (d: string): Promise<void> => {
      signal?.throwIfAborted();
      const ents = await readdir(d, { withFileTypes: true }).catch(() => []);
      for (const e of ents) {
        const p = join(d, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.isSymbolicLink()) {
          const target = await readlink(p).catch(() => "");
          if (target.startsWith(prefix)) into.add(target);
        }
      }
    };
    await walk(dir);
  }

  /** Every blob under stored/ with its time (files not named like blobs are skipped). */
  private async *blobs(signal?: AbortSignal): AsyncGenerator<BlobKey & { path: string; mtimeMs: number }> {
    for (const a of (await readdir(this.storedDir)).sort()) {
      if (!HEX2_RE.test(a)) continue;
      for (const b of await readdir(join(this.storedDir, a)).catch(() => [])) {
        if (!HEX62_RE.test(b)) continue;
        signal?.throwIfAborted();
        const dir = join(this.storedDir, a, b);
        for (const name of await readdir(dir).catch(() => [])) {
          const m = BLOB_NAME_RE.exec(name);
          if (!m) continue;
          const path = join(dir, name);
          const st = await lstat(path).catch(() => undefined);
          if (!st?.isFile()) continue;
          yield { sha: a + b, size: Number(m[1]), path, mtimeMs: st.mtimeMs };
        }
      }
    }
  }

  async stats(): Promise<ShamanStats> {
    let blobs = 0;
    let bytes = 0;
    for await (const b of this.blobs()) {
      blobs++;
      bytes += b.size;
    }
    let checkouts = 0;
    for (const a of await readdir(this.checkoutsDir).catch(() => [])) checkouts += (await readdir(join(this.checkoutsDir, a)).catch(() => [])).length;
    return { blobs, bytes, checkouts, uploads_in_flight: this.uploadsInFlight };
  }
}

/** the first entry of each (sha, size), in order */
function distinctFiles(entries: readonly CdfEntry[]): CdfEntry[] {
  const seen = new Set<string>();
  return entries.filter((e) => {
    const k = keyOf(e);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(() => true, () => false);
}
