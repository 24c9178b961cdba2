import { AUTO_SNAPSHOT_PERIOD_MS, type MachineRecord } from './machine.js';

/** Which timer fired. */
export type DeadlineKind = 'timeout' | 'inactivity' | 'auto_delete' | 'auto_snapshot';

/** What the scheduler must do to a machine whose deadline has passed. */
export interface DueAction {
  kind: DeadlineKind;
  action: 'destroy' | 'hibernate' | 'snapshot';
  at: number;
}

/** When the next automatic snapshot is due: a period after the last attempt, or after auto snapshots were enabled. */
export function autoSnapshotDue(m: Pick<MachineRecord, 'autoSnapshot'>): number | null {
  const a = m.autoSnapshot;
  if (a === null) return null;
  return Math.max(a.lastAt ?? -Infinity, a.since) + AUTO_SNAPSHOT_PERIOD_MS[a.frequency];
}

/** When inactivity fires: measured from the last activity, or from the (re)start if later. */
function inactivityDeadline(m: MachineRecord): number | null {
  if (m.inactivityTimeoutMs == null) return null;
  const started = m.resumedAt ?? m.startedAt;
  const since = Math.max(m.lastActiveAt ?? -Infinity, started ?? -Infinity);
  return Number.isFinite(since) ? since + m.inactivityTimeoutMs : null;
}

/**
 * The earliest pending timer of a machine, or null if none applies in its status.
 * Running machines have the hard deadline, inactivity and the next auto snapshot (a
 * paused machine changes nothing, so it is not snapshotted); paused ones auto-delete.
 */
export function nextDue(m: MachineRecord): DueAction | null {
  // An idle pool machine has no timers: they start when a create checks it out.
  if (m.pool !== null) return null;
  switch (m.status) {
    case 'running': {
      const candidates: DueAction[] = [
        { kind: 'timeout', action: m.timeoutAction, at: m.timeoutAt },
      ];
      const idle = inactivityDeadline(m);
      if (idle != null) candidates.push({ kind: 'inactivity', action: m.ephemeral ? 'destroy' : 'hibernate', at: idle });
      const snapshot = autoSnapshotDue(m);
      if (snapshot != null) candidates.push({ kind: 'auto_snapshot', action: 'snapshot', at: snapshot });
      return candidates.reduce((a, b) => (b.at < a.at ? b : a));
    }
    case 'paused':
      if (m.autoDeleteAfterMs == null || m.pausedAt == null) return null;
      return { kind: 'auto_delete', action: 'destroy', at: m.pausedAt + m.autoDeleteAfterMs };
    case 'creating':
    case 'destroyed':
    case 'error':
      return null;
  }
}

/** The value to store in `deadlineAt`, so the scheduler can find due machines by index. */
export function deadlineOf(m: MachineRecord): number | null {
  return nextDue(m)?.at ?? null;
}

/** Milliseconds until the hard deadline at `now`, clamped at 0. */
export function remainingMs(m: MachineRecord, now: number): number {
  return Math.max(0, m.timeoutAt - now);
}
