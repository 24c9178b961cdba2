/**
 * A host that worked on a machine from a record read before another host took it (a paused
 * machine moved off a host marked down or draining, while this one stalled) changes nothing:
 * its save and its destroy are refused with MACHINE_ON_OTHER_HOST, and the pause snapshot, which
 * the new host resumes from, stays. The stale record is handed to the core directly: a request
 * through the API reads the record afresh and is refused before (see fleet.test.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HangarError } from '../domain/errors.js';
import { TestServer } from '../testing/harness.js';
import type { MachineCore } from './machine-core.js';

describe('work on a machine that moved to another host meanwhile', () => {
  let t: TestServer;
  before(async () => {
    t = await TestServer.start();
  });
  after(async () => {
    await t?.dispose();
  });

  it('a save and a destroy from the stale record are refused, and the snapshot stays for the new host', async () => {
    const { store } = t.server;
    // The core, as the services hold it (private there: reached here to hand it a stale record).
    const core = (t.server.machines as unknown as { core: MachineCore }).core;
    const created = await t.request('POST', '/v1/machines', { body: {} });
    assert.equal(created.status, 201, created.text);
    const id = created.body.id as string;
    assert.equal((await t.request('POST', `/v1/machines/${id}/pause`)).body.status, 'paused');
    const stale = (await store.getMachine(id))!;
    const here = stale.hostId!;
    const [snapshot] = await store.listSnapshots(stale.teamId, id);
    assert.ok(snapshot, 'a pause snapshot');

    assert.equal(await store.movePausedMachine(id, here, 'host-elsewhere', Date.now()), true);
    const refused = (err: unknown): boolean => err instanceof HangarError && err.code === 'MACHINE_ON_OTHER_HOST' && /moved to host host-elsewhere/.test(err.message);
    await assert.rejects(core.save({ ...stale, status: 'running' }), refused);
    await assert.rejects(core.locks.with(id, 'destroy', () => core.destroyLocked(stale)), refused);
    const now = (await store.getMachine(id))!;
    assert.deepEqual([now.hostId, now.status], ['host-elsewhere', 'paused']);
    assert.equal((await store.listSnapshots(stale.teamId, id)).some((s) => s.id === snapshot.id), true);
    assert.equal((await core.runtime.snapshotsOnDisk()).includes(snapshot.id), true, "the snapshot's files were removed");

    // Back on this host, it resumes and goes as usual.
    assert.equal(await store.movePausedMachine(id, 'host-elsewhere', here, Date.now()), true);
    assert.equal((await t.request('POST', `/v1/machines/${id}/resume`)).body.status, 'running');
    assert.equal((await t.request('DELETE', `/v1/machines/${id}`)).status, 200);
  });
});
