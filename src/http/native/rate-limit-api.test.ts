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

  it("a key's own limit, set by an admin: above the default, below it, kept by a rotation, shown on the key; bad limits are 400", async () => {
    const team = (await t.request('POST', '/v1/admin/teams', { body: { name: 'own limits' } })).body.id;
    const issue = async (body: object) => {
      const r = await t.request('POST', `/v1/admin/teams/${team}/keys`, { body: { name: 'k', ...body } });
      assert.equal(r.status, 201, r.text);
      return r.body;
    };
    const generous = await issue({ rate_limit: { per_second: 1000 } });
    assert.deepEqual(generous.rate_limit, { per_second: 1000, burst: 2000 });
    for (let i = 0; i < 12; i++) assert.equal((await t.request('GET', '/v1/machines', { key: generous.key })).status, 200, 'past the default burst of 3');
    const tight = await issue({ rate_limit: { per_second: 0.01, burst: 1 } });
    assert.equal((await t.request('GET', '/v1/machines', { key: tight.key })).status, 200);
    const refused = await t.request('GET', '/v1/machines', { key: tight.key });
    assert.equal(refused.status, 429, refused.text);
    assert.equal(refused.headers.get('retry-after'), '100', 'one request per 100 s');
    const rotated = await t.request('POST', `/v1/admin/keys/${tight.id}/rotate`, { body: { overlap_s: 0 } });
    assert.equal(rotated.status, 201, rotated.text);
    assert.deepEqual(rotated.body.key.rate_limit, { per_second: 0.01, burst: 1 });
    const listed = (await t.request('GET', `/v1/admin/teams/${team}/keys`)).body.items;
    assert.deepEqual(listed.find((k: any) => k.id === generous.id).rate_limit, { per_second: 1000, burst: 2000 });
    for (const bad of [{ per_second: 0 }, { per_second: 1, burst: 0 }, { burst: 5 }, { per_second: 1, extra: 1 }]) {
      const r = await t.request('POST', `/v1/admin/teams/${team}/keys`, { body: { name: 'bad', rate_limit: bad } });
      assert.equal(r.status, 400, JSON.stringify(bad));
      assert.equal(r.body.code, 'VALIDATION_FAILED');
    }
    assert.equal((await t.request('GET', `/v1/admin/teams/${team}/keys`)).body.items.length, 3, 'a refused key is not made');
  });
});

describe('per-key rate limits with no server default', () => {
  it('only keys with their own limit are limited, admin keys included', async () => {
    const t = await TestServer.start();
    try {
      const { teamId, key } = await t.newTeamKey('free');
      for (let i = 0; i < 20; i++) assert.equal((await t.request('GET', '/v1/machines', { key })).status, 200);
      const own = await t.request('POST', `/v1/admin/teams/${teamId}/keys`, { body: { name: 'own', rate_limit: { per_second: 0.01, burst: 2 } } });
      assert.equal((await t.request('GET', '/v1/machines', { key: own.body.key })).status, 200);
      assert.equal((await t.request('GET', '/v1/machines', { key: own.body.key })).status, 200);
      assert.equal((await t.request('GET', '/v1/machines', { key: own.body.key })).status, 429);
      const admin = await t.request('POST', '/v1/admin/teams/team_admin/keys', { body: { name: 'limited admin', rate_limit: { per_second: 0.01, burst: 1 } } });
      assert.equal(admin.status, 201, admin.text);
      assert.equal((await t.request('GET', '/v1/admin/teams', { key: admin.body.key })).status, 200);
      assert.equal((await t.request('GET', '/v1/admin/teams', { key: admin.body.key })).status, 429);
    } finally {
      await t.dispose();
    }
  });
});
