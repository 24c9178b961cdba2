/**
 * Lifecycle timers as pure functions: which deadline fires next, what it does, and
 * the remaining time shown to clients.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deadlineOf, nextDue, remainingMs } from './lifecycle.js';
import { MACHINE_STATUSES, newMachineRecord, type MachineRecord } from './machine.js';

const T0 = 1_700_000_000_000;

/** A running machine started at T0 with a 300 s deadline and no other timer. */
function machine(overrides: Partial<MachineRecord> = {}): MachineRecord {
  return newMachineRecord({
    id: 'mch_lifecycle000001',
    teamId: 'team_a',
    template: 'base',
    createdAt: T0 - 1_000,
    status: 'running',
    config: { vcpus: 1, memory_mb: 512, disk_mb: 1024 },
    timeoutMs: 300_000,
    timeoutAt: T0 + 300_000,
    startedAt: T0,
    outbound: { mode: 'allow' },
    ...overrides,
  });
}

describe('nextDue: running machines', () => {
  it('without inactivity, the hard deadline fires with the timeout action (destroy)', () => {
    assert.deepEqual(nextDue(machine()), { kind: 'timeout', action: 'destroy', at: T0 + 300_000 });
  });

  it('without inactivity, the hard deadline fires with the timeout action (hibernate)', () => {
    assert.deepEqual(nextDue(machine({ timeoutAction: 'hibernate' })), { kind: 'timeout', action: 'hibernate', at: T0 + 300_000 });
  });

  it('inactivity earlier than the deadline wins, measured from started_at when there was no activity', () => {
    const due = nextDue(machine({ inactivityTimeoutMs: 60_000 }));
    assert.deepEqual(due, { kind: 'inactivity', action: 'hibernate', at: T0 + 60_000 });
  });

  it('inactivity is measured from last_active_at when that is later than started_at', () => {
    const due = nextDue(machine({ inactivityTimeoutMs: 60_000, lastActiveAt: T0 + 100_000 }));
    assert.deepEqual(due, { kind: 'inactivity', action: 'hibernate', at: T0 + 160_000 });
  });

  it('an ephemeral machine is destroyed on inactivity', () => {
    const due = nextDue(machine({ inactivityTimeoutMs: 60_000, ephemeral: true, timeoutAction: 'hibernate' }));
    assert.deepEqual(due, { kind: 'inactivity', action: 'destroy', at: T0 + 60_000 });
  });

  it('a non-ephemeral machine is hibernated on inactivity even when its timeout action is destroy', () => {
    const due = nextDue(machine({ inactivityTimeoutMs: 60_000, ephemeral: false, timeoutAction: 'destroy' }));
    assert.equal(due?.kind, 'inactivity');
    assert.equal(due?.action, 'hibernate');
  });

  it('the hard deadline wins when inactivity would fire later', () => {
    const due = nextDue(machine({ inactivityTimeoutMs: 60_000, lastActiveAt: T0 + 280_000 }));
    assert.deepEqual(due, { kind: 'timeout', action: 'destroy', at: T0 + 300_000 });
  });

  it('on a tie between inactivity and the hard deadline, the hard deadline (and its action) applies', () => {
    const due = nextDue(machine({ inactivityTimeoutMs: 300_000, timeoutAction: 'destroy' }));
    assert.deepEqual(due, { kind: 'timeout', action: 'destroy', at: T0 + 300_000 });
  });

  it('after a resume, inactivity restarts from resumed_at, not from older activity', () => {
    const due = nextDue(machine({ inactivityTimeoutMs: 60_000, lastActiveAt: T0 + 10_000, resumedAt: T0 + 200_000, timeoutAt: T0 + 900_000 }));
    assert.deepEqual(due, { kind: 'inactivity', action: 'hibernate', at: T0 + 260_000 });
  });

  it('activity after a resume counts from that activity', () => {
    const due = nextDue(machine({ inactivityTimeoutMs: 60_000, lastActiveAt: T0 + 250_000, resumedAt: T0 + 200_000, timeoutAt: T0 + 900_000 }));
    assert.deepEqual(due, { kind: 'inactivity', action: 'hibernate', at: T0 + 310_000 });
  });

  it('inactivity without any start or activity time falls back to the hard deadline', () => {
    const due = nextDue(machine({ inactivityTimeoutMs: 60_000, startedAt: null, lastActiveAt: null }));
    assert.deepEqual(due, { kind: 'timeout', action: 'destroy', at: T0 + 300_000 });
  });

  it('auto-delete does not apply to a running machine', () => {
    assert.equal(nextDue(machine({ autoDeleteAfterMs: 1_000, pausedAt: T0 }))?.kind, 'timeout');
  });
});

describe('nextDue: warm pool machines', () => {
  it('a machine idle in a warm pool has no timers, whatever its status and settings', () => {
    for (const status of ['running', 'paused'] as const) {
      const m = machine({ status, pool: 'default', inactivityTimeoutMs: 1_000, autoDeleteAfterMs: 0, pausedAt: T0 });
      assert.equal(nextDue(m), null, status);
      assert.equal(deadlineOf(m), null, status);
    }
  });

  it('once checked out (pool cleared), its timers apply again', () => {
    assert.equal(nextDue(machine({ pool: null }))?.kind, 'timeout');
  });
});

describe('nextDue: paused machines', () => {
  const paused = (o: Partial<MachineRecord>): MachineRecord =>
    machine({ status: 'paused', pausedAt: T0 + 50_000, snapshotId: 'snap_x', inactivityTimeoutMs: 10_000, ...o });

  it('with auto_delete_after_ms, destroys that long after the pause', () => {
    assert.deepEqual(nextDue(paused({ autoDeleteAfterMs: 3_600_000 })), { kind: 'auto_delete', action: 'destroy', at: T0 + 50_000 + 3_600_000 });
  });

  it('auto_delete_after_ms of 0 is due at the pause itself', () => {
    assert.deepEqual(nextDue(paused({ autoDeleteAfterMs: 0 })), { kind: 'auto_delete', action: 'destroy', at: T0 + 50_000 });
  });

  it('without auto_delete_after_ms, nothing is due (neither hard deadline nor inactivity)', () => {
    assert.equal(nextDue(paused({ autoDeleteAfterMs: null, timeoutAt: T0 + 1 })), null);
  });

  it('without a pause time, nothing is due', () => {
    assert.equal(nextDue(paused({ autoDeleteAfterMs: 1_000, pausedAt: null })), null);
  });
});

describe('nextDue: statuses without timers', () => {
  for (const status of ['creating', 'destroyed', 'error'] as const) {
    it(`${status} → null even with every timer set`, () => {
      const m = machine({ status, inactivityTimeoutMs: 1_000, autoDeleteAfterMs: 1_000, pausedAt: T0, lastActiveAt: T0 });
      assert.equal(nextDue(m), null);
      assert.equal(deadlineOf(m), null);
    });
  }

  it('every status is handled (no undefined result)', () => {
    for (const status of MACHINE_STATUSES) {
      assert.notEqual(nextDue(machine({ status, pausedAt: T0, autoDeleteAfterMs: 1 })), undefined, status);
    }
  });
});

describe('deadlineOf', () => {
  it('is the instant of the next due timer', () => {
    assert.equal(deadlineOf(machine()), T0 + 300_000);
    assert.equal(deadlineOf(machine({ inactivityTimeoutMs: 5_000, lastActiveAt: T0 + 7_000 })), T0 + 12_000);
    assert.equal(deadlineOf(machine({ status: 'paused', pausedAt: T0, autoDeleteAfterMs: 9_000 })), T0 + 9_000);
  });

  it('is null when nothing is due', () => {
    assert.equal(deadlineOf(machine({ status: 'paused', pausedAt: T0, autoDeleteAfterMs: null })), null);
  });
});

describe('remainingMs', () => {
  it('counts down to timeout_at', () => {
    assert.equal(remainingMs(machine(), T0), 300_000);
    assert.equal(remainingMs(machine(), T0 + 299_999), 1);
  });

  it('is 0 exactly at the deadline and clamped at 0 after it', () => {
    assert.equal(remainingMs(machine(), T0 + 300_000), 0);
    assert.equal(remainingMs(machine(), T0 + 10_000_000), 0);
  });

  it('follows timeout_at, not timeout_ms', () => {
    assert.equal(remainingMs(machine({ timeoutMs: 1_000, timeoutAt: T0 + 42 }), T0), 42);
  });
});

describe('nextDue: automatic snapshots', () => {
  const hourly = { frequency: 'hourly' as const, keep: 3, since: T0, lastAt: null };

  it('the first is due a period after auto snapshots were enabled, when that is the earliest timer', () => {
    const due = nextDue(machine({ timeoutMs: 10 * 3_600_000, timeoutAt: T0 + 10 * 3_600_000, autoSnapshot: hourly }));
    assert.deepEqual(due, { kind: 'auto_snapshot', action: 'snapshot', at: T0 + 3_600_000 });
  });

  it('the next is due a period after the last attempt', () => {
    const due = nextDue(machine({ timeoutAt: T0 + 10 * 86_400_000, autoSnapshot: { ...hourly, frequency: 'daily', lastAt: T0 + 5_000 } }));
    assert.deepEqual(due, { kind: 'auto_snapshot', action: 'snapshot', at: T0 + 5_000 + 86_400_000 });
  });

  it('an earlier hard deadline still wins', () => {
    assert.equal(nextDue(machine({ autoSnapshot: hourly }))?.kind, 'timeout');
  });

  it('a paused machine is not snapshotted', () => {
    assert.equal(nextDue(machine({ status: 'paused', pausedAt: T0, autoSnapshot: hourly })), null);
  });
});
