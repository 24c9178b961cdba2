import type { MachineRecord } from '../domain/machine.js';
import type { Caller } from '../domain/team.js';
import type { MachineHostPaths, MachineStats } from '../runtime/machine-stats.js';
import type { Runtime, RuntimeInfo, RuntimeMachineState } from '../runtime/runtime.js';
import type { TemplateResolver } from './template-service.js';
import type { MachineService } from './machine-service.js';

/** A machine's status as the compute listing (seed 004) names it. */
export const COMPUTE_STATUSES = ['running', 'paused', 'stopped'] as const;
/** A machine's status as the compute listing names it. */
export type ComputeStatus = (typeof COMPUTE_STATUSES)[number];

/** What the compute listing may be narrowed to; every filter given must match exactly. */
export interface ComputeFilter {
  machine?: string;
  namespace?: string;
  runtime?: string;
  service?: string;
  /** Absent: every status. */
  status?: ComputeStatus;
}

/** One machine as the compute listing sees it: its record, and what the host says of it now. */
export interface ComputeMachine {
  record: MachineRecord;
  status: ComputeStatus;
  /** Host pid of the machine's init; 0 unless it is running. */
  pid: number;
  /** The template manifest's `runtime`. */
  runtime: string;
  /** The container runtime's version (runc's): manifests carry no version. */
  runtimeVersion: string;
  namespace: string;
  service: string;
  paths: MachineHostPaths;
  /** A live sample; null unless the machine is running. */
  stats: MachineStats | null;
  /** Whether this host runs it (else its host, `record.hostId`, holds its container, cgroups and sample). */
  here: boolean;
}

/** Dependencies of the compute listing. */
export interface ComputeServiceOptions {
  machines: MachineService;
  runtime: Runtime;
  templates: TemplateResolver;
  /** This host's name, reported per machine. */
  node: string;
  /** Hangar's version, reported per machine. */
  version: string;
  /** Machines sampled at once (each costs one `runc state` and about 40 small reads). @default 8 */
  concurrency?: number;
  /** The container runtime's name and version, when the server asked already (an API server's says it runs none). */
  runtimeInfo?: RuntimeInfo;
}

/** Statuses listed: a destroyed machine has no container, root filesystem or cgroup left to show. */
const LISTED: MachineRecord['status'][] = ['creating', 'running', 'paused', 'error'];

/** A metadata value usable as a label: strings as they are, numbers and booleans spelled out. */
function label(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return null;
}

/** Stands for the container of a machine another host runs: as its record says. */
const REMOTE: RuntimeMachineState = { status: 'running', pid: 0 };

/** The compute status of a machine, from its record and its container (if any). */
export function computeStatus(record: MachineRecord, container: RuntimeMachineState | undefined): ComputeStatus {
  switch (record.status) {
    case 'running':
      // Frozen for a live snapshot is still running; a container that died or vanished is not.
      return container?.status === 'running' || container?.status === 'paused' ? 'running' : 'stopped';
    case 'paused':
      return 'paused';
    case 'creating':
    case 'error':
    case 'destroyed':
      return 'stopped';
  }
}

/** The namespace of a machine: its metadata's `namespace`, else its team. */
export function namespaceOf(record: MachineRecord): string {
  return label(record.metadata.namespace) ?? record.teamId;
}

/** The service of a machine: its metadata's `service`, else its template. */
export function serviceOf(record: MachineRecord): string {
  return label(record.metadata.service) ?? record.template;
}

/** The metadata entries that can be annotations (string, number or boolean values), as strings. */
export function metadataLabels(record: MachineRecord): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(record.metadata)) {
    const s = label(v);
    if (s !== null) out[k] = s;
  }
  return out;
}

/** Run `fn` over `items`, at most `limit` at a time, keeping the order. */
async function mapBounded<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** The compute machines listing (seed 004): a team's machines with live host facts and usage. */
export class ComputeService {
  private runtimeInfo: Promise<RuntimeInfo> | null = null;

  constructor(private readonly o: ComputeServiceOptions) {}

  /** This host's name. */
  get node(): string {
    return this.o.node;
  }

  /** Hangar's version. */
  get version(): string {
    return this.o.version;
  }

  /** The container runtime's name and version, asked once. */
  private containerRuntime(): Promise<RuntimeInfo> {
    this.runtimeInfo ??= this.o.runtimeInfo ? Promise.resolve(this.o.runtimeInfo) : this.o.runtime.info();
    return this.runtimeInfo;
  }

  /** The caller's machines (destroyed ones aside) that pass every filter, newest first. */
  async list(caller: Caller, filter: ComputeFilter): Promise<ComputeMachine[]> {
    const { items } = await this.o.machines.list(caller, { states: LISTED, paginated: false });
    const records = filter.machine === undefined ? items : items.filter((m) => m.id === filter.machine);
    // One `runc list` answers for every container, instead of one `runc state` each.
    const runsHere = records.some((m) => m.status === 'running' && this.o.machines.isHere(m));
    const containers = runsHere ? await this.o.runtime.list() : new Map<string, RuntimeMachineState>();
    const containerRuntime = await this.containerRuntime();
    const candidates: ComputeMachine[] = [];
    for (const record of records) {
      const container = containers.get(record.id);
      const here = this.o.machines.isHere(record);
      // Another host's machine: its record speaks for it (that host holds its container and cgroup).
      const status = here ? computeStatus(record, container) : computeStatus(record, REMOTE);
      const template = await this.o.templates.ofRecord(record).catch(() => null);
      const m: ComputeMachine = {
        record,
        status,
        pid: status === 'running' ? (container?.pid ?? 0) : 0,
        // A machine outlives its template's removal; it still runs on the container runtime.
        runtime: template?.runtime ?? containerRuntime.name,
        runtimeVersion: containerRuntime.version,
        namespace: namespaceOf(record),
        service: serviceOf(record),
        paths: this.o.runtime.hostPaths(record.id),
        stats: null,
        here,
      };
      if (filter.status !== undefined && m.status !== filter.status) continue;
      if (filter.runtime !== undefined && m.runtime !== filter.runtime) continue;
      if (filter.namespace !== undefined && m.namespace !== filter.namespace) continue;
      if (filter.service !== undefined && m.service !== filter.service) continue;
      candidates.push(m);
    }
    return mapBounded(candidates, this.o.concurrency ?? 8, async (m) => {
      if (m.status !== 'running' || !m.here) return m;
      // A machine destroyed since the listing has no sample: it is shown with zeros.
      const stats = await this.o.runtime.stats(m.record.id).catch(() => null);
      return { ...m, stats };
    });
  }
}
