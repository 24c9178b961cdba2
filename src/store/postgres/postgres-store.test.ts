/**
 * The PostgreSQL store on a real, throwaway server (testing/postgres-server.ts): the shared
 * conformance suite, each test on a fresh database, plus database-level behaviour
 * (migrations and their lock, reopening, closing). Without PostgreSQL installed this fails.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import pg from 'pg';
import { HangarError } from '../../domain/errors.js';
import { newMachineRecord, type MachineRecord } from '../../domain/machine.js';
import { startPostgres, type PostgresServer } from '../../testing/postgres-server.js';
import { storeConformance } from '../store.conformance.js';
import { migrate, SchemaTooNewError } from './migrate.js';
import { SQLITE_MIGRATIONS } from '../sqlite/migrations.js';
import { POSTGRES_MIGRATIONS } from './migrations.js';
import { PostgresStore } from './postgres-store.js';
import { busyAsStoreBusy } from './busy.js';
import { createPool } from './connection.js';
import { PostgresMeta } from './meta.js';
import { AuthService } from '../../service/auth-service.js';

let server: PostgresServer;
/** A database migrated once, which each conformance test's fresh database copies (as quick as a new file). */
let migrated: string;

before(async () => {
  server = await startPostgres();
  migrated = await server.createDatabase();
  await (await PostgresStore.open({ url: server.url(migrated) })).close();
});
after(async () => {
  await server?.stop();
});

// Migrations from an empty database are the subject of 'PostgresStore on a database' below.
storeConformance('postgres (fresh database)', async () => {
  const database = await server.createDatabase(migrated);
  const store = await PostgresStore.open({ url: server.url(database) });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await server.dropDatabase(database);
    },
  };
});

const machine: MachineRecord = newMachineRecord({
  id: 'mch_persist000000001',
  teamId: 'team_a',
  template: 'base',
  createdAt: 1_700_000_000_000,
  status: 'running',
  config: { vcpus: 1, memory_mb: 512, disk_mb: 1024 },
  metadata: { b: 1, a: { y: 2, x: 1 } },
  timeoutMs: 300_000,
  timeoutAt: 1_700_000_300_000,
  startedAt: 1_700_000_000_001,
  deadlineAt: 1_700_000_300_000,
  outbound: { mode: 'allow' },
});

describe('PostgresStore on a database', () => {
  let database: string;
  let url: string;
  const opened: PostgresStore[] = [];
  const raw = async <T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query<T>(sql, params)).rows;
    } finally {
      await client.end();
    }
  };
  const open = async (): Promise<PostgresStore> => {
    const store = await PostgresStore.open({ url });
    opened.push(store);
    return store;
  };

  beforeEach(async () => {
    for (const s of opened.splice(0)) await s.close();
    database = await server.createDatabase();
    url = server.url(database);
  });
  after(async () => {
    for (const s of opened.splice(0)) await s.close();
  });

  it('reopening keeps the data and does not re-apply migrations', async () => {
    const first = await open();
    await first.insertMachine(machine);
    await first.putMetaIfAbsent('server_secret', 'abc');
    await first.close();
    // A re-applied first migration would fail on CREATE TABLE; a wiped one would lose the rows.
    const second = await open();
    assert.deepStrictEqual(await second.getMachine(machine.id), machine);
    assert.equal(await second.putMetaIfAbsent('server_secret', 'other'), 'abc');
    const versions = await raw<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
    assert.deepStrictEqual(versions.map((v) => v.version), POSTGRES_MIGRATIONS.map((_, i) => i + 1));
  });

  it('a database at an older schema version is migrated forward, keeping its rows', async () => {
    const pool = new pg.Pool({ connectionString: url });
    try {
      assert.deepStrictEqual(await migrate(pool, POSTGRES_MIGRATIONS.slice(0, 1)), [1]);
      await pool.query("INSERT INTO meta (key, value) VALUES ('server_secret', 'kept')");
    } finally {
      await pool.end();
    }
    const store = await open();
    assert.equal(await store.getMeta('server_secret'), 'kept');
    const [latest] = await raw<{ version: number }>('SELECT max(version) AS version FROM schema_migrations');
    assert.equal(latest?.version, POSTGRES_MIGRATIONS.length);
  });

  it('stores opening at once on an empty database migrate once, one after the other', async () => {
    const stores = await Promise.all(Array.from({ length: 4 }, () => open()));
    const versions = await raw<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
    assert.deepStrictEqual(versions.map((v) => v.version), POSTGRES_MIGRATIONS.map((_, i) => i + 1));
    await stores[0]!.insertMachine(machine);
    for (const s of stores) assert.equal((await s.getMachine(machine.id))?.id, machine.id);
  });

  it('servers starting at once with one bootstrap key each find it there (one key, one admin team)', async () => {
    const stores = await Promise.all(Array.from({ length: 4 }, () => open()));
    for (let round = 0; round < 3; round++) {
      await raw('DELETE FROM api_keys');
      await raw('DELETE FROM teams');
      const results = await Promise.allSettled(stores.map((s) => new AuthService(s).bootstrap(`bootstrap-key-${round}-0123456789`, Date.now())));
      assert.deepStrictEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled'], JSON.stringify(results));
      assert.deepStrictEqual((await raw<{ n: string }>('SELECT count(*) AS n FROM api_keys'))[0]?.n, '1');
      assert.deepStrictEqual((await raw<{ n: string }>('SELECT count(*) AS n FROM teams'))[0]?.n, '1');
    }
  });

  it('a failed migration leaves the schema as it was and the error surfaces', async () => {
    const pool = new pg.Pool({ connectionString: url });
    try {
      await assert.rejects(migrate(pool, [...POSTGRES_MIGRATIONS, 'CREATE TABLE broken (x nosuchtype)']), /nosuchtype/);
      const tables = await raw<{ n: number }>("SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name IN ('machines', 'schema_migrations')");
      assert.equal(tables[0]?.n, 0, 'everything rolled back, the first migrations included');
    } finally {
      await pool.end();
    }
  });

  it('a database migrated by a newer Hangar is refused', async () => {
    const pool = new pg.Pool({ connectionString: url });
    try {
      await migrate(pool, [...POSTGRES_MIGRATIONS, 'CREATE TABLE from_the_future (x int)']);
    } finally {
      await pool.end();
    }
    await assert.rejects(PostgresStore.open({ url }), (err: unknown) => err instanceof SchemaTooNewError && err.databaseVersion === POSTGRES_MIGRATIONS.length + 1);
  });

  it('names compare by bytes whatever the database collation (here ICU en-US)', async () => {
    const store = await open();
    const [collation] = await raw<{ provider: string }>('SELECT datlocprovider AS provider FROM pg_database WHERE datname = current_database()');
    if (server.majorVersion >= 15) assert.equal(collation?.provider, 'i', 'the test database uses an ICU collation');
    // ICU would put these in another order ('~' and '!' ignored at first, 'A' beside 'a').
    const ids = ['mch_b', 'mch_a~1', 'mch_aa', 'mch_a', 'mch_A', 'mch_!'];
    for (const id of ids) await store.insertMachine({ ...machine, id });
    const listed = await store.listMachines({ teamId: 'team_a', statuses: ['running'] });
    assert.deepStrictEqual(listed.map((m) => m.id), ['mch_b', 'mch_a~1', 'mch_aa', 'mch_a', 'mch_A', 'mch_!']);
    assert.deepStrictEqual(listed.map((m) => m.id), [...ids].sort().reverse());
  });

  it('has every table and column the SQLite store has, and text columns are all COLLATE "C"', async () => {
    // A part added to the SQLite store and forgotten here fails this before any conformance case.
    await open();
    const sqlite = new Database(':memory:');
    const want = new Set<string>();
    try {
      for (const sql of SQLITE_MIGRATIONS) sqlite.exec(sql);
      const tables = sqlite.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").all();
      for (const { name } of tables) {
        for (const c of sqlite.prepare<[], { name: string }>(`SELECT name FROM pragma_table_info('${name}')`).all()) want.add(`${name}.${c.name}`);
      }
    } finally {
      sqlite.close();
    }
    const columns = await raw<{ column: string; type: string; collation: string | null }>(
      "SELECT table_name || '.' || column_name AS column, data_type AS type, collation_name AS collation FROM information_schema.columns WHERE table_schema = current_schema()",
    );
    assert.ok(want.size > 50, `SQLite's columns were read (${want.size})`);
    const have = new Set(columns.map((c) => c.column));
    assert.deepStrictEqual([...want].filter((c) => !have.has(c)).sort(), [], 'columns missing in PostgreSQL');
    const notC = columns.filter((c) => c.type === 'text' && c.collation !== 'C').map((c) => c.column);
    assert.deepStrictEqual(notC, [], 'text columns without COLLATE "C"');
  });

  it('a database not in UTF8 is refused with the reason', async () => {
    const ascii = `${database}_ascii`;
    await server.adminQuery(`CREATE DATABASE ${ascii} ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0${server.majorVersion >= 15 ? " LOCALE_PROVIDER 'libc'" : ''}`);
    try {
      await assert.rejects(PostgresStore.open({ url: server.url(ascii) }), /encoding is SQL_ASCII; Hangar needs UTF8/);
    } finally {
      await server.dropDatabase(ascii);
    }
  });

  it('hangar_utf16_order sorts any text as JavaScript does (UTF-16 code units), by bytes', async () => {
    await open();
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    try {
      // Code points from every range whose order differs between UTF-8 and UTF-16, and the escapes' own characters.
      const codePoint = fc.oneof(
        fc.integer({ min: 1, max: 0x7f }),
        fc.integer({ min: 0x80, max: 0xd7ff }),
        fc.integer({ min: 0xe000, max: 0xffff }),
        fc.integer({ min: 0x10000, max: 0x10ffff }),
        fc.constantFrom(1, 0xe000, 0xfffd, 0xffff, 0x10000, 0x10fffe, 0x10ffff),
      );
      const text = fc.array(codePoint, { maxLength: 6 }).map((cps) => String.fromCodePoint(...cps));
      await fc.assert(
        fc.asyncProperty(fc.array(text, { minLength: 2, maxLength: 12 }), async (strings) => {
          const { rows } = await pool.query<{ s: string }>(
            'SELECT s FROM unnest($1::text[]) AS t(s) ORDER BY hangar_utf16_order(s) COLLATE "C"',
            [strings],
          );
          assert.deepStrictEqual(rows.map((r) => r.s), [...strings].sort());
        }),
        { numRuns: 300 },
      );
    } finally {
      await pool.end();
    }
  });

  it('close is idempotent, and a closed store refuses every call', async () => {
    const store = await open();
    await store.putMetaIfAbsent('k', 'v');
    await store.close();
    await assert.doesNotReject(store.close(), 'a second close');
    const calls: [string, () => Promise<unknown>][] = [
      ['getMeta', () => store.getMeta('k')],
      ['insertMachine', () => store.insertMachine(machine)],
      ['insertVolume', () => store.insertVolume({ id: 'vol_x', teamId: 'team_a', name: 'x', sizeMb: 16, createdAt: 0 }, 10)],
      ['pageMachines', () => store.pageMachines({ teamId: 'team_a', statuses: ['running'], order: { by: 'displayName' }, direction: 'asc', limit: 1 })],
      ['claimPoolMachine', () => store.claimPoolMachine('p', 'team_a')],
    ];
    for (const [name, call] of calls) await assert.rejects(call(), /after calling end|ended/i, name);
    const again = await open();
    assert.equal(await again.getMeta('k'), 'v');
  });

  it('a write that waits on another session\'s lock fails with STORE_BUSY after the busy timeout, changing nothing; reads go on; then it works', async () => {
    const store = await PostgresStore.open({ url, busyTimeoutMs: 300 });
    opened.push(store);
    const other = new pg.Client({ connectionString: url });
    await other.connect();
    try {
      // EXCLUSIVE allows reads (ACCESS SHARE) and blocks every write.
      await other.query('BEGIN');
      await other.query('LOCK TABLE teams IN EXCLUSIVE MODE');
      const started = performance.now();
      const write = store.insertTeam({ id: 'team_busy', name: 'busy', isAdmin: false, createdAt: 1 });
      assert.equal(await store.getTeam('team_busy'), null, 'a read is answered while the write waits');
      await assert.rejects(write, (err: unknown) => err instanceof HangarError && err.code === 'STORE_BUSY' && err.status === 503);
      const waited = performance.now() - started;
      assert.ok(waited >= 290, `waited the busy timeout (${waited} ms)`);
      // A transaction (a machine with its volume check) is rolled back whole.
      await other.query('LOCK TABLE machines IN EXCLUSIVE MODE');
      await assert.rejects(store.insertMachine(machine), (err: unknown) => err instanceof HangarError && err.code === 'STORE_BUSY');
      await other.query('ROLLBACK');
      assert.equal(await store.getTeam('team_busy'), null, 'nothing was written');
      assert.equal(await store.getMachine(machine.id), null);
      await store.insertTeam({ id: 'team_busy', name: 'busy', isAdmin: false, createdAt: 1 });
      await store.insertMachine(machine);
      assert.equal((await store.getTeam('team_busy'))?.name, 'busy');
      assert.deepStrictEqual(await store.getMachine(machine.id), machine);
    } finally {
      await other.end();
    }
  });

  it('a call that finds every pooled connection held fails with STORE_BUSY after the busy timeout', async () => {
    await open(); // migrated
    const pool = createPool({ url, max: 1, busyTimeoutMs: 200 });
    const meta = busyAsStoreBusy(new PostgresMeta(pool), 200);
    let held: pg.PoolClient | null = await pool.connect();
    try {
      const started = performance.now();
      await assert.rejects(meta.getMeta('k'), (err: unknown) => err instanceof HangarError && err.code === 'STORE_BUSY');
      assert.ok(performance.now() - started >= 190, 'waited the busy timeout');
      held.release();
      held = null;
      assert.equal(await meta.getMeta('k'), null, 'the pool works again once a connection is free');
    } finally {
      held?.release();
      await pool.end();
    }
  });
});
