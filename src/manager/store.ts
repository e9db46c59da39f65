// The farm made durable: every record the farm applies is appended to the journal, and an answer
// waits until what it reports is on disk. The journal is compacted into a snapshot as it grows.
import { join } from "node:path";
import { log } from "../log.js";
import { ensureDir, openJournal, type Journal } from "../store/index.js";
import { Farm } from "./farm.js";
import type { FarmSettings } from "./model.js";

/** records appended since the last snapshot before the journal is compacted */
const COMPACT_AFTER_RECORDS = 200_000;
/** Test knob (see stevedore(8), ENVIRONMENT): a smaller threshold, so tests cross compactions quickly. */
const COMPACT_ENV = "STEVEDORE_MANAGER_COMPACT_RECORDS";

/** The compaction threshold: COMPACT_ENV when it is a whole number from 1, else the default. */
function compactAfterRecords(): number {
  const raw = process.env[COMPACT_ENV];
  if (raw === undefined || raw === "") return COMPACT_AFTER_RECORDS;
  const n = Number(raw);
  if (Number.isSafeInteger(n) && n >= 1) return n;
  log.warn(`${COMPACT_ENV} is not a whole number from 1; using the default`, { value: raw, default: COMPACT_AFTER_RECORDS });
  return COMPACT_AFTER_RECORDS;
}

export class JournalFailed extends Error {}

export class FarmStore {
  /** the last append (never rejects: a failure is kept in `failure`); an answer waits for it,
   *  and group commit makes that one fsync for many answers */
  private tail: Promise<void> = Promise.resolve();
  private failure: Error | undefined;
  private compacting = false;
  private readonly compactAfter = compactAfterRecords();

  private constructor(
    readonly farm: Farm,
    private readonly journal: Journal,
  ) {}

  /** Load `<state_dir>/manager/` (snapshot + journal) into a farm. */
  static async open(stateDir: string, settings: () => FarmSettings): Promise<FarmStore> {
    const dir = join(stateDir, "manager");
    await ensureDir(dir, 0o700);
    const t0 = performance.now();
    // a job of 100,000 tasks is one record of several MB
    const { journal, snapshot, records, cut } = await openJournal(dir, { maxRecordBytes: 64 * 1024 * 1024 });
    if (cut) log.warn("manager journal: a torn or corrupt tail was cut", { file: cut.file, offset: cut.offset, reason: cut.reason });
    let store: FarmStore | undefined;
    const farm = Farm.restore(snapshot, records, { settings, now: Date.now(), persist: (r) => store!.append(r) });
    store = new FarmStore(farm, journal);
    log.info("manager state loaded", { records: records.length, snapshot: snapshot !== undefined, ms: Math.round(performance.now() - t0) });
    return store;
  }

  private append(record: unknown): void {
    if (this.failure) throw new JournalFailed(`manager journal failed: ${this.failure.message}; restart the daemon`);
    this.tail = this.journal.append(record).catch((err: Error) => {
      // the farm in memory is now ahead of the disk: refuse everything until a restart reloads it
      if (!this.failure) log.error("manager journal write failed; the manager refuses requests until restarted", { error: err.message });
      this.failure ??= err;
    });
    if (this.journal.recordsSinceSnapshot >= this.compactAfter) void this.compact();
  }

  /** Resolves once everything the farm applied so far is durable; throws JournalFailed else. */
  async durable(): Promise<void> {
    await this.tail;
    if (this.failure) throw new JournalFailed(`manager journal failed: ${this.failure.message}; restart the daemon`);
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** Replace the journal by a snapshot of the farm (records appended later go to the new log). */
  async compact(): Promise<void> {
    if (this.compacting || this.failure) return;
    this.compacting = true;
    try {
      const t0 = performance.now();
      await this.journal.compact(this.farm.snapshot());
      log.info("manager journal compacted", { ms: Math.round(performance.now() - t0) });
    } catch (err) {
      log.error("manager journal compaction failed", { error: (err as Error).message });
    } finally {
      this.compacting = false;
    }
  }

  async close(): Promise<void> {
    await this.tail;
    await this.journal.close();
  }
}
