/**
 * Scoped and rotated API keys (issue 14) on a real server: a read-only key reads and
 * changes nothing, a key of one machine reaches that machine's routes only (terminal
 * included) and nothing else, neither has the E2B surface, a key issued with an expiry
 * or rotated stops at its time, and a rotation's new key keeps the scope.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { TestServer, type TestResponse } from '../../testing/harness.js';

type Json = Record<string, any>;

function forbidden(r: TestResponse, mentions: string): void {
  assert.equal(r.status, 403, r.text);
  assert.equal(r.body.code, 'FORBIDDEN', r.text);
  assert.ok(r.body.message.includes(mentions), r.text);
}

describe('API key scopes and rotation', () => {
  let t: TestServer;
  let teamId: string;
  let full: string;
  let mine: Json;
  let other: Json;

  const issue = async (body: Json): Promise<Json> => {
    const r = await t.request('POST', `/v1/admin/teams/${teamId}/keys`, { body });
    assert.equal(r.status, 201, r.text);
    return r.body;
  };
  const wsStatus = (path: string, k: string): Promise<number> =>
    new Promise((resolve) => {
      const ws = new WebSocket(`${t.url.replace('http', 'ws')}${path}`, { headers: { authorization: `Bearer ${k}` } });
      ws.on('open', () => (ws.close(), resolve(101)));
      ws.on('unexpected-response', (_req, res) => (res.resume(), resolve(res.statusCode ?? 0)));
      ws.on('error', () => resolve(0));
    });

  before(async () => {
    t = await TestServer.start();
    ({ teamId, key: full } = await t.newTeamKey('scopes'));
    mine = (await t.request('POST', '/v1/machines', { key: full, body: {} })).body;
    other = (await t.request('POST', '/v1/machines', { key: full, body: {} })).body;
  });
  after(async () => {
    await t.dispose();
  });

  it('a read-only key reads everything its team reaches and changes nothing', async () => {
    const k = await issue({ name: 'dashboard', read_only: true });
    assert.deepEqual([k.read_only, k.machine_id, k.expires_at], [true, null, null]);
    const ro = k.key as string;
    assert.equal((await t.request('GET', '/v1/machines', { key: ro })).body.length, 2);
    assert.equal((await t.request('GET', `/v1/machines/${mine.id}`, { key: ro })).status, 200);
    assert.equal((await t.request('GET', `/v1/machines/${mine.id}/files/list?path=/`, { key: ro })).status, 200);
    assert.equal((await t.request('GET', '/paperspace/v1/machines', { key: ro })).status, 200);
    const before = (await t.request('GET', '/v1/machines', { key: full })).body.length;
    forbidden(await t.request('POST', '/v1/machines', { key: ro, body: {} }), 'read-only');
    forbidden(await t.request('POST', `/v1/machines/${mine.id}/exec`, { key: ro, body: { cmd: ['true'] } }), 'read-only');
    forbidden(await t.request('DELETE', `/v1/machines/${mine.id}`, { key: ro }), 'read-only');
    forbidden(await t.request('PATCH', `/paperspace/v1/machines/${mine.id}/stop`, { key: ro }), 'read-only');
    assert.equal(await wsStatus(`/v1/machines/${mine.id}/pty`, ro), 403);
    const e2b = await t.request('GET', '/v2/sandboxes', { key: null, headers: { 'x-api-key': ro } });
    assert.equal(e2b.status, 403, e2b.text);
    assert.equal((await t.request('GET', '/v1/machines', { key: full })).body.length, before);
    assert.equal((await t.request('GET', `/v1/machines/${mine.id}`, { key: full })).body.status, 'running');
  });

  it('a key of one machine reaches that machine only, through its own routes', async () => {
    const k = await issue({ name: 'agent', machine_id: mine.id });
    assert.equal(k.machine_id, mine.id);
    const one = k.key as string;
    const ran = await t.request('POST', `/v1/machines/${mine.id}/exec`, { key: one, body: { cmd: ['echo', 'ok'] } });
    assert.equal(ran.status, 200, ran.text);
    assert.equal(ran.body.stdout, 'ok\n');
    assert.equal((await t.request('GET', `/v1/machines/${mine.id}`, { key: one })).status, 200);
    assert.equal((await t.request('GET', `/paperspace/v1/machines/${mine.id}`, { key: one })).status, 200);
    assert.equal(await wsStatus(`/v1/machines/${mine.id}/pty`, one), 101);
    forbidden(await t.request('GET', `/v1/machines/${other.id}`, { key: one }), mine.id);
    forbidden(await t.request('POST', `/v1/machines/${other.id}/exec`, { key: one, body: { cmd: ['true'] } }), mine.id);
    forbidden(await t.request('GET', '/v1/machines', { key: one }), mine.id);
    forbidden(await t.request('POST', '/v1/machines', { key: one, body: {} }), mine.id);
    forbidden(await t.request('GET', '/v1/volumes', { key: one }), mine.id);
    assert.equal(await wsStatus(`/v1/machines/${other.id}/pty`, one), 403);
    const e2b = await t.request('GET', `/sandboxes/${mine.id}`, { key: null, headers: { 'x-api-key': one } });
    assert.equal(e2b.status, 403, e2b.text);
    // Only a live machine of the key's team can be named.
    const strangerTeam = await t.newTeamKey('stranger');
    const theirs = (await t.request('POST', '/v1/machines', { key: strangerTeam.key, body: {} })).body;
    for (const machine_id of [theirs.id, 'mch_nobody']) {
      const r = await t.request('POST', `/v1/admin/teams/${teamId}/keys`, { body: { machine_id } });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.body.code, 'VALIDATION_FAILED');
    }
  });

  it('rotation: a new key with the same scope at once, the old one until the overlap ends; expired keys are refused', async () => {
    const k = await issue({ name: 'ci', read_only: true });
    const r = await t.request('POST', `/v1/admin/keys/${k.id}/rotate`, { body: { overlap_s: 3600 } });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual([r.body.key.name, r.body.key.read_only, r.body.key.team_id], ['ci', true, teamId]);
    assert.notEqual(r.body.key.id, k.id);
    const until = Date.parse(r.body.previous.expires_at);
    assert.ok(until > Date.now() + 3_500_000 && until <= Date.now() + 3_600_000, r.body.previous.expires_at);
    // Both work during the overlap.
    for (const key of [k.key, r.body.key.key]) assert.equal((await t.request('GET', '/v1/machines', { key })).status, 200);
    // A rotation with no overlap ends the old key at once.
    const again = await t.request('POST', `/v1/admin/keys/${r.body.key.id}/rotate`, { body: { overlap_s: 0 } });
    assert.equal(again.status, 201, again.text);
    const gone = await t.request('GET', '/v1/machines', { key: r.body.key.key });
    assert.equal(gone.status, 401, gone.text);
    assert.match(gone.body.message, /expired/);
    assert.equal((await t.request('GET', '/v1/machines', { key: again.body.key.key })).status, 200);
    // An expired key cannot be rotated again; nor can an unknown one.
    assert.equal((await t.request('POST', `/v1/admin/keys/${r.body.key.id}/rotate`, { body: {} })).status, 404);
    assert.equal((await t.request('POST', '/v1/admin/keys/key_nobody/rotate', { body: {} })).status, 404);
    // The key list shows the expiry; only admins rotate.
    const listed = (await t.request('GET', `/v1/admin/teams/${teamId}/keys`)).body.items.find((x: Json) => x.id === k.id);
    assert.equal(listed.expires_at, r.body.previous.expires_at);
    assert.equal((await t.request('POST', `/v1/admin/keys/${again.body.key.id}/rotate`, { key: full, body: {} })).status, 403);
    // A key issued with an expiry carries it.
    const brief = await issue({ name: 'brief', expires_in_s: 60 });
    const expires = Date.parse(brief.expires_at);
    assert.ok(expires > Date.now() + 50_000 && expires <= Date.now() + 60_000);
    assert.equal((await t.request('GET', '/v1/machines', { key: brief.key })).status, 200);
  });
});
