import type { AutoSnapshotFrequency, AutoSnapshotSettings, Isolation, MachineConfig, MachineRecord, MachineStatus, TimeoutAction } from '../domain/machine.js';
import type { OutboundPolicy } from '../domain/network.js';
import type { AttachmentRequest } from '../domain/volume.js';

/* The machine service's inputs and outputs, as the HTTP surfaces hand them over after validation. */

/** A create request after validation at the edge; absent fields take their defaults. */
export interface CreateMachineInput {
  template?: string;
  config?: Partial<MachineConfig>;
  metadata?: Record<string, unknown>;
  timeoutMs?: number;
  timeoutAction?: TimeoutAction;
  inactivityTimeoutMs?: number | null;
  autoDeleteAfterMs?: number | null;
  ephemeral?: boolean;
  /** Already normalised. */
  cwd?: string;
  env?: Record<string, string>;
  /** Start from this snapshot (a fork) instead of the template's init. */
  snapshotId?: string;
  /** What the machine may reach outside the host. @default allow */
  outbound?: OutboundPolicy;
  /** Ingress without a traffic access token. @default false */
  public?: boolean;
  /** Ingress traffic to the machine while paused resumes it. @default false */
  autoResume?: boolean;
  /** A human name. @default null */
  name?: string;
  /** The region asked for (validated by the caller against the server's). @default null: the default region */
  region?: string;
  /** Periodic automatic snapshots while the machine runs. @default off */
  autoSnapshot?: AutoSnapshotRequest;
  /** Once the machine runs, take a snapshot (kind `initial`) as part of the create. @default false */
  takeInitialSnapshot?: boolean;
  /** Take the initial snapshot and make it the machine's restore point. @default false */
  restorePointFromInitial?: boolean;
  /** Volumes to attach, in order (mount paths normalised and checked by the service). @default none */
  volumes?: AttachmentRequest[];
  /** A startup script of the team: the machine keeps a copy and runs it after its starts. @default none */
  startupScriptId?: string;
  /** The team's private network to join, for the machine's life (checked by the service). @default none */
  networkId?: string;
  /** How the surface spells the network field in its messages. @default "network_id" */
  networkField?: string;
  /** Its isolation tier. @default the template's (`isolation` in template.json), else 'container' */
  isolation?: Isolation;
}

/** Auto snapshot settings as a request gives them (already validated). */
export interface AutoSnapshotRequest {
  frequency: AutoSnapshotFrequency;
  /** How many automatic snapshots to keep, 1..AUTO_SNAPSHOT_MAX_KEEP. */
  keep: number;
}

/** A restore point to set: a snapshot of the machine, or (no id) one taken now. */
export interface RestorePointRequest {
  snapshotId?: string;
}

/** Options of a create call that are not part of the request. */
export interface CreateOptions {
  /**
   * Told as soon as the machine's record exists (before its container starts), with a
   * copy of the record: lets a caller answer at once and follow the rest in the background.
   */
  onRecorded?: (m: MachineRecord) => void;
}

/** Settings of an existing machine that can be changed; absent fields stay as they are. */
export interface UpdateMachineInput {
  name?: string;
  /** The new hard deadline length; a running machine's deadline becomes now + this. */
  timeoutMs?: number;
  timeoutAction?: TimeoutAction;
  /** New auto snapshot settings; null turns them off (automatic snapshots already taken stay). */
  autoSnapshot?: AutoSnapshotRequest | null;
  /**
   * Set the restore point (each pause reverts the machine to it); null clears it (the
   * snapshot stays). Without an id, a running machine is snapshotted now, and a machine
   * that already has a restore point keeps it.
   */
  restorePoint?: RestorePointRequest | null;
  /**
   * New resources for a running machine (a resize); absent ones stay. The disk only grows.
   * Applied to the running machine before anything is saved.
   */
  config?: Partial<MachineConfig>;
}

/** A list request after validation at the edge. */
export interface ListMachinesInput {
  states?: MachineStatus[];
  template?: string;
  metadata?: Record<string, unknown>;
  limit?: number;
  nextToken?: string;
  /** False for the legacy bare-array form: everything, no cursor. */
  paginated: boolean;
}

/** One page of machines. */
export interface MachinePage {
  items: MachineRecord[];
  nextToken: string | null;
}

/** Stored auto snapshot settings of a request (its first period starts at `now`), or null when off. */
export function autoSnapshotSettings(request: AutoSnapshotRequest | undefined, now: number): AutoSnapshotSettings | null {
  return request === undefined ? null : { frequency: request.frequency, keep: request.keep, since: now, lastAt: null };
}
