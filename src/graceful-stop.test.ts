/**
 * A bounded stop (`closeWithin`, what SIGTERM runs): it waits for an operation in flight
 * up to its bound, then abandons it and names it; the next start re-adopts the machine.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { closeWithin } from './server.js';
import { TestServer } from './testing/harness.js';

it('closeWithin: finishes when nothing is in flight; past the bound, abandons an operation and names it; the next start re-adopts', async () => {
  const t = await TestServer.start();
  const { teamId, key } = await t.newTeamKey('stop');
  const m = (await t.request('POST', '/v1/machines', { key, body: {} })).body;
  const team = await t.server.store.getTeam(teamId);
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  // A real machine operation that runs until the test lets it end.
  await t.server.operations.run({ team: team!, keyId: 'key_test', user: null, scope: { readOnly: false, machineId: null } }, m.id, 'stop', () => gate);
  assert.deepEqual(t.server.inFlight(), [`stop of ${m.id}`]);
  const stopped = await closeWithin(t.server, 200);
  assert.equal(stopped.finished, false);
  assert.deepEqual(stopped.abandoned, [`stop of ${m.id}`]);
  // The abandoned close goes on once the operation ends; a new server on the same data dir re-adopts.
  release();
  await stopped.closed;
  const next = await TestServer.start({ dataDir: t.dataDir });
  const again = await next.request('GET', `/v1/machines/${m.id}`, { key });
  assert.equal(again.body.status, 'running', again.text);
  assert.deepEqual(next.server.inFlight(), []);
  const clean = await closeWithin(next.server, 30_000);
  assert.deepEqual([clean.finished, clean.abandoned], [true, []]);
  const last = await TestServer.start({ dataDir: t.dataDir });
  await last.dispose();
});
