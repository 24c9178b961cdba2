/**
 * Hosts: the servers that run machines. Each registers in the store at start-up, heartbeats
 * while it runs, and is marked `stopped` when it shuts down cleanly. A host that misses its
 * heartbeats for longer than the down bound is marked `down` by any other host; the machines
 * it ran are then failed with `hostLostReason`.
 */

/**
 * `up`: heartbeating; `draining`: heartbeating, runs its machines but gets no new ones (an
 * admin asked; kept across its restarts until undone); `stopped`: shut down cleanly;
 * `down`: missed its heartbeats.
 */
export type HostState = 'up' | 'draining' | 'stopped' | 'down';

/** True when the host heartbeats: up or draining. */
export const isAlive = (state: HostState): boolean => state === 'up' || state === 'draining';

export interface HostRecord {
  /** Stable across restarts of the same host (`HANGAR_HOST_ID`). */
  id: string;
  state: HostState;
  /** The base URL other servers forward a machine's requests to; null when it takes none. */
  url: string | null;
  /** How many machines (creating, running or paused) it takes at most. */
  capacityMachines: number;
  /** When it last registered (started). */
  startedAt: number;
  heartbeatAt: number;
  /** Why it is down; null otherwise. */
  downReason: string | null;
  /**
   * The identity of the directory it keeps snapshots in (null: not known). Hosts with the
   * same one share the directory: a paused machine of one can resume on another.
   */
  snapshotStore: string | null;
}

/** The error reason of a machine whose host was marked down. */
export function hostLostReason(hostId: string, downReason: string): string {
  return `host ${hostId} was lost: ${downReason}`;
}

/**
 * A machine's record was saved by a host it no longer names: another host took it (a paused
 * machine moved off a host marked down or draining) while this one still worked on it. Nothing
 * was written. A record changes host only through the store's move and adoption.
 */
export class MachineMovedError extends Error {
  constructor(
    readonly machineId: string,
    /** The host the stored record names now. */
    readonly hostId: string | null,
  ) {
    super(`machine ${machineId} is now host ${hostId ?? '(none)'}'s`);
    this.name = 'MachineMovedError';
  }
}

