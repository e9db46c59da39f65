// Signed-out user tokens: a per-process deny list kept until each token's own expiry. A JWT cannot
// be withdrawn otherwise; the list is in memory only, so a daemon restart forgets it (documented).
import { createHash } from "node:crypto";

/** more than the sign-outs of any real farm between two expiries; past it the oldest go first */
export const MAX_REVOKED = 100_000;

/** a token's id in the list and on its event streams (no token kept in memory longer than needed) */
export function tokenId(token: string): string {
  return createHash("sha256").update(token).digest("base64url");
}

export class RevokedTokens {
  /** token id → expiry (ms); insertion order, so the first entry is the oldest */
  private readonly until = new Map<string, number>();
  private adds = 0;

  get size(): number {
    return this.until.size;
  }

  /** deny `id` until `expMs` (after which the token is refused as expired anyway) */
  add(id: string, expMs: number, now = Date.now()): void {
    if (expMs <= now) return;
    // expired entries only cost memory (has() checks the time): sweep now and then, and when full
    if (++this.adds % 1024 === 0 || this.until.size >= MAX_REVOKED) this.prune(now);
    this.until.delete(id);
    if (this.until.size >= MAX_REVOKED) this.until.delete(this.until.keys().next().value!);
    this.until.set(id, expMs);
  }

  has(id: string, now = Date.now()): boolean {
    const exp = this.until.get(id);
    return exp !== undefined && exp > now;
  }

  private prune(now: number): void {
    for (const [id, exp] of this.until) if (exp <= now) this.until.delete(id);
  }
}
