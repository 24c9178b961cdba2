import type { Readable } from 'node:stream';
import type { Isolation, MachineConfig } from '../domain/machine.js';
import type { OutboundPolicy } from '../domain/network.js';
import type { MachineHostPaths, MachineStats } from './machine-stats.js';

/** What a runtime needs to start one machine. */
export interface MachineSpec {
  id: string;
  hostname: string;
  /**
   * Read-only lower layers: the template's root filesystem directories, topmost first
   * (a template layered on others lists its own layer, then theirs).
   */
  templateLayers: string[];
  /** Argv of the machine's init process (pid 1 inside). */
  init: string[];
  /** Environment of the init process. */
  env: Record<string, string>;
  /** Working directory made to exist inside the machine. */
  cwd: string;
  config: MachineConfig;
  network: MachineNetworkSpec;
  /**
   * Work nobody waits for (a warm-pool refill): the host commands that prepare the
   * machine run at a lower CPU priority, so requests being answered go first. The
   * machine's own processes are not affected.
   */
  background?: boolean;
  /**
   * Volumes mounted into the machine, in this order, at every start, restart, resume,
   * fork and restore. @default none
   */
  volumes?: VolumeMountSpec[];
  /** Its isolation tier: which OCI runtime runs it. @default 'container' */
  isolation?: Isolation;
}

/** A volume as one machine mounts it. */
export interface VolumeMountSpec {
  /** The volume's id: one host mount of it serves every running machine that has it. */
  id: string;
  /** The volume's image on the host (`VolumeRuntime.volumeImage`). */
  image: string;
  /** Absolute, normalised path inside the machine. */
  mountPath: string;
  readOnly: boolean;
}

/** A machine's place on the private network. */
export interface MachineNetworkSpec {
  /** Its address on the server's machine subnet (`eth0` inside). */
  ip: string;
  outbound: OutboundPolicy;
  /**
   * The private network it is on: it reaches, and is reached by, the other machines with
   * the same id on their addresses, any protocol. @default null: on none
   */
  networkId?: string | null;
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
   * Whether the machine runs Hangar's in-machine agent, whose tools (`hangar-agent file`,
   * `hangar-agent watch`) are then at AGENT_BINARY_IN_MACHINE inside it.
   */
  hasAgent(id: string): Promise<boolean>;
  /**
   * Run a command inside a running machine and wait for it to exit; its output goes to
   * `io` as it comes. Throws `ExecStartError` when the command could not be started.
   */
  exec(id: string, options: ExecOptions, io: ExecIo): Promise<ExecResult>;
  /**
   * Start a long-lived command inside a running machine with its stdin kept open, and
   * resolve once it runs. Throws `ExecStartError` when it could not be started.
   */
  startProcess(id: string, options: ProcessOptions, io: ExecIo): Promise<ProcessHandle>;
  /**
   * Start a command on a new terminal (pty) inside a running machine; what it writes to
   * the terminal goes to `output` from the first byte. Throws
   * `ExecStartError` when it could not be started, `RuntimeError` (step 'pty') when this
   * host cannot provide terminals.
   */
  startPty(id: string, options: PtyOptions, output: (chunk: Buffer) => void): Promise<PtyHandle>;
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
  /**
   * Change a running machine's limits from `previous` to `spec.config`: CPU quota and
   * memory (limit and swap) at once, and a larger disk grown with its file system. On
   * failure nothing changed: `ResizeRefusedError` when the host or the machine's state
   * forbids it, `RuntimeError` otherwise (`stillRunning` false: the machine was lost).
   */
  resize(spec: MachineSpec, previous: MachineConfig): Promise<void>;
  /** Kill the processes and release mounts and cgroups, keeping the writable layer's data. */
  stop(id: string): Promise<void>;
  /**
   * Copy what a stopped machine changed over its template (its writable layer's upper
   * directory, overlay whiteouts included) into `dest`, a new directory on the host: the
   * layer a template build makes.
   */
  exportLayer(id: string, dest: string): Promise<void>;
  /** Kill everything and remove every host resource and file of the machine. */
  destroy(id: string): Promise<void>;
  /** Ids of machines that have files on disk (running or kept after an error). */
  machinesOnDisk(): Promise<string[]>;
  /**
   * At server start: rebuild the network of the machines that still hold one (running or
   * paused), and remove network pieces of this instance that belong to no such machine.
   */
  reconcileNetwork(live: ReadonlyMap<string, MachineNetworkSpec>): Promise<void>;
  /** Remove instance-wide resources once no machine is left (state dir, parent cgroups, bridge, chains). */
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
  /**
   * Fed to the command's stdin, which is closed at the end; without it stdin is empty (end-of-file at once).
   * A stream is piped with backpressure; if it fails instead of ending, stdin stays open, so abort
   * `signal` to kill the command (it must never mistake a cut-off stream for the whole input).
   */
  stdin?: Buffer | Readable;
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

/** A background command: like `ExecOptions` without stdin (it stays open) and with an optional timeout. */
export interface ProcessOptions {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  uid: number;
  gid: number;
  /** Killed, with everything it started, after this long. @default no limit */
  timeoutMs?: number;
}

/** A signal a process may be sent, by its name without `SIG`. */
export type ProcessSignal = 'HUP' | 'INT' | 'QUIT' | 'KILL' | 'USR1' | 'USR2' | 'TERM' | 'CONT' | 'STOP' | 'TSTP' | 'WINCH';

/** All signal names a process may be sent. */
export const PROCESS_SIGNALS: readonly ProcessSignal[] = ['HUP', 'INT', 'QUIT', 'KILL', 'USR1', 'USR2', 'TERM', 'CONT', 'STOP', 'TSTP', 'WINCH'];

/** A running background command. Its output goes to the `ExecIo` it was started with. */
export interface ProcessHandle {
  /** The command's pid inside the machine (its pid namespace). */
  pid: number;
  /**
   * Write to its stdin. Bytes the process has not read yet wait in memory, up to a limit:
   * 'full' when that is reached (nothing written), 'closed' when stdin is closed.
   */
  write(data: Buffer): 'written' | 'full' | 'closed';
  /** Close its stdin: the command reads end-of-file. */
  closeStdin(): void;
  /** Send a signal to the command's process group. */
  signal(sig: ProcessSignal): void;
  /** Kill the command and everything it started. */
  kill(): void;
  /** Settles once it has exited and its output is closed. */
  exited: Promise<ExecResult>;
}

/** A command to run on a terminal. */
export interface PtyOptions {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  uid: number;
  gid: number;
  cols: number;
  rows: number;
}

/** A command running on a terminal inside a machine. */
export interface PtyHandle {
  /** The command's pid inside the machine; 0 when it exited before it could be read. */
  pid: number;
  /** Bytes typed on the terminal. */
  write(data: Buffer): void;
  /** Change the terminal's window size (the command gets SIGWINCH). */
  resize(cols: number, rows: number): void;
  /** Stop reading the terminal's output until `resume` (a slow reader holds the command back). */
  pause(): void;
  resume(): void;
  /** Kill the command and everything it started. */
  kill(): void;
  /** Settles once the terminal has closed (the command and all that held it exited), with the command's exit code when known. */
  exited: Promise<{ exitCode: number | null }>;
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
  /**
   * Restore a paused machine from its pause snapshot, which is consumed. On failure the snapshot is intact.
   * A machine this host has nothing of was paused on another host sharing the snapshots
   * directory: it arrives with `spec`'s address, its TCP connections closed.
   */
  resume(spec: MachineSpec, snapshotId: string): Promise<{ pid: number }>;
  /** The identity of where snapshots are kept: hosts with the same one read each other's snapshots. */
  snapshotStore(): Promise<string>;
  /** Snapshot a running machine without stopping it (frozen meanwhile). */
  snapshot(id: string, snapshotId: string): Promise<SnapshotResult>;
  /** Thaw a machine a live snapshot left frozen (the server stopped between freeze and thaw). */
  thaw(id: string): Promise<void>;
  /**
   * Make a pause snapshot whole after a crash interrupted its pause or resume: no container,
   * layer unmounted, disk image and manifest in the snapshot. False when the image is nowhere.
   */
  settlePause(id: string, snapshotId: string): Promise<boolean>;
  /** Start a new machine from a snapshot: a copy of its layer, its processes restored. */
  fork(spec: MachineSpec, snapshotId: string): Promise<{ pid: number }>;
  /**
   * Replace the files of snapshot `targetId` (a paused machine's pause snapshot) with
   * copies of snapshot `sourceId`'s disk image and memory images, so resuming the
   * target restores the source's state. On failure the target is left as it was.
   */
  revertSnapshot(targetId: string, sourceId: string): Promise<SnapshotResult>;
  /** Delete a snapshot's files. */
  deleteSnapshot(snapshotId: string): Promise<void>;
  /** Ids of snapshots with files on disk. */
  snapshotsOnDisk(): Promise<string[]>;
}

/**
 * Volumes: disks that outlive machines, one file-system image each under the runtime's
 * own directory by volume id. A machine mounts them through `MachineSpec.volumes`; the
 * runtime mounts a volume on the host while a running machine uses it. Kept apart from
 * `Runtime` so a runtime without them is still a runtime.
 */
export interface VolumeRuntime {
  /** Make a new volume's image, whose file system holds exactly `sizeMb`. On failure nothing is left. */
  createVolume(id: string, sizeMb: number): Promise<void>;
  /** Where a volume's image is on the host (for `MachineSpec.volumes`). */
  volumeImage(id: string): string;
  /** Delete a volume's files; `RuntimeError` while a running machine still mounts it. Safe to call again. */
  deleteVolume(id: string): Promise<void>;
  /** Ids of volumes with files on disk. */
  volumesOnDisk(): Promise<string[]>;
  /**
   * At server start: count the volumes of the machines that still run (by machine id) as
   * mounted, mounting any whose host mount is missing, and unmount every other volume
   * mount of this instance.
   */
  reconcileVolumes(running: ReadonlyMap<string, readonly VolumeMountSpec[]>): Promise<void>;
}

/** A runtime operation failed; `reason` is safe to show to the machine's owner. */
export class RuntimeError extends Error {
  constructor(
    message: string,
    readonly machineId: string,
    readonly step: string,
    /** For pause and resize: whether the machine's processes are still running after the failure. */
    readonly stillRunning = false,
  ) {
    super(message);
    this.name = 'RuntimeError';
  }
}

/**
 * The server's own storage (its data dir) had no room for what the operation writes
 * (ENOSPC): a pause's or snapshot's images. What was written is removed again.
 */
export class NoSpaceError extends RuntimeError {
  constructor(message: string, machineId: string, step: string, stillRunning: boolean) {
    super(message, machineId, step, stillRunning);
    this.name = 'NoSpaceError';
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

/** Why a resize was refused before anything changed. */
export type ResizeRefusal = 'memory_in_use' | 'disk_unsupported' | 'mixed_time_namespaces';

/** A resize the kernel or the host refused; the machine runs on with its old limits. */
export class ResizeRefusedError extends RuntimeError {
  constructor(
    message: string,
    machineId: string,
    readonly refusal: ResizeRefusal,
    /** For memory_in_use: the bytes the machine uses now. */
    readonly usedBytes: number | null = null,
  ) {
    super(message, machineId, 'resize', true);
    this.name = 'ResizeRefusedError';
  }
}
