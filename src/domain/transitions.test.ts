import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HangarError } from './errors.js';
import { MACHINE_STATUSES, newMachineRecord, type MachineStatus } from './machine.js';
import { allows, assertAllows, isLive, stateConflict, statusAfter, transition, type LifecycleOutcome, type MachineOperation } from './transitions.js';

const OUTCOMES: LifecycleOutcome[] = ['started', 'paused', 'resumed', 'destroyed', 'failed'];

describe('lifecycle transitions', () => {
  it('allows each operation exactly in the statuses the API documents', () => {
    const expected: Record<MachineOperation, MachineStatus[]> = {
      destroy: ['creating', 'running', 'paused', 'error'],
      update: ['creating', 'running', 'paused', 'error'],
      timeout_refresh: ['running'],
      resize: ['running'],
      restart: ['running'],
      pause: ['running'],
      resume: ['paused'],
      snapshot: ['running'],
      command: ['running'],
      checkout: ['running'],
      traffic: ['running'],
      record_activity: ['running'],
      disk_usage: ['running'],
    };
    for (const [op, statuses] of Object.entries(expected) as [MachineOperation, MachineStatus[]][]) {
      assert.deepEqual(
        MACHINE_STATUSES.filter((s) => allows(s, op)),
        statuses,
        op,
      );
    }
  });

  it('leads each outcome to one status, and refuses the impossible ones', () => {
    const table = Object.fromEntries(MACHINE_STATUSES.map((from) => [from, Object.fromEntries(OUTCOMES.map((o) => [o, statusAfter(from, o)]))]));
    assert.deepEqual(table, {
      creating: { started: 'running', paused: null, resumed: null, destroyed: 'destroyed', failed: 'error' },
      running: { started: null, paused: 'paused', resumed: null, destroyed: 'destroyed', failed: 'error' },
      paused: { started: null, paused: null, resumed: 'running', destroyed: 'destroyed', failed: 'error' },
      error: { started: null, paused: null, resumed: null, destroyed: 'destroyed', failed: 'error' },
      destroyed: { started: null, paused: null, resumed: null, destroyed: null, failed: null },
    });
  });

  it('transition changes the record, or throws a 409 and leaves it as it was', () => {
    const m = newMachineRecord({ id: 'mch_t', teamId: 'team', template: 'base', createdAt: 0 });
    transition(m, 'started');
    assert.equal(m.status, 'running');
    assert.throws(() => transition(m, 'resumed'), (err: unknown) => err instanceof HangarError && err.code === 'STATE_CONFLICT');
    assert.equal(m.status, 'running');
    transition(m, 'destroyed');
    assert.equal(m.status, 'destroyed');
    assert.equal(isLive(m.status), false);
    assert.throws(() => transition(m, 'failed'), HangarError);
  });

  it('words the 409 with the operation and what it needs', () => {
    const err = stateConflict({ id: 'mch_x', status: 'paused' }, 'resize');
    assert.equal(err.code, 'STATE_CONFLICT');
    assert.equal(err.message, 'Machine mch_x is paused; a resize needs a machine that is running (start it first, then resize).');
    assert.deepEqual(err.details, { status: 'paused' });
    assert.throws(() => assertAllows({ id: 'mch_x', status: 'running' }, 'resume'), /Machine mch_x is running; resume needs a machine that is paused\./);
    assert.doesNotThrow(() => assertAllows({ id: 'mch_x', status: 'paused' }, 'resume'));
    assert.match(stateConflict({ id: 'mch_x', status: 'paused' }, 'traffic', 'running (no auto_resume)').message, /traffic needs a machine that is running \(no auto_resume\)\.$/);
  });
});
