import { HangarError } from './errors.js';
import type { MachineRecord, MachineStatus } from './machine.js';

/**
 * The machine lifecycle as two tables: which operations each status allows, and which
 * status each outcome of an operation leads to. Every service asks here instead of
 * comparing statuses itself, so a new status or operation is one edit the compiler
 * checks everywhere (both tables are exhaustive records).
 */

/** What a caller (or a timer) asks of a machine, as far as its status decides. */
export type MachineOperation =
  | 'destroy'
  | 'update'
  | 'timeout_refresh'
  | 'resize'
  | 'restart'
  | 'pause'
  | 'resume'
  | 'snapshot'
  | 'command'
  | 'checkout'
  | 'traffic'
  | 'record_activity'
  | 'disk_usage';

interface OperationRule {
  /** Statuses in which the operation may start. */
  from: readonly MachineStatus[];
  /** How a 409 names the operation ("… ; pause needs …"). */
  phrase: string;
  /** How a 409 names the statuses it needs ("… needs a machine that is running"). */
  needs: string;
}

const NOT_DESTROYED: readonly MachineStatus[] = ['creating', 'running', 'paused', 'error'];

const OPERATIONS: Record<MachineOperation, OperationRule> = {
  destroy: { from: NOT_DESTROYED, phrase: 'a delete', needs: 'not destroyed' },
  update: { from: NOT_DESTROYED, phrase: 'an update', needs: 'not destroyed' },
  timeout_refresh: { from: ['running'], phrase: 'a timeout refresh', needs: 'running' },
  resize: { from: ['running'], phrase: 'a resize', needs: 'running (start it first, then resize)' },
  restart: { from: ['running'], phrase: 'restart', needs: 'running' },
  pause: { from: ['running'], phrase: 'pause', needs: 'running' },
  resume: { from: ['paused'], phrase: 'resume', needs: 'paused' },
  snapshot: { from: ['running'], phrase: 'a snapshot', needs: 'running' },
  // Exec, processes, terminals and files: they need the container's processes.
  command: { from: ['running'], phrase: 'a command', needs: 'running' },
  traffic: { from: ['running'], phrase: 'traffic', needs: 'running' },
  // An idle pool machine is handed to a create, or trimmed, only once it runs.
  checkout: { from: ['running'], phrase: 'a warm-pool checkout', needs: 'running' },
  // Activity only moves a running machine's inactivity timer; a pause or destroy meanwhile wins.
  record_activity: { from: ['running'], phrase: 'recording activity', needs: 'running' },
  // The writable layer is mounted only while the machine runs.
  disk_usage: { from: ['running'], phrase: 'measuring its disk', needs: 'running' },
};

/** True for every status but `destroyed`: the machine (or its record of an error) still exists. */
export function isLive(status: MachineStatus): boolean {
  return status !== 'destroyed';
}

/** True when a machine in `status` may start `operation`. */
export function allows(status: MachineStatus, operation: MachineOperation): boolean {
  return OPERATIONS[operation].from.includes(status);
}

/** The 409 for an operation the machine's status does not allow; `needs` overrides the table's wording. */
export function stateConflict(m: Pick<MachineRecord, 'id' | 'status'>, operation: MachineOperation, needs?: string): HangarError {
  const rule = OPERATIONS[operation];
  return new HangarError('STATE_CONFLICT', `Machine ${m.id} is ${m.status}; ${rule.phrase} needs a machine that is ${needs ?? rule.needs}.`, {
    status: m.status,
  });
}

/** Throw the 409 unless the machine's status allows the operation. */
export function assertAllows(m: Pick<MachineRecord, 'id' | 'status'>, operation: MachineOperation, needs?: string): void {
  if (!allows(m.status, operation)) throw stateConflict(m, operation, needs);
}

/** How an operation on a machine ended, as far as its status goes. */
export type LifecycleOutcome = 'started' | 'paused' | 'resumed' | 'destroyed' | 'failed';

/**
 * The status an outcome leads to from `from`, or null when that outcome cannot happen
 * there (a machine is never resumed unless paused, nothing leaves `destroyed`).
 */
export function statusAfter(from: MachineStatus, outcome: LifecycleOutcome): MachineStatus | null {
  switch (outcome) {
    case 'started':
      return from === 'creating' ? 'running' : null;
    case 'paused':
      // From `running`: a pause; also what start-up finds after a crash in the middle of one.
      return from === 'running' ? 'paused' : null;
    case 'resumed':
      return from === 'paused' ? 'running' : null;
    case 'destroyed':
    case 'failed':
      // Every live status can end either way; a failed destroy of an `error` machine stays there.
      return from === 'destroyed' ? null : outcome === 'destroyed' ? 'destroyed' : 'error';
  }
}

/**
 * Move a machine record to the status `outcome` leads to. An impossible transition is a
 * 409 (another operation changed the machine in between), never a silent no-op.
 */
export function transition(m: MachineRecord, outcome: LifecycleOutcome): void {
  const next = statusAfter(m.status, outcome);
  if (next === null) {
    throw new HangarError('STATE_CONFLICT', `Machine ${m.id} is ${m.status}; it cannot become ${outcome} from there.`, { status: m.status });
  }
  m.status = next;
}
