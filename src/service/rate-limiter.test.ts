import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RateLimiter } from './rate-limiter.js';

describe('RateLimiter', () => {
  it('lets a burst through, then one request per 1/perSecond, per key', () => {
    let now = 1_000_000;
    const l = new RateLimiter(() => now);
    const limit = { perSecond: 2, burst: 3 };
    assert.deepEqual([l.take('a', limit), l.take('a', limit), l.take('a', limit)], [0, 0, 0]);
    assert.equal(l.take('a', limit), 500);
    assert.equal(l.take('b', limit), 0, 'another key has its own bucket');
    now += 499;
    assert.equal(l.take('a', limit), 1);
    now += 1;
    assert.equal(l.take('a', limit), 0);
    assert.equal(l.take('a', limit), 500);
    now += 10_000;
    assert.deepEqual([l.take('a', limit), l.take('a', limit), l.take('a', limit), l.take('a', limit) > 0], [0, 0, 0, true], 'refills to the burst, no further');
  });

  it("applies a key's own limit when one is given, in that key's bucket", () => {
    let now = 1_000_000;
    const l = new RateLimiter(() => now);
    const limit = { perSecond: 100, burst: 100 };
    const own = { perSecond: 0.5, burst: 1 };
    assert.equal(l.take('slow', own), 0);
    assert.equal(l.take('slow', own), 2000, 'one request per 2 s');
    assert.equal(l.take('fast', limit), 0, 'another key has its own limit');
    now += 2000;
    assert.equal(l.take('slow', own), 0);
  });
});
