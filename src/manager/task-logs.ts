// Task log files under <state_dir>/task-logs/: durable serialized appends (grouped fsyncs), rotation per activation, reads and tails.
import { open, rename, stat, type FileHandle } from "node:fs/promises";
import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import { dirname, join } from "node:path";
import { ensureDir, fsyncDir } from "../store/index.js";
import { KeyedLock } from "../base/index.js";

/** Job and task ids: 24 lowercase hex characters (the same rule as OBJECT_ID_RE in ./ids.ts). Checked before any path is built. */
const TASK_LOG_ID = /^[0-9a-f]{24}$/;

export interface TaskLogsOptions {
  /** largest single append in bytes (default 1 MiB); larger ones are refused with 413 */
  maxAppendBytes?: number;
  /** rotated files kept per task: .1 (newest) .. .N (default 10) */
  keepRotated?: number;
  /** log files held open at once (default 64) */
  maxOpenFiles?: number;
  /** an unused open file is closed after this long (default 30 s) */
  idleCloseMs?: number;
  /** largest log read() returns in one Buffer (default 64 MiB); use stream() or readRange() past that */
  maxReadBytes?: number;
}

/** A bad id (→ 404) or an oversized append or read (→ 413). */
export class TaskLogError extends Error {
  constructor(readonly status: 404 | 413, message: string) {
    super(message);
  }
}

/** Appends that share one write and one fsync. */
interface Batch {
  chunks: Buffer[];
  bytes: number;
  done: Promise<void>;
  settle(err?: unknown): void;
}

interface LogFile {
  path: string;
  /** the last queued operation; each runs after the previous one (appends and rotations of this file) */
  tail: Promise<void>;
  /** operations queued or running */
  ops: number;
  /** the batch still taking appends; closed once its write starts or a rotation is queued behind it */
  batch?: Batch;
  fh?: FileHandle;
  lastUse: number;
}

/** A batch stops taking appends at this size so one write stays bounded. */
const MAX_BATCH_BYTES = 4 * 1024 * 1024;

export class TaskLogs {
  readonly root: string;
  private readonly maxAppendBytes: number;
  private readonly keepRotated: number;
  private readonly maxOpenFiles: number;
  private readonly idleCloseMs: number;
  private readonly maxReadBytes: number;
  private readonly files = new Map<string, LogFile>(); // kept while an operation is queued or the file is open
  private openFiles = 0;
  private readonly handleWaiters: (() => void)[] = [];
  private readonly timer: NodeJS.Timeout;
  /** fsyncs of log data so far (tests see the grouping through this) */
  syncs = 0;
  /** per directory: the fsync queued behind the running one, shared by its callers (see syncDir) */
  private readonly dirSyncs = new KeyedLock();
  /** directory fsyncs actually made (tests see the sharing through this) */
  dirFsyncs = 0;

  constructor(stateDir: string, opts: TaskLogsOptions = {}) {
    this.root = join(stateDir, "task-logs");
    this.maxAppendBytes = opts.maxAppendBytes ?? 1024 * 1024;
    this.keepRotated = Math.max(1, opts.keepRotated ?? 10);
    this.maxOpenFiles = Math.max(1, opts.maxOpenFiles ?? 64);
    this.idleCloseMs = opts.idleCloseMs ?? 30_000;
    this.maxReadBytes = opts.maxReadBytes ?? 64 * 1024 * 1024;
    this.timer = setInterval(() => void this.closeIdle(Date.now() - this.idleCloseMs), Math.max(10, this.idleCloseMs / 2));
    this.timer.unref();
  }

  /** `<root>/job-<first 4 of job id>/<job id>/task-<task id>.txt`; throws TaskLogError(404) for a malformed id. */
  path(jobId: string, taskId: string): string {
    if (!TASK_LOG_ID.test(jobId) || !TASK_LOG_ID.test(taskId)) throw new TaskLogError(404, "malformed job or task id");
    return join(this.root, `job-${jobId.slice(0, 4)}`, jobId, `task-${taskId}.txt`);
  }

  /** The path, or a rejected promise for a bad id (the promise-returning calls never throw synchronously). */
  private checkedPath(jobId: string, taskId: string): string | Promise<never> {
    try {
      return this.path(jobId, taskId);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Append log text (a newline is added when missing); resolves once it is on disk. Concurrent appends share an fsync. */
  append(jobId: string, taskId: string, text: string): Promise<void> {
    const path = this.checkedPath(jobId, taskId);
    if (typeof path !== "string") return path;
    if (text === "") return Promise.resolve();
    const data = Buffer.from(text.endsWith("\n") ? text : text + "\n");
    if (data.length > this.maxAppendBytes) return Promise.reject(new TaskLogError(413, `log text larger than ${this.maxAppendBytes} bytes`));
    const f = this.file(path);
    let batch = f.batch;
    if (!batch || batch.bytes + data.length > MAX_BATCH_BYTES) {
      const b = (batch = f.batch = newBatch());
      void this.enqueue(f, () => this.flush(f, b)).catch(() => {}); // the batch's promise carries the error
    }
    batch.chunks.push(data);
    batch.bytes += data.length;
    return batch.done;
  }

  /** Start a new log for a new activation: current → .1, .1 → .2, …; the oldest beyond keepRotated is dropped. */
  rotate(jobId: string, taskId: string): Promise<void> {
    const path = this.checkedPath(jobId, taskId);
    if (typeof path !== "string") return path;
    const f = this.file(path);
    f.batch = undefined; // appends made after this call go to the new file
    return this.enqueue(f, async () => {
      await this.closeHandle(f);
      if (!(await exists(path))) return;
      for (let i = this.keepRotated - 1; i >= 1; i--) await renameIfExists(`${path}.${i}`, `${path}.${i + 1}`);
      await rename(path, `${path}.1`);
      await this.syncDir(dirname(path));
    });
  }

  /** The current log, or undefined when there is none. Larger than maxReadBytes → TaskLogError(413). */
  async read(jobId: string, taskId: string): Promise<Buffer | undefined> {
    const size = await this.size(jobId, taskId);
    if (size === undefined) return undefined;
    if (size > this.maxReadBytes) throw new TaskLogError(413, `task log larger than ${this.maxReadBytes} bytes`);
    return this.readRange(jobId, taskId, 0, size);
  }

  /** Bytes in the current log (an offset for following it), or undefined when there is none. */
  async size(jobId: string, taskId: string): Promise<number | undefined> {
    const path = this.path(jobId, taskId);
    await this.settled(path);
    try {
      return (await stat(path)).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  /** Up to `maxBytes` from `offset` (fewer at the end); undefined when there is no log. For tails: read from the last size(). */
  async readRange(jobId: string, taskId: string, offset: number, maxBytes: number): Promise<Buffer | undefined> {
    const path = this.path(jobId, taskId);
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new RangeError("offset and maxBytes must be whole numbers >= 0");
    if (maxBytes > this.maxReadBytes) throw new TaskLogError(413, `read larger than ${this.maxReadBytes} bytes`);
    await this.settled(path);
    const fh = await open(path, "r").catch(notFound);
    if (!fh) return undefined;
    try {
      const buf = Buffer.alloc(maxBytes);
      let length = 0;
      while (length < maxBytes) {
        const { bytesRead } = await fh.read(buf, length, maxBytes - length, offset + length);
        if (bytesRead === 0) break;
        length += bytesRead;
      }
      return buf.subarray(0, length);
    } finally {
      await fh.close();
    }
  }

  /** The current log as a stream of the bytes it holds now (later appends are not included), or undefined when there is none. */
  async stream(jobId: string, taskId: string): Promise<{ size: number; stream: Readable } | undefined> {
    const path = this.path(jobId, taskId);
    await this.settled(path);
    const fh = await open(path, "r").catch(notFound);
    if (!fh) return undefined;
    let size: number;
    try {
      size = (await fh.stat()).size;
    } catch (err) {
      await fh.close();
      throw err;
    }
    if (size === 0) {
      await fh.close();
      return { size, stream: Readable.from([]) };
    }
    // The stream closes the handle when it ends or is destroyed.
    return { size, stream: createReadStream("", { fd: fh, start: 0, end: size - 1, autoClose: true }) };
  }

  /** Wait for queued work, close every file and stop the idle timer. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    for (const f of [...this.files.values()]) await f.tail;
    await this.closeIdle(Infinity);
  }

  /** Open log files right now (bounded by maxOpenFiles). */
  get openCount(): number {
    return this.openFiles;
  }

  private file(path: string): LogFile {
    let f = this.files.get(path);
    if (!f) this.files.set(path, (f = { path, tail: Promise.resolve(), ops: 0, lastUse: Date.now() }));
    return f;
  }

  /** Reads see every append and rotation issued before them (some are not awaited by their caller). */
  private async settled(path: string): Promise<void> {
    await this.files.get(path)?.tail;
  }

  private enqueue(f: LogFile, op: () => Promise<void>): Promise<void> {
    f.ops++;
    const run = f.tail.then(op);
    f.tail = run.then(
      () => this.done(f),
      () => this.done(f),
    );
    return run;
  }

  private done(f: LogFile): void {
    f.ops--;
    f.lastUse = Date.now();
    this.forgetIfIdle(f);
    if (f.ops === 0 && f.fh) this.handleWaiters.shift()?.(); // an idle open file can now be closed for a waiter
  }

  /** Drop the file's state once nothing is queued and it is closed (it may have been reopened while we awaited). */
  private forgetIfIdle(f: LogFile): void {
    if (f.ops === 0 && !f.fh && this.files.get(f.path) === f) this.files.delete(f.path);
  }

  private async flush(f: LogFile, batch: Batch): Promise<void> {
    if (f.batch === batch) f.batch = undefined; // later appends form the next batch
    try {
      const fh = await this.handle(f);
      await fh.appendFile(batch.chunks.length === 1 ? batch.chunks[0]! : Buffer.concat(batch.chunks, batch.bytes));
      await fh.datasync();
      this.syncs++;
      batch.settle();
    } catch (err) {
      await this.closeHandle(f); // a failed write may leave the handle in doubt
      batch.settle(err);
      throw err;
    }
  }

  /** The file's open handle, opening it (and creating it durably) within the open-file bound. */
  private async handle(f: LogFile): Promise<FileHandle> {
    if (f.fh) return f.fh;
    while (this.openFiles >= this.maxOpenFiles) {
      if (!(await this.closeOldestIdle())) await new Promise<void>((resolve) => this.handleWaiters.push(resolve));
    }
    this.openFiles++;
    try {
      f.fh = await openForAppend(f.path, this.root, (dir) => this.syncDir(dir));
    } catch (err) {
      this.openFiles--;
      this.handleWaiters.shift()?.();
      throw err;
    }
    return f.fh;
  }

  private async closeHandle(f: LogFile): Promise<void> {
    const fh = f.fh;
    if (!fh) return;
    f.fh = undefined;
    await fh.close().catch(() => {});
    this.openFiles--;
    this.handleWaiters.shift()?.();
  }

  private async closeOldestIdle(): Promise<boolean> {
    let oldest: LogFile | undefined;
    for (const f of this.files.values()) if (f.fh && f.ops === 0 && (!oldest || f.lastUse < oldest.lastUse)) oldest = f;
    if (!oldest) return false;
    await this.closeHandle(oldest);
    this.forgetIfIdle(oldest);
    return true;
  }

  private async closeIdle(before: number): Promise<void> {
    for (const f of [...this.files.values()]) {
      if (f.ops !== 0 || !f.fh || f.lastUse > before) continue;
      await this.closeHandle(f);
      this.forgetIfIdle(f);
    }
  }

  /**
   * fsync a directory, shared by concurrent callers: an entry made before the call is covered by any
   * fsync of the directory that starts after the call, so callers join the queued one. The tasks a
   * scheduler hands out at once are mostly of one job, i.e. new log files in one directory.
   */
  private syncDir(dir: string): Promise<void> {
    return this.dirSyncs.coalesce(dir, () => {
      this.dirFsyncs++;
      return fsyncDir(dir);
    });
  }
}

function newBatch(): Batch {
  let settle!: (err?: unknown) => void;
  const done = new Promise<void>((resolve, reject) => {
    settle = (err) => (err === undefined ? resolve() : reject(err));
  });
  return { chunks: [], bytes: 0, done, settle };
}

/**
 * Open for appending. A file made here is fsynced into its directory (and new directories into theirs, up to
 * `root`'s parent) so that data acknowledged after an fsync of the file is not lost with its directory entry.
 */
async function openForAppend(path: string, root: string, syncDir: (dir: string) => Promise<void>): Promise<FileHandle> {
  const made = await createExclusive(path).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== "ENOENT") throw err;
    await ensureDir(dirname(path), 0o755);
    const fh = await createExclusive(path);
    if (fh) await syncEntries(fh, [dirname(dirname(path)), dirname(dirname(dirname(path))), dirname(root)], syncDir);
    return fh;
  });
  if (!made) return open(path, "a");
  await syncEntries(made, [dirname(path)], syncDir);
  return made;
}

/** A new file open for appending, or undefined when it exists already. */
async function createExclusive(path: string): Promise<FileHandle | undefined> {
  return open(path, "ax", 0o644).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "EEXIST") return undefined;
    throw err;
  });
}

async function syncEntries(fh: FileHandle, dirs: string[], syncDir: (dir: string) => Promise<void>): Promise<void> {
  try {
    for (const dir of dirs) await syncDir(dir);
  } catch (err) {
    await fh.close();
    throw err;
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return false;
      throw err;
    },
  );
}

async function renameIfExists(from: string, to: string): Promise<void> {
  await rename(from, to).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "ENOENT") throw err;
  });
}

function notFound(err: NodeJS.ErrnoException): undefined {
  if (err.code === "ENOENT") return undefined;
  throw err;
}
