import type { MachineConfig } from '../domain/machine.js';
import type { MachineHostPaths, MachineStats } from './machine-stats.js';

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
  /** A live usage sample of a running machine; null when it has no running container. */
  stats(id: string): Promise<MachineStats | null>;
  /** Where the machine's root filesystem and bundle are on the host. */
  hostPaths(id: string): MachineHostPaths;
  /** Make a directory exist inside a machine that has not run user code yet (a warm-pool checkout). */
  ensureDir(id: string, path: string): Promise<void>;
  /**
   * Run a command inside a running machine and wait for it to exit; its output goes to
   * `io` as it comes. Throws `ExecStartError` when the command could not be started.
   */
  exec(id: string, options: ExecOptions, io: ExecIo): Promise<ExecResult>;
  /**
   * Kill every process of a running machine and start its init again on the same root
   * filesystem (the writable layer stays mounted, its files kept). On failure the
   * machine has no container left; its files are kept.
   */
  restart(spec: MachineSpec): Promise<{ pid: number }>;
  /**
   * Bytes in use in a machine's writable layer (the file system's own count), or null
   * when the layer is not mounted (the machine is not running).
   */
  diskUsage(id: string): Promise<number | null>;
  /** Kill the processes and release mounts and cgroups, keeping the writable layer's data. */
  stop(id: string): Promise<void>;
  /** Kill everything and remove every host resource and file of the machine. */
  destroy(id: string): Promise<void>;
  /** Ids of machines that have files on disk (running or kept after an error). */
  machinesOnDisk(): Promise<string[]>;
  /** Remove instance-wide resources once no machine is left (state dir, parent cgroups). */
  teardown(): Promise<void>;
}

/** One command to run inside a running machine. */
export interface ExecOptions {
  /** The command and its arguments; a bare name is looked up in the machine's PATH. */
  argv: string[];
  /** Working directory inside the machine. */
  cwd: string;
  /** Variables set over the environment the machine's init started with. */
  env: Record<string, string>;
  uid: number;
  gid: number;
  /** Fed to the command's stdin, which is then closed; without it stdin is empty (end-of-file at once). */
  stdin?: Buffer;
  /** The command and everything it started are killed after this long. */
  timeoutMs: number;
  /** Aborting kills the command and everything it started. */
  signal?: AbortSignal;
}

/**
 * Receives a command's output as it comes. A returned promise holds back further
 * reading until it settles, so a slow consumer slows the command instead of filling memory.
 */
export interface ExecIo {
  stdout(chunk: Buffer): void | Promise<void>;
  stderr(chunk: Buffer): void | Promise<void>;
}

/** How a command ended. */
export interface ExecResult {
  /** The command's exit status; 128 + n when a signal n killed it. */
  exitCode: number;
  /** Killed because `timeoutMs` passed. */
  timedOut: boolean;
  /** Killed because `signal` aborted. */
  aborted: boolean;
  durationMs: number;
}

/** Why a command could not be started: no such executable, the machine is not running, or anything else. */
export type ExecStartFailure = 'not_found' | 'not_running' | 'cannot_start';

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

/** A command never ran inside the machine; the message says why in plain words. */
export class ExecStartError extends RuntimeError {
  constructor(
    message: string,
    machineId: string,
    readonly failure: ExecStartFailure,
  ) {
    super(message, machineId, 'exec');
    this.name = 'ExecStartError';
  }
}
