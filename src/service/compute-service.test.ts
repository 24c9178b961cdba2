/** The compute listing's rules that need no host: status mapping and label defaults. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MACHINE_STATUSES, newMachineRecord, type MachineRecord } from '../domain/machine.js';
import { computeStatus, metadataLabels, namespaceOf, serviceOf } from './compute-service.js';

const record = (over: Partial<MachineRecord> = {}): MachineRecord =>
  newMachineRecord({ id: 'mch_a', teamId: 'team_a', template: 'base', createdAt: 0, ...over });

describe('compute listing rules', () => {
  it('maps every Hangar status, checking a running record against its container', () => {
    const expected: Record<(typeof MACHINE_STATUSES)[number], string> = {
      creating: 'stopped',
      running: 'running',
      paused: 'paused',
      destroyed: 'stopped',
      error: 'stopped',
    };
    for (const status of MACHINE_STATUSES) {
      assert.equal(computeStatus(record({ status }), { status: 'running', pid: 42 }), expected[status], status);
    }
    const running = record({ status: 'running' });
    assert.equal(computeStatus(running, { status: 'paused', pid: 42 }), 'running', 'frozen for a live snapshot');
    assert.equal(computeStatus(running, { status: 'stopped', pid: 0 }), 'stopped', 'init died');
    assert.equal(computeStatus(running, undefined), 'stopped', 'container vanished');
  });

  it('takes namespace and service from metadata, else the team and the template', () => {
    assert.equal(namespaceOf(record()), 'team_a');
    assert.equal(serviceOf(record()), 'base');
    const labelled = record({ metadata: { namespace: 'shop', service: 42 } });
    assert.equal(namespaceOf(labelled), 'shop');
    assert.equal(serviceOf(labelled), '42');
    // A value that is not a label (object, null) falls back to the default.
    assert.equal(namespaceOf(record({ metadata: { namespace: { a: 1 } } })), 'team_a');
    assert.equal(serviceOf(record({ metadata: { service: null } })), 'base');
  });

  it('keeps scalar metadata entries as string labels', () => {
    assert.deepEqual(metadataLabels(record({ metadata: { a: 'x', b: 2, c: true, d: null, e: { f: 1 }, g: [1] } })), { a: 'x', b: '2', c: 'true' });
  });
});
