import type { FieldProblem } from './errors.js';
import { DEFAULT_OUTBOUND, type OutboundPolicy } from './network.js';
import type { MachineStartupScript } from './startup-script.js';
import type { VolumeAttachment } from './volume.js';

/**
 * The machine model: what Hangar knows about one machine, independent of HTTP,
 * SQL and the container runtime.
 */

export const MACHINE_STATUSES = ['creating', 'running', 'paused', 'destroyed', 'error'] as const;
/** Lifecycle status of a machine. */
export type MachineStatus = (typeof MACHINE_STATUSES)[number];

export const TIMEOUT_ACTIONS = ['destroy', 'hibernate'] as const;
/** What happens at the hard deadline. */
export type TimeoutAction = (typeof TIMEOUT_ACTIONS)[number];

/** Resources of one machine; every value is enforced by the runtime. */
export interface MachineConfig {
  /** CPU quota in whole CPUs. @default 1 */
  vcpus: number;
  /** Memory limit in MiB. @default 512 */
  memory_mb: number;
  /** Size of the writable layer in MiB. @default 1024 */
  disk_mb: number;
}

export const DEFAULT_CONFIG: MachineConfig = { vcpus: 1, memory_mb: 512, disk_mb: 1024 };

/** Limits on the values a create request may ask for. */
export const CONFIG_LIMITS = {
  vcpus: { min: 1, max: 64 },
  memory_mb: { min: 16, max: 262_144 },
  disk_mb: { min: 16, max: 1_048_576 },
} as const;

export const ISOLATIONS = ['container', 'gvisor'] as const;
/**
 * How a machine is isolated from the host: `container` runs its processes on the host's
 * kernel (runc: namespaces, capabilities, seccomp, cgroups); `gvisor` runs them on
 * gVisor's user-space kernel (runsc) inside the same namespaces and cgroups, so a
 * kernel bug reachable from the machine is gVisor's, not the host's.
 */
export type Isolation = (typeof ISOLATIONS)[number];
export const DEFAULT_ISOLATION: Isolation = 'container';

export const AUTO_SNAPSHOT_FREQUENCIES = ['hourly', 'daily', 'weekly', 'monthly'] as const;
/** How often a machine's automatic snapshots are taken. */
export type AutoSnapshotFrequency = (typeof AUTO_SNAPSHOT_FREQUENCIES)[number];

/** The period of each frequency (a month is 30 days). */
export const AUTO_SNAPSHOT_PERIOD_MS: Record<AutoSnapshotFrequency, number> = {
  hourly: 3_600_000,
  daily: 24 * 3_600_000,
  weekly: 7 * 24 * 3_600_000,
  monthly: 30 * 24 * 3_600_000,
};

/** The most automatic snapshots a machine may keep. */
export const AUTO_SNAPSHOT_MAX_KEEP = 30;

/** A machine's automatic snapshots: taken every period while it runs, the newest `keep` kept. */
export interface AutoSnapshotSettings {
  frequency: AutoSnapshotFrequency;
  /** How many automatic snapshots are kept (1..AUTO_SNAPSHOT_MAX_KEEP); older ones are deleted. */
  keep: number;
  /** When auto snapshots were (re)enabled: the first period starts here. */
  since: number;
  /** When the last automatic snapshot was attempted (taken or failed); null before the first. */
  lastAt: number | null;
}

/** A machine's restore point: each stop reverts the machine to this snapshot. */
export interface RestorePoint {
  /** When the machine reverts: only at each shutdown (stop or auto shutdown). */
  frequency: 'shutdown';
  snapshotId: string;
}

/** What is wrong with the resources of a resize request, checked against the limits a create has (CONFIG_LIMITS). */
export function configProblems(config: Partial<MachineConfig>): FieldProblem[] {
  const out: FieldProblem[] = [];
  for (const key of ['vcpus', 'memory_mb', 'disk_mb'] as const) {
    const v = config[key];
    const { min, max } = CONFIG_LIMITS[key];
    if (v !== undefined && !(Number.isInteger(v) && v >= min && v <= max)) out.push({ field: `config.${key}`, message: `must be a whole number from ${min} to ${max}` });
  }
  return out;
}

export const TIMEOUT_LIMITS = { min: 1_000, max: 30 * 24 * 3_600_000 } as const;
export const DEFAULT_TIMEOUT_MS = 300_000;
export const METADATA_MAX_BYTES = 16 * 1024;

/** The result of considering a warm pool at create time. */
export interface WarmPoolCheckout {
  hit: boolean;
  id: string;
}

/** Everything stored about one machine. Times are epoch milliseconds. */
export interface MachineRecord {
  id: string;
  teamId: string;
  status: MachineStatus;
  template: string;
  config: MachineConfig;
  metadata: Record<string, unknown>;
  env: Record<string, string>;
  cwd: string | null;
  ephemeral: boolean;
  timeoutMs: number;
  timeoutAt: number;
  timeoutAction: TimeoutAction;
  inactivityTimeoutMs: number | null;
  autoDeleteAfterMs: number | null;
  createdAt: number;
  startedAt: number | null;
  lastActiveAt: number | null;
  pausedAt: number | null;
  /** When the machine was last resumed: timers restart from here. */
  resumedAt: number | null;
  destroyedAt: number | null;
  snapshotId: string | null;
  warmPoolCheckout: WarmPoolCheckout | null;
  /** The warm pool holding this machine while it waits, idle, to be checked out; null after. */
  pool: string | null;
  /** Why the machine is in `error`; null otherwise. */
  errorReason: string | null;
  /** Earliest lifecycle deadline (see lifecycle.ts), kept for the scheduler's index. */
  deadlineAt: number | null;
  /** Address on the server's machine subnet; held while the machine holds resources, kept after for the record. */
  privateIp: string | null;
  /** What the machine may reach outside the host. */
  outbound: OutboundPolicy;
  /** Ingress to its ports needs no traffic access token. */
  public: boolean;
  /** Ingress traffic to the machine while it is paused resumes it (instead of a 409). */
  autoResume: boolean;
  /** A human name (the Paperspace-style surface sets it); null when never named. */
  name: string | null;
  /** When its settings (name, timers) were last changed or it was restarted; null if never. */
  updatedAt: number | null;
  /** The user who created it; null when created with a team key (or by a warm pool, until checkout). */
  createdBy: string | null;
  /** Periodic automatic snapshots; null when off. */
  autoSnapshot: AutoSnapshotSettings | null;
  /** The snapshot each stop reverts the machine to; null when off. */
  restorePoint: RestorePoint | null;
  /** The build (version) of a built template the machine runs on; null for directory templates (`base`, `desktop`…). */
  templateBuild: string | null;
  /** Volumes attached at its create, in request order; fixed for the machine's life, released when it is destroyed. */
  volumes: VolumeAttachment[];
  /** The region it was created in (a Paperspace-style create names one); null: the server's default region. */
  region: string | null;
  /** The startup script copied at its create (run by the service after starts); null when none. */
  startupScript: MachineStartupScript | null;
  /** The team's private network it joined at its create (fixed for its life); null: on none. */
  networkId: string | null;
  /** Its isolation tier, fixed at its create. @default 'container' */
  isolation: Isolation;
  /** The host that runs it (holds its container, disk and snapshots); null until a host takes it. */
  hostId: string | null;
}

/** True when the status is final: nothing more happens to the machine. */
export function isTerminal(status: MachineStatus): boolean {
  switch (status) {
    case 'destroyed':
      return true;
    case 'creating':
    case 'running':
    case 'paused':
    case 'error':
      return false;
  }
}

/** True when the machine may hold host resources (processes, mounts, cgroups). */
export function holdsResources(status: MachineStatus): boolean {
  switch (status) {
    case 'creating':
    case 'running':
    case 'paused':
      return true;
    case 'error':
    case 'destroyed':
      return false;
  }
}

/** Normalise a working directory: absolute, no `.`/`..` segments, no trailing slash. */
export function normaliseCwd(cwd: string): string | null {
  if (!cwd.startsWith('/') || cwd.includes('\0')) return null;
  const parts: string[] = [];
  for (const part of cwd.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return `/${parts.join('/')}`;
}

/** What a new machine record must be given; everything else starts empty or at its default. */
export type NewMachineFields = Pick<MachineRecord, 'id' | 'teamId' | 'template' | 'createdAt'> & Partial<MachineRecord>;

/** A machine record in `creating`, with defaults for every field not given. */
export function newMachineRecord(f: NewMachineFields): MachineRecord {
  const timeoutMs = f.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return {
    status: 'creating',
    config: { ...DEFAULT_CONFIG },
    metadata: {},
    env: {},
    cwd: null,
    ephemeral: false,
    timeoutMs,
    timeoutAt: f.createdAt + timeoutMs,
    timeoutAction: 'destroy',
    inactivityTimeoutMs: null,
    autoDeleteAfterMs: null,
    startedAt: null,
    lastActiveAt: null,
    pausedAt: null,
    resumedAt: null,
    destroyedAt: null,
    snapshotId: null,
    warmPoolCheckout: null,
    pool: null,
    errorReason: null,
    deadlineAt: null,
    privateIp: null,
    outbound: DEFAULT_OUTBOUND,
    public: false,
    autoResume: false,
    name: null,
    updatedAt: null,
    createdBy: null,
    autoSnapshot: null,
    restorePoint: null,
    templateBuild: null,
    volumes: [],
    region: null,
    startupScript: null,
    networkId: null,
    isolation: DEFAULT_ISOLATION,
    hostId: null,
    ...f,
  };
}
