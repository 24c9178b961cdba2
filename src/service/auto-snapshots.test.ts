/**
 * Auto snapshots, initial snapshots and restore points on real machines (real runc and
 * CRIU), through the Paperspace-style surface that sets them. Hours pass on the server's
 * clock: the test moves it forward and the real lifecycle scheduler does the rest.
 */
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { run } from '../runtime/runc/command.js';
import type { RuncRuntime } from '../runtime/runc/runc-runtime.js';
import { snapshotPaths } from '../runtime/runc/snapshot-files.js';
import { execIn, TestServer, waitFor } from '../testing/harness.js';

type Json = Record<string, any>;
const BASE = '/paperspace/v1';
const HOUR = 3_600_000;
const LONG = 120_000;
const CREATE = { name: 'snappy', machineType: 'C1', templateId: 'base', region: 'local', diskSize: 1 };

describe('auto snapshots, initial snapshots and restore points', () => {
  let t: TestServer;
  let key: string;
  /** How far the server's clock is ahead of the real one. */
  let ahead = 0;
  const samples: Record<string, number[]> = { autoSnapshotMs: [], revertMs: [], stopWithRevertMs: [], stopWithoutRevertMs: [] };

  const ps = (method: string, path: string, body?: unknown) => t.request(method, `${BASE}${path}`, { body, key });
  const native = (method: string, path: string, body?: unknown) => t.request(method, path, { body, key });
  const sh = async (id: string, script: string): Promise<string> => {
    const r = await execIn(t.server, id, ['sh', '-c', script]);
    assert.equal(r.code, 0, r.out);
    return r.out.trim();
  };
  const finished = (eventId: string): Promise<Json> => t.finishedEvent(eventId, key, LONG);
  const eventMs = (e: Json): number => Date.parse(e.dtFinished) - Date.parse(e.dtStarted);
  /** Run an operation and wait for its event to end done. */
  const operate = async (method: string, path: string, body?: unknown): Promise<{ data: Json; event: Json }> => {
    const r = await ps(method, path, body);
    assert.equal(r.status, 200, r.text);
    const event = await finished(r.body.event.id);
    assert.equal(event.state, 'done', JSON.stringify(event));
    return { data: r.body.data, event };
  };
  const snapshotsOf = async (id: string): Promise<Json[]> => {
    const r = await native('GET', `/v1/snapshots?machine_id=${id}`);
    assert.equal(r.status, 200, r.text);
    return r.body.items ?? r.body;
  };
  const eventsOf = async (id: string, name: string): Promise<Json[]> =>
    ((await ps('GET', `/machine-events?machineId=${id}&order=asc&limit=120`)).body.items as Json[]).filter((e) => e.name === name);
  const onDisk = async (snapshotId: string): Promise<boolean> =>
    (await stat(snapshotPaths(t.server.settings.snapshotsDir, snapshotId).dir).catch(() => null)) !== null;

  before(async () => {
    t = await TestServer.start({ now: () => Date.now() + ahead });
    const info = await t.request('GET', '/v1/info');
    assert.equal(info.body.snapshots.memory, true, `CRIU must work on this host: ${info.body.snapshots.reason}`);
    ({ key } = await t.newTeamKey('autosnap'));
  });
  after(async () => {
    console.log(`measured: ${JSON.stringify(samples)}`);
    await t.dispose();
  });

  it('hourly auto snapshots are taken as the hours pass, the newest N kept; manual ones and paused machines are left alone', async () => {
    const { data } = await operate('POST', '/machines', { ...CREATE, autoSnapshotEnabled: true, autoSnapshotFrequency: 'hourly', autoSnapshotSaveCount: 2 });
    const id = data.id as string;
    assert.equal(data.autoSnapshotEnabled, true);
    assert.equal(data.autoSnapshotFrequency, 'hourly');
    assert.equal(data.autoSnapshotSaveCount, 2);
    const manual = await native('POST', `/v1/machines/${id}/snapshots`);
    assert.equal(manual.status, 201, manual.text);
    assert.equal(manual.body.kind, 'manual');
    // Nothing is due within the first hour.
    await t.server.scheduler.sweep();
    assert.deepEqual((await snapshotsOf(id)).map((s) => s.kind), ['manual']);

    const autoIds: string[] = [];
    for (let hour = 1; hour <= 4; hour++) {
      await sh(id, `echo ${hour} > /root/hour`);
      ahead += HOUR + 1_000;
      const taken = await waitFor(async () => {
        const autos = (await snapshotsOf(id)).filter((s) => s.kind === 'auto');
        return autos.some((s) => !autoIds.includes(s.id)) ? autos : null;
      }, LONG);
      const fresh = taken!.find((s) => !autoIds.includes(s.id))!;
      autoIds.push(fresh.id);
      assert.equal(fresh.memory, true);
      assert.ok(fresh.size_bytes > 0, 'an auto snapshot has its size on disk');
      assert.ok(await onDisk(fresh.id));
      // The newest two autos are kept; the oldest beyond are deleted, files and records.
      const autos = await waitFor(async () => {
        const a = (await snapshotsOf(id)).filter((s) => s.kind === 'auto');
        return a.length <= 2 ? a : null;
      });
      assert.deepEqual(autos!.map((s) => s.id).sort(), autoIds.slice(-2).sort());
      for (const gone of autoIds.slice(0, -2)) assert.equal(await onDisk(gone), false, `${gone} deleted from disk`);
    }
    const kept = (await snapshotsOf(id)).map((s) => s.id);
    assert.ok(kept.includes(manual.body.id), 'the manual snapshot is never rotated');

    // Each auto snapshot is a `snapshot` event of the machine, done.
    const events = await waitFor(async () => {
      const e = await eventsOf(id, 'snapshot');
      return e.length === 4 && e.every((x) => x.state === 'done') ? e : null;
    });
    samples.autoSnapshotMs!.push(...events!.map(eventMs));

    // A fork of the newest auto snapshot has the files of that hour.
    const fork = await native('POST', '/v1/machines', { snapshot_id: autoIds[3] });
    assert.equal(fork.status, 201, fork.text);
    assert.equal(await sh(fork.body.id, 'cat /root/hour'), '4');
    await native('DELETE', `/v1/machines/${fork.body.id}`);

    // A stopped machine is not snapshotted: nothing changes while it is off.
    await operate('PATCH', `/machines/${id}/stop`);
    ahead += 3 * HOUR;
    await t.server.scheduler.sweep();
    await t.server.scheduler.sweep();
    assert.equal((await eventsOf(id, 'snapshot')).length, 4);
    assert.deepEqual((await snapshotsOf(id)).filter((s) => s.kind === 'auto').map((s) => s.id).sort(), autoIds.slice(-2).sort());

    // Disabling keeps the automatic snapshots already taken.
    const off = await operate('PUT', `/machines/${id}`, { autoSnapshotEnabled: false });
    assert.equal(off.data.autoSnapshotEnabled, false);
    assert.equal(off.data.autoSnapshotFrequency, null);
    assert.equal((await snapshotsOf(id)).filter((s) => s.kind === 'auto').length, 2);
  });

  it('a failed auto snapshot is an error event; the machine keeps running and the next period tries again', async () => {
    const { data } = await operate('POST', '/machines', { ...CREATE, autoSnapshotEnabled: true, autoSnapshotFrequency: 'daily', autoSnapshotSaveCount: 1 });
    const id = data.id as string;
    await sh(id, 'echo alive > /root/state');
    // Freeze the container behind Hangar's back: its snapshot cannot freeze it again and fails.
    const runc = (...args: string[]) => run(t.server.settings.runcPath, ['--root', t.server.settings.runcStateDir, ...args]);
    await runc('pause', id);
    ahead += 24 * HOUR + 1_000;
    const failed = await waitFor(async () => (await eventsOf(id, 'snapshot')).find((e) => e.state === 'error'), LONG);
    assert.ok(failed!.error.length > 10, failed!.error);
    assert.deepEqual(await snapshotsOf(id), [], 'no snapshot record is left by a failure');
    await runc('resume', id).catch(() => undefined);
    assert.equal((await ps('GET', `/machines/${id}`)).body.state, 'ready');
    assert.equal(await sh(id, 'cat /root/state'), 'alive');
    // Not retried at every sweep: the next attempt is a period later.
    await t.server.scheduler.sweep();
    assert.equal((await eventsOf(id, 'snapshot')).length, 1);
    ahead += 24 * HOUR + 1_000;
    await waitFor(async () => (await eventsOf(id, 'snapshot')).find((e) => e.state === 'done'), LONG);
    assert.equal((await snapshotsOf(id)).filter((s) => s.kind === 'auto').length, 1);
  });

  it('takeInitialSnapshot takes an initial snapshot within the create event', async () => {
    const r = await ps('POST', '/machines', { ...CREATE, takeInitialSnapshot: true });
    assert.equal(r.status, 200, r.text);
    const event = await finished(r.body.event.id);
    assert.equal(event.state, 'done', JSON.stringify(event));
    const snaps = await snapshotsOf(r.body.data.id);
    assert.equal(snaps.length, 1);
    assert.equal(snaps[0]!.kind, 'initial');
    assert.equal(snaps[0]!.memory, true);
    assert.ok(snaps[0]!.size_bytes > 0);
    assert.ok(Date.parse(snaps[0]!.created_at) <= Date.parse(event.dtFinished), 'taken before the create event was done');
    assert.equal((await ps('GET', `/machines/${r.body.data.id}`)).body.restorePointEnabled, false);
  });

  it('a restore point reverts files and processes at each stop; it cannot be deleted while in use; disable keeps the snapshot', async () => {
    const { data } = await operate('POST', '/machines', CREATE);
    const id = data.id as string;
    await sh(id, 'echo original > /root/a; sleep 1001 > /dev/null 2>&1 & echo $! > /root/pid');
    const pid = await sh(id, 'cat /root/pid');

    // Bad restore point requests change nothing and record nothing.
    const updatesBefore = (await eventsOf(id, 'update')).length;
    const other = await operate('POST', '/machines', { ...CREATE, name: 'other', takeInitialSnapshot: true });
    const foreign = (await snapshotsOf(other.data.id))[0]!.id as string;
    const bad = await ps('PUT', `/machines/${id}`, { restorePointSnapshotId: foreign });
    assert.equal(bad.status, 422, bad.text);
    assert.equal(bad.body.code, 'UNKNOWN_SNAPSHOT');
    assert.equal((await eventsOf(id, 'update')).length, updatesBefore);
    assert.equal((await ps('GET', `/machines/${id}`)).body.restorePointEnabled, false);

    const enabled = await operate('PUT', `/machines/${id}`, { restorePointEnabled: true, restorePointFrequency: 'shutdown' });
    assert.equal(enabled.data.restorePointEnabled, true);
    assert.equal(enabled.data.restorePointFrequency, 'shutdown');
    const rp = enabled.data.restorePointSnapshotId as string;
    assert.match(rp, /^snap_/);
    assert.equal((await native('GET', `/v1/snapshots/${rp}`)).body.kind, 'restore_point');
    // Enabling again without an id keeps the same restore point.
    assert.equal((await operate('PUT', `/machines/${id}`, { restorePointEnabled: true })).data.restorePointSnapshotId, rp);

    const conflict = await native('DELETE', `/v1/snapshots/${rp}`);
    assert.equal(conflict.status, 409, conflict.text);
    assert.equal(conflict.body.code, 'STATE_CONFLICT');

    for (let round = 1; round <= 2; round++) {
      // Change everything after the restore point: files, and the process.
      await sh(id, `echo changed-${round} > /root/a; echo new > /root/b; kill ${pid}; sleep 1002 > /dev/null 2>&1 &`);
      const stopped = await operate('PATCH', `/machines/${id}/stop`);
      samples.stopWithRevertMs!.push(eventMs(stopped.event));
      await operate('PATCH', `/machines/${id}/start`);
      assert.equal(await sh(id, 'cat /root/a'), 'original', 'the file is back to the restore point');
      assert.equal((await execIn(t.server, id, ['test', '-e', '/root/b'])).code, 1, 'a file written after the restore point is gone');
      const ps1 = await sh(id, 'ps -o pid,args');
      assert.match(ps1, new RegExp(`^\\s*${pid}\\s+sleep 1001`, 'm'), 'the restore point\'s process is back, same pid');
      assert.doesNotMatch(ps1, /sleep 1002/, 'a process started after the restore point is gone');
    }
    // Without a restore point a stop keeps what ran: the baseline for the revert's cost.
    for (let i = 0; i < 2; i++) {
      await operate('PATCH', `/machines/${other.data.id}/stop`);
      const evs = await eventsOf(other.data.id, 'stop');
      samples.stopWithoutRevertMs!.push(eventMs(evs[evs.length - 1]!));
      await operate('PATCH', `/machines/${other.data.id}/start`);
    }

    // Restore point on a stopped machine without an id: 409 (it is taken from a ready machine).
    const disabled = await operate('PUT', `/machines/${id}`, { restorePointEnabled: false });
    assert.equal(disabled.data.restorePointEnabled, false);
    assert.equal(disabled.data.restorePointSnapshotId, null);
    await operate('PATCH', `/machines/${id}/stop`);
    const stoppedEnable = await ps('PUT', `/machines/${id}`, { restorePointEnabled: true });
    assert.equal(stoppedEnable.status, 409, stoppedEnable.text);
    // ... but naming a snapshot of it works while stopped.
    assert.equal((await operate('PUT', `/machines/${id}`, { restorePointSnapshotId: rp })).data.restorePointSnapshotId, rp);
    await operate('PUT', `/machines/${id}`, { restorePointEnabled: false });
    await operate('PATCH', `/machines/${id}/start`);
    // Disabled: the snapshot stays and can now be deleted.
    assert.equal((await native('GET', `/v1/snapshots/${rp}`)).status, 200);
    assert.equal((await native('DELETE', `/v1/snapshots/${rp}`)).status, 204);
  });

  it('restorePointEnabled on create uses the initial snapshot, and auto shutdown reverts too', async () => {
    const { data } = await operate('POST', '/machines', { ...CREATE, restorePointEnabled: true, autoShutdownEnabled: true, autoShutdownTimeout: 1 });
    const id = data.id as string;
    const rp = (await ps('GET', `/machines/${id}`)).body.restorePointSnapshotId as string;
    assert.equal((await native('GET', `/v1/snapshots/${rp}`)).body.kind, 'initial');
    await sh(id, 'echo after-create > /root/later');
    ahead += HOUR + 1_000;
    await waitFor(async () => (await ps('GET', `/machines/${id}`)).body.state === 'off', LONG);
    await waitFor(async () => (await eventsOf(id, 'stop')).find((e) => e.state === 'done'), LONG);
    await operate('PATCH', `/machines/${id}/start`);
    assert.equal((await execIn(t.server, id, ['test', '-e', '/root/later'])).code, 1, 'the auto shutdown reverted the machine');
  });

  it('a revert a crash interrupted between its two renames is finished at the next start', async () => {
    const { data } = await operate('POST', '/machines', { ...CREATE, restorePointEnabled: true });
    const id = data.id as string;
    const rp = (await ps('GET', `/machines/${id}`)).body.restorePointSnapshotId as string;
    await sh(id, 'echo later > /root/later');
    await operate('PATCH', `/machines/${id}/stop`);
    const pauseSnap = (await native('GET', `/v1/machines/${id}`)).body.snapshot_id as string;
    // The revert alone, timed on the stopped machine (its pause snapshot already holds the restore point).
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      await (t.server.runtime as RuncRuntime).revertSnapshot(pauseSnap, rp);
      samples.revertMs!.push(Math.round(performance.now() - started));
    }
    // The state a crash leaves: the old pause snapshot moved aside, the checked copy not yet in place.
    const dir = snapshotPaths(t.server.settings.snapshotsDir, pauseSnap).dir;
    await run('mv', [dir, `${dir}.old`]);
    await run('cp', ['-a', '--sparse=always', snapshotPaths(t.server.settings.snapshotsDir, rp).dir, `${dir}.revert`]);
    await t.restart();
    assert.ok(await onDisk(pauseSnap), 'the copy took the pause snapshot\'s place');
    assert.equal(await onDisk(`${pauseSnap}.old`), false, 'the old files are removed');
    await operate('PATCH', `/machines/${id}/start`);
    assert.equal((await execIn(t.server, id, ['test', '-e', '/root/later'])).code, 1);
  });

  it('a machine a stopped server left frozen mid-snapshot is thawed at the next start, processes intact', async () => {
    const r = await native('POST', '/v1/machines', { timeout_ms: 30 * 24 * HOUR });
    assert.equal(r.status, 201, r.text);
    const id = r.body.id as string;
    await sh(id, 'sleep 1003 > /dev/null 2>&1 & echo $! > /root/pid');
    const pid = await sh(id, 'cat /root/pid');
    await t.server.close();
    // As a live snapshot leaves it between its freeze and its thaw.
    await run(t.server.settings.runcPath, ['--root', t.server.settings.runcStateDir, 'pause', id]);
    await t.restart();
    assert.equal((await t.server.runtime.inspect(id))?.status, 'running');
    assert.equal((await native('GET', `/v1/machines/${id}`)).body.status, 'running');
    assert.equal(await sh(id, `kill -0 ${pid} && echo alive`), 'alive');
    await native('DELETE', `/v1/machines/${id}`);
  });

  it('native: auto_snapshot on create, rendered with next_at, taken by the sweep; bad values are 400 and create nothing', async () => {
    const before = (await native('GET', '/v1/machines')).body.length;
    for (const auto_snapshot of [{ frequency: 'yearly', keep: 1 }, { frequency: 'daily', keep: 0 }, { frequency: 'daily', keep: 31 }, { frequency: 'daily' }, { frequency: 'daily', keep: 1, at: 3 }]) {
      const r = await native('POST', '/v1/machines', { auto_snapshot });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.body.code, 'VALIDATION_FAILED');
      assert.match(r.text, /auto_snapshot/);
    }
    assert.equal((await native('GET', '/v1/machines')).body.length, before);

    const r = await native('POST', '/v1/machines', { timeout_ms: 7 * 24 * HOUR, auto_snapshot: { frequency: 'weekly', keep: 1 } });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.body.auto_snapshot.frequency, 'weekly');
    assert.equal(r.body.auto_snapshot.keep, 1);
    assert.ok(Math.abs(Date.parse(r.body.auto_snapshot.next_at) - (Date.now() + ahead + 7 * 24 * HOUR)) < 60_000, r.body.auto_snapshot.next_at);
    ahead += 7 * 24 * HOUR - HOUR;
    await t.server.scheduler.sweep();
    assert.deepEqual(await snapshotsOf(r.body.id), [], 'not yet due');
    ahead += HOUR + 1_000;
    const snaps = await waitFor(async () => {
      const s = await snapshotsOf(r.body.id);
      return s.length ? s : null;
    }, LONG);
    assert.equal(snaps![0]!.kind, 'auto');
    const after = (await native('GET', `/v1/machines/${r.body.id}`)).body;
    assert.equal(after.status, 'running');
    assert.ok(Date.parse(after.auto_snapshot.next_at) > Date.now() + ahead + 6 * 24 * HOUR);
    await native('DELETE', `/v1/machines/${r.body.id}`);
  });
});
