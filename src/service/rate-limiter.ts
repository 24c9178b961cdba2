import type { KeyRateLimit } from '../domain/team.js';

/**
 * Requests per API key: a token bucket per key, `perSecond` tokens a second up to `burst`
 * of the limit given to `take` (the key's own, or the server's default).
 * In memory, per server (each API server of a fleet limits what reaches it); one bucket
 * per key that has sent a request, so the map is bounded by the keys that exist.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Take one request of `key` under `limit`: 0 when it may go, else the milliseconds until it could. */
  take(key: string, limit: KeyRateLimit): number {
    const now = this.now();
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
