/** GET /metrics on a real server: admin only, and the series move with real machines and requests. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestServer } from '../../testing/harness.js';

/** The value of one sample line (`name{labels} value`), or null when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | null {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_:]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries((m[2] ?? '').split(',').filter(Boolean).map((kv) => {
      const [k, v] = kv.split('=');
      return [k, JSON.parse(v!)];
    }));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return null;
}

describe('metrics', () => {
  let t: TestServer;
  before(async () => {
    t = await TestServer.start();
  });
  after(async () => {
    await t?.dispose();
  });

  it('only an admin key reads them', async () => {
    const team = await t.newTeamKey('plain');
    assert.equal((await t.request('GET', '/metrics', { key: null })).status, 401);
    assert.equal((await t.request('GET', '/metrics', { key: team.key })).status, 403);
    const r = await t.request('GET', '/metrics');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^text\/plain/);
  });

  it('machines by state and template, operation latencies and failures, snapshots, HTTP by route', async () => {
    const m = await t.request('POST', '/v1/machines', { body: {} });
    assert.equal(m.status, 201);
    const id = m.body.id;
    assert.equal((await t.request('POST', `/v1/machines/${id}/exec`, { body: { cmd: 'true' } })).status, 200);
    assert.equal((await t.request('POST', '/v1/machines', { body: { template: 'no-such' } })).status, 422);
    const memory = (await t.request('GET', '/v1/info')).body.snapshots.memory;
    if (memory) assert.equal((await t.request('POST', `/v1/machines/${id}/snapshots`)).status, 201);
    const text = (await t.request('GET', '/metrics')).text;
    assert.equal(sample(text, 'hangar_machines', { state: 'running', template: 'base' }), 1);
    assert.equal(sample(text, 'hangar_operation_duration_seconds_count', { operation: 'create', outcome: 'ok' }), 1);
    assert.equal(sample(text, 'hangar_operation_duration_seconds_count', { operation: 'create', outcome: 'error' }), 1);
    assert.equal(sample(text, 'hangar_operation_failures_total', { operation: 'create', code: 'UNKNOWN_TEMPLATE' }), 1);
    assert.equal(sample(text, 'hangar_operation_duration_seconds_count', { operation: 'exec', outcome: 'ok' }), 1);
    if (memory) {
      assert.equal(sample(text, 'hangar_snapshots'), 1);
      assert.ok((sample(text, 'hangar_snapshot_bytes') ?? 0) > 0);
    }
    assert.equal(sample(text, 'hangar_http_request_duration_seconds_count', { method: 'POST', route: '/v1/machines/:id/exec', status: '200' }), 1);
    assert.ok(!text.includes(id), 'no series is labelled with a machine id');
    await t.request('DELETE', `/v1/machines/${id}`);
    const after = (await t.request('GET', '/metrics')).text;
    assert.equal(sample(after, 'hangar_machines', { state: 'running', template: 'base' }), null);
    assert.equal(sample(after, 'hangar_machines', { state: 'destroyed', template: 'base' }), 1);
    assert.equal(sample(after, 'hangar_operation_duration_seconds_count', { operation: 'delete', outcome: 'ok' }), 1);
  });

  it('warm pools: ready, hits and misses', async () => {
    assert.equal((await t.request('PUT', '/v1/warm-pools/mp', { body: { template: 'base', size: 1 } })).status, 200);
    for (let i = 0; i < 200 && (await t.request('GET', '/v1/warm-pools/mp')).body.ready < 1; i++) await new Promise((r) => setTimeout(r, 50));
    let text = (await t.request('GET', '/metrics')).text;
    assert.equal(sample(text, 'hangar_warm_pool_ready', { pool: 'mp', template: 'base' }), 1);
    const m = await t.request('POST', '/v1/machines', { body: {} });
    assert.equal(m.body.warm_pool_checkout.hit, true);
    text = (await t.request('GET', '/metrics')).text;
    assert.equal(sample(text, 'hangar_warm_pool_checkouts', { pool: 'mp', result: 'hit' }), 1);
    // Let the refill after the checkout finish before deleting the pool: the teardown then has nothing in flight.
    for (let i = 0; i < 400 && (await t.request('GET', '/v1/warm-pools/mp')).body.ready < 1; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal((await t.request('DELETE', '/v1/warm-pools/mp')).status, 204);
    await t.request('DELETE', `/v1/machines/${m.body.id}`);
  });
});
