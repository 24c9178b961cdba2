import type { HostRecord, HostState } from '../domain/host.js';

/** A row of `hosts`, as both databases return it (PostgreSQL may give its bigints as strings). */
export interface HostRow {
  id: string;
  state: string;
  url: string | null;
  capacity_machines: number;
  started_at: string | number;
  heartbeat_at: string | number;
  down_reason: string | null;
  snapshot_store: string | null;
}

/** The host record of a stored row. */
export function hostFromRow(r: HostRow): HostRecord {
  return {
    id: r.id,
    state: r.state as HostState,
    url: r.url,
    capacityMachines: r.capacity_machines,
    startedAt: Number(r.started_at),
    heartbeatAt: Number(r.heartbeat_at),
    downReason: r.down_reason,
    snapshotStore: r.snapshot_store,
  };
}
