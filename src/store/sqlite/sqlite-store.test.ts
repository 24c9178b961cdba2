/** The SQLite store: the shared conformance suite, plus file-level behaviour (reopen, migrations, WAL). */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { newMachineRecord, type MachineRecord } from '../../domain/machine.js';
import { storeConformance } from '../store.conformance.js';
import { SQLITE_MIGRATIONS } from './migrations.js';
import { SqliteStore } from './sqlite-store.js';

storeConformance('sqlite (temp file)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hangar-store-'));
  const store = new SqliteStore({ path: join(dir, 'hangar.db') });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
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

describe('SqliteStore on a file', () => {
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hangar-store-'));
    file = join(dir, 'hangar.db');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reopening the same file keeps the data and does not re-apply migrations', async () => {
    const first = new SqliteStore({ path: file });
    await first.insertMachine(machine);
    await first.putMetaIfAbsent('server_secret', 'abc');
    await first.close();

    // A re-applied first migration would fail on CREATE TABLE; a wiped one would lose the rows.
    const second = new SqliteStore({ path: file });
    try {
      assert.deepStrictEqual(await second.getMachine(machine.id), machine);
      assert.equal(await second.putMetaIfAbsent('server_secret', 'other'), 'abc');
    } finally {
      await second.close();
    }
    const raw = new Database(file, { readonly: true });
    try {
      assert.equal(raw.pragma('user_version', { simple: true }), SQLITE_MIGRATIONS.length);
    } finally {
      raw.close();
    }
  });

  it('a database at an older schema version is migrated forward, keeping its rows', async () => {
    const raw = new Database(file);
    raw.exec(SQLITE_MIGRATIONS[0]!);
    raw.pragma('user_version = 1');
    raw.prepare("INSERT INTO meta (key, value) VALUES ('server_secret', 'kept')").run();
    raw.close();

    const store = new SqliteStore({ path: file });
    try {
      assert.equal(await store.getMeta('server_secret'), 'kept');
      // resumed_at (migration 2) must exist now.
      await store.insertMachine({ ...machine, resumedAt: 1_700_000_000_500 });
      assert.equal((await store.getMachine(machine.id))?.resumedAt, 1_700_000_000_500);
    } finally {
      await store.close();
    }
    const check = new Database(file, { readonly: true });
    try {
      assert.equal(check.pragma('user_version', { simple: true }), SQLITE_MIGRATIONS.length);
    } finally {
      check.close();
    }
  });

  it('the file is in WAL mode', async () => {
    const store = new SqliteStore({ path: file });
    await store.close();
    const raw = new Database(file, { readonly: true });
    try {
      assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
    } finally {
      raw.close();
    }
  });

  it('close is idempotent, and a closed store refuses every call', async () => {
    const store = new SqliteStore({ path: file });
    await store.putMetaIfAbsent('k', 'v');
    await store.close();
    await assert.doesNotReject(store.close(), 'a second close');
    // Each part prepared its statements on the one connection: all of them must see it closed.
    const calls: [string, () => Promise<unknown>][] = [
      ['getMeta', () => store.getMeta('k')],
      ['listTeams', () => store.listTeams()],
      ['insertMachine', () => store.insertMachine(machine)],
      ['listMachines', () => store.listMachines({ teamId: 'team_a', statuses: ['running'] })],
      ['pageMachines', () => store.pageMachines({ teamId: 'team_a', statuses: ['running'], order: { by: 'displayName' }, direction: 'asc', limit: 1 })],
      ['listSnapshots', () => store.listSnapshots('team_a')],
      ['listWarmPools', () => store.listWarmPools()],
      ['listMachineEvents', () => store.listMachineEvents({ teamId: 'team_a', order: 'asc' })],
      ['getIdempotency', () => store.getIdempotency('team_a', 'k')],
    ];
    for (const [name, call] of calls) await assert.rejects(call(), /not open/, name);
    await assert.doesNotReject(store.close(), 'close after refused calls');
    // Closing wrote nothing away: the file opens again with the value.
    const again = new SqliteStore({ path: file });
    try {
      assert.equal(await again.getMeta('k'), 'v');
    } finally {
      await again.close();
    }
  });
});
