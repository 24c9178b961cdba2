/**
 * Machine events: one record per asynchronous operation on a machine (create, start,
 * stop, restart, update, delete, and the scheduled auto `snapshot`), telling when it
 * started, when it finished and how.
 */
import { randomLowerAlnum } from './ids.js';

export const MACHINE_EVENT_NAMES = ['create', 'start', 'stop', 'restart', 'update', 'delete', 'snapshot'] as const;
/** The operation an event tracks. */
export type MachineEventName = (typeof MACHINE_EVENT_NAMES)[number];

export const MACHINE_EVENT_STATES = ['new', 'in progress', 'done', 'error', 'cancelled'] as const;
/** Where an operation is: `new` → `in progress` → `done` | `error` (`cancelled` is never produced yet). */
export type MachineEventState = (typeof MACHINE_EVENT_STATES)[number];

/** Everything stored about one event. Times are epoch milliseconds. */
export interface MachineEventRecord {
  id: string;
  teamId: string;
  machineId: string;
  name: MachineEventName;
  state: MachineEventState;
  /** The error text when `state` is `error`; null otherwise. */
  error: string | null;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
}

/** True when nothing more happens to the event. */
export function isEventFinished(state: MachineEventState): boolean {
  switch (state) {
    case 'done':
    case 'error':
    case 'cancelled':
      return true;
    case 'new':
    case 'in progress':
      return false;
  }
}

/** Event ids: `mev_` + 16 lowercase letters and digits. */
export const newMachineEventId = (): string => `mev_${randomLowerAlnum(16)}`;
