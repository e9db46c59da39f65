// The revision clock: Unix-second timestamps, strictly increasing within a process and across
// restarts (the last one is persisted in <state_dir>/revision).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Serializer } from "../base/index.js";
import { writeFileAtomic } from "../store/index.js";
import { log } from "../log.js";

export class RevisionClock {
  /** the latest timestamp handed out, or the persisted one of the previous process */
  private last: number;
  private readonly path: string;
  private readonly writes = new Serializer();

  constructor(stateDir: string, private readonly now: () => number = () => Math.floor(Date.now() / 1000)) {
    this.path = join(stateDir, "revision");
    this.last = readPersisted(this.path);
  }

  /** The next timestamp: max(now, previous + 1); the first one max(now, persisted + 1). */
  next(): number {
    const ts = Math.max(this.now(), this.last + 1);
    this.last = ts;
    this.persist();
    return ts;
  }

  /** resolves once the latest timestamp is on disk */
  flushed(): Promise<void> {
    return this.writes.idle();
  }

  // Writes are serialized; a burst collapses into writing the latest value.
  private persist(): void {
    void this.writes.coalesce(async () => {
      const value = this.last;
      try {
        await writeFileAtomic(this.path, `${value}\n`, 0o600);
      } catch (err) {
        log.warn("cannot persist the revision timestamp", { path: this.path, error: (err as Error).message });
      }
    });
  }
}

function readPersisted(path: string): number {
  try {
    const text = readFileSync(path, "utf8").trim();
    if (!/^[0-9]{1,15}$/.test(text)) {
      log.warn("ignoring a malformed revision file", { path });
      return 0;
    }
    return Number(text);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") log.warn("cannot read the revision file", { path, error: (err as Error).message });
    return 0;
  }
}
