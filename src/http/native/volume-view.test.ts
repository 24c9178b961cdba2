/** metadata.volume_attachments in the machine views, and the volume object. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newMachineRecord, type MachineRecord } from '../../domain/machine.js';
import { renderMachine } from './machine-view.js';
import { MachineSchema, SandboxSchema, VolumeSchema } from './schemas.js';
import { renderVolume } from './volume-view.js';

const T0 = Date.UTC(2024, 0, 2, 3, 4, 5, 678);

function machine(o: Partial<MachineRecord> = {}): MachineRecord {
  return newMachineRecord({ id: 'mch_vols0000000001', teamId: 'team_a', template: 'base', createdAt: T0, status: 'running', startedAt: T0, metadata: { b: 1, a: 2 }, ...o });
}

const VOLUMES = [
  { volumeId: 'vol_z', mountPath: '/z', readOnly: false },
  { volumeId: 'vol_a', mountPath: '/a', readOnly: true },
];

describe('volume views', () => {
  it('a machine without volumes shows its metadata exactly as stored', () => {
    const m = machine({ metadata: { volume_attachments: 'mine', k: 'v' } });
    assert.equal(renderMachine(m, { now: T0, view: 'machine' }).metadata, m.metadata);
  });

  it('volume_attachments follow the stored metadata, in request order, in every view and mask', () => {
    const m = machine({ volumes: VOLUMES });
    const want = {
      b: 1,
      a: 2,
      volume_attachments: [
        { volume_id: 'vol_z', mount_path: '/z', read_only: false, mode: 'rw', state: 'attached' },
        { volume_id: 'vol_a', mount_path: '/a', read_only: true, mode: 'ro', state: 'attached' },
      ],
    };
    const full = renderMachine(m, { now: T0, view: 'machine' });
    assert.equal(JSON.stringify(full.metadata), JSON.stringify(want));
    assert.deepEqual(renderMachine(m, { now: T0, view: 'sandbox' }).metadata, want);
    assert.deepEqual(renderMachine(m, { now: T0, view: 'machine', fields: ['metadata'] }), { metadata: want });
    assert.deepEqual(m.metadata, { b: 1, a: 2 }, 'the record is not changed');
    MachineSchema.parse(full);
    SandboxSchema.parse(renderMachine(m, { now: T0, view: 'sandbox' }));
  });

  it('the state follows the machine; a key of that name given at create is replaced', () => {
    for (const [status, state] of [['creating', 'detached'], ['paused', 'detached'], ['error', 'detached'], ['destroyed', 'released']] as const) {
      const meta = renderMachine(machine({ status, volumes: VOLUMES, metadata: { volume_attachments: 'mine' } }), { now: T0, view: 'machine' }).metadata as Record<string, any>;
      assert.deepEqual(meta.volume_attachments.map((a: { state: string }) => a.state), [state, state]);
    }
  });

  it('a volume lists its holders with their mode and state', () => {
    const v = renderVolume({
      volume: { id: 'vol_x', teamId: 'team_a', name: 'data', sizeMb: 64, createdAt: T0 },
      holders: [
        { machineId: 'mch_1', status: 'paused', mountPath: '/data', readOnly: false },
        { machineId: 'mch_2', status: 'running', mountPath: '/ro', readOnly: true },
      ],
    });
    assert.deepEqual(v, {
      id: 'vol_x',
      name: 'data',
      size_mb: 64,
      created_at: new Date(T0).toISOString(),
      attachments: [
        { machine_id: 'mch_1', mount_path: '/data', read_only: false, mode: 'rw', state: 'detached' },
        { machine_id: 'mch_2', mount_path: '/ro', read_only: true, mode: 'ro', state: 'attached' },
      ],
    });
    VolumeSchema.parse(v);
  });
});
