import type { MachineRecord } from './machine.js';

/** Which timer fired. */
export type DeadlineKind = 'timeout' | 'inactivity' | 'auto_delete';

/** What the scheduler must do to a machine whose deadline has passed. */
export interface DueAction {
  kind: DeadlineKind;
  action: 'destroy' | 'hibernate';
  at: number;
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
 * Running machines have the hard deadline and inactivity; paused ones auto-delete.
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
