import type { KeyRateLimit } from '../domain/team.js';

/**
 * Requests per API key: a token bucket per key, `perSecond` tokens a second up to `burst`
 * (the server's default, or the key's own limit given to `take`).
 * In memory, per server (each API server of a fleet limits what reaches it); one bucket
 * per key that has sent a request, so the map is bounded by the keys that exist.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly o: { perSecond: number; burst: number; now?: () => number },
  ) {}

  /** Take one request of `key` under `limit` (default: the server's): 0 when it may go, else the milliseconds until it could. */
  take(key: string, limit: KeyRateLimit = this.o): number {
    const now = (this.o.now ?? Date.now)();
    const b = this.buckets.get(key) ?? { tokens: limit.burst, at: now };
    b.tokens = Math.min(limit.burst, b.tokens + ((now - b.at) / 1000) * limit.perSecond);
    b.at = now;
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    // (Less a hair, so that float noise never adds a millisecond.)
    return Math.ceil(((1 - b.tokens) / limit.perSecond) * 1000 - 1e-9);
  }
}
