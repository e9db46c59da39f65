// The one reload path: read, validate, prepare and swap the dynamic config under one lock.
import { loadConfigAsync, ConfigError, KEYS, type Config, type DynamicConfig, type KeySpec, type StaticConfig } from "../config/index.js";
import type { ReloadResult } from "../component/index.js";
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
 * Static keys keep their running value; a change logs `restart required` and is named in the
 * result. A changed listener address must be bindable (checkStatic), or the reload fails: the
 * restart it asks for would fail otherwise.
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
    /** checks the changed static keys' new values (can a moved listener bind?); errors fail the reload */
    private checkStatic: (changed: string[], next: StaticConfig) => Promise<string[]> = async () => [],
  ) {
    this.current = config.dynamic;
  }

  /** The dynamic config in force now. Readers take one reference per request/connection. */
  get dynamic(): DynamicConfig {
    return this.current;
  }

  /** begin/end of every reload, inside the lock (systemd's RELOADING=1 ... READY=1) */
  around(begin: () => void, end: () => void): void {
    this.begin = begin;
    this.end = end;
  }
  private begin = () => {};
  private end = () => {};

  onSwap(fn: (dyn: DynamicConfig) => void): void {
    this.listeners.push(fn);
  }

  /** Reload the config file; resolves with every error ([] on success). Never rejects. */
  reload(): Promise<ReloadResult> {
    return this.reloadLock.run(() => this.reloadLocked());
  }

  private async reloadLocked(): Promise<ReloadResult> {
    const seq = ++this.seq;
    // The test hook for "reloads never overlap": begin/end pairs with a sequence number.
    log.debug("reload begin", { seq });
    this.begin();
    try {
      const next = await loadConfigAsync(this.path, this.explicit, this.env);
      const problems = await this.prepare(next.dynamic);
      if (problems.length) throw new ConfigError(problems);
      const restartRequired = this.changedStaticKeys(next);
      const unbindable = await this.checkStatic(restartRequired, next.static);
      if (unbindable.length) throw new ConfigError(unbindable);
      // Values are not logged: a static key may be a secret (manager_registration_secret).
      for (const key of restartRequired) log.warn("restart required", { key });
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
      return { errors: [], restartRequired };
    } catch (err) {
      const errors = err instanceof ConfigError ? err.errors : [(err as Error).message ?? String(err)];
      for (const e of errors) log.error("reload error", { error: e, seq });
      log.error("reload failed, config unchanged", { errors: errors.length, seq });
      reloads.labels("failed").inc();
      return { errors, restartRequired: [] };
    } finally {
      this.end();
      log.debug("reload end", { seq });
    }
  }

  /** static keys whose value in `next` differs from the running one, in schema order */
  private changedStaticKeys(next: Config): string[] {
    const running = this.config.static as unknown as Record<string, unknown>;
    const wanted = next.static as unknown as Record<string, unknown>;
    const changed: string[] = [];
    for (const [key, spec] of Object.entries(KEYS) as [string, KeySpec][])
      if (spec.group === "static" && JSON.stringify(running[key]) !== JSON.stringify(wanted[key])) changed.push(key);
    return changed;
  }
}
