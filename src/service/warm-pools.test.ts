/**
 * Warm pools on real machines: refill, checkout (hit and miss), what a checked-out
 * machine looks like, visibility, restarts, shrinking and deleting.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { execIn, TestServer, waitFor } from '../testing/harness.js';

describe('warm pools', () => {
  let t: TestServer;
  let team: { teamId: string; key: string };
  const ready = async (name: string): Promise<number> => (await t.request('GET', `/v1/warm-pools/${name}`)).body.ready;

  before(async () => {
    t = await TestServer.start();
    team = await t.newTeamKey('users');
  });
  after(async () => {
    await t.dispose();
  });

  it('fills a pool to its size in the background; only admins manage or see pools', async () => {
    const put = await t.request('PUT', '/v1/warm-pools/small', { body: { template: 'base', config: { memory_mb: 256 }, size: 2 } });
    assert.equal(put.status, 200, put.text);
    assert.deepEqual(put.body.config, { vcpus: 1, memory_mb: 256, disk_mb: 1024 });
    await waitFor(async () => (await ready('small')) === 2, 15_000);
    const pool = (await t.request('GET', '/v1/warm-pools/small')).body;
    assert.equal(pool.machines.length, 2);
    assert.equal(pool.last_error, null);
    assert.equal((await t.request('GET', '/v1/warm-pools', { key: team.key })).status, 403);
    assert.equal((await t.request('PUT', '/v1/warm-pools/x', { key: team.key, body: { template: 'base', size: 1 } })).status, 403);
    // Idle pool machines belong to no team: not listed, not readable.
    const listed = (await t.request('GET', '/v1/machines', { key: team.key })).body as Array<{ id: string }>;
    assert.ok(!listed.some((m) => pool.machines.includes(m.id)));
    assert.equal((await t.request('GET', `/v1/machines/${pool.machines[0]}`, { key: team.key })).status, 404);
    assert.equal((await t.request('GET', `/v1/machines/${pool.machines[0]}`)).status, 404);
  });

  it('a matching create takes a ready machine and gets the request applied; the pool refills', async () => {
    const idle = (await t.request('GET', '/v1/warm-pools/small')).body.machines as string[];
    const before = Date.now();
    const r = await t.request('POST', '/v1/machines', {
      key: team.key,
      body: { config: { memory_mb: 256 }, metadata: { job: 7 }, timeout_ms: 120_000, cwd: '/work/app', env: { MODE: 'x' } },
    });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(r.body.warm_pool_checkout, { hit: true, id: 'small' });
    assert.ok(idle.includes(r.body.id), 'the machine came from the pool');
    assert.deepEqual(r.body.metadata, { job: 7 });
    assert.equal(r.body.cwd, '/work/app');
    assert.equal(r.body.timeout_ms, 120_000);
    assert.ok(Date.parse(r.body.created_at) >= before - 5 && Date.parse(r.body.started_at) >= before - 5, 'timers start at checkout');
    assert.ok(r.body.remaining_ms > 110_000);
    assert.equal(typeof r.body.traffic_access_token, 'string');
    const got = await t.request('GET', `/v1/machines/${r.body.id}`, { key: team.key });
    assert.equal(got.status, 200);
    assert.deepEqual(got.body.warm_pool_checkout, { hit: true, id: 'small' });
    await waitFor(async () => (await ready('small')) === 2, 15_000);
    const pool = (await t.request('GET', '/v1/warm-pools/small')).body;
    assert.equal(pool.hits, 1);
    assert.ok(!pool.machines.includes(r.body.id));
  });

  it('a checked-out machine looks like a cold one: its own hostname, only init running, a fresh layer', async () => {
    const r = await t.request('POST', '/v1/machines', { key: team.key, body: { config: { memory_mb: 256 }, cwd: '/srv' } });
    assert.equal(r.body.warm_pool_checkout.hit, true);
    const id = r.body.id as string;
    assert.equal((await execIn(t.server, id, ['hostname'])).out.trim(), id);
    const ps = (await execIn(t.server, id, ['ps', '-o', 'args'])).out.trim().split('\n').slice(1);
    // Besides ps itself: init, and the machine's agent waiting for the server (with its spare, forked ahead of a request).
    assert.deepEqual(ps.filter((c) => !c.startsWith('ps ') && c !== '/.hangar/bin/hangar-agent spare'), ['init', '/.hangar/bin/hangar-agent serve']);
    assert.equal((await execIn(t.server, id, ['ls', '-A', '/root'])).out.trim(), '');
    assert.equal((await execIn(t.server, id, ['sh', '-c', 'test -d /srv && echo yes'])).out.trim(), 'yes');
    const cold = await t.request('POST', '/v1/machines', { key: team.key, body: {} });
    assert.equal(cold.body.warm_pool_checkout, undefined, 'another config does not consider the pool');
    const a = (await execIn(t.server, id, ['ls', '-A', '/'])).out;
    const b = (await execIn(t.server, cold.body.id, ['ls', '-A', '/'])).out;
    assert.equal(a.replace(/\bsrv\n/, ''), b, 'same root filesystem as a cold machine');
  });

  it('a create that finds the pool empty is a miss and a normal create', async () => {
    await t.request('PUT', '/v1/warm-pools/empty', { body: { template: 'base', config: { vcpus: 2 }, size: 0 } });
    const r = await t.request('POST', '/v1/machines', { key: team.key, body: { config: { vcpus: 2 } } });
    assert.equal(r.status, 201);
    assert.deepEqual(r.body.warm_pool_checkout, { hit: false, id: 'empty' });
    assert.equal((await t.request('GET', '/v1/warm-pools/empty')).body.misses, 1);
  });

  it('survives a restart: settings kept, idle machines re-adopted', async () => {
    const idle = (await t.request('GET', '/v1/warm-pools/small')).body.machines as string[];
    await t.restart();
    const pool = (await t.request('GET', '/v1/warm-pools/small')).body;
    assert.deepEqual([...pool.machines].sort(), [...idle].sort());
    assert.equal(pool.hits, 2);
    const r = await t.request('POST', '/v1/machines', { key: team.key, body: { config: { memory_mb: 256 } } });
    assert.equal(r.body.warm_pool_checkout.hit, true);
    assert.equal((await execIn(t.server, r.body.id, ['echo', 'ok'])).out.trim(), 'ok');
  });

  it('shrinks and deletes: idle machines are destroyed, checked-out ones stay', async () => {
    await waitFor(async () => (await ready('small')) === 2, 15_000);
    const shrunk = await t.request('PUT', '/v1/warm-pools/small', { body: { template: 'base', config: { memory_mb: 256 }, size: 1 } });
    assert.equal(shrunk.body.ready, 1);
    const mine = (await t.request('GET', '/v1/machines?state=running', { key: team.key })).body.items.length;
    assert.equal((await t.request('DELETE', '/v1/warm-pools/small')).status, 204);
    assert.equal((await t.request('GET', '/v1/warm-pools/small')).status, 404);
    assert.equal((await t.request('GET', '/v1/machines?state=running', { key: team.key })).body.items.length, mine);
    const running = await t.server.store.machinesInStatus(['running']);
    assert.ok(!running.some((m) => m.pool === 'small'), 'idle machines of the deleted pool remain');
  });

  it('answers bad pool requests with clear errors and changes nothing', async () => {
    const unknown = await t.request('PUT', '/v1/warm-pools/p1', { body: { template: 'nope', size: 1 } });
    assert.equal(unknown.status, 422);
    assert.equal(unknown.body.code, 'UNKNOWN_TEMPLATE');
    const bad = await t.request('PUT', '/v1/warm-pools/p1', { body: { template: 'base', size: -1, extra: true } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.code, 'VALIDATION_FAILED');
    assert.equal((await t.request('PUT', '/v1/warm-pools/Bad Name', { body: { template: 'base', size: 1 } })).status, 400);
    assert.equal((await t.request('GET', '/v1/warm-pools/p1')).status, 404);
  });
});
