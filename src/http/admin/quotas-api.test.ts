/**
 * Per-team quotas (issue 14) on a real server with real machines: admins set them, every
 * create, resume, resize, snapshot, volume and template build is held to them with a 429
 * QUOTA_EXCEEDED that names the quota and changes nothing, concurrent creates cannot pass
 * a ceiling together, and a team reads its own.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { TestServer, waitFor, type TestResponse } from '../../testing/harness.js';

type Json = Record<string, any>;

function assertQuota(r: TestResponse, quota: string): void {
  assert.equal(r.status, 429, r.text);
  assert.equal(r.body.code, 'QUOTA_EXCEEDED', r.text);
  assert.equal(r.body.details.quota, quota, r.text);
  assert.ok(r.body.message.includes(quota) && r.body.message.includes('ask an admin'), r.text);
}

describe('team quotas', () => {
  let t: TestServer;
  let teamId: string;
  let key: string;

  const setQuotas = async (quotas: Json, team = teamId): Promise<Json> => {
    const r = await t.request('PUT', `/v1/admin/teams/${team}/quotas`, { body: quotas });
    assert.equal(r.status, 200, r.text);
    return r.body;
  };
  const create = (body: Json = {}, k = key): Promise<TestResponse> =>
    t.request('POST', '/v1/machines', { key: k, body: { config: { memory_mb: 256, disk_mb: 64 }, ...body } });
  const live = async (k = key): Promise<Json[]> => (await t.request('GET', '/v1/machines', { key: k })).body.filter((m: Json) => m.status !== 'destroyed');
  const destroyAll = async (k = key): Promise<void> => {
    for (const m of await live(k)) await t.request('DELETE', `/v1/machines/${m.id}`, { key: k });
  };

  before(async () => {
    t = await TestServer.start();
    ({ teamId, key } = await t.newTeamKey('quotas'));
  });
  after(async () => {
    await t.dispose();
  });
  // Each case starts from an empty team without quotas, whatever the one before left.
  afterEach(async () => {
    await setQuotas({});
    await destroyAll();
    for (const s of (await t.request('GET', '/v1/snapshots', { key })).body.items ?? []) await t.request('DELETE', `/v1/snapshots/${s.id}`, { key });
    for (const v of (await t.request('GET', '/v1/volumes', { key })).body.items ?? []) await t.request('DELETE', `/v1/volumes/${v.id}`, { key });
  });

  it('admins set, replace and clear them; bad bodies, other keys and unknown teams are refused', async () => {
    const none = await t.request('GET', `/v1/admin/teams/${teamId}/quotas`);
    assert.equal(none.status, 200, none.text);
    assert.deepEqual(none.body, {
      team_id: teamId,
      quotas: {},
      usage: { machines: 0, vcpus: 0, memory_mb: 0, disk_mb: 0, snapshot_bytes: 0, volume_mb: 0, templates: 0 },
    });
    assert.deepEqual((await setQuotas({ machines: 2, memory_mb: 1024 })).quotas, { machines: 2, memory_mb: 1024 });
    assert.deepEqual((await setQuotas({ vcpus: 4 })).quotas, { vcpus: 4 });
    assert.deepEqual((await setQuotas({})).quotas, {});
    for (const body of [{ machines: -1 }, { machines: 1.5 }, { machines: '2' }, { cpus: 2 }, []]) {
      const r = await t.request('PUT', `/v1/admin/teams/${teamId}/quotas`, { body });
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
      assert.equal(r.body.code, 'VALIDATION_FAILED');
    }
    assert.deepEqual((await t.request('GET', `/v1/admin/teams/${teamId}/quotas`)).body.quotas, {});
    assert.equal((await t.request('PUT', `/v1/admin/teams/${teamId}/quotas`, { key, body: { machines: 100 } })).status, 403);
    assert.equal((await t.request('GET', `/v1/admin/teams/${teamId}/quotas`, { key })).status, 403);
    assert.equal((await t.request('PUT', '/v1/admin/teams/team_nobody/quotas', { body: { machines: 1 } })).status, 404);
    // A team reads its own.
    await setQuotas({ machines: 7 });
    const own = await t.request('GET', '/v1/quotas', { key });
    assert.equal(own.status, 200, own.text);
    assert.deepEqual([own.body.team_id, own.body.quotas], [teamId, { machines: 7 }]);
    await setQuotas({});
  });

  it('machines, memory and disk: a create past one is a 429 naming it and creates nothing; paused machines free machines and memory, not disk', async () => {
    await setQuotas({ machines: 2, memory_mb: 768, disk_mb: 192 });
    const a = await create();
    const b = await create();
    assert.equal(a.status, 201, a.text);
    assert.equal(b.status, 201, b.text);
    assertQuota(await create(), 'machines');
    assert.equal((await live()).length, 2);
    const usage = (await t.request('GET', '/v1/quotas', { key })).body.usage;
    assert.deepEqual([usage.machines, usage.vcpus, usage.memory_mb, usage.disk_mb], [2, 2, 512, 128]);

    // Paused: no longer running (machines, memory free), but its disk is still held.
    const paused = await t.request('POST', `/v1/machines/${a.body.id}/pause`, { key });
    assert.equal(paused.status, 200, paused.text);
    assertQuota(await create({ config: { memory_mb: 600, disk_mb: 64 } }), 'memory_mb');
    const c = await create();
    assert.equal(c.status, 201, c.text);
    assertQuota(await create({ config: { memory_mb: 16, disk_mb: 64 } }), 'machines');
    // Resuming the paused one would make three running machines.
    assertQuota(await t.request('POST', `/v1/machines/${a.body.id}/resume`, { key }), 'machines');
    assert.equal((await t.request('GET', `/v1/machines/${a.body.id}`, { key })).body.status, 'paused');
    await t.request('DELETE', `/v1/machines/${c.body.id}`, { key });
    assert.equal((await t.request('POST', `/v1/machines/${a.body.id}/resume`, { key })).status, 200);
    // Disk counts every machine not destroyed: 2 × 64 held, 64 more fits, 65 does not.
    await setQuotas({ disk_mb: 190 });
    assertQuota(await create(), 'disk_mb');
    await destroyAll();
    await setQuotas({});
  });

  it('concurrent creates cannot pass a ceiling together', async () => {
    await setQuotas({ machines: 3 });
    const answers = await Promise.all(Array.from({ length: 7 }, () => create()));
    const statuses = answers.map((r) => r.status).sort();
    assert.equal(statuses.filter((s) => s === 201).length <= 3, true, String(statuses));
    assert.ok(statuses.filter((s) => s === 201).length >= 1, String(statuses));
    for (const r of answers) if (r.status !== 201) assertQuota(r, 'machines');
    assert.ok((await live()).length <= 3);
    // Once they are stored, the ceiling is exact: the team fills up to it and no further.
    while ((await live()).length < 3) assert.equal((await create()).status, 201);
    assertQuota(await create(), 'machines');
    await destroyAll();
    await setQuotas({});
  });

  it('a resize that grows past vCPUs or memory is refused and the machine keeps its size', async () => {
    const m = await create();
    assert.equal(m.status, 201, m.text);
    await setQuotas({ vcpus: 2, memory_mb: 512 });
    const r = await t.request('PATCH', `/v1/machines/${m.body.id}`, { key, body: { config: { vcpus: 3 } } });
    assertQuota(r, 'vcpus');
    assertQuota(await t.request('PATCH', `/v1/machines/${m.body.id}`, { key, body: { config: { memory_mb: 1024 } } }), 'memory_mb');
    assert.deepEqual((await t.request('GET', `/v1/machines/${m.body.id}`, { key })).body.config, m.body.config);
    const grown = await t.request('PATCH', `/v1/machines/${m.body.id}`, { key, body: { config: { vcpus: 2, memory_mb: 512 } } });
    assert.equal(grown.status, 200, grown.text);
    await destroyAll();
    await setQuotas({});
  });

  it('volumes, snapshots and template names', async () => {
    await setQuotas({ volume_mb: 100, snapshot_bytes: 1, templates: 1 });
    const v = await t.request('POST', '/v1/volumes', { key, body: { name: 'first', size_mb: 64 } });
    assert.equal(v.status, 201, v.text);
    assertQuota(await t.request('POST', '/v1/volumes', { key, body: { name: 'second', size_mb: 64 } }), 'volume_mb');
    assert.equal((await t.request('GET', '/v1/volumes', { key })).body.items.length, 1);

    // The first snapshot is taken (the team held 0 bytes); then its bytes fill the quota.
    const m = await create();
    const s1 = await t.request('POST', `/v1/machines/${m.body.id}/snapshots`, { key });
    assert.equal(s1.status, 201, s1.text);
    assertQuota(await t.request('POST', `/v1/machines/${m.body.id}/snapshots`, { key }), 'snapshot_bytes');
    assert.equal((await t.request('GET', '/v1/snapshots', { key })).body.items.length, 1);

    const build = (name: string): Promise<TestResponse> => t.request('POST', '/v1/templates', { key, body: { name, source: { template: 'base' } } });
    const first = await build('tools');
    assert.equal(first.status, 202, first.text);
    assertQuota(await build('other'), 'templates');
    await waitFor(async () => ((await t.request('GET', `/v1/templates/tools/builds/${first.body.id}`, { key })).body.status === 'building' ? null : true), 240_000, 100);
    // A new version of a name the team has is not a new name.
    assert.equal((await build('tools')).status, 202);
    const usage = (await t.request('GET', '/v1/quotas', { key })).body.usage;
    assert.deepEqual([usage.volume_mb, usage.templates], [64, 1]);
    assert.ok(usage.snapshot_bytes > 1);
    await destroyAll();
    await setQuotas({});
  });

  it('the Paperspace-style and E2B surfaces answer the same refusal in their own shapes', async () => {
    await setQuotas({ machines: 0 });
    const ps = await t.request('POST', '/paperspace/v1/machines', { key, body: { name: 'q', machineType: 'C1', templateId: 'base', region: 'local', diskSize: 1 } });
    assert.equal(ps.status, 429, ps.text);
    assert.equal(ps.body.code, 'QUOTA_EXCEEDED', ps.text);
    const e2b = await t.request('POST', '/sandboxes', { key: null, headers: { 'x-api-key': key }, body: { templateID: 'base' } });
    assert.equal(e2b.status, 429, e2b.text);
    assert.match(e2b.body.message, /machines quota/);
    assert.equal((await live()).length, 0);
    await setQuotas({});
  });
});
