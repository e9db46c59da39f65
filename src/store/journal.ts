// Append-only journal: checksummed JSON lines, group-committed fsyncs, snapshots with generation-numbered files.
import { open, readdir, readFile, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import { join, resolve } from "node:path";
import zlib from "node:zlib";
import { log } from "../log.js";
import { fsyncDir, tempName } from "./atomic.js";
import { ensureDir } from "./dirs.js";

/*
 * On-disk format
 * --------------
 * A journal directory holds one generation G at a time:
 *   snapshot-<G>.jrn   (absent for G = 0) the state compacted into generation G, one framed line;
 *   log-<G>.jrn        the records appended after that snapshot, one framed line each.
 * <G> is 16 decimal digits. A framed line is
 *   <crc32: 8 lowercase hex> SP <seq> SP <idx> SP <JSON> LF
 * where the CRC-32 covers everything between the first space and the LF, `seq` numbers records
 * across the whole journal's life (a log continues at its snapshot's seq), and `idx` is the
 * record's position inside its write group (the records of one write + fsync), so `seq - idx` is
 * the seq the group started at. The snapshot line's seq is the seq the log after it starts at; its
 * JSON is {"gen":G,"state":<snapshot>}. JSON.stringify never emits a raw LF, so lines split cleanly.
 *
 * Which generation is current: the highest G with a snapshot file (0 when there is none). Files
 * of lower generations are leftovers of a finished compaction and are deleted at open; temp files
 * (".snapshot-*.tmp") are leftovers of an unfinished one and are deleted too.
 *
 * Compaction from G to G+1 (each step's crash outcome in brackets):
 *   1. write the snapshot to a temp file and fsync it          [G: temp is ignored]
 *   2. rename it to snapshot-<G+1>.jrn                         [G or G+1, whichever the directory shows: both whole]
 *   3. fsync the directory                                     [G+1]
 *   4. create log-<G+1>.jrn, fsync the directory               [G+1; a missing log is an empty one]
 *   5. only now append to the new log; delete log-<G> and snapshot-<G> [G+1; leftovers deleted at open]
 * The snapshot covers every record appended before compact() was called, so loading G+1 loses
 * nothing of G; records appended after the call wait for step 4 and go to the new log, so loading
 * G (before step 2 is durable) cannot miss an acknowledged one. Generations never mix: a
 * generation is read from one snapshot and its own log only.
 *
 * Damage at open
 * --------------
 * Writes go one group at a time (write, fsync, acknowledge, next group), so only the last group
 * can be torn by a crash. Reading stops at the first line that does not verify (checksum, frame,
 * the expected seq, valid JSON, a final LF); that point is the cut. The rest of the file is then
 * scanned: a verifying line whose group started after the cut point (seq - idx > seq expected at
 * the cut) proves the damage sits in a group that was already followed by another, i.e. in
 * acknowledged data, and opening fails with a JournalError (nothing acknowledged is dropped
 * silently). Otherwise the damage is the torn last group: the file is truncated at the cut, the
 * cut is logged with its offset and reason, and returned. (A bit flip inside the last group after
 * its fsync looks the same as a torn write and is cut too - logged, never silent.) A corrupt
 * snapshot, or a non-empty log of a generation without a snapshot, also fails the open.
 */

export interface JournalOptions {
  /** Largest JSON encoding of one record, in bytes; bigger appends reject. Default 16 MiB. */
  maxRecordBytes?: number;
  /** Most bytes written by one group commit (a group always takes at least one record). Default 8 MiB. */
  maxGroupBytes?: number;
  /** Most bytes of appended records waiting for their group; past it append rejects (EJOURNALFULL). Default 256 MiB. */
  maxPendingBytes?: number;
  /** Test hook, awaited after each step of a compaction (crash simulation, fault injection). */
  onCompactStep?: (step: CompactStep) => void | Promise<void>;
}

export type CompactStep =
  | "temp-created" | "temp-written" | "temp-synced" | "renamed" | "dir-synced"
  | "log-created" | "log-dir-synced" | "old-log-removed" | "old-snapshot-removed";

/** A torn or corrupt tail cut at open: the file offset it started at and why it did not verify. */
export interface JournalCut {
  file: string;
  offset: number;
  reason: string;
  bytes: number;
}

export interface OpenedJournal {
  journal: Journal;
  /** The last compacted state, undefined before the first compaction. */
  snapshot: unknown;
  /** Records appended after that snapshot, in append order. */
  records: unknown[];
  cut: JournalCut | undefined;
}

/** Counters for tests and metrics; fsyncs counts every fsync/fdatasync (log, snapshot, directory). */
export interface JournalStats {
  appends: number;
  groups: number;
  fsyncs: number;
  compactions: number;
}

export class JournalError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
    this.name = "JournalError";
  }
}

const MiB = 1024 * 1024;
const DEFAULTS = { maxRecordBytes: 16 * MiB, maxGroupBytes: 8 * MiB, maxPendingBytes: 256 * MiB };
const NAME_RE = /^(log|snapshot)-(\d{16})\.jrn$/;
const TEMP_RE = /^\.snapshot-\d{16}\.jrn\..*\.tmp$/;
/** Bytes a frame adds around the JSON: crc, three spaces, seq and idx (<= 16 digits each), LF. */
const FRAME_OVERHEAD = 8 + 3 + 16 + 16 + 1;
const READ_CHUNK = 4 * MiB;

const logName = (gen: number) => `log-${String(gen).padStart(16, "0")}.jrn`;
const snapshotName = (gen: number) => `snapshot-${String(gen).padStart(16, "0")}.jrn`;

// ---------------------------------------------------------------------------------------------
// CRC-32 (IEEE): a table loop is faster than a native call for the short lines a journal is
// mostly made of; zlib.crc32 (Node >= 20.15) takes the long ones.

const CRC_TABLE = (() => {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  return table;
})();
const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

export function crc32(buf: Uint8Array, start: number, end: number): number {
  if (nativeCrc32 !== undefined && end - start > 256) return nativeCrc32(buf.subarray(start, end));
  let c = -1;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ buf[i]!) & 255]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

const HEX_VALUE = (() => {
  const t = new Int8Array(256).fill(-1);
  for (let i = 0; i < 10; i++) t[48 + i] = i;
  for (let i = 0; i < 6; i++) t[97 + i] = 10 + i;
  return t;
})();
const HEX_DIGITS = Buffer.from("0123456789abcdef", "latin1");

// ---------------------------------------------------------------------------------------------
// Frames

/** Writes the frame of one record at `off` (the buffer has room); returns the offset after its LF. */
function writeFrame(buf: Buffer, off: number, seq: number, idx: number, json: string): number {
  const crcAt = off;
  off += 8;
  buf[off++] = 32;
  off += buf.write(`${seq} ${idx} `, off, "latin1");
  off += buf.write(json, off, "utf8");
  let crc = crc32(buf, crcAt + 9, off);
  for (let i = 7; i >= 0; i--) {
    buf[crcAt + i] = HEX_DIGITS[crc & 15]!;
    crc >>>= 4;
  }
  buf[off++] = 10;
  return off;
}

function frameBytes(seq: number, idx: number, jsonBytes: number): number {
  return 8 + 1 + String(seq).length + 1 + String(idx).length + 1 + jsonBytes + 1;
}

// The last verified frame's fields (module scratch, so the hot loop allocates nothing per line).
let frameSeq = 0;
let frameIdx = 0;
let frameValue: unknown;

/** Reads a decimal field ending in a space at `p`; returns the offset after the space, or -1. */
function readNumber(buf: Buffer, p: number, end: number, into: "seq" | "idx"): number {
  const first = p;
  let n = 0;
  while (p < end) {
    const d = buf[p]! - 48;
    if (d < 0 || d > 9) break;
    n = n * 10 + d;
    p++;
  }
  const digits = p - first;
  if (digits === 0 || digits > 15 || (digits > 1 && buf[first] === 48) || p >= end || buf[p] !== 32) return -1;
  if (into === "seq") frameSeq = n;
  else frameIdx = n;
  return p + 1;
}

/** Verifies the frame in buf[start, end) (end = its LF); returns undefined or why it is not valid. */
function verifyFrame(buf: Buffer, start: number, end: number): string | undefined {
  if (end - start < 14) return "malformed frame"; // "crc32hex 0 0 0"
  let crc = 0;
  for (let i = 0; i < 8; i++) {
    const h = HEX_VALUE[buf[start + i]!]!;
    if (h < 0) return "malformed frame";
    crc = crc * 16 + h;
  }
  if (buf[start + 8] !== 32) return "malformed frame";
  let p = readNumber(buf, start + 9, end, "seq");
  if (p >= 0) p = readNumber(buf, p, end, "idx");
  if (p < 0 || p >= end) return "malformed frame";
  if (crc32(buf, start + 9, end) !== crc) return "checksum mismatch";
  try {
    frameValue = JSON.parse(buf.toString("utf8", p, end));
  } catch {
    return "invalid JSON";
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Reading a log

interface Scan {
  records: unknown[];
  /** Offset just past the last record loaded. */
  validEnd: number;
  nextSeq: number;
  cut: { offset: number; reason: string } | undefined;
  size: number;
}

/** Streams a log in big chunks, verifying and parsing each line; see "Damage at open" above. */
async function scanLog(fh: FileHandle, path: string, firstSeq: number, maxLineBytes: number): Promise<Scan> {
  const records: unknown[] = [];
  let expected = firstSeq;
  let validEnd = 0;
  let cut: { offset: number; reason: string; seq: number } | undefined;
  // A line that verifies after the cut; it refuses the open when its group began after the cut.
  const afterCut = (offset: number, reason: string | undefined) => {
    if (reason === undefined && frameSeq - frameIdx > cut!.seq) {
      throw new JournalError(
        `journal ${path}: corrupt record at offset ${cut!.offset} (${cut!.reason}) is followed by a record written ` +
          `after it was acknowledged (seq ${frameSeq} at offset ${offset}); refusing to open rather than drop acknowledged records`,
        "EJOURNALCORRUPT",
      );
    }
  };
  // Big chunks for big logs; a small log gets a buffer its size (+1, so reading it all is not "full").
  let buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, (await fh.stat()).size + 1));
  let len = 0; // bytes held in buf
  let bufOffset = 0; // file offset of buf[0]
  let skipping = false; // discarding an over-long line up to its LF
  for (;;) {
    const { bytesRead } = await fh.read(buf, len, buf.length - len, null);
    len += bytesRead;
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(10, start);
      if (nl === -1 || nl >= len) break;
      if (skipping) {
        skipping = false;
      } else if (cut === undefined) {
        const reason = verifyFrame(buf, start, nl);
        if (reason === undefined && frameSeq === expected) {
          records.push(frameValue);
          expected++;
          validEnd = bufOffset + nl + 1;
        } else {
          cut = { offset: bufOffset + start, reason: reason ?? `seq ${frameSeq} where ${expected} was expected`, seq: expected };
          afterCut(bufOffset + start, reason); // a whole line out of place may itself prove a later group
        }
      } else {
        afterCut(bufOffset + start, verifyFrame(buf, start, nl));
      }
      start = nl + 1;
    }
    if (bytesRead === 0) {
      // End of file: what is left has no LF - a torn last line.
      if (len > start && !skipping && cut === undefined) {
        cut = { offset: bufOffset + start, reason: "no newline at end of file", seq: expected };
      }
      break;
    }
    buf.copyWithin(0, start, len);
    bufOffset += start;
    len -= start;
    if (len === buf.length) {
      // A line fills the whole buffer: grow up to the longest valid line, then give up on it.
      if (buf.length < maxLineBytes) {
        const bigger = Buffer.allocUnsafe(Math.min(maxLineBytes, buf.length * 2));
        buf.copy(bigger, 0, 0, len);
        buf = bigger;
      } else {
        if (!skipping && cut === undefined) {
          cut = { offset: bufOffset, reason: `line longer than ${maxLineBytes} bytes`, seq: expected };
        }
        skipping = true;
        bufOffset += len;
        len = 0;
      }
    }
  }
  const size = bufOffset + len;
  return { records, validEnd, nextSeq: expected, cut: cut && { offset: cut.offset, reason: cut.reason }, size };
}

async function readSnapshot(path: string, gen: number): Promise<{ state: unknown; nextSeq: number }> {
  const buf = await readFile(path);
  const nl = buf.indexOf(10);
  const reason = nl !== buf.length - 1 ? "not one line" : verifyFrame(buf, 0, nl);
  const wrapped = frameValue as { gen?: unknown; state?: unknown } | null;
  if (reason !== undefined || frameIdx !== 0 || typeof wrapped !== "object" || wrapped === null || wrapped.gen !== gen) {
    throw new JournalError(`journal snapshot ${path} is corrupt (${reason ?? "wrong content"}); refusing to open`, "EJOURNALCORRUPT");
  }
  return { state: wrapped.state, nextSeq: frameSeq };
}

// ---------------------------------------------------------------------------------------------
// Opening

const openDirs = new Set<string>();

async function sizeOf(path: string): Promise<number> {
  return (await stat(path)).size;
}

/**
 * Opens (creating if needed) the journal in `dir`: loads the current snapshot and the records
 * after it, cuts a torn tail (logged, returned as `cut`), refuses damage in acknowledged data.
 * One Journal per directory: a second open in this process fails until the first is closed.
 */
export async function openJournal(dir: string, options: JournalOptions = {}): Promise<OpenedJournal> {
  const key = resolve(dir);
  if (openDirs.has(key)) throw new JournalError(`journal ${dir} is already open in this process`, "EJOURNALOPEN");
  openDirs.add(key);
  try {
    return await load(key, { ...DEFAULTS, ...options });
  } catch (err) {
    openDirs.delete(key);
    throw err;
  }
}

type Settings = Required<Omit<JournalOptions, "onCompactStep">> & Pick<JournalOptions, "onCompactStep">;

async function load(dir: string, settings: Settings): Promise<OpenedJournal> {
  const names = await readdir(dir).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== "ENOENT") throw err;
    await ensureDir(dir, 0o700);
    return [];
  });
  const snapshots: number[] = [];
  const logs: number[] = [];
  const temps: string[] = [];
  for (const name of names) {
    const m = NAME_RE.exec(name);
    if (m) (m[1] === "log" ? logs : snapshots).push(Number(m[2]));
    else if (TEMP_RE.test(name)) temps.push(name);
  }
  const gen = snapshots.length > 0 ? Math.max(...snapshots) : 0;
  let snapshot: unknown;
  let firstSeq = 0;
  if (gen > 0) ({ state: snapshot, nextSeq: firstSeq } = await readSnapshot(join(dir, snapshotName(gen)), gen));
  const stale: string[] = temps.slice();
  for (const g of logs) {
    if (g < gen) stale.push(logName(g));
    else if (g > gen) {
      if ((await sizeOf(join(dir, logName(g)))) > 0) {
        throw new JournalError(`journal ${dir}: ${logName(g)} has records but no ${snapshotName(g)}; refusing to open`, "EJOURNALCORRUPT");
      }
      stale.push(logName(g));
    }
  }
  for (const g of snapshots) if (g < gen) stale.push(snapshotName(g));

  const logPath = join(dir, logName(gen));
  const hasLog = logs.includes(gen);
  const maxLineBytes = settings.maxRecordBytes + FRAME_OVERHEAD;
  let scan: Scan | undefined;
  let cut: JournalCut | undefined;
  let fh: FileHandle;
  if (hasLog) {
    fh = await open(logPath, "r+");
    try {
      scan = await scanLog(fh, logPath, firstSeq, maxLineBytes);
    } catch (err) {
      await fh.close();
      throw err;
    }
    if (scan.cut) {
      cut = { file: logPath, offset: scan.cut.offset, reason: scan.cut.reason, bytes: scan.size - scan.cut.offset };
      log.warn("journal: cut a torn or corrupt tail", { file: logPath, offset: cut.offset, reason: cut.reason, bytes: cut.bytes });
      await fh.truncate(scan.validEnd);
      await fh.datasync();
    }
  } else {
    fh = await open(logPath, "wx", 0o600);
    await fsyncDir(dir);
  }
  for (const name of stale) await unlink(join(dir, name)).catch(() => {});
  const records = scan ? scan.records : [];
  const nextSeq = scan ? scan.nextSeq : firstSeq;
  const journal = new Journal(dir, settings, fh, gen, scan ? scan.validEnd : 0, firstSeq, nextSeq);
  return { journal, snapshot, records, cut };
}

// ---------------------------------------------------------------------------------------------
// Writing

interface PendingAppend {
  kind: "append";
  seq: number;
  json: string;
  bytes: number;
  resolve: () => void;
  reject: (err: Error) => void;
}
interface PendingCompaction {
  kind: "compact";
  json: string;
  nextSeq: number;
  previousBase: number;
  resolve: () => void;
  reject: (err: Error) => void;
}
interface PendingClose {
  kind: "close";
  resolve: () => void;
  reject: (err: Error) => void;
}
type Operation = PendingAppend | PendingCompaction | PendingClose;

function serialize(value: unknown, what: string): string {
  const json = JSON.stringify(value);
  if (typeof json !== "string") throw new TypeError(`journal: the ${what} is not JSON-serialisable`);
  return json;
}

async function writeAll(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}

/**
 * The writer. Operations run one at a time in call order; appends that queue up while a group
 * is being written and fsynced become the next group (one write syscall, one fdatasync).
 */
export class Journal {
  readonly stats: JournalStats = { appends: 0, groups: 0, fsyncs: 0, compactions: 0 };
  private queue: Operation[] = [];
  private head = 0;
  private running = false;
  private closing = false;
  private failed: Error | undefined;
  private waiting = 0;
  private queuedBytes = 0;

  /** Built by openJournal. */
  constructor(
    readonly dir: string,
    private readonly settings: Settings,
    private fh: FileHandle,
    private gen: number,
    private position: number,
    private baseSeq: number,
    private nextSeq: number,
  ) {}

  /** Appends not yet acknowledged. */
  get pending(): number {
    return this.waiting;
  }

  /** Records appended since the last compact() call (or in the log at open). */
  get recordsSinceSnapshot(): number {
    return this.nextSeq - this.baseSeq;
  }

  /** The current generation (the snapshot file number). */
  get generation(): number {
    return this.gen;
  }

  /** Resolves once the record is durable (written and fsynced, possibly with others). */
  append(record: unknown): Promise<void> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    let json: string;
    try {
      json = serialize(record, "record");
    } catch (err) {
      return Promise.reject(err);
    }
    const bytes = Buffer.byteLength(json);
    if (bytes > this.settings.maxRecordBytes) {
      return Promise.reject(new JournalError(`journal: record of ${bytes} bytes exceeds maxRecordBytes ${this.settings.maxRecordBytes}`, "EJOURNALRECORDSIZE"));
    }
    if (this.queuedBytes + bytes > this.settings.maxPendingBytes) {
      return Promise.reject(new JournalError(`journal: more than ${this.settings.maxPendingBytes} bytes waiting to be written`, "EJOURNALFULL"));
    }
    return new Promise<void>((resolve, reject) => {
      this.queuedBytes += bytes;
      this.waiting++;
      this.enqueue({ kind: "append", seq: this.nextSeq++, json, bytes, resolve, reject });
    });
  }

  /**
   * Atomically replaces the snapshot with `snapshot` - which must cover every record appended
   * before this call - and starts a fresh log. Resolves once the new generation is durable.
   */
  compact(snapshot: unknown): Promise<void> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    let json: string;
    try {
      json = serialize(snapshot, "snapshot");
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<void>((resolve, reject) => {
      const previousBase = this.baseSeq;
      this.baseSeq = this.nextSeq;
      this.enqueue({ kind: "compact", json, nextSeq: this.nextSeq, previousBase, resolve, reject });
    });
  }

  /** Waits for queued operations, then closes the file. Later appends reject. */
  close(): Promise<void> {
    if (this.closing) return Promise.reject(new JournalError("journal: already closed", "EJOURNALCLOSED"));
    this.closing = true;
    return new Promise<void>((resolve, reject) => this.enqueue({ kind: "close", resolve, reject }));
  }

  private refusal(): Error | undefined {
    if (this.closing) return new JournalError("journal: closed", "EJOURNALCLOSED");
    return this.failed;
  }

  private enqueue(op: Operation): void {
    this.queue.push(op);
    if (this.running) return;
    this.running = true;
    // Start on the next microtask so appends made in the same tick share the first group.
    queueMicrotask(() => void this.run());
  }

  private async run(): Promise<void> {
    try {
      while (this.head < this.queue.length) {
        const op = this.queue[this.head]!;
        if (op.kind === "append") await this.writeGroup(this.takeGroup());
        else {
          this.head++;
          if (op.kind === "compact") await this.runCompaction(op);
          else await this.runClose(op);
        }
        if (this.head === this.queue.length) {
          this.queue = [];
          this.head = 0;
        }
      }
    } catch (err) {
      // Not expected (each step settles its own errors); fail rather than leave promises hanging.
      this.failed = new JournalError(`journal: internal error, journal stopped: ${(err as Error).message}`, "EJOURNALFAILED");
      const rest = this.queue.slice(this.head);
      this.queue = [];
      this.head = 0;
      for (const op of rest) {
        if (op.kind === "append") {
          this.queuedBytes -= op.bytes;
          this.settle([op], this.failed);
        }
        else op.reject(this.failed);
      }
    } finally {
      this.running = false;
    }
  }

  /** The appends at the head of the queue, up to maxGroupBytes (at least one). */
  private takeGroup(): PendingAppend[] {
    const group: PendingAppend[] = [];
    let bytes = 0;
    while (this.head < this.queue.length) {
      const op = this.queue[this.head]!;
      if (op.kind !== "append" || (group.length > 0 && bytes + op.bytes > this.settings.maxGroupBytes)) break;
      group.push(op);
      bytes += op.bytes;
      this.head++;
    }
    return group;
  }

  private async writeGroup(group: PendingAppend[]): Promise<void> {
    for (const op of group) this.queuedBytes -= op.bytes;
    if (this.failed) return this.settle(group, this.failed);
    let total = 0;
    for (let i = 0; i < group.length; i++) total += frameBytes(group[i]!.seq, i, group[i]!.bytes);
    const buf = Buffer.allocUnsafe(total);
    let off = 0;
    for (let i = 0; i < group.length; i++) off = writeFrame(buf, off, group[i]!.seq, i, group[i]!.json);
    try {
      await writeAll(this.fh, buf, this.position);
      await this.fh.datasync();
    } catch (err) {
      // After a failed write or fsync the file's state is unknown (and a retried fsync can
      // report success for lost pages): stop here; reopening reads what actually persisted.
      this.failed = new JournalError(`journal: write failed, journal stopped: ${(err as Error).message}`, "EJOURNALFAILED");
      return this.settle(group, this.failed);
    }
    this.position += total;
    this.stats.groups++;
    this.stats.fsyncs++;
    this.stats.appends += group.length;
    this.settle(group, undefined);
  }

  private settle(group: PendingAppend[], err: Error | undefined): void {
    this.waiting -= group.length;
    for (const op of group) {
      if (err) op.reject(err);
      else op.resolve();
    }
  }

  private async step(name: CompactStep): Promise<void> {
    if (this.settings.onCompactStep) await this.settings.onCompactStep(name);
  }

  private async runCompaction(op: PendingCompaction): Promise<void> {
    if (this.failed) return op.reject(this.failed);
    const oldGen = this.gen;
    const newGen = oldGen + 1;
    const snapshotPath = join(this.dir, snapshotName(newGen));
    const tmp = tempName(snapshotPath);
    const payload = `{"gen":${newGen},"state":${op.json}}`;
    const buf = Buffer.allocUnsafe(frameBytes(op.nextSeq, 0, Buffer.byteLength(payload)));
    writeFrame(buf, 0, op.nextSeq, 0, payload);
    let renamed = false;
    try {
      const tmpHandle = await open(tmp, "wx", 0o600);
      try {
        await this.step("temp-created");
        await writeAll(tmpHandle, buf, 0);
        await this.step("temp-written");
        await tmpHandle.sync();
        this.stats.fsyncs++;
        await this.step("temp-synced");
      } finally {
        await tmpHandle.close();
      }
      await rename(tmp, snapshotPath);
      renamed = true;
      await this.step("renamed");
      await fsyncDir(this.dir);
      this.stats.fsyncs++;
      await this.step("dir-synced");
      const newLog = await open(join(this.dir, logName(newGen)), "wx", 0o600);
      const oldLog = this.fh;
      this.fh = newLog;
      this.gen = newGen;
      this.position = 0;
      await oldLog.close();
      await this.step("log-created");
      await fsyncDir(this.dir);
      this.stats.fsyncs++;
      await this.step("log-dir-synced");
    } catch (err) {
      if (!renamed) {
        // Nothing changed on disk that open would read: keep writing the old generation.
        await unlink(tmp).catch(() => {});
        if (this.baseSeq === op.nextSeq) this.baseSeq = op.previousBase;
        return op.reject(err as Error);
      }
      this.failed = new JournalError(`journal: compaction failed after its snapshot was renamed, journal stopped: ${(err as Error).message}`, "EJOURNALFAILED");
      return op.reject(this.failed);
    }
    this.stats.compactions++;
    // The new generation is durable. Leftovers of older ones are ignored and deleted at open, so
    // a failure from here on is reported but leaves the journal writing.
    try {
      await unlink(join(this.dir, logName(oldGen))).catch(() => {});
      await this.step("old-log-removed");
      if (oldGen > 0) await unlink(join(this.dir, snapshotName(oldGen))).catch(() => {});
      await this.step("old-snapshot-removed");
    } catch (err) {
      return op.reject(err as Error);
    }
    op.resolve();
  }

  private async runClose(op: PendingClose): Promise<void> {
    // Anything queued behind a close was refused at the call, so the queue is empty here.
    try {
      await this.fh.close();
      op.resolve();
    } catch (err) {
      op.reject(err as Error);
    } finally {
      openDirs.delete(this.dir);
    }
  }
}
