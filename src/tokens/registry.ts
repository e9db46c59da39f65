// The daemon's view of the tokens file: SHA-256(token) → deployment. Kept current by a directory
// watch (the file is replaced by rename), a cheap stat every 500 ms as a safety net, and a
// rate-limited re-check when a presented token is unknown — so a change is in force within 1 s.
import { readFileSync, statSync, watch, type FSWatcher } from "node:fs";
import { dirname, basename } from "node:path";
import { log } from "../log.js";
import { hashToken, parseTokens, TokensFileError } from "./file.js";

const STAT_INTERVAL_MS = 500;
const MISS_RECHECK_MS = 100;

export class TokenRegistry {
  private byHash = new Map<string, string>();
  private names: string[] = [];
  private fingerprint = "";
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastMissCheck = 0;
  private lastError = "";
  /** bumped at every reload: look-ups cached against an older generation are void */
  generation = 0;

  /** `onChange` runs after the set of deployments with a token changed. */
  constructor(readonly path: string, private onChange: () => void = () => {}) {}

  start(): void {
    this.check();
    try {
      this.watcher = watch(dirname(this.path), { persistent: false }, (_event, file) => {
        if (file === null || file === basename(this.path)) this.check();
      });
      this.watcher.on("error", (err) => log.warn("tokens watch failed; relying on periodic checks", { error: err.message }));
    } catch (err) {
      log.warn("cannot watch the tokens file; relying on periodic checks", { path: this.path, error: (err as Error).message });
    }
    this.timer = setInterval(() => this.check(), STAT_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The deployment a presented token belongs to, or undefined. */
  lookup(token: string): string | undefined {
    const hash = hashToken(token);
    const hit = this.byHash.get(hash);
    if (hit !== undefined) return hit;
    const now = performance.now();
    if (now - this.lastMissCheck < MISS_RECHECK_MS) return undefined;
    this.lastMissCheck = now;
    return this.check() ? this.byHash.get(hash) : undefined;
  }

  /** Deployments that have a token (registered deployments). */
  deployments(): readonly string[] {
    return this.names;
  }

  get size(): number {
    return this.byHash.size;
  }

  /** Reload when the file changed; true when it was reloaded. */
  check(): boolean {
    let fp: string;
    try {
      const st = statSync(this.path);
      fp = `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") return this.fail(err as Error);
      fp = "missing";
    }
    if (fp === this.fingerprint) return false;
    let next = new Map<string, string>();
    if (fp !== "missing") {
      try {
        for (const [name, e] of parseTokens(readFileSync(this.path))) next.set(hashToken(e.token), name);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") next = new Map();
        else return this.fail(err as Error); // keep the tokens in force; retry on the next check
      }
    }
    this.fingerprint = fp;
    this.lastError = "";
    this.byHash = next;
    this.generation++;
    const names = [...new Set(next.values())].sort();
    const changed = names.join("\n") !== this.names.join("\n");
    this.names = names;
    log.debug("tokens loaded", { tokens: next.size });
    if (changed) this.onChange();
    return true;
  }

  private fail(err: Error): false {
    const message = err instanceof TokensFileError ? `invalid tokens file: ${err.message}` : err.message;
    if (message !== this.lastError) log.error("cannot load query tokens; keeping the previous ones", { path: this.path, error: message });
    this.lastError = message;
    return false;
  }
}
