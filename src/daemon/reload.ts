import { loadConfig, ConfigError, type Config, type DynamicConfig } from "../config/index.js";
import { log } from "../log.js";

/** The one reload path. (Minimal: serialization and static-key warnings come with the config issue.) */
export class Reloader {
  private current: DynamicConfig;
  private listeners: ((dyn: DynamicConfig) => void)[] = [];

  constructor(
    private path: string,
    private explicit: boolean,
    config: Config,
    /** components prepare the new dynamic config (load certificates...); errors fail the reload */
    private prepare: (next: DynamicConfig) => Promise<string[]> = async () => [],
  ) {
    this.current = config.dynamic;
  }

  get dynamic(): DynamicConfig {
    return this.current;
  }

  onSwap(fn: (dyn: DynamicConfig) => void): void {
    this.listeners.push(fn);
  }

  async reload(): Promise<string[]> {
    try {
      const next = loadConfig(this.path, this.explicit);
      const problems = await this.prepare(next.dynamic);
      if (problems.length) throw new ConfigError(problems);
      this.current = next.dynamic;
      for (const fn of this.listeners) fn(next.dynamic);
      log.info("config reloaded");
      return [];
    } catch (err) {
      const errors = err instanceof ConfigError ? err.errors : [(err as Error).message];
      log.error("reload failed", { errors: errors.join("; ") });
      return errors;
    }
  }
}
