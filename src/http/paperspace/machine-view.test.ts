/** Pure mapping of the Paperspace-style surface: states, auto shutdown, rendering, refusals, cursors. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HangarError } from '../../domain/errors.js';
import { MACHINE_EVENT_NAMES, type MachineEventRecord } from '../../domain/machine-event.js';
import { DEFAULT_MACHINE_TYPES, machineTypeOf } from '../../domain/machine-type.js';
import { MACHINE_STATUSES, newMachineRecord, TIMEOUT_LIMITS } from '../../domain/machine.js';
import { comparePositions } from '../../service/cursor-codec.js';
import { autoShutdownOf, autoShutdownToTimeout, autoSnapshotRequest, paperspaceState, PAPERSPACE_STATES } from '../../service/paperspace-service.js';
import { refuseUnsupported, renderPaperspaceEvent, renderPaperspaceMachine } from './machine-view.js';
import { PaperspaceEventSchema, PaperspaceMachineSchema } from './schemas.js';

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5, 6);

describe('paperspaceState', () => {
  it('maps status and the operation in flight onto the seed\'s states', () => {
    assert.equal(paperspaceState('creating', 'create'), 'provisioning');
    assert.equal(paperspaceState('running', undefined), 'ready');
    assert.equal(paperspaceState('running', 'update'), 'ready');
    assert.equal(paperspaceState('running', 'create'), 'provisioning');
    assert.equal(paperspaceState('running', 'stop'), 'stopping');
    assert.equal(paperspaceState('running', 'restart'), 'restarting');
    assert.equal(paperspaceState('running', 'start'), 'starting');
    assert.equal(paperspaceState('running', 'delete'), 'stopping');
    assert.equal(paperspaceState('paused', undefined), 'off');
    assert.equal(paperspaceState('paused', 'stop'), 'off');
    assert.equal(paperspaceState('paused', 'start'), 'starting');
    assert.equal(paperspaceState('error', undefined), 'off');
    assert.equal(paperspaceState('destroyed', undefined), 'off');
  });

  it('is defined for every status and operation', () => {
    for (const s of MACHINE_STATUSES) {
      for (const op of [undefined, ...MACHINE_EVENT_NAMES]) assert.ok(PAPERSPACE_STATES.includes(paperspaceState(s, op)), `${s}/${op}`);
    }
  });
});

describe('auto shutdown', () => {
  it('enabled: hours become the hard deadline with hibernate, and read back', () => {
    const t = autoShutdownToTimeout(true, 2);
    assert.deepEqual(t, { timeoutMs: 7_200_000, timeoutAction: 'hibernate' });
    assert.deepEqual(autoShutdownOf(t), { enabled: true, hours: 2 });
    assert.deepEqual(autoShutdownOf({ timeoutMs: 300_000 }), { enabled: true, hours: 300_000 / 3_600_000 });
  });

  it('disabled: the longest deadline Hangar allows, read back as disabled', () => {
    const t = autoShutdownToTimeout(false, undefined);
    assert.equal(t.timeoutMs, TIMEOUT_LIMITS.max);
    assert.deepEqual(autoShutdownOf(t), { enabled: false, hours: null });
  });

  it('enabled needs hours within Hangar\'s limits', () => {
    for (const hours of [undefined, 0.0001, 721]) {
      assert.throws(() => autoShutdownToTimeout(true, hours), (e: unknown) => e instanceof HangarError && e.code === 'VALIDATION_FAILED');
    }
  });
});

describe('autoSnapshotRequest', () => {
  const current = { frequency: 'daily' as const, keep: 3, since: T0, lastAt: null };
  const invalid = (field: string) => (e: unknown) => e instanceof HangarError && e.code === 'VALIDATION_FAILED' && e.message.includes(field);

  it('no field: no change; enabled false: off', () => {
    assert.equal(autoSnapshotRequest({}, current), undefined);
    assert.equal(autoSnapshotRequest({ autoSnapshotEnabled: false }, current), null);
  });

  it('enabling needs frequency and save count, unless the machine already has them', () => {
    assert.deepEqual(autoSnapshotRequest({ autoSnapshotEnabled: true, autoSnapshotFrequency: 'hourly', autoSnapshotSaveCount: 2 }, null), { frequency: 'hourly', keep: 2 });
    assert.throws(() => autoSnapshotRequest({ autoSnapshotEnabled: true, autoSnapshotSaveCount: 2 }, null), invalid('autoSnapshotFrequency'));
    assert.throws(() => autoSnapshotRequest({ autoSnapshotEnabled: true, autoSnapshotFrequency: 'hourly' }, null), invalid('autoSnapshotSaveCount'));
    assert.deepEqual(autoSnapshotRequest({ autoSnapshotSaveCount: 5 }, current), { frequency: 'daily', keep: 5 });
  });

  it('frequency or save count without auto snapshots enabled is refused', () => {
    assert.throws(() => autoSnapshotRequest({ autoSnapshotFrequency: 'weekly' }, null), invalid('autoSnapshotFrequency'));
    assert.throws(() => autoSnapshotRequest({ autoSnapshotEnabled: false, autoSnapshotSaveCount: 1 }, current), invalid('autoSnapshotSaveCount'));
  });
});

describe('machineTypeOf', () => {
  it('names the type whose vCPUs and memory match, else custom', () => {
    assert.equal(machineTypeOf({ vcpus: 1, memory_mb: 512, disk_mb: 10 }, DEFAULT_MACHINE_TYPES), 'C1');
    assert.equal(machineTypeOf({ vcpus: 4, memory_mb: 8192, disk_mb: 10 }, DEFAULT_MACHINE_TYPES), 'C5');
    assert.equal(machineTypeOf({ vcpus: 3, memory_mb: 512, disk_mb: 10 }, DEFAULT_MACHINE_TYPES), 'custom');
  });
});

describe('rendering', () => {
  it('a machine has every field of the seed with Hangar\'s values', () => {
    const record = newMachineRecord({
      id: 'mch_render0000000001',
      teamId: 'team_a',
      template: 'base',
      createdAt: T0,
      config: { vcpus: 2, memory_mb: 2048, disk_mb: 5120 },
      timeoutMs: 3_600_000,
      timeoutAction: 'hibernate',
      startedAt: T0 + 10,
      updatedAt: T0 + 99,
      name: 'box',
    });
    const out = renderPaperspaceMachine({ record, state: 'ready', machineType: 'C3', region: 'local', storageUsed: 4096, agentType: 'LinuxHeadless' });
    PaperspaceMachineSchema.parse(out);
    assert.equal(out.cpus, 2);
    assert.equal(out.ram, 2048 * 1024 * 1024);
    assert.equal(out.storageTotal, 5120 * 1024 * 1024);
    assert.equal(out.storageUsed, 4096);
    assert.equal(out.dtCreated, new Date(T0).toISOString());
    assert.equal(out.dtModified, new Date(T0 + 99).toISOString());
    assert.equal(out.dtDeleted, null);
    assert.equal(out.name, 'box');
    assert.equal(out.autoShutdownEnabled, true);
    assert.equal(out.autoShutdownTimeout, 1);
    assert.equal(out.autoShutdownForce, true);
    assert.equal(out.privateIp, null);
    assert.equal(out.startupScriptId, null);
    const scripted = renderPaperspaceMachine({ record: { ...record, startupScript: { scriptId: 'scr_x', script: 'true', runOnce: true } }, state: 'ready', machineType: 'C3', region: 'local', storageUsed: 0, agentType: 'LinuxHeadless' });
    assert.equal(scripted.startupScriptId, 'scr_x');
    assert.deepEqual(
      [out.autoSnapshotEnabled, out.autoSnapshotFrequency, out.autoSnapshotSaveCount, out.restorePointEnabled, out.restorePointFrequency, out.restorePointSnapshotId],
      [false, null, null, false, null, null],
    );
    const snapshotting = renderPaperspaceMachine({
      record: { ...record, autoSnapshot: { frequency: 'daily', keep: 4, since: T0, lastAt: null }, restorePoint: { frequency: 'shutdown', snapshotId: 'snap_rp' } },
      state: 'ready',
      machineType: 'C3',
      region: 'local',
      storageUsed: 0,
      agentType: 'LinuxHeadless',
    });
    PaperspaceMachineSchema.parse(snapshotting);
    assert.deepEqual(
      [snapshotting.autoSnapshotEnabled, snapshotting.autoSnapshotFrequency, snapshotting.autoSnapshotSaveCount, snapshotting.restorePointEnabled, snapshotting.restorePointFrequency, snapshotting.restorePointSnapshotId],
      [true, 'daily', 4, true, 'shutdown', 'snap_rp'],
    );
    const addressed = renderPaperspaceMachine({ record: { ...record, privateIp: '10.1.2.3' }, state: 'ready', machineType: 'C3', region: 'local', storageUsed: 0, agentType: 'LinuxHeadless' });
    assert.equal(addressed.privateIp, '10.1.2.3');
    const unnamed = renderPaperspaceMachine({ record: { ...record, name: null, destroyedAt: T0 + 500 }, state: 'off', machineType: 'C3', region: 'local', storageUsed: 0, agentType: 'LinuxHeadless' });
    assert.equal(unnamed.name, record.id);
    assert.equal(unnamed.dtDeleted, new Date(T0 + 500).toISOString());
    assert.equal(unnamed.dtModified, new Date(T0 + 500).toISOString());
  });

  it('an event has every field of the seed', () => {
    const e: MachineEventRecord = { id: 'mev_x', teamId: 't', machineId: 'mch_x', name: 'stop', state: 'error', error: 'boom', createdAt: T0, startedAt: T0 + 1, finishedAt: T0 + 2, startupScript: null };
    const out = renderPaperspaceEvent(e);
    PaperspaceEventSchema.parse(out);
    assert.deepEqual(out, {
      dtCreated: new Date(T0).toISOString(),
      dtFinished: new Date(T0 + 2).toISOString(),
      dtStarted: new Date(T0 + 1).toISOString(),
      error: 'boom',
      id: 'mev_x',
      machineId: 'mch_x',
      name: 'stop',
      state: 'error',
      startupScript: null,
    });
  });
});

describe('refuseUnsupported', () => {
  it('accepts the "off" values of unsupported features', () => {
    // One field at a time, so that one refused value cannot hide behind another; then all together, and none.
    const offValues = [{ emailPassword: false }, { enableNvlink: false }, { publicIpType: 'none' }, { autoShutdownForce: true }];
    for (const body of [...offValues, Object.assign({}, ...offValues), {}]) {
      assert.doesNotThrow(() => refuseUnsupported(body), `${JSON.stringify(body)} is accepted`);
    }
  });

  it('refuses switching one on with 422 naming the field', () => {
    for (const [field, value] of [['networkId', 'n'], ['publicIpType', 'static'], ['autoShutdownForce', false]] as const) {
      assert.throws(
        () => refuseUnsupported({ [field]: value }),
        (e: unknown) => e instanceof HangarError && e.code === 'UNSUPPORTED_OPERATION' && e.status === 422 && e.details?.field === field && e.message.startsWith(field),
      );
    }
  });
});

describe('comparePositions', () => {
  it('orders by key, numbers numerically, then by id', () => {
    assert.ok(comparePositions([2, 'a'], [10, 'a']) < 0);
    assert.ok(comparePositions(['b', 'a'], ['a', 'z']) > 0);
    assert.ok(comparePositions(['a', 'x'], ['a', 'y']) < 0);
    assert.equal(comparePositions(['a', 'x'], ['a', 'x']), 0);
  });
});
