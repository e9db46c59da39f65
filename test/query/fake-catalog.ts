// A CatalogView for unit tests: revisions are set by hand; waiters are the real WaiterList.
import { EventEmitter } from "node:events";
import type { CatalogEvents, CatalogView, ContainerInfo, DockerState, Revision } from "../../src/catalog/types.js";
import { WaiterList, type WaitOutcome, type WaitResult } from "../../src/catalog/waiters.js";

export class FakeCatalog extends EventEmitter<CatalogEvents> implements CatalogView {
  rev: Revision = { seq: 1, ts: 1_700_000_000, containers: [], deployments: [] };
  state: DockerState = "ok";
  confirmedAt = performance.now();
  maxWaiters = 10_000;
  sources = new Map<string, () => Iterable<string>>();
  private waiters = new WaiterList(() => this.rev);

  current(): Revision {
    return this.rev;
  }
  dockerState(): DockerState {
    return this.state;
  }
  lastConfirmedAt(): number {
    return this.confirmedAt;
  }
  addRegisteredSource(name: string, list: () => Iterable<string>): void {
    this.sources.set(name, list);
  }
  refreshRegistered(): void {
    this.publish(this.rev.containers);
  }
  registered(): string[] {
    return [...this.sources.values()].flatMap((f) => [...f()]);
  }
  /** a new revision with these containers (ts strictly increasing) */
  publish(containers: readonly ContainerInfo[], ts = this.rev.ts + 1): Revision {
    const deployments = [...new Set([...containers.map((c) => c.deployment), ...this.registered()])].sort();
    this.rev = { seq: this.rev.seq + 1, ts: Math.max(ts, this.rev.ts + 1), containers, deployments };
    this.emit("revision", this.rev);
    this.waiters.notify(this.rev);
    return this.rev;
  }
  wait(since: number | undefined, timeoutMs: number, done: (r: WaitResult) => void): WaitOutcome {
    return this.waiters.wait(since, timeoutMs, this.maxWaiters, done);
  }
  waiterCount(): number {
    return this.waiters.size;
  }
  releaseWaiters(): void {
    this.waiters.releaseAll();
  }
}

let n = 0;
export function container(over: Partial<ContainerInfo> & { deployment: string; service: string }): ContainerInfo {
  n++;
  const id = (n.toString(16).padStart(4, "0") + "ab".repeat(30)).slice(0, 64);
  return {
    id,
    name: `stevedore-${over.deployment}-${over.service}-1`,
    image: "stevedore-test/busybox:latest",
    state: "running",
    running: true,
    health: "none",
    hasHealthcheck: false,
    exitCode: 0,
    startedAt: new Date(Date.now() - 7200_000).toISOString(),
    restartPolicy: "no",
    networks: [],
    labels: {},
    ...over,
  };
}
