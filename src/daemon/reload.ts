// The one reload path: read, validate, prepare and swap the dynamic config under one lock.
import { loadConfigAsync, ConfigError, KEYS, type Config, type DynamicConfig, type KeySpec } from "../config/index.js";
import { Serializer } from "../base/index.js";
import { log } from "../log.js";
import { metrics } from "../metrics/index.js";

const reloads = metrics.counter("stevedore_reloads_total", "Config reloads by result (ok, failed).", ["result"]);
reloads.labels("ok");
reloads.labels("failed");

/**
 * The one reload path (SIGHUP and the admin `reload`). Under one async mutex (`reloadLock`):
 * read the file into memory → parse → validate → components prepare the next DynamicConfig
 * (load certificates...) → swap. A reload that waited for the lock reads the file when it gets
 * it, so the last reload to finish applied the newest file. A failed reload changes nothing.
 * Static keys keep their running value; a change logs `restart required`.
 */
export class Reloader {
  private current: DynamicConfig;
  private listeners: ((dyn: DynamicConfig) => void)[] = [];
  private readonly reloadLock = new Serializer();
  private seq = 0;

  constructor(
    private path: string,
    private explicit: boolean,
    private config: Config,
    /** components prepare the new dynamic config (load certificates...); errors fail the reload */
    private prepare: (next: DynamicConfig) => Promise<string[]> = async () => [],
    private env: NodeJS.ProcessEnv = process.env,
  ) {
    this.current = config.dynamic;
  }

  /** The dynamic config in force now. Readers take one reference per request/connection. */
  get dynamic(): DynamicConfig {
    return this.current;
  }

  onSwap(fn: (dyn: DynamicConfig) => void): void {
    this.listeners.push(fn);
  }

  /** Reload the config file; resolves with every error ([] on success). Never rejects. */
  reload(): Promise<string[]> {
    return this.reloadLock.run(() => this.reloadLocked());
  }

  private async reloadLocked(): Promise<string[]> {
    const seq = ++this.seq;
    // The test hook for "reloads never overlap": begin/end pairs with a sequence number.
    log.debug("reload begin", { seq });
    try {
      const next = await loadConfigAsync(this.path, this.explicit, this.env);
      const problems = await this.prepare(next.dynamic);
      if (problems.length) throw new ConfigError(problems);
      this.warnStaticChanges(next);
      this.current = next.dynamic; // the swap: one assignment
      for (const fn of this.listeners) {
        try {
          fn(next.dynamic);
        } catch (err) {
          log.error("reload listener failed", { error: (err as Error).message });
        }
      }
      log.info("config reloaded", { file: next.file || "(defaults)", seq });
      reloads.labels("ok").inc();
      return [];
    } catch (err) {
      const errors = err instanceof ConfigError ? err.errors : [(err as Error).message ?? String(err)];
      for (const e of errors) log.error("reload error", { error: e, seq });
      log.error("reload failed, config unchanged", { errors: errors.length, seq });
      reloads.labels("failed").inc();
      return errors;
    } finally {
      log.debug("reload end", { seq });
    }
  }

  private warnStaticChanges(next: Config): void {
    const running = this.config.static as unknown as Record<string, unknown>;
    const wanted = next.static as unknown as Record<string, unknown>;
    for (const [key, spec] of Object.entries(KEYS) as [string, KeySpec][]) {
      if (spec.group !== "static") continue;
      if (JSON.stringify(running[key]) === JSON.stringify(wanted[key])) continue;
      // Values are not logged: a static key may be a secret (manager_registration_secret).
      log.warn("restart required", { key });
    }
  }
}
