// PLACEHOLDER: an always-empty catalog so the skeleton runs. Replaced by the real catalog.
import { EventEmitter } from "node:events";
import type { DockerClient } from "../docker/index.js";
import type { DynamicConfig } from "../config/index.js";
import type { CatalogEvents, CatalogView, DockerState, Revision } from "./types.js";
import { WaiterList, type WaitResult, type WaitOutcome } from "./waiters.js";

export interface CatalogOptions {
  docker: DockerClient;
  stateDir: string;
  dynamic: () => DynamicConfig;
}

export class Catalog extends EventEmitter<CatalogEvents> implements CatalogView {
  private rev: Revision = { seq: 1, ts: Math.floor(Date.now() / 1000), containers: [], deployments: [] };
  constructor(readonly opts: CatalogOptions) {
    super();
  }
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  current(): Revision {
    return this.rev;
  }
  dockerState(): DockerState {
    return "connecting";
  }
  lastConfirmedAt(): number {
    return performance.now();
  }
  addRegisteredSource(_name: string, _list: () => Iterable<string>): void {}
  refreshRegistered(): void {}
  private waiters = new WaiterList(() => this.rev);
  wait(since: number | undefined, timeoutMs: number, done: (r: WaitResult) => void): WaitOutcome {
    return this.waiters.wait(since, timeoutMs, this.opts.dynamic().poll_max_waiters, done);
  }
  waiterCount(): number {
    return this.waiters.size;
  }
  releaseWaiters(): void {
    this.waiters.releaseAll();
  }
}
