/** MachineOperations on a real SQLite store: event progression, one operation per machine, paging, drain. */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { HangarError } from '../domain/errors.js';
import type { Caller } from '../domain/team.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import { MachineOperations } from './machine-operations.js';
import { ServerSecret } from './secrets.js';

const caller = (teamId: string): Caller => ({ team: { id: teamId, name: teamId, isAdmin: false, createdAt: 0 }, keyId: 'key_x', user: null, scope: { readOnly: false, machineId: null } });
const A = caller('team_a');
const B = caller('team_b');
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** A promise settled from outside. */
function gate(): { promise: Promise<void>; open: () => void; fail: (e: Error) => void } {
  let open!: () => void;
  let fail!: (e: Error) => void;
  const promise = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

const isCode = (code: string) => (e: unknown) => e instanceof HangarError && e.code === code;

describe('MachineOperations', () => {
  let store: SqliteStore;
  let ops: MachineOperations;
  let clock: number;

  beforeEach(async () => {
    store = new SqliteStore({ path: ':memory:' });
    clock = 1_000;
    ops = new MachineOperations({ store, secret: await ServerSecret.load(store), log: silent, now: () => clock++ });
  });
  afterEach(async () => {
    await ops.drain();
    await store.close();
  });

  const until = async (id: string, state: string) => {
    for (let i = 0; i < 1000; i++) {
      const e = await store.getMachineEvent(id);
      if (e?.state === state) return e;
      await new Promise((r) => setImmediate(r));
    }
    throw new Error(`event ${id} never reached ${state}`);
  };

  it('run: new, then in progress while the work runs, then done; the machine is busy meanwhile', async () => {
    const g = gate();
    const e = await ops.run(A, 'mch_1', 'stop', () => g.promise);
    assert.equal(e.state, 'new');
    assert.equal(e.startedAt, null);
    const running = await until(e.id, 'in progress');
    assert.ok(running.startedAt !== null && running.startedAt >= e.createdAt);
    assert.equal(ops.inFlight('mch_1'), 'stop');
    await assert.rejects(ops.run(A, 'mch_1', 'restart', async () => undefined), isCode('STATE_CONFLICT'));
    await assert.rejects(ops.runNow(A, 'mch_1', 'update', async () => undefined), isCode('STATE_CONFLICT'));
    g.open();
    const done = await until(e.id, 'done');
    assert.ok(done.finishedAt !== null && done.finishedAt >= done.startedAt!);
    assert.equal(done.error, null);
    assert.equal(ops.inFlight('mch_1'), undefined);
    // The refused operations recorded nothing.
    assert.equal((await store.listMachineEvents({ teamId: 'team_a', order: 'asc' })).length, 1);
  });

  it('run: a failure ends the event in error with the message, and frees the machine', async () => {
    const e = await ops.run(A, 'mch_1', 'start', async () => {
      throw new HangarError('RESTORE_FAILED', 'Machine mch_1 could not be resumed (damaged).');
    });
    const failed = await until(e.id, 'error');
    assert.equal(failed.error, 'Machine mch_1 could not be resumed (damaged).');
    assert.ok(failed.finishedAt !== null);
    assert.equal(ops.inFlight('mch_1'), undefined);
  });

  it('runNow: the event is finished when the call returns', async () => {
    const { result, event } = await ops.runNow(A, 'mch_1', 'update', async () => 42);
    assert.equal(result, 42);
    assert.equal(event.state, 'done');
    assert.deepEqual(await store.getMachineEvent(event.id), event);
    await assert.rejects(ops.runNow(A, 'mch_1', 'update', async () => Promise.reject(new Error('nope'))), /nope/);
    const [, second] = await store.listMachineEvents({ teamId: 'team_a', order: 'asc' });
    assert.equal(second?.state, 'error');
    assert.equal(second?.error, 'nope');
  });

  it('follow: work already under way is recorded in progress and followed to its end', async () => {
    const g = gate();
    const e = await ops.follow(A, 'mch_2', 'create', 500, g.promise);
    assert.equal(e.state, 'in progress');
    assert.equal(e.createdAt, 500);
    assert.equal(ops.inFlight('mch_2'), 'create');
    g.fail(new Error('runc failed'));
    const failed = await until(e.id, 'error');
    assert.equal(failed.error, 'runc failed');
  });

  it('drain waits for operations in flight, then refuses new ones but still records work under way', async () => {
    const g = gate();
    const e = await ops.run(A, 'mch_1', 'stop', () => g.promise);
    let drained = false;
    const draining = ops.drain().then(() => (drained = true));
    await until(e.id, 'in progress');
    assert.equal(drained, false);
    await assert.rejects(ops.run(A, 'mch_3', 'stop', async () => undefined), isCode('NOT_READY'));
    const late = gate();
    const followed = await ops.follow(A, 'mch_4', 'create', clock, late.promise);
    g.open();
    late.open();
    await draining;
    assert.equal((await store.getMachineEvent(e.id))?.state, 'done');
    assert.equal((await store.getMachineEvent(followed.id))?.state, 'done');
  });

  it('get and list are per team; list pages in both orders with signed cursors', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await ops.runNow(A, `mch_${i % 2}`, 'update', async () => undefined)).event.id);
    await ops.runNow(B, 'mch_b', 'update', async () => undefined);
    await assert.rejects(ops.get(B, ids[0]!), isCode('NOT_FOUND'));
    assert.equal((await ops.get(A, ids[0]!)).id, ids[0]);
    for (const order of ['asc', 'desc'] as const) {
      const seen: string[] = [];
      let after: string | undefined;
      for (;;) {
        const page = await ops.list(A, { order, limit: 2, after });
        seen.push(...page.items.map((e) => e.id));
        if (!page.hasMore) {
          assert.equal(page.nextPage, null);
          break;
        }
        after = page.nextPage!;
      }
      assert.deepEqual(seen, order === 'asc' ? ids : [...ids].reverse());
    }
    const one = await ops.list(A, { order: 'asc', limit: 10, machineId: 'mch_1' });
    assert.deepEqual(one.items.map((e) => e.id), [ids[1], ids[3]]);
    const first = await ops.list(A, { order: 'asc', limit: 1 });
    await assert.rejects(ops.list(B, { order: 'asc', limit: 1, after: first.nextPage! }), isCode('INVALID_NEXT_TOKEN'));
    await assert.rejects(ops.list(A, { order: 'desc', limit: 1, after: first.nextPage! }), isCode('INVALID_NEXT_TOKEN'));
  });

  it('record: an operation run elsewhere is recorded while it runs, unless it is part of one recorded here', async () => {
    assert.equal(await ops.record('team_a', 'mch_5', 'delete', async () => 'ok'), 'ok');
    await assert.rejects(ops.record('team_a', 'mch_5', 'start', async () => Promise.reject(new Error('restore failed'))), /restore failed/);
    const inner = await ops.runNow(A, 'mch_6', 'update', () => ops.record('team_a', 'mch_6', 'update', async () => 'nested'));
    assert.equal(inner.result, 'nested');
    const bg = await ops.run(A, 'mch_7', 'stop', () => ops.record('team_a', 'mch_7', 'stop', async () => undefined));
    await until(bg.id, 'done');
    const followed = await ops.follow(A, 'mch_8', 'create', clock, ops.within(() => ops.record('team_a', 'mch_8', 'create', async () => undefined)));
    await until(followed.id, 'done');
    const events = await store.listMachineEvents({ teamId: 'team_a', order: 'asc' });
    assert.deepEqual(
      events.map((e) => `${e.machineId}:${e.name}:${e.state}:${e.error ?? ''}`),
      ['mch_5:delete:done:', 'mch_5:start:error:restore failed', 'mch_6:update:done:', 'mch_7:stop:done:', 'mch_8:create:done:'],
    );
  });

  it('recover finishes what a stopped server left as errors', async () => {
    await store.insertMachineEvent({ id: 'mev_left', teamId: 'team_a', machineId: 'mch_1', name: 'stop', state: 'in progress', error: null, createdAt: 1, startedAt: 2, finishedAt: null, startupScript: null });
    assert.equal(await ops.recover(), 1);
    const e = await store.getMachineEvent('mev_left');
    assert.equal(e?.state, 'error');
    assert.match(e?.error ?? '', /server stopped/);
  });
});
