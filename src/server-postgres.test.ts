/**
 * A real server with HANGAR_DATABASE_URL set keeps its state in PostgreSQL (a throwaway
 * server, testing/postgres-server.ts): the store it reports, a machine's life through the
 * API, and state that outlives a restart, with no SQLite file in the data dir.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startPostgres, type PostgresServer } from './testing/postgres-server.js';
import { TestServer } from './testing/harness.js';

describe('server on PostgreSQL (HANGAR_DATABASE_URL)', () => {
  let pg: PostgresServer;
  let t: TestServer | undefined;

  before(async () => {
    pg = await startPostgres();
    const database = await pg.createDatabase();
    t = await TestServer.start({ env: { HANGAR_DATABASE_URL: pg.url(database) } });
  });
  after(async () => {
    try {
      await t?.dispose();
    } finally {
      await pg?.stop();
    }
  });

  it('reports the postgres store, runs a machine, and keeps its state across a restart in the database only', async () => {
    const server = t!;
    const { key } = await server.newTeamKey('pg-team');
    const info = await server.request('GET', '/v1/info', { key });
    assert.equal(info.body.store, 'postgres');

    const created = await server.request('POST', '/v1/machines', { key, body: { metadata: { b: 1, a: [1, 'two'] } } });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.body.status, 'running');

    await server.restart();
    const listed = await server.request('GET', '/v1/machines?limit=10', { key });
    assert.equal(listed.status, 200, listed.text);
    assert.deepStrictEqual(listed.body.items.map((m: { id: string }) => m.id), [created.body.id]);
    assert.equal(JSON.stringify(listed.body.items[0].metadata), '{"b":1,"a":[1,"two"]}', 'metadata key order kept');
    assert.equal(listed.body.items[0].status, 'running', 're-adopted after the restart');
    assert.equal(existsSync(join(server.dataDir, 'hangar.db')), false, 'no SQLite file');

    const deleted = await server.request('DELETE', `/v1/machines/${created.body.id}`, { key });
    assert.ok(deleted.status < 300, deleted.text);
  });
});
