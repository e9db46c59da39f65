// Reading Shaman checkouts without the store instance (the core API and the Shaman routes both use
// it): a checkout's files with their checksums and sizes, and a copy of it into another directory.
import { createHash } from "node:crypto";
import { chmod, copyFile, lstat, mkdir, readdir, readFile, readlink, rename, stat, unlink, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { mapLimit } from "../../base/index.js";
import { tempName } from "../atomic.js";
import { checkoutRelPath, isCheckoutId } from "./checkout-id.js";

export interface CheckoutFile {
  /** relative to the checkout */
  path: string;
  sha: string;
  size: number;
  /** the blob the checkout links to */
  blob: string;
}

/** No checkout of that id (or the id is not a checkout id). */
export class CheckoutNotFound extends Error {
  constructor(readonly id: string) {
    super(`no such Shaman checkout: ${id}`);
  }
}

/** The checkout's files are more than the caller allows. */
export class CheckoutTooLarge extends Error {}

/** files copied at once */
const COPY_LANES = 8;

/** where the daemon keeps the Shaman store */
export function shamanRoot(stateDir: string): string {
  return join(resolve(stateDir), "shaman");
}

/** `<root>/stored/<2 hex>/<62 hex>/<size>.blob`, captured */
function blobRe(root: string): RegExp {
  const stored = join(root, "stored").replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`^${stored}/([0-9a-f]{2})/([0-9a-f]{62})/(0|[1-9][0-9]*)\\.blob$`);
}

/**
 * The files of checkout `id` under the store at `root`, sorted by path. Only links into the store
 * are files of a checkout (the store makes nothing else); anything else is an error, never followed.
 */
export async function checkoutFiles(root: string, id: string): Promise<CheckoutFile[]> {
  if (!isCheckoutId(id)) throw new CheckoutNotFound(id);
  const top = join(root, "checkouts", checkoutRelPath(id));
  const st = await lstat(top).catch(() => undefined);
  if (!st?.isDirectory()) throw new CheckoutNotFound(id);
  const re = blobRe(root);
  const out: CheckoutFile[] = [];
  // directories side by side, and each directory's links read at once: a checkout of 10,000
  // files is listed in a fraction of the time a one-at-a-time walk takes
  const walk = async (dir: string, rel: string): Promise<void> => {
    await Promise.all((await readdir(dir, { withFileTypes: true })).map(async (e) => {
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) return walk(join(dir, e.name), path);
      if (!e.isSymbolicLink()) throw new Error(`checkout ${id}: ${path} is not a link into the store`);
      const blob = await readlink(join(dir, e.name));
      const m = re.exec(blob);
      if (!m) throw new Error(`checkout ${id}: ${path} does not link into the store`);
      out.push({ path, sha: m[1]! + m[2]!, size: Number(m[3]), blob });
    }));
  };
  await walk(top, "");
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** a checkout's files as Checkout Definition File lines, `{sha256} {size} {path}\n` each */
export function cdfText(files: readonly Pick<CheckoutFile, "sha" | "size" | "path">[]): string {
  return files.map((f) => `${f.sha} ${f.size} ${f.path}\n`).join("");
}

/**
 * Copy checkout `id` into `dest` (an existing, empty directory): real files (0644) and directories
 * (0755), no links, so whoever reads `dest` cannot reach the store. More than `maxBytes` in total
 * → CheckoutTooLarge before anything is copied.
 */
export async function copyCheckout(root: string, id: string, dest: string, maxBytes = Number.MAX_SAFE_INTEGER): Promise<{ files: number; bytes: number }> {
  const files = await checkoutFiles(root, id);
  const bytes = files.reduce((n, f) => n + f.size, 0);
  if (bytes > maxBytes) throw new CheckoutTooLarge(`checkout ${id} holds ${bytes} bytes, more than the limit of ${maxBytes}`);
  const dirs = new Set<string>();
  for (const f of files) for (let i = f.path.indexOf("/"); i >= 0; i = f.path.indexOf("/", i + 1)) dirs.add(f.path.slice(0, i));
  // parents sort before their children
  for (const d of [...dirs].sort()) await mkdir(join(dest, d), { mode: 0o755 });
  await mapLimit(files, COPY_LANES, async (f) => {
    const to = join(dest, f.path);
    await copyFile(f.blob, to);
    await chmod(to, 0o644);
    // a blob is complete before it is visible and never rewritten; a size check costs little
    if ((await stat(to)).size !== f.size) throw new Error(`checkout ${id}: ${f.path} is not ${f.size} bytes`);
  });
  return { files: files.length, bytes };
}

/** The SHA-256 of a checkout's definition in canonical form (`cdfText` of its files sorted by path):
 *  the ETag of GET /checkout/files/{id}, so a client can ask "is it still exactly this?" cheaply. */
export function definitionSha(files: readonly { sha: string; size: number; path: string }[]): string {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return createHash("sha256").update(cdfText(sorted)).digest("hex");
}

const sumPath = (root: string, id: string) => join(root, "checkout-sums", `${id}.sha256`);

/** Keep the definition's SHA-256 beside the store once checkout `id` is in place, with the
 *  checkout directory's inode (a directory made again later does not inherit the sum). Best effort. */
export async function writeCheckoutSum(root: string, id: string, sum: string): Promise<void> {
  let tmp: string | undefined;
  try {
    const st = await lstat(join(root, "checkouts", checkoutRelPath(id)));
    await mkdir(join(root, "checkout-sums"), { recursive: true, mode: 0o755 });
    // the floor's temp name, so that a crash's leftover is one the daemon removes at start; no
    // fsync (best effort: a torn file after a crash reads as unknown)
    tmp = tempName(sumPath(root, id));
    await writeFile(tmp, `${sum} ${st.ino}\n`, { flag: "wx", mode: 0o644 });
    await rename(tmp, sumPath(root, id));
  } catch {
    // without it the checkout is listed to answer; nothing else depends on it. A temp file
    // written before the failure goes too (a full disk, something in the sum's place).
    if (tmp) await unlink(tmp).catch(() => {});
  }
}

/** The kept SHA-256 of checkout `id`'s definition; undefined when unknown (or the directory changed). */
export async function readCheckoutSum(root: string, id: string): Promise<string | undefined> {
  if (!isCheckoutId(id)) return undefined;
  const [text, st] = await Promise.all([readFile(sumPath(root, id), "utf8").catch(() => ""), lstat(join(root, "checkouts", checkoutRelPath(id))).catch(() => undefined)]);
  const m = /^([0-9a-f]{64}) (\d+)\n$/.exec(text);
  return m && st?.isDirectory() && String(st.ino) === m[2] ? m[1] : undefined;
}
