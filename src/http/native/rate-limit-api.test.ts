/**
 * Per-key request rate limits (issue 14): HANGAR_KEY_RATE_LIMIT on a real server. A key
 * past its bucket gets 429 RATE_LIMITED with Retry-After on every surface, other keys and
 * admin keys go on, and the key is served again once its bucket refills.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestServer, waitFor } from '../../testing/harness.js';

describe('per-key rate limits', () => {
  let t: TestServer;
  let key: string;
  let other: string;
  before(async () => {
    t = await TestServer.start({ env: { HANGAR_KEY_RATE_LIMIT: '1', HANGAR_KEY_RATE_BURST: '3' } });
    key = (await t.newTeamKey('limited')).key;
    other = (await t.newTeamKey('other')).key;
  });
  after(async () => {
    await t.dispose();
  });

  it('a burst, then 429 RATE_LIMITED with Retry-After on every surface; other keys and the admin key go on; served again after the wait', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await t.request('GET', '/v1/machines', { key })).status, 200);
    const native = await t.request('GET', '/v1/machines', { key });
    assert.equal(native.status, 429, native.text);
    assert.equal(native.body.code, 'RATE_LIMITED');
    assert.equal(native.headers.get('retry-after'), String(native.body.details.retry_after_s));
    assert.ok(Number(native.headers.get('retry-after')) >= 1);
    const ps = await t.request('GET', '/paperspace/v1/machines', { key });
    assert.equal(ps.status, 429, ps.text);
    assert.ok(ps.headers.get('retry-after'));
    const e2b = await t.request('GET', '/v2/sandboxes', { key: null, headers: { 'x-api-key': key } });
    assert.equal(e2b.status, 429, e2b.text);
    assert.equal(e2b.body.code, 429);
    assert.ok(e2b.headers.get('retry-after'));
    // Other keys have their own buckets; admin keys are not limited.
    assert.equal((await t.request('GET', '/v1/machines', { key: other })).status, 200);
    for (let i = 0; i < 10; i++) assert.equal((await t.request('GET', '/v1/admin/teams')).status, 200);
    // A key that is unknown is refused as before (401), not limited.
    assert.equal((await t.request('GET', '/v1/machines', { key: 'hk_unknown_0123456789' })).status, 401);
    // The bucket refills at one request a second.
    await waitFor(async () => ((await t.request('GET', '/v1/machines', { key })).status === 200 ? true : null), 15_000, 300);
  });
});
