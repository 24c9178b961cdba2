import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseWrk, wrkDurationMs } from './wrk.js';

const REPORT = `Running 5s test @ http://127.0.0.1:41234/v1/machines/m_x
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms  310.20us   9.81ms   91.02%
    Req/Sec    21.10k     1.02k   22.90k    70.00%
  Latency Distribution
     50%    1.48ms
     75%    1.60ms
     90%    1.75ms
     99%    2.90ms
  104987 requests in 5.00s, 60.12MB read
  Non-2xx or 3xx responses: 3
Requests/sec:  20995.87
Transfer/sec:     12.02MB
`;

describe('wrk report parsing', () => {
  it('reads requests/s, totals, non-2xx and the latency percentiles', () => {
    assert.deepEqual(parseWrk(REPORT), { requestsPerSecond: 20995.87, requests: 104987, non2xx: 3, socketErrors: null, p50Ms: 1.48, p99Ms: 2.9 });
  });
  it('converts wrk durations to milliseconds', () => {
    assert.equal(wrkDurationMs('310.20us'), 0.3102);
    assert.equal(wrkDurationMs('1.02s'), 1020);
    assert.ok(Number.isNaN(wrkDurationMs('fast')));
  });
  it('refuses output without a result', () => {
    assert.throws(() => parseWrk('unable to connect to 127.0.0.1:1 Connection refused'), /no result/);
  });
});
