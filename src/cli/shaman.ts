// `stevedore shaman ...`: push a local tree into the manager's Shaman store as a checkout (upload
// only what is missing), and the store's status and GC.
import { createHash } from "node:crypto";
import { closeSync, createReadStream, openSync, readdirSync, readSync, statSync } from "node:fs";
import { stat } from "node:fs/promises";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { mapLimit } from "../base/index.js";
import { checkoutRelPath, isCheckoutId, pathProblem } from "../store/index.js";
import { VERSION } from "../version.js";
import { CommandError, UsageError, describeError, parse, unreachable, type Command } from "./command.js";
import { MANAGER_OPTIONS, MANAGER_OPTIONS_HELP, printJson } from "./jobs.js";
import { callOk, managerTarget, replyError, type ManagerTarget, type Reply } from "./manager-client.js";
import { loadCliConfig } from "./query-common.js";

const MAX_FILES = 1_000_000;
/** a socket silent this long (no answer, no progress of the upload) fails the call */
const IDLE_MS = 60_000;
const MAX_TEXT_ANSWER = 64 * 1024 * 1024;
/** rounds of "ask requirements, upload what is missing" before giving up on other clients */
const MAX_ROUNDS = 60;
const PROGRESS_EVERY_MS = 100;
/** files hashed at once (reads overlap; the hashing itself is quick for small files) */
const HASH_LANES = 16;

const USAGE = `usage: stevedore shaman push DIR --checkout ID [--jobs N] [--json]
       stevedore shaman status [--json]
       stevedore shaman gc [--dry-run] [--json]
   (each also takes [--manager URL] [--config FILE])

The manager's Shaman file store (see stevedore(8), SHAMAN).
  push DIR          hash every file under DIR, ask the manager which ones it
                    lacks (POST /checkout/requirements), upload only those
                    (in parallel; a file another client is uploading is left
                    to it and asked about again), then create the checkout
                    (POST /checkout/create/ID) and print where it is, relative
                    to <state_dir>/shaman/checkouts. A second push of the same
                    tree uploads nothing; pushed again to the same ID it
                    finds the checkout there with the same files (GET
                    /checkout/files/ID) and neither uploads nor creates
                    anything (other files under an existing ID: exit 1).
                    On a terminal one progress line shows
                    files and bytes. Symbolic links to files are followed,
                    other links and special files skipped.
  --checkout ID     (push) the checkout's ID: 2-64 of A-Z a-z 0-9 _
  --jobs N          (push) uploads in parallel (default 4, at most 32)
  status            blobs and bytes stored, checkouts, uploads in flight, the
                    last GC
  gc                collect garbage now: delete blobs older than
                    shaman_gc_max_age_secs that no checkout links to
  --dry-run         (gc) only print what would be freed
  --json            print the manager's JSON (push: a summary)
${MANAGER_OPTIONS_HELP}`;

export const shamanCommand: Command = {
  name: "shaman",
  summary: "push a directory as a Shaman checkout; store status and GC (manager)",
  usage: USAGE,
  async run(args) {
    const { values, positionals } = parse(args, {
      ...MANAGER_OPTIONS,
      json: { type: "boolean" },
      "dry-run": { type: "boolean" },
      checkout: { type: "string" },
      jobs: { type: "string" },
    });
    const [action, arg, ...extra] = positionals;
    if (action === undefined) throw new UsageError("shaman needs an action: push, status or gc");
    if (!["push", "status", "gc"].includes(action)) throw new UsageError(`unknown shaman action: ${action}`);
    if (extra.length || (action !== "push" && arg !== undefined)) throw new UsageError("too many arguments");
    if (values["dry-run"] !== undefined && action !== "gc") throw new UsageError("--dry-run applies to shaman gc only");
    if ((values.checkout !== undefined || values.jobs !== undefined) && action !== "push") throw new UsageError("--checkout and --jobs apply to shaman push only");
    const json = values.json === true;
    if (action === "push") {
      if (arg === undefined) throw new UsageError("shaman push needs a directory");
      if (values.checkout === undefined) throw new UsageError("shaman push needs --checkout ID");
      if (!isCheckoutId(values.checkout)) throw new UsageError(`invalid checkout ID ${JSON.stringify(values.checkout)}: 2-64 of A-Z a-z 0-9 _`);
      const jobs = values.jobs === undefined ? 4 : Number(values.jobs);
      if (!Number.isInteger(jobs) || jobs < 1 || jobs > 32) throw new UsageError("--jobs must be 1-32");
      const target = managerTarget(values.manager, loadCliConfig(values.config), process.env, values.cacert);
      return push(target, arg, values.checkout, jobs, json);
    }
    const target = managerTarget(values.manager, loadCliConfig(values.config), process.env, values.cacert);
    if (action === "status") return status(target, json);
    return gc(target, values["dry-run"] === true, json);
  },
};

// ---- status and gc

export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

interface GcJson {
  dry_run: boolean;
  scanned: number;
  linked: number;
  kept_recent: number;
  freed_blobs: number;
  freed_bytes: number;
  sample: string[];
  ms: number;
  finished?: string;
}

async function status(target: ManagerTarget, json: boolean): Promise<number> {
  const s = (await callOk(target, "GET", "/shaman/status")).body as { blobs: number; bytes: number; checkouts: number; uploads_in_flight: number; last_gc?: GcJson };
  if (json) return printJson(s), 0;
  const last = s.last_gc ? `${s.last_gc.finished}: freed ${s.last_gc.freed_blobs} blobs, ${formatBytes(s.last_gc.freed_bytes)}` : "none since the daemon started";
  process.stdout.write(
    `blobs:             ${s.blobs} (${formatBytes(s.bytes)})\ncheckouts:         ${s.checkouts}\nuploads in flight: ${s.uploads_in_flight}\nlast GC:           ${last}\n`,
  );
  return 0;
}

async function gc(target: ManagerTarget, dryRun: boolean, json: boolean): Promise<number> {
  const r = (await callOk(target, "POST", "/shaman/gc", { dry_run: dryRun })).body as GcJson;
  if (json) return printJson(r), 0;
  const what = `${r.freed_blobs} blobs, ${formatBytes(r.freed_bytes)}`;
  process.stdout.write(`${dryRun ? `would free ${what}` : `freed ${what}`} (scanned ${r.scanned}, linked by checkouts ${r.linked}, recent ${r.kept_recent}; ${r.ms} ms)\n`);
  if (dryRun) for (const s of r.sample) process.stdout.write(`  ${s}\n`);
  return 0;
}

// ---- push

interface LocalFile {
  path: string;
  abs: string;
  size: number;
  sha: string;
}

/** a symbolic link to a regular file (a dangling or looping link is skipped like other links) */
function linkedFile(abs: string): boolean {
  try {
    return statSync(abs).isFile();
  } catch {
    return false;
  }
}

/** Every regular file under `root` (links to files followed), relative paths with "/". */
async function listFiles(root: string): Promise<{ path: string; abs: string }[]> {
  const rootStat = await stat(root).catch((err: Error) => {
    throw new CommandError(`cannot read ${root}: ${describeError(err)}`);
  });
  if (!rootStat.isDirectory()) throw new CommandError(`${root} is not a directory`);
  const out: { path: string; abs: string }[] = [];
  // synchronous: nothing else runs meanwhile, and it is several times faster for large trees
  const walk = (dir: string, rel: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const abs = join(dir, e.name);
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        walk(abs, path);
        continue;
      }
      let isFile = e.isFile();
      if (e.isSymbolicLink()) isFile = linkedFile(abs);
      if (!isFile) continue;
      const problem = pathProblem(path);
      if (problem) throw new CommandError(`${path}: cannot be sent to Shaman: ${problem}`);
      if (out.push({ path, abs }) > MAX_FILES) throw new CommandError(`more than ${MAX_FILES} files under ${root}`);
    }
  };
  try {
    walk(root, "");
  } catch (err) {
    if (err instanceof CommandError) throw err;
    throw new CommandError(`cannot read ${root}: ${(err as Error).message}`);
  }
  out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return out;
}

/** files smaller than this are read in one call and hashed at once (most of a tree's files: no stream set-up) */
const wholeRead = Buffer.allocUnsafe(1024 * 1024);

/** Small files are read and hashed synchronously: a CLI has nothing else to do meanwhile, and
 *  10,000 small files go about five times faster than through the thread pool. */
async function hashFile(abs: string): Promise<{ sha: string; size: number }> {
  const fd = openSync(abs, "r");
  try {
    // one read into a reused buffer (no await in between, so the lanes never share it); a read
    // short of the buffer is the whole file
    const n = readSync(fd, wholeRead, 0, wholeRead.length, 0);
    if (n < wholeRead.length) return { sha: createHash("sha256").update(wholeRead.subarray(0, n)).digest("hex"), size: n };
  } finally {
    closeSync(fd);
  }
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of createReadStream(abs, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha: hash.digest("hex"), size };
}

/** One progress line on a terminal (stderr), rewritten in place; nothing otherwise. */
class Progress {
  private last = 0;
  private shown = false;
  constructor(private readonly tty = process.stderr.isTTY === true) {}
  update(text: () => string, force = false): void {
    if (!this.tty) return;
    const now = performance.now();
    if (!force && now - this.last < PROGRESS_EVERY_MS) return;
    this.last = now;
    this.shown = true;
    process.stderr.write(`\r\x1b[K${text()}`);
  }
  done(): void {
    if (this.shown) process.stderr.write("\r\x1b[K");
  }
}

/** A request whose answer may take long to come (uploads): time-out on silence, not in total. */
function rawCall(target: ManagerTarget, method: string, path: string, headers: Record<string, string | number>, write: (req: ReturnType<typeof httpRequest>) => void): Promise<Reply> {
  const url = new URL(target.url + path);
  return new Promise((resolve, reject) => {
    const req = (url.protocol === "https:" ? httpsRequest : httpRequest)(url, { method, headers: { "User-Agent": `stevedore/${VERSION}`, ...headers }, timeout: IDLE_MS, ...(target.ca ? { ca: target.ca } : {}) });
    req.on("timeout", () => req.destroy(new Error(`the manager was silent for ${IDLE_MS / 1000} s`)));
    req.on("error", (err: NodeJS.ErrnoException) => reject(new CommandError(unreachable("the manager", target.url, err, "--manager URL"))));
    req.on("response", (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (c: Buffer) => {
        size += c.length;
        if (size > MAX_TEXT_ANSWER) res.destroy(new Error("answer too large"));
        else chunks.push(c);
      });
      res.on("error", (err) => reject(new CommandError(`the manager's answer broke off: ${err.message}`)));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let body: unknown;
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, text, body });
      });
    });
    write(req);
  });
}

async function textCall(target: ManagerTarget, path: string, text: string): Promise<Reply> {
  const payload = Buffer.from(text);
  const headers = { Authorization: await target.authorization(), "Content-Type": "text/plain", "Content-Length": payload.length };
  return rawCall(target, "POST", path, headers, (req) => req.end(payload));
}

/** lines of a requirements answer: status and path */
function parseRequirements(text: string): { status: string; path: string }[] {
  return text.split("\n").filter((l) => l !== "").map((l) => {
    const sp = l.indexOf(" ");
    return { status: l.slice(0, sp), path: l.slice(sp + 1) };
  });
}

async function push(target: ManagerTarget, dir: string, checkout: string, jobs: number, json: boolean): Promise<number> {
  const progress = new Progress();
  const listed = await listFiles(dir);
  if (listed.length === 0) throw new CommandError(`no files under ${dir}`);
  let hashed = 0;
  let hashedBytes = 0;
  const files: LocalFile[] = await mapLimit(listed, HASH_LANES, async (f) => {
    const h = await hashFile(f.abs).catch((err: Error) => {
      throw new CommandError(`cannot read ${f.abs}: ${describeError(err)}`);
    });
    hashed++;
    hashedBytes += h.size;
    progress.update(() => `hashing: ${hashed}/${listed.length} files, ${formatBytes(hashedBytes)}`);
    return { ...f, ...h };
  });
  const byPath = new Map(files.map((f) => [f.path, f]));
  const cdf = files.map((f) => `${f.sha} ${f.size} ${f.path}`).join("\n");
  const totalBytes = files.reduce((n, f) => n + f.size, 0);
  const summary = (location: string, uploadedFiles: number, uploadedBytes: number, unchanged: boolean) => {
    if (json) {
      printJson({ checkout, path: location, files: files.length, bytes: totalBytes, uploaded_files: uploadedFiles, uploaded_bytes: uploadedBytes, unchanged });
    } else {
      const what = unchanged ? "unchanged, it exists with these files" : `uploaded ${uploadedFiles} files, ${formatBytes(uploadedBytes)}`;
      process.stdout.write(`checkout ${checkout}: ${location} (${files.length} files, ${formatBytes(totalBytes)}; ${what})\n`);
    }
    return 0;
  };
  // the checkout exists with exactly these files (a push run again): nothing to upload or create;
  // its blobs are linked, so the GC keeps them without a touch
  const existing = await sameCheckout(target, checkout, cdf);
  if (existing) return summary(existing, 0, 0, true);
  let uploadedFiles = 0;
  let uploadedBytes = 0;
  let sentBytes = 0;
  let toSend = 0;
  let toSendBytes = 0;
  const show = (force = false) =>
    progress.update(() => `uploading: ${uploadedFiles}/${toSend} files, ${formatBytes(sentBytes)}/${formatBytes(toSendBytes)}`, force);
  for (let round = 0; ; round++) {
    const r = await textCall(target, "/checkout/requirements", cdf);
    if (r.status !== 200) throw new CommandError(`requirements: ${replyErrorText(r)}`);
    const needed = parseRequirements(r.text);
    if (needed.length === 0) break;
    if (round >= MAX_ROUNDS) throw new CommandError(`files still missing after ${MAX_ROUNDS} rounds (other clients' uploads did not finish): ${needed.slice(0, 3).map((n) => n.path).join(", ")}`);
    const unknown = needed.filter((n) => n.status === "file-unknown").map((n) => byPath.get(n.path));
    if (unknown.some((f) => f === undefined)) throw new CommandError("the manager named a file that is not in the checkout definition");
    const mine = unknown as LocalFile[];
    toSend += mine.length;
    toSendBytes += mine.reduce((n, f) => n + f.size, 0);
    show(true);
    await mapLimit(mine, jobs, async (f) => {
      const status = await uploadFile(target, f, (n) => {
        sentBytes += n;
        show();
      });
      if (status === 204) {
        uploadedFiles++;
        uploadedBytes += f.size;
      } else toSend--; // someone else has it (or is uploading it): asked about again below
      show();
    });
    // files others are uploading: give them a moment before asking again
    if (mine.length === 0 || needed.some((n) => n.status === "already-uploading")) await new Promise((res) => setTimeout(res, Math.min(2000, 100 * 2 ** Math.min(round, 5))));
  }
  progress.done();
  const created = await textCall(target, `/checkout/create/${checkout}`, cdf);
  if (created.status === 409) {
    // made meanwhile by another push of the same tree?
    const same = await sameCheckout(target, checkout, cdf);
    if (same) return summary(same, uploadedFiles, uploadedBytes, true);
    throw new CommandError(`checkout ${checkout} already exists`);
  }
  if (created.status !== 200) throw new CommandError(`create: ${replyErrorText(created)}`);
  return summary(created.text.trim(), uploadedFiles, uploadedBytes, false);
}

/** The checkout's location when it exists with exactly the files of `cdf` (GET /checkout/files/ID);
 *  undefined when it does not exist; a CommandError when it exists with other files (checkout IDs
 *  are never reused for other contents: the create would be 409). */
async function sameCheckout(target: ManagerTarget, checkout: string, cdf: string): Promise<string | undefined> {
  // the ETag is the SHA-256 of the sorted definition (ours is sorted by path): 304 = the same files
  const etag = `"${createHash("sha256").update(cdf + "\n").digest("hex")}"`;
  const headers = { Authorization: await target.authorization(), Accept: "text/plain", "If-None-Match": etag };
  const r = await rawCall(target, "GET", `/checkout/files/${checkout}`, headers, (req) => req.end());
  if (r.status === 404) return undefined;
  if (r.status === 304) return checkoutRelPath(checkout);
  if (r.status !== 200) throw new CommandError(`checkout ${checkout}: ${replyErrorText(r)}`);
  if (r.text !== cdf + "\n") throw new CommandError(`checkout ${checkout} already exists with other files (checkout IDs are not reused; choose another)`);
  return checkoutRelPath(checkout);
}

/** the text endpoints answer `ERROR ...` lines; the others JSON */
function replyErrorText(r: Reply): string {
  if (r.body !== undefined || r.status === 401 || r.status === 498) return replyError(r);
  const lines = r.text.trim().split("\n");
  const shown = lines.slice(0, 5).join("; ") + (lines.length > 5 ? `; ... (${lines.length - 5} more)` : "");
  return `${shown || `HTTP ${r.status}`} (HTTP ${r.status})`;
}

/** Upload one file (deferring to another client's upload): 204 stored by us, 208 someone else's. */
async function uploadFile(target: ManagerTarget, f: LocalFile, sent: (bytes: number) => void): Promise<number> {
  const headers = {
    Authorization: await target.authorization(),
    "Content-Type": "application/octet-stream",
    "Content-Length": f.size,
    "X-Shaman-Can-Defer-Upload": "true",
    // the bytes of the UTF-8 name, as Shaman clients send them
    "X-Shaman-Original-Filename": Buffer.from(f.path, "utf8").toString("latin1"),
  };
  const r = await rawCall(target, "POST", `/files/${f.sha}/${f.size}`, headers, (req) => {
    const src = createReadStream(f.abs, { highWaterMark: 256 * 1024 });
    src.on("data", (c) => sent((c as Buffer).length));
    src.on("error", (err) => req.destroy(err));
    src.pipe(req);
    // an early answer (208) ends the request: stop reading the file
    req.on("response", () => src.destroy());
  });
  if (r.status === 204 || r.status === 208) return r.status;
  if (r.status === 417) throw new CommandError(`${f.path}: the manager refused the upload (${replyError(r)}); did the file change while pushing?`);
  throw new CommandError(`${f.path}: ${replyError(r)}`);
}
