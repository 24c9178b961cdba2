import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RateLimiter } from './rate-limiter.js';

describe('RateLimiter', () => {
  it('lets a burst through, then one request per 1/perSecond, per key', () => {
    let now = 1_000_000;
    const l = new RateLimiter({ perSecond: 2, burst: 3, now: () => now });
    assert.deepEqual([l.take('a'), l.take('a'), l.take('a')], [0, 0, 0]);
    assert.equal(l.take('a'), 500);
    assert.equal(l.take('b'), 0, 'another key has its own bucket');
    now += 499;
    assert.equal(l.take('a'), 1);
    now += 1;
    assert.equal(l.take('a'), 0);
    assert.equal(l.take('a'), 500);
    now += 10_000;
    assert.deepEqual([l.take('a'), l.take('a'), l.take('a'), l.take('a') > 0], [0, 0, 0, true], 'refills to the burst, no further');
  });

  it("applies a key's own limit when one is given, in that key's bucket", () => {
    let now = 1_000_000;
    const l = new RateLimiter({ perSecond: 100, burst: 100, now: () => now });
    const own = { perSecond: 0.5, burst: 1 };
    assert.equal(l.take('slow', own), 0);
    assert.equal(l.take('slow', own), 2000, 'one request per 2 s');
    assert.equal(l.take('fast'), 0, 'the default still applies to others');
    now += 2000;
    assert.equal(l.take('slow', own), 0);
  });
});
