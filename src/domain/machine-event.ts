/**
 * Machine events: one record per asynchronous operation on a machine (create, start,
 * stop, restart, update, delete, and the scheduled auto `snapshot`), telling when it
 * started, when it finished and how; and one per run of its startup script.
 */
import { randomLowerAlnum } from './ids.js';
import type { StartupScriptRun } from './startup-script.js';

export const MACHINE_EVENT_NAMES = ['create', 'start', 'stop', 'restart', 'update', 'delete', 'snapshot', 'startup-script'] as const;
/** The operation an event tracks. */
export type MachineEventName = (typeof MACHINE_EVENT_NAMES)[number];

/** What each event name records: the OpenAPI document and docs/paperspace-api.md list these. */
export const MACHINE_EVENT_MEANINGS: Readonly<Record<MachineEventName, string>> = {
  create: 'a create (native or Paperspace-style), until the machine runs (or is stopped, with startOnCreate: false)',
  start: 'a start (Paperspace) or resume (native), until the machine runs',
  stop: 'a stop (Paperspace), pause (native) or hibernate by a lifecycle timer, until the snapshot is kept',
  restart: 'a restart: the machine\'s processes start again from init, its files kept',
  update: 'a change of settings (name, timers, auto snapshots, restore point) or a resize',
  delete: 'a delete, by a request or a lifecycle timer (auto shutdown, auto delete)',
  snapshot: 'an automatic snapshot taken by the machine\'s schedule',
  'startup-script':
    'a run of the machine\'s startup script after a start, until the script exits: done with exit code 0, error otherwise (the machine keeps running); startupScript has its process id, exit code and output',
};

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
  /** A `startup-script` event's run; null for every other event. */
  startupScript: StartupScriptRun | null;
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
