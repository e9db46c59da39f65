// An application's backends and its balancing policy. `pick` runs per request: no allocation.
import type { LoadBalancing } from "./types.js";
import type { Upstream } from "./upstream.js";
import type { HealthState } from "./health.js";

export interface Member {
  /** the sticky-session id (the command backend id, else "ip:port") */
  id: string;
  up: Upstream;
  /** active health check, when the route has one */
  check?: HealthState;
}

export interface PoolOptions {
  policy: LoadBalancing;
  sticky: boolean;
  httpsRedirect: boolean;
}

export class Pool {
  /** round-robin cursor; carried over from the previous table's pool of the same key */
  rr = 0;
  constructor(
    readonly key: string,
    readonly options: PoolOptions,
    readonly members: readonly Member[],
  ) {}

  /**
   * The backend for the next request. `tried` holds upstreams that already failed for this
   * request (retries go to the next backend); `stickyId` is the client's SOZUBALANCEID.
   */
  pick(tried: readonly Upstream[] | undefined, stickyId: string | undefined): Member | undefined {
    const ms = this.members;
    const n = ms.length;
    if (n === 0) return undefined;
    if (stickyId !== undefined) {
      for (const m of ms) if (m.id === stickyId && usable(m) && !isTried(tried, m.up)) return m;
    }
    switch (this.options.policy) {
      case "random":
        return this.scanFrom(Math.floor(Math.random() * n), tried);
      case "leastconnections": {
        let best: Member | undefined;
        const start = this.rr % n;
        for (let i = 0; i < n; i++) {
          const m = ms[(start + i) % n]!;
          if (!usable(m) || isTried(tried, m.up)) continue;
          if (!best || m.up.active < best.up.active) best = m;
        }
        this.rr = start + 1;
        return best;
      }
      default:
        return this.scanFrom(this.rr, tried);
    }
  }

  private scanFrom(start: number, tried: readonly Upstream[] | undefined): Member | undefined {
    const ms = this.members;
    const n = ms.length;
    for (let i = 0; i < n; i++) {
      const idx = (start + i) % n;
      const m = ms[idx]!;
      if (!usable(m) || isTried(tried, m.up)) continue;
      this.rr = idx + 1;
      return m;
    }
    return undefined;
  }
}

/** in rotation (no active health check, or it passes) */
export function usable(m: Member): boolean {
  return m.check === undefined || m.check.up;
}

function isTried(tried: readonly Upstream[] | undefined, up: Upstream): boolean {
  return tried !== undefined && tried.includes(up);
}
