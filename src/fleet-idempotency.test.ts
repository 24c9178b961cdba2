/**
 * One Idempotency-Key sent to two hosts of a fleet at once (as two API servers may forward a
 * client's retries): both answer with one machine, and no other is left behind. Each request
 * carries X-Hangar-Forwarded-By, so each host creates locally, racing the other for the key.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestServer } from './testing/harness.js';
import { startPostgres, type PostgresServer } from './testing/postgres-server.js';

const host = (databaseUrl: string, hostId: string): Record<string, string> => ({
  HANGAR_DATABASE_URL: databaseUrl,
  HANGAR_HOST_ID: hostId,
  HANGAR_HOST_CAPACITY: '10',
});

describe('an Idempotency-Key raced on two hosts', () => {
  let server: PostgresServer;
  let a: TestServer | undefined;
  let b: TestServer | undefined;

  before(async () => {
    server = await startPostgres();
    const url = server.url(await server.createDatabase());
    a = await TestServer.start({ env: host(url, 'race-a') });
    b = await TestServer.start({ env: host(url, 'race-b') });
  });
  after(async () => {
    try {
      await a?.dispose();
      await b?.dispose();
    } finally {
      await server?.stop();
    }
  });

  it('both hosts answer with the one machine that won the key; the other is removed', async () => {
    const store = a!.server.store;
    for (let round = 0; round < 4; round++) {
      const create = (t: TestServer) =>
        t.request('POST', '/v1/machines', { body: { metadata: { round } }, headers: { 'idempotency-key': `race-${round}`, 'x-hangar-forwarded-by': 'test' } });
      const [fromA, fromB] = await Promise.all([create(a!), create(b!)]);
      assert.equal(fromA.status, 201, fromA.text);
      assert.equal(fromB.status, 201, fromB.text);
      assert.equal(fromA.body.id, fromB.body.id, `round ${round}: two machines for one key`);
      assert.equal(fromA.body.status, 'running');
      assert.equal(fromB.body.status, 'running');
      const tagged = (await store.machinesInStatus(['creating', 'running', 'paused', 'error'])).filter((m) => m.metadata.round === round);
      assert.deepEqual(tagged.map((m) => m.id), [fromA.body.id], `round ${round}: a machine was left behind`);
    }
    // Each host runs only what its store rows say it runs: the loser's container (never started) is not left.
    for (const t of [a!, b!]) {
      const mine = (await store.machinesInStatus(['running'], t.server.settings.fleet.hostId)).map((m) => m.id).sort();
      assert.deepEqual([...(await t.server.runtime.list()).keys()].sort(), mine);
    }
  });
});
