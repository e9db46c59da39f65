// Automatic persistence of the state to <state_dir>/proxy-state after every change. Writes are
// coalesced: changes made while a write runs share the next write, which snapshots the state when
// it starts, so every caller's change is on disk when its promise resolves.
import { Serializer } from "../../base/index.js";
import { log } from "../../log.js";
import { saveState } from "./persist.js";
import type { ProxyState } from "./state.js";

export class Persister {
  private readonly writes = new Serializer();

  constructor(private readonly state: ProxyState, readonly path: string) {}

  /** Resolves once a write that started after this call finished; a string is the error. */
  request(): Promise<string | undefined> {
    return this.writes.coalesce(() => this.write());
  }

  /** Wait for every requested write. */
  async idle(): Promise<void> {
    await this.writes.idle();
  }

  private async write(): Promise<string | undefined> {
    try {
      await saveState(this.state, this.path);
      return undefined;
    } catch (err) {
      const message = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      log.error("cannot save the proxy state", { path: this.path, error: message });
      return message;
    }
  }
}
