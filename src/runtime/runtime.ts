import type { MachineConfig } from '../domain/machine.js';

/** What a runtime needs to start one machine. */
export interface MachineSpec {
  id: string;
  hostname: string;
  /** Read-only lower layer: the template's root filesystem directory. */
  templateRootfs: string;
  /** Argv of the machine's init process (pid 1 inside). */
  init: string[];
  /** Environment of the init process. */
  env: Record<string, string>;
  /** Working directory made to exist inside the machine. */
  cwd: string;
  config: MachineConfig;
}

/** The runtime's view of one machine's container. */
export interface RuntimeMachineState {
  status: 'created' | 'running' | 'paused' | 'stopped';
  /** Host pid of the machine's init, 0 when not running. */
  pid: number;
}

/** Facts about the runtime, for /v1/info and logs. */
export interface RuntimeInfo {
  name: string;
  version: string;
  /** Prefix carried by every host resource this server creates. */
  instancePrefix: string;
}

/**
 * A container runtime: the narrow interface the service layer drives. One folder
 * per implementation (runc/ now). Every method is safe to call again after a crash.
 */
export interface Runtime {
  info(): Promise<RuntimeInfo>;
  /** Prepare the root filesystem and start the machine. On failure nothing is left behind. */
  start(spec: MachineSpec): Promise<{ pid: number }>;
  /** The container's state, or null if the runtime has no such container. */
  inspect(id: string): Promise<RuntimeMachineState | null>;
  /** Every container of this instance, by machine id. */
  list(): Promise<Map<string, RuntimeMachineState>>;
  /** Kill the processes and release mounts and cgroups, keeping the writable layer's data. */
  stop(id: string): Promise<void>;
  /** Kill everything and remove every host resource and file of the machine. */
  destroy(id: string): Promise<void>;
  /** Ids of machines that have files on disk (running or kept after an error). */
  machinesOnDisk(): Promise<string[]>;
  /** Remove instance-wide resources once no machine is left (state dir, parent cgroups). */
  teardown(): Promise<void>;
}

/** Whether this host can snapshot memory (CRIU), and why not. */
export interface SnapshotSupport {
  /** True when checkpoints include processes and memory; false: filesystem only. */
  memory: boolean;
  criuVersion: string | null;
  /** Why memory snapshots are unavailable; null when they are. */
  reason: string | null;
}

/** What a snapshot holds, as the runtime reports after taking it. */
export interface SnapshotResult {
  memory: boolean;
  /** Bytes on disk (allocated, not apparent: images are sparse). */
  sizeBytes: number;
}

/**
 * Snapshots: memory (CRIU) plus the writable layer, stored by the runtime under its
 * own directory by snapshot id. Kept apart from `Runtime` so a runtime without them
 * is still a runtime.
 */
export interface SnapshotRuntime {
  snapshotSupport(): Promise<SnapshotSupport>;
  /**
   * Checkpoint and stop a running machine; its writable layer moves into the snapshot.
   * `memory: false` skips CRIU (a filesystem-only snapshot).
   * On failure the machine is left running if at all possible; `RuntimeError.stillRunning`
   * says whether it is.
   */
  pause(id: string, snapshotId: string, options?: { memory?: boolean }): Promise<SnapshotResult>;
  /** Restore a paused machine from its pause snapshot, which is consumed. On failure the snapshot is intact. */
  resume(spec: MachineSpec, snapshotId: string): Promise<{ pid: number }>;
  /** Snapshot a running machine without stopping it (frozen meanwhile). */
  snapshot(id: string, snapshotId: string): Promise<SnapshotResult>;
  /** Start a new machine from a snapshot: a copy of its layer, its processes restored. */
  fork(spec: MachineSpec, snapshotId: string): Promise<{ pid: number }>;
  /** Delete a snapshot's files. */
  deleteSnapshot(snapshotId: string): Promise<void>;
  /** Ids of snapshots with files on disk. */
  snapshotsOnDisk(): Promise<string[]>;
}

/** A runtime operation failed; `reason` is safe to show to the machine's owner. */
export class RuntimeError extends Error {
  constructor(
    message: string,
    readonly machineId: string,
    readonly step: string,
    /** For pause: whether the machine's processes are still running after the failure. */
    readonly stillRunning = false,
  ) {
    super(message);
    this.name = 'RuntimeError';
  }
}
