// Batches one task's log lines and progress into POST /tasks/{id}/update: at least every flushMs
// while it runs, sooner when much log piled up, and a final update (completed/failed) at the end.
// Lines wait (bounded) while the manager is away; one update is in flight at a time.

export interface TaskUpdate {
  task_status?: string;
  activity?: string;
  log?: string;
  task_progress_percentage?: number;
  current_command_idx?: number;
  command_progress_percentage?: number;
}

/** What sending an update came to: taken, the task is no longer ours (404/409), or try again later. */
export type SendResult = "ok" | "gone" | "retry";

/** log bytes waiting before a flush is started early */
const EARLY_FLUSH_BYTES = 256 * 1024;
/** log bytes kept while the manager does not take them; the oldest are dropped past this */
const MAX_PENDING_BYTES = 4 * 1024 * 1024;
/** the log of one update at most (the manager takes bodies up to 16 MiB) */
const MAX_UPDATE_LOG_BYTES = 1024 * 1024;

/** "ISO8601: line\n", the task log's line format. */
export function logLine(line: string, now = new Date()): string {
  return `${now.toISOString()}: ${line}\n`;
}

export class TaskReporter {
  private lines: string[] = [];
  private pendingBytes = 0;
  private dropped = 0;
  private fields: TaskUpdate = {};
  private dirty = false;
  private inFlight: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private gone = false;
  /** the oldest lines, part of the update in flight: never dropped */
  private sending = 0;

  constructor(
    private readonly send: (update: TaskUpdate) => Promise<SendResult>,
    private readonly flushMs: number,
    /** the manager said the task is not ours any more */
    private readonly onGone: () => void,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.flushMs);
  }

  log(line: string): void {
    if (this.dropped) {
      const note = logLine(`(${this.dropped} log lines dropped: the manager did not take them in time)`);
      this.dropped = 0;
      this.append(note);
    }
    this.append(logLine(line));
    if (this.pendingBytes >= EARLY_FLUSH_BYTES) void this.flush();
  }

  set(fields: TaskUpdate): void {
    Object.assign(this.fields, fields);
    this.dirty = true;
  }

  /** send what is pending now (no-op while an update is in flight or nothing changed) */
  flush(): Promise<void> {
    if (this.inFlight || this.gone || (!this.dirty && this.lines.length === 0)) return this.inFlight ?? Promise.resolve();
    this.inFlight = this.sendPending(undefined).then(() => void (this.inFlight = undefined));
    return this.inFlight;
  }

  /**
   * The final update with every pending line: retried (pausing by `retryDelay()`) until the manager
   * takes it, says the task is gone, or `giveUp` aborts. Resolves with whether it was delivered.
   */
  async finish(final: TaskUpdate, retryDelay: () => Promise<void>, giveUp: AbortSignal): Promise<boolean> {
    clearInterval(this.timer);
    await this.inFlight;
    this.set(final);
    for (;;) {
      if (this.gone) return false;
      const result = await this.sendPending(final);
      if (result === "ok" && this.lines.length === 0) return true;
      if (result === "gone") return false;
      if (result === "retry") {
        if (giveUp.aborted) return false;
        await retryDelay();
        if (giveUp.aborted) return false;
      }
    }
  }

  /** stop the periodic flush without a final update (shutdown paths) */
  stop(): void {
    clearInterval(this.timer);
  }

  private append(text: string): void {
    this.lines.push(text);
    this.pendingBytes += Buffer.byteLength(text);
    while (this.pendingBytes > MAX_PENDING_BYTES && this.lines.length > this.sending + 1) {
      this.pendingBytes -= Buffer.byteLength(this.lines.splice(this.sending, 1)[0]!);
      this.dropped++;
    }
  }

  /** one update: the fields and up to MAX_UPDATE_LOG_BYTES of the oldest lines; `final` only when they are all of them */
  private async sendPending(final: TaskUpdate | undefined): Promise<SendResult> {
    let count = 0;
    let bytes = 0;
    while (count < this.lines.length && (count === 0 || bytes + Buffer.byteLength(this.lines[count]!) <= MAX_UPDATE_LOG_BYTES)) bytes += Buffer.byteLength(this.lines[count++]!);
    const update: TaskUpdate = { ...this.fields };
    if (!final || count < this.lines.length) delete update.task_status; // the final status goes with the last lines
    if (count) update.log = this.lines.slice(0, count).join("");
    this.dirty = false;
    this.sending = count;
    const result = await this.send(update).catch((): SendResult => "retry");
    this.sending = 0;
    if (result === "ok") {
      this.lines.splice(0, count);
      this.pendingBytes -= bytes;
    } else if (result === "gone") {
      this.gone = true;
      this.onGone();
    } else this.dirty = true;
    return result;
  }
}
