/**
 * The native private-network API on a real server: create, list, get (with the machines on
 * it), delete (409 while machines are on it), team scoping, and `network_id` on a machine
 * create (422 for an unknown or another team's network, nothing created). Traffic between
 * members is tested in runtime/runc/private-network.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ERROR_CATALOGUE } from '../../domain/errors.js';
import { TestServer, waitFor } from '../../testing/harness.js';

describe('native /v1/networks', () => {
  let t: TestServer;
  let key: string;
  let otherKey: string;

  before(async () => {
    t = await TestServer.start();
    key = (await t.newTeamKey('net-team')).key;
    otherKey = (await t.newTeamKey('net-other')).key;
  });
  after(async () => {
    await t?.dispose();
  });

  const call = (method: string, path: string, body?: unknown, k: string = key) => t.request(method, path, { body, key: k });
  const machineIds = async (k: string = key): Promise<string[]> => ((await call('GET', '/v1/machines', undefined, k)).body as Array<{ id: string }>).map((m) => m.id);

  it('creates, lists newest first, gets and deletes an empty network; names are unique per team', async () => {
    const a = await call('POST', '/v1/networks', { name: 'backend' });
    assert.equal(a.status, 201, a.text);
    assert.match(a.body.id, /^net_[a-z0-9]{16}$/);
    assert.deepEqual({ ...a.body, created_at: undefined, id: undefined }, { name: 'backend', machine_count: 0, machines: [], created_at: undefined, id: undefined });
    const b = await call('POST', '/v1/networks', { name: 'frontend' });
    assert.equal(b.status, 201);
    const list = await call('GET', '/v1/networks');
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.items.map((n: { name: string }) => n.name).sort(), ['backend', 'frontend']);
    assert.deepEqual((await call('GET', `/v1/networks/${a.body.id}`)).body, a.body);
    const taken = await call('POST', '/v1/networks', { name: 'backend' });
    assert.equal(taken.status, 409);
    assert.equal(taken.body.code, 'NETWORK_NAME_TAKEN');
    // Another team may use the name, and sees none of this team's networks.
    assert.equal((await call('POST', '/v1/networks', { name: 'backend' }, otherKey)).status, 201);
    assert.equal((await call('GET', `/v1/networks/${a.body.id}`, undefined, otherKey)).status, 404);
    assert.equal((await call('DELETE', `/v1/networks/${a.body.id}`, undefined, otherKey)).status, 404);
    assert.ok(!(await call('GET', '/v1/networks', undefined, otherKey)).body.items.some((n: { id: string }) => n.id === a.body.id));
    for (const bad of [{}, { name: '' }, { name: '-x' }, { name: 'ok', extra: 1 }]) {
      const r = await call('POST', '/v1/networks', bad);
      assert.equal(r.status, 400, JSON.stringify(bad));
      assert.equal(r.body.code, 'VALIDATION_FAILED');
    }
    for (const n of [a, b]) assert.equal((await call('DELETE', `/v1/networks/${n.body.id}`)).status, 204);
    assert.equal((await call('GET', `/v1/networks/${a.body.id}`)).status, 404);
    assert.equal((await call('DELETE', `/v1/networks/${a.body.id}`)).status, 404);
  });

  it('network_id on a create: unknown or another team\'s is 422 UNKNOWN_NETWORK and nothing is created', async () => {
    assert.equal(ERROR_CATALOGUE.UNKNOWN_NETWORK.status, 422);
    const theirs = await call('POST', '/v1/networks', { name: 'theirs' }, otherKey);
    const before = await machineIds();
    for (const id of ['net_nosuchnetwork0', theirs.body.id as string]) {
      const r = await call('POST', '/v1/machines', { network_id: id });
      assert.equal(r.status, 422, r.text);
      assert.equal(r.body.code, 'UNKNOWN_NETWORK');
      assert.match(r.body.message, new RegExp(`network_id ${id} names no private network of this team`));
      assert.equal(r.body.details.network_id, id);
    }
    assert.deepEqual(await machineIds(), before, 'a refused create left a machine');
    assert.equal((await call('DELETE', `/v1/networks/${theirs.body.id}`, undefined, otherKey)).status, 204);
  });

  it('a machine on a network shows network_id; the network lists it; delete is 409 naming the machines until they are destroyed', async () => {
    const net = await call('POST', '/v1/networks', { name: 'busy' });
    const m1 = await call('POST', '/v1/machines', { network_id: net.body.id });
    assert.equal(m1.status, 201, m1.text);
    assert.equal(m1.body.network_id, net.body.id);
    const m2 = await call('POST', '/v1/machines', { network_id: net.body.id });
    assert.equal(m2.status, 201, m2.text);
    const plain = await call('POST', '/v1/machines', {});
    assert.equal(plain.body.network_id, undefined, 'a machine on no network has no network_id');
    assert.equal(m1.body.warm_pool_checkout, undefined);

    const got = await call('GET', `/v1/networks/${net.body.id}`);
    assert.equal(got.body.machine_count, 2);
    assert.deepEqual(got.body.machines, [
      { machine_id: m1.body.id, status: 'running', private_ip: m1.body.private_ip },
      { machine_id: m2.body.id, status: 'running', private_ip: m2.body.private_ip },
    ]);
    assert.equal((await call('GET', `/v1/machines/${m1.body.id}`)).body.network_id, net.body.id);

    const refused = await call('DELETE', `/v1/networks/${net.body.id}`);
    assert.equal(refused.status, 409, refused.text);
    assert.equal(refused.body.code, 'NETWORK_IN_USE');
    assert.deepEqual(refused.body.details.machine_ids, [m1.body.id, m2.body.id]);
    assert.match(refused.body.message, new RegExp(`${m1.body.id} \\(running\\), ${m2.body.id} \\(running\\)`));
    assert.equal((await call('GET', `/v1/networks/${net.body.id}`)).status, 200, 'a refused delete removed the network');

    // A paused machine is still on it.
    assert.equal((await call('POST', `/v1/machines/${m2.body.id}/pause`)).status, 200);
    assert.equal((await call('DELETE', `/v1/machines/${m1.body.id}`)).status, 200);
    const still = await call('DELETE', `/v1/networks/${net.body.id}`);
    assert.equal(still.status, 409);
    assert.deepEqual(still.body.details.machine_ids, [m2.body.id]);
    assert.equal((await call('DELETE', `/v1/machines/${m2.body.id}`)).status, 200);
    assert.equal((await call('DELETE', `/v1/networks/${net.body.id}`)).status, 204);
    // A destroyed machine keeps showing the network it was on.
    assert.equal((await call('GET', `/v1/machines/${m1.body.id}`)).body.network_id, net.body.id);
    // Joining a deleted network is refused like an unknown one.
    const late = await call('POST', '/v1/machines', { network_id: net.body.id });
    assert.equal(late.status, 422);
    assert.equal(late.body.code, 'UNKNOWN_NETWORK');
    assert.equal((await call('DELETE', `/v1/machines/${plain.body.id}`)).status, 200);
  });

  it('a create with network_id never takes a warm-pool machine; one without still does', async () => {
    const put = await t.request('PUT', '/v1/warm-pools/nets', { body: { template: 'base', size: 1 } });
    assert.ok(put.status < 300, put.text);
    await waitFor(async () => (await t.request('GET', '/v1/warm-pools/nets')).body.ready >= 1, 60_000);
    const net = await call('POST', '/v1/networks', { name: 'pooled' });
    const m = await call('POST', '/v1/machines', { network_id: net.body.id });
    assert.equal(m.status, 201, m.text);
    assert.equal(m.body.warm_pool_checkout, undefined, 'the pool was considered');
    assert.equal(m.body.network_id, net.body.id);
    assert.equal((await t.request('GET', '/v1/warm-pools/nets')).body.ready, 1, 'the idle pool machine was taken');
    const pooled = await call('POST', '/v1/machines', {});
    assert.deepEqual(pooled.body.warm_pool_checkout, { hit: true, id: 'nets' });
    for (const id of [m.body.id, pooled.body.id]) assert.equal((await call('DELETE', `/v1/machines/${id}`)).status, 200);
    assert.equal((await call('DELETE', `/v1/networks/${net.body.id}`)).status, 204);
    assert.ok((await t.request('DELETE', '/v1/warm-pools/nets')).status < 300);
  });
});
