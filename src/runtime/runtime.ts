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

/** A runtime operation failed; `reason` is safe to show to the machine's owner. */
export class RuntimeError extends Error {
  constructor(
    message: string,
    readonly machineId: string,
    readonly step: string,
  ) {
    super(message);
    this.name = 'RuntimeError';
  }
}
