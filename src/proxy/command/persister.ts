// Automatic persistence of the state to <state_dir>/proxy-state after every change. Writes are
// coalesced: changes made while a write runs share the next write, which snapshots the state when
// it starts, so every caller's change is on disk when its promise resolves.
import { log } from "../../log.js";
import { saveState } from "./persist.js";
import type { ProxyState } from "./state.js";

export class Persister {
  private chain: Promise<unknown> = Promise.resolve();
  private queued: Promise<string | undefined> | undefined;

  constructor(private readonly state: ProxyState, readonly path: string) {}

  /** Resolves once a write that started after this call finished; a string is the error. */
  request(): Promise<string | undefined> {
    if (this.queued) return this.queued;
    const next = this.chain.then(() => {
      this.queued = undefined;
      return this.write();
    });
    this.queued = next;
    this.chain = next;
    return next;
  }

  /** Wait for every requested write. */
  async idle(): Promise<void> {
    await this.chain;
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
