import type { z } from 'zod';
import type { MachineStats, MemoryCounter, NumaPages, NumaUsage, PressureStats } from '../../runtime/machine-stats.js';
import { metadataLabels, type ComputeMachine } from '../../service/compute-service.js';
import { MEMORY_STAT_KEYS, type ComputeMachineSchema, type ComputeMachineStatsSchema } from './schemas.js';

type ComputeMachineJson = z.output<typeof ComputeMachineSchema>;
type StatsJson = z.output<typeof ComputeMachineStatsSchema>;

/** What every result shares: facts about this server. */
export interface ComputeViewContext {
  /** Hangar's version (`hydra_machine_version`). */
  version: string;
  /** This host's name (`hydra.node`). */
  node: string;
}

/** The seed's `type`: every Hangar machine is the same kind. */
const MACHINE_TYPE = 'Compute Machine';

/** A machine's memory limit as the seed writes it: MiB with two decimals. */
export function formatMemory(memoryMb: number): string {
  return `${memoryMb.toFixed(2)} MB`;
}

const zeroNuma = (): NumaUsage => ({ total: zeroPages(), file: zeroPages(), anon: zeroPages(), unevictable: zeroPages() });
const zeroPages = (): NumaPages => ({ total: 0, nodes: {} });
const zeroCounter = (): MemoryCounter => ({ usage: 0, maxUsage: 0, failcnt: 0, limit: 0 });

/** The sample shown for a machine that is not running: every counter 0, every list empty. */
export function zeroStats(): MachineStats {
  return {
    cpu: { totalNs: 0, userNs: 0, kernelNs: 0, perCpuNs: [], perCpuUserNs: [], perCpuKernelNs: [], periods: 0, throttledPeriods: 0, throttledNs: 0, pressure: null },
    cpuset: {
      cpus: [], mems: [], cpuExclusive: 0, memExclusive: 0, memHardwall: 0, memoryMigrate: 0, memoryPressure: 0,
      memorySpreadPage: 0, memorySpreadSlab: 0, schedLoadBalance: 0, schedRelaxDomainLevel: 0,
    },
    memory: {
      cache: 0, usage: zeroCounter(), memoryAndSwap: zeroCounter(), swapOnly: zeroCounter(), kernel: zeroCounter(), kernelTcp: zeroCounter(),
      useHierarchy: false, numa: { ...zeroNuma(), hierarchical: zeroNuma() }, counters: {}, pressure: null,
    },
    pids: { current: 0, limit: 0 },
    blockIo: { serviceBytes: [], serviced: [], pressure: null },
    interfaces: [],
  };
}

/** PSI in the seed's shape; zeros where the host keeps none. */
function psi(p: PressureStats | null): StatsJson['CgroupStats']['cpu_stats']['psi'] {
  const line = (l: PressureStats['some'] | undefined) => ({ avg10: l?.avg10 ?? 0, avg300: l?.avg300 ?? 0, avg60: l?.avg60 ?? 0, total: l?.totalUs ?? 0 });
  return { full: line(p?.full), some: line(p?.some) };
}

function memoryData(c: MemoryCounter): StatsJson['CgroupStats']['memory_stats']['usage'] {
  return { failcnt: c.failcnt, limit: c.limit, max_usage: c.maxUsage, usage: c.usage };
}

type NumaJson = StatsJson['CgroupStats']['memory_stats']['page_usage_by_numa']['hierarchical'];

function pageStats(p: NumaPages): NumaJson['total'] {
  return { nodes: Object.fromEntries(Object.entries(p.nodes)), total: p.total };
}

function numa(u: NumaUsage): NumaJson {
  return { anon: pageStats(u.anon), file: pageStats(u.file), total: pageStats(u.total), unevictable: pageStats(u.unevictable) };
}

/** A usage sample in the seed's shape: libcontainer's `Stats`, its field names and nesting. */
export function renderStats(s: MachineStats): StatsJson {
  const own = numa(s.memory.numa);
  const counters = Object.fromEntries(MEMORY_STAT_KEYS.map((k) => [k, s.memory.counters[k] ?? 0])) as StatsJson['CgroupStats']['memory_stats']['stats'];
  return {
    CgroupStats: {
      blkio_stats: {
        io_service_bytes_recursive: s.blockIo.serviceBytes.map((e) => ({ major: e.major, minor: e.minor, op: e.op, value: e.value })),
        io_serviced_recursive: s.blockIo.serviced.map((e) => ({ major: e.major, minor: e.minor, op: e.op, value: e.value })),
        psi: psi(s.blockIo.pressure),
      },
      cpu_stats: {
        cpu_usage: {
          percpu_usage: s.cpu.perCpuNs,
          // null, as in the seed, where the host has no per-CPU split.
          percpu_usage_in_kernelmode: s.cpu.perCpuKernelNs.length ? s.cpu.perCpuKernelNs : null,
          percpu_usage_in_usermode: s.cpu.perCpuUserNs.length ? s.cpu.perCpuUserNs : null,
          total_usage: s.cpu.totalNs,
          usage_in_kernelmode: s.cpu.kernelNs,
          usage_in_usermode: s.cpu.userNs,
        },
        psi: psi(s.cpu.pressure),
        throttling_data: { periods: s.cpu.periods, throttled_periods: s.cpu.throttledPeriods, throttled_time: s.cpu.throttledNs },
      },
      cpuset_stats: {
        cpu_exclusive: s.cpuset.cpuExclusive,
        cpus: s.cpuset.cpus,
        mem_exclusive: s.cpuset.memExclusive,
        mem_hardwall: s.cpuset.memHardwall,
        memory_migrate: s.cpuset.memoryMigrate,
        memory_pressure: s.cpuset.memoryPressure,
        memory_spread_page: s.cpuset.memorySpreadPage,
        memory_spread_slab: s.cpuset.memorySpreadSlab,
        mems: s.cpuset.mems,
        sched_load_balance: s.cpuset.schedLoadBalance,
        sched_relax_domain_level: s.cpuset.schedRelaxDomainLevel,
      },
      memory_stats: {
        cache: s.memory.cache,
        kernel_tcp_usage: memoryData(s.memory.kernelTcp),
        kernel_usage: memoryData(s.memory.kernel),
        // Keys in the seed's (alphabetical) order: hierarchical sits between file and total.
        page_usage_by_numa: { anon: own.anon, file: own.file, hierarchical: numa(s.memory.numa.hierarchical), total: own.total, unevictable: own.unevictable },
        psi: psi(s.memory.pressure),
        stats: counters,
        swap_only_usage: memoryData(s.memory.swapOnly),
        swap_usage: memoryData(s.memory.memoryAndSwap),
        usage: memoryData(s.memory.usage),
        use_hierarchy: s.memory.useHierarchy,
      },
      pids_stats: { current: s.pids.current, limit: s.pids.limit },
      rdma_stats: {},
    },
    // No Intel RDT (resctrl) on this host: null, as in the seed.
    IntelRdtStats: null,
    Interfaces: s.interfaces.map((i) => ({
      Name: i.name,
      RxBytes: i.rxBytes,
      RxDropped: i.rxDropped,
      RxErrors: i.rxErrors,
      RxPackets: i.rxPackets,
      TxBytes: i.txBytes,
      TxDropped: i.txDropped,
      TxErrors: i.txErrors,
      TxPackets: i.txPackets,
    })),
  };
}

/**
 * The annotations of a machine, sorted by key: its scalar metadata entries, then the
 * fixed ones (which win, so metadata cannot pose as another account or machine).
 */
export function annotationsOf(m: ComputeMachine, node: string): Record<string, string> {
  const r = m.record;
  const all: Record<string, string> = {
    ...metadataLabels(r),
    account: r.teamId,
    bundle: m.paths.bundle,
    cpu: String(r.config.vcpus),
    'hydra.node': node,
    machine: r.id,
    mem: `${r.config.memory_mb}MB`,
    namespace: m.namespace,
    'runtime.version': m.runtimeVersion,
    service: m.service,
  };
  return Object.fromEntries(Object.entries(all).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** One result of `GET /compute/machines`, keys in the seed's order. */
export function renderComputeMachine(m: ComputeMachine, ctx: ComputeViewContext): ComputeMachineJson {
  return {
    hydra_machine_version: ctx.version,
    id: m.record.id,
    pid: m.pid,
    status: m.status,
    runtime: m.runtime,
    runtime_version: m.runtimeVersion,
    memory: formatMemory(m.record.config.memory_mb),
    rootfs: m.paths.rootfs,
    created: new Date(m.record.createdAt).toISOString(),
    annotations: annotationsOf(m, ctx.node),
    owner: m.record.teamId,
    stats: renderStats(m.stats ?? zeroStats()),
    type: MACHINE_TYPE,
  };
}
