/**
 * SQLite busy (issue 14, the chaos run's other half): another connection holds the
 * database's write lock (`BEGIN IMMEDIATE`) while the store, then a real server, writes.
 * A write waits up to the busy timeout without stopping the event loop, then fails with
 * 503 STORE_BUSY having changed nothing; once the lock is released everything works.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { HangarError } from '../../domain/errors.js';
import { newMachineRecord } from '../../domain/machine.js';
import { TestServer } from '../../testing/harness.js';
import { SqliteStore } from './sqlite-store.js';

const team = (id: string) => ({ id, name: id, isAdmin: false, createdAt: 1 });

describe('SqliteStore while another process holds the write lock', () => {
  let dir: string;
  let store: SqliteStore;
  let other: Database.Database;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hangar-store-'));
    store = new SqliteStore({ path: join(dir, 'hangar.db'), busyTimeoutMs: 300 });
    other = new Database(join(dir, 'hangar.db'));
  });
  afterEach(async () => {
    if (other.inTransaction) other.exec('ROLLBACK');
    other.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a write waits its busy timeout, then rejects with STORE_BUSY and writes nothing; reads go on meanwhile', async () => {
    other.exec('BEGIN IMMEDIATE');
    const started = performance.now();
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 1);
    const write = store.insertTeam(team('team_busy'));
    // Answered while the write waits: reads need no lock in WAL mode, and the event loop is free.
    assert.equal(await store.getTeam('team_busy'), null);
    await assert.rejects(write, (err: unknown) => err instanceof HangarError && err.code === 'STORE_BUSY' && err.status === 503);
    clearInterval(ticker);
    assert.ok(performance.now() - started >= 300, 'waited the busy timeout');
    assert.ok(ticks > 0, 'timers ran while the write waited');
    other.exec('ROLLBACK');
    assert.equal(await store.getTeam('team_busy'), null, 'nothing was written');
    await store.insertTeam(team('team_busy'));
    assert.equal((await store.getTeam('team_busy'))?.name, 'team_busy');
  });

  it('a transaction that reads before it writes waits too, and succeeds once the lock is released', async () => {
    const m = newMachineRecord({ id: 'mch_busy000000000001', teamId: 'team_a', template: 'base', createdAt: 1, status: 'running', config: { vcpus: 1, memory_mb: 256, disk_mb: 512 }, metadata: {}, timeoutMs: 1000, startedAt: 1, outbound: { mode: 'allow' } });
    const slow = new SqliteStore({ path: join(dir, 'hangar.db'), busyTimeoutMs: 60_000 });
    try {
      other.exec('BEGIN IMMEDIATE');
      // A machine with a volume is inserted in one transaction that first checks the volume's holders.
      const insert = slow.insertMachine({ ...m, volumes: [{ volumeId: 'vol_x', mountPath: '/data', readOnly: true }] }).catch((err: unknown) => err);
      // Released once the insert has been refused at least once (it is waiting, not failed).
      await new Promise((resolve) => setTimeout(resolve, 50));
      other.exec('ROLLBACK');
      const outcome = await insert;
      // The volume does not exist: the transaction's own refusal, reached only once it could write.
      assert.ok(!(outcome instanceof HangarError), String(outcome));
    } finally {
      await slow.close();
    }
  });
});

describe('a server whose SQLite file another process holds locked', () => {
  let t: TestServer;
  let other: Database.Database;
  let id: string;
  before(async () => {
    t = await TestServer.start({ env: { HANGAR_SQLITE_BUSY_TIMEOUT_MS: '1000' } });
    const r = await t.request('POST', '/v1/machines', { body: {} });
    assert.equal(r.status, 201, r.text);
    id = r.body.id as string;
    other = new Database(t.server.settings.databasePath);
  });
  after(async () => {
    if (other.inTransaction) other.exec('ROLLBACK');
    other.close();
    await t.dispose();
  });

  it('answers each write 503 STORE_BUSY after the busy timeout, changes nothing, keeps answering reads, and works once released', async () => {
    const machines = async () =>
      ((await t.request('GET', '/v1/machines')).body as Array<Record<string, unknown>>).map(({ id, status, config, updated_at }) => ({ id, status, config, updated_at }));
    const machinesBefore = await machines();
    other.exec('BEGIN IMMEDIATE');
    try {
      const writes = [
        ['POST', '/v1/admin/teams', { name: 'while-locked' }],
        ['POST', '/v1/machines', {}],
        ['POST', `/v1/machines/${id}/pause`, undefined],
        ['PATCH', `/v1/machines/${id}`, { config: { memory_mb: 256 } }],
      ] as const;
      for (const [method, path, body] of writes) {
        const answer = t.request(method, path, { body });
        // Meanwhile the server answers: the wait does not block its event loop.
        assert.equal((await t.request('GET', '/healthz')).status, 200);
        assert.equal((await t.request('GET', `/v1/machines/${id}`)).body.status, 'running');
        const r = await answer;
        assert.equal(r.status, 503, `${method} ${path}: ${r.text}`);
        assert.equal(r.body.code, 'STORE_BUSY');
      }
    } finally {
      other.exec('ROLLBACK');
    }
    assert.deepEqual(await machines(), machinesBefore, 'no machine created or changed');
    assert.deepEqual((await t.request('GET', '/v1/admin/teams')).body.items.map((x: { name: string }) => x.name), ['admin']);
    assert.deepEqual((await t.request('GET', '/v1/snapshots')).body.items, []);
    assert.deepEqual([...(await t.server.runtime.list()).keys()], [id], 'no container of a refused create');
    // Released: every one of them works.
    assert.equal((await t.request('POST', '/v1/admin/teams', { body: { name: 'after' } })).status, 201);
    assert.equal((await t.request('PATCH', `/v1/machines/${id}`, { body: { config: { memory_mb: 256 } } })).body.config.memory_mb, 256);
    assert.equal((await t.request('POST', `/v1/machines/${id}/pause`)).body.status, 'paused');
    assert.equal((await t.request('POST', `/v1/machines/${id}/resume`)).body.status, 'running');
    assert.equal((await t.request('POST', '/v1/machines', { body: {} })).status, 201);
  });
});
