/**
 * Machine records as `machines` rows and back: one column per field, JSON-valued fields
 * as text (not jsonb), so a record round-trips exactly (key order of metadata, env and
 * config included); flags as booleans, times as bigints read back as numbers.
 */
import type { AutoSnapshotFrequency, MachineRecord, MachineStatus } from '../../domain/machine.js';
import { DEFAULT_OUTBOUND } from '../../domain/network.js';
import type { MachineStartupScript } from '../../domain/startup-script.js';
import type { VolumeAttachment } from '../../domain/volume.js';

/** A `machines` row as the driver returns it. */
export interface MachineRow {
  id: string;
  team_id: string;
  status: string;
  template: string;
  config: string;
  metadata: string;
  env: string;
  cwd: string | null;
  ephemeral: boolean;
  timeout_ms: number;
  timeout_at: number;
  timeout_action: string;
  inactivity_timeout_ms: number | null;
  auto_delete_after_ms: number | null;
  created_at: number;
  started_at: number | null;
  last_active_at: number | null;
  paused_at: number | null;
  resumed_at: number | null;
  destroyed_at: number | null;
  snapshot_id: string | null;
  warm_pool_checkout: string | null;
  pool: string | null;
  error_reason: string | null;
  deadline_at: number | null;
  private_ip: string | null;
  outbound: string | null;
  public: boolean;
  auto_resume: boolean;
  name: string | null;
  updated_at: number | null;
  created_by: string | null;
  auto_snapshot_frequency: string | null;
  auto_snapshot_keep: number | null;
  auto_snapshot_since: number | null;
  auto_snapshot_last_at: number | null;
  restore_point_frequency: string | null;
  restore_point_snapshot_id: string | null;
  template_build: string | null;
  /** JSON array of attachments; null when the machine has none. */
  volumes: string | null;
  region: string | null;
  /** JSON of the machine's copy of its startup script; null when none. */
  startup_script: string | null;
  network_id: string | null;
  /** NULL in rows written before the column existed: 'container'. */
  isolation: string | null;
  host_id: string | null;
}

/** Every column of `machines`, in the order inserts and updates bind them. */
export const MACHINE_COLUMNS = [
  'id', 'team_id', 'status', 'template', 'config', 'metadata', 'env', 'cwd', 'ephemeral',
  'timeout_ms', 'timeout_at', 'timeout_action', 'inactivity_timeout_ms', 'auto_delete_after_ms',
  'created_at', 'started_at', 'last_active_at', 'paused_at', 'resumed_at', 'destroyed_at', 'snapshot_id',
  'warm_pool_checkout', 'pool', 'error_reason', 'deadline_at', 'private_ip', 'outbound', 'public', 'auto_resume', 'name', 'updated_at',
  'created_by',
  'auto_snapshot_frequency', 'auto_snapshot_keep', 'auto_snapshot_since', 'auto_snapshot_last_at', 'restore_point_frequency', 'restore_point_snapshot_id',
  'template_build',
  'volumes',
  'region',
  'startup_script',
  'network_id',
  'isolation',
  'host_id',
] as const satisfies readonly (keyof MachineRow)[];

/** The row that stores a machine record. */
export function machineToRow(m: MachineRecord): MachineRow {
  return {
    id: m.id,
    team_id: m.teamId,
    status: m.status,
    template: m.template,
    config: JSON.stringify(m.config),
    metadata: JSON.stringify(m.metadata),
    env: JSON.stringify(m.env),
    cwd: m.cwd,
    ephemeral: m.ephemeral,
    timeout_ms: m.timeoutMs,
    timeout_at: m.timeoutAt,
    timeout_action: m.timeoutAction,
    inactivity_timeout_ms: m.inactivityTimeoutMs,
    auto_delete_after_ms: m.autoDeleteAfterMs,
    created_at: m.createdAt,
    started_at: m.startedAt,
    last_active_at: m.lastActiveAt,
    paused_at: m.pausedAt,
    resumed_at: m.resumedAt,
    destroyed_at: m.destroyedAt,
    snapshot_id: m.snapshotId,
    warm_pool_checkout: m.warmPoolCheckout ? JSON.stringify(m.warmPoolCheckout) : null,
    pool: m.pool,
    error_reason: m.errorReason,
    deadline_at: m.deadlineAt,
    private_ip: m.privateIp,
    outbound: JSON.stringify(m.outbound),
    public: m.public,
    auto_resume: m.autoResume,
    name: m.name,
    updated_at: m.updatedAt,
    created_by: m.createdBy,
    auto_snapshot_frequency: m.autoSnapshot?.frequency ?? null,
    auto_snapshot_keep: m.autoSnapshot?.keep ?? null,
    auto_snapshot_since: m.autoSnapshot?.since ?? null,
    auto_snapshot_last_at: m.autoSnapshot?.lastAt ?? null,
    restore_point_frequency: m.restorePoint?.frequency ?? null,
    restore_point_snapshot_id: m.restorePoint?.snapshotId ?? null,
    template_build: m.templateBuild,
    volumes: volumesToColumn(m.volumes),
    region: m.region,
    startup_script: m.startupScript === null ? null : JSON.stringify(m.startupScript),
    network_id: m.networkId,
    isolation: m.isolation,
    host_id: m.hostId,
  };
}

/** The values of a machine's row in `MACHINE_COLUMNS` order ($1 is the id). */
export function machineValues(m: MachineRecord): unknown[] {
  const row = machineToRow(m);
  return MACHINE_COLUMNS.map((c) => row[c]);
}

/** The machine record of a stored row. */
export function machineFromRow(r: MachineRow): MachineRecord {
  return {
    id: r.id,
    teamId: r.team_id,
    status: r.status as MachineStatus,
    template: r.template,
    config: JSON.parse(r.config),
    metadata: JSON.parse(r.metadata),
    env: JSON.parse(r.env),
    cwd: r.cwd,
    ephemeral: r.ephemeral,
    timeoutMs: r.timeout_ms,
    timeoutAt: r.timeout_at,
    timeoutAction: r.timeout_action as MachineRecord['timeoutAction'],
    inactivityTimeoutMs: r.inactivity_timeout_ms,
    autoDeleteAfterMs: r.auto_delete_after_ms,
    createdAt: r.created_at,
    startedAt: r.started_at,
    lastActiveAt: r.last_active_at,
    pausedAt: r.paused_at,
    resumedAt: r.resumed_at,
    destroyedAt: r.destroyed_at,
    snapshotId: r.snapshot_id,
    warmPoolCheckout: r.warm_pool_checkout ? JSON.parse(r.warm_pool_checkout) : null,
    pool: r.pool,
    errorReason: r.error_reason,
    deadlineAt: r.deadline_at,
    privateIp: r.private_ip,
    outbound: r.outbound === null ? { ...DEFAULT_OUTBOUND } : JSON.parse(r.outbound),
    public: r.public,
    autoResume: r.auto_resume,
    name: r.name,
    updatedAt: r.updated_at,
    createdBy: r.created_by,
    autoSnapshot:
      r.auto_snapshot_frequency === null
        ? null
        : {
            frequency: r.auto_snapshot_frequency as AutoSnapshotFrequency,
            keep: r.auto_snapshot_keep ?? 1,
            since: r.auto_snapshot_since ?? r.created_at,
            lastAt: r.auto_snapshot_last_at,
          },
    restorePoint: r.restore_point_snapshot_id === null ? null : { frequency: 'shutdown', snapshotId: r.restore_point_snapshot_id },
    templateBuild: r.template_build,
    volumes: volumesFromColumn(r.volumes),
    region: r.region,
    startupScript: r.startup_script === null ? null : (JSON.parse(r.startup_script) as MachineStartupScript),
    networkId: r.network_id,
    isolation: r.isolation === 'gvisor' ? 'gvisor' : 'container',
    hostId: r.host_id ?? null,
  };
}

/** Attachments as a `volumes` column: JSON, or null for none (the partial index covers only machines with volumes). */
export function volumesToColumn(volumes: readonly VolumeAttachment[]): string | null {
  return volumes.length === 0 ? null : JSON.stringify(volumes.map((v) => ({ volumeId: v.volumeId, mountPath: v.mountPath, readOnly: v.readOnly })));
}

/** The attachments of a `volumes` column. */
export function volumesFromColumn(column: string | null): VolumeAttachment[] {
  return column === null ? [] : (JSON.parse(column) as VolumeAttachment[]);
}
