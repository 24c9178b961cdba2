/** Rendering of one compute result: the seed's formats, and the shape of a machine with no sample. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newMachineRecord } from '../../domain/machine.js';
import type { ComputeMachine } from '../../service/compute-service.js';
import { annotationsOf, formatMemory, renderComputeMachine } from './compute-view.js';
import { ComputeMachineSchema } from './schemas.js';

const machine = (metadata: Record<string, unknown> = {}): ComputeMachine => ({
  record: newMachineRecord({ id: 'mch_a', teamId: 'team_a', template: 'base', createdAt: Date.parse('2026-01-02T03:04:05.678Z'), metadata, status: 'paused' }),
  status: 'paused',
  here: true,
  pid: 0,
  runtime: 'runc',
  runtimeVersion: '1.1.5',
  namespace: 'team_a',
  service: 'base',
  paths: { rootfs: '/data/machines/mch_a/rootfs', bundle: '/data/machines/mch_a/bundle' },
  stats: null,
});

describe('compute view', () => {
  it('writes memory as the seed does: MiB with two decimals', () => {
    assert.equal(formatMemory(512), '512.00 MB');
    assert.equal(formatMemory(16), '16.00 MB');
    assert.equal(formatMemory(262_144), '262144.00 MB');
  });

  it('renders a machine without a sample in the full shape, zeros and empty lists', () => {
    const json = renderComputeMachine(machine(), { version: '0.1.0', node: 'host1' });
    ComputeMachineSchema.parse(json);
    assert.equal(json.created, '2026-01-02T03:04:05.678Z');
    assert.equal(json.memory, '512.00 MB');
    assert.equal(json.stats.CgroupStats.cpu_stats.cpu_usage.total_usage, 0);
    assert.equal(json.stats.CgroupStats.cpu_stats.cpu_usage.percpu_usage_in_kernelmode, null);
    assert.deepEqual(json.stats.Interfaces, []);
    assert.equal(json.stats.IntelRdtStats, null);
    assert.ok(Object.values(json.stats.CgroupStats.memory_stats.stats).every((v) => v === 0));
  });

  it('sorts annotations and lets the fixed ones win over metadata', () => {
    const a = annotationsOf(machine({ account: 'someone_else', machine: 'mch_other', 'service.version': 7, zz: 'last', nested: { x: 1 } }), 'host1');
    assert.equal(a.account, 'team_a');
    assert.equal(a.machine, 'mch_a');
    assert.equal(a['service.version'], '7');
    assert.equal(a.nested, undefined);
    assert.equal(a['hydra.node'], 'host1');
    assert.deepEqual(Object.keys(a), [...Object.keys(a)].sort());
  });
});
