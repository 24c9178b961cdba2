/**
 * Servers over one PostgreSQL hear of a host's change at once (LISTEN/NOTIFY on the
 * `hangar_hosts` channel, migration 11's triggers), not at their next heartbeat: here the
 * heartbeat is a minute, longer than the test, so only a notification can tell host A that
 * host B registered, is draining, stopped; and after its listening connection is cut, A
 * listens again and still hears.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { TestServer, waitFor } from './testing/harness.js';
import { startPostgres, type PostgresServer } from './testing/postgres-server.js';

const quiet = (databaseUrl: string, hostId: string, capacity: number): Record<string, string> => ({
  HANGAR_DATABASE_URL: databaseUrl,
  HANGAR_HOST_ID: hostId,
  HANGAR_HOST_CAPACITY: String(capacity),
  HANGAR_HEARTBEAT_MS: '60000',
  HANGAR_HOST_DOWN_AFTER_MS: '600000',
});

describe('host changes reach every server at once over LISTEN/NOTIFY', () => {
  let server: PostgresServer;
  let url: string;
  let a: TestServer | undefined;
  let b: TestServer | undefined;

  before(async () => {
    server = await startPostgres();
    url = server.url(await server.createDatabase());
    // A is an API server (capacity 0): it places every create on a host it knows.
    a = await TestServer.start({ env: quiet(url, 'wake-a', 0) });
  });
  after(async () => {
    try {
      await b?.dispose();
      await a?.dispose();
    } finally {
      await server?.stop();
    }
  });

  it('registering, draining and stopping a host reach the other server without a heartbeat, also after its connection is cut', async () => {
    const hosts = a!.server.hosts;
    assert.equal(hosts.targetOf('wake-b'), null);
    assert.equal(await hosts.place(), null, 'A knows no host to place on');

    b = await TestServer.start({ env: quiet(url, 'wake-b', 10) });
    await waitFor(async () => hosts.targetOf('wake-b') !== null, 10_000);
    assert.equal((await hosts.place())?.hostId, 'wake-b', 'A places on the host it just heard of');

    const drained = await b.request('POST', '/v1/admin/hosts/wake-b/drain');
    assert.equal(drained.status, 200, drained.text);
    await waitFor(async () => (await hosts.place()) === null, 10_000);

    // The listening connection dies (a restarted database, a proxy's timeout): A listens again and hears the undrain.
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      const cut = await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()");
      assert.ok(cut.rowCount! >= 2, 'each server listens on a connection of its own');
    } finally {
      await admin.end();
    }
    assert.equal((await b.request('DELETE', '/v1/admin/hosts/wake-b/drain')).body.state, 'up');
    await waitFor(async () => (await hosts.place())?.hostId === 'wake-b', 10_000);

    // B stops cleanly: A stops sending it anything.
    await b.dispose();
    b = undefined;
    await waitFor(async () => hosts.targetOf('wake-b') === null, 10_000);
  });
});
