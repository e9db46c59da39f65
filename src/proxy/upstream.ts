// One upstream address (host:port) with its keep-alive connection pool. Shared by every pool
// (application) that names the address, and kept across routing-table rebuilds so that pooled
// connections and connection counts survive reconfiguration.
import { Agent } from "node:http";

/** Bounds of one upstream's connection pool. */
export const MAX_SOCKETS_PER_UPSTREAM = 512;
export const MAX_IDLE_SOCKETS_PER_UPSTREAM = 64;

export class Upstream {
  readonly agent: Agent;
  /** requests in flight (leastconnections) */
  active = 0;
  constructor(
    readonly host: string,
    readonly port: number,
    idleMs: number,
  ) {
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: MAX_SOCKETS_PER_UPSTREAM,
      maxFreeSockets: MAX_IDLE_SOCKETS_PER_UPSTREAM,
      scheduling: "lifo",
      timeout: idleMs,
    });
  }

  get address(): string {
    return this.host.includes(":") ? `[${this.host}]:${this.port}` : `${this.host}:${this.port}`;
  }

  /** close the idle pooled connections; in-flight ones finish and then time out idle */
  retire(): void {
    for (const list of Object.values(this.agent.freeSockets)) for (const s of list ?? []) s.destroy();
  }
}

export class UpstreamSet {
  private map = new Map<string, Upstream>();
  private used = new Set<string>();

  constructor(private idleMs: () => number) {}

  /** the upstream for host:port, marked as used by the table being built */
  get(host: string, port: number): Upstream {
    const key = `${host}|${port}`;
    this.used.add(key);
    let up = this.map.get(key);
    if (!up) {
      up = new Upstream(host, port, this.idleMs());
      this.map.set(key, up);
    }
    return up;
  }

  /** start a table build */
  begin(): void {
    this.used.clear();
  }

  /** end a table build: retire every upstream the new table does not use */
  sweep(): void {
    for (const [key, up] of this.map) {
      if (this.used.has(key)) continue;
      this.map.delete(key);
      up.retire();
    }
  }

  closeAll(): void {
    for (const up of this.map.values()) up.agent.destroy();
    this.map.clear();
  }

  get size(): number {
    return this.map.size;
  }
}
