/**
 * The CI form of the OpenAPI fuzzer: 1,500 generated requests across every
 * route of a real server (`npm run fuzz` sends ten thousand and more). A failure prints
 * the seed; replay it with HANGAR_FUZZ_SEED.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestServer } from '../harness.js';
import { formatReport, runFuzz } from './fuzz-runner.js';

// A new seed on every run here; CI (CI=true) sends the same requests every time, so what lands never fails on a seed
// no one has run: `npm run fuzz` is where new seeds are explored.
const seed = Number(process.env.HANGAR_FUZZ_SEED ?? (process.env.CI === 'true' ? 20261204 : Date.now() % 2 ** 31));
const requests = Number(process.env.HANGAR_FUZZ_REQUESTS ?? 1500);

describe('OpenAPI fuzz (CI form)', () => {
  let t: TestServer;
  before(async () => {
    t = await TestServer.start();
  });
  after(async () => {
    await t.dispose();
  });

  it(`answers ${requests} generated requests with no 5xx, catalogue-shaped 4xx, and no change from rejected ones`, async () => {
    console.log(`fuzz seed: ${seed} (replay: HANGAR_FUZZ_SEED=${seed})`);
    const report = await runFuzz(t, { requests, seed });
    console.log(formatReport(report));
    for (const f of report.failures.slice(0, 20)) console.log(JSON.stringify(f));
    assert.equal(report.sent, requests);
    // Every operation of the document was exercised at least once.
    for (const [route, row] of report.byRoute) assert.ok(Object.values(row).some((n) => n > 0), `${route} got no request (seed ${seed})`);
    assert.ok(report.batchesCompared > 0, 'no batch of rejected requests was compared');
    assert.deepEqual(report.failures, [], `seed ${seed}`);
  });
});
