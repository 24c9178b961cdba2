/**
 * Live usage of one runc machine, read straight from the kernel: the cgroup v1
 * controllers (cpu, cpuacct, cpuset, memory, pids, blkio), pressure stall
 * information from the cgroup v2 hierarchy a hybrid host mounts beside them, and the
 * interface counters of the machine's network namespace through /proc/<init pid>/net/dev.
 *
 * Files rather than `runc events --stats`: no process per sample, and runc 1.1 on v1
 * leaves out what the files have (user/kernel split, PSI, swap-only usage).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type {
  BlockIoEntry,
  InterfaceStats,
  MachineStats,
  MemoryCounter,
  NumaPages,
  NumaUsage,
  PressureLine,
  PressureStats,
} from '../machine-stats.js';

/** Where to read one machine's counters. */
export interface StatsSource {
  /** The machine's cgroup path below each hierarchy's mount point, e.g. `/hangar-1a2b3c4d/mch_x`. */
  cgroupsPath: string;
  /** Host pid of the machine's init; its network namespace is read through /proc. */
  pid: number;
}

/** cgroup v1 controllers read here. */
const CONTROLLERS = ['cpu', 'cpuacct', 'cpuset', 'memory', 'pids', 'blkio'] as const;
type Controller = (typeof CONTROLLERS)[number];

/** Mount points of the hierarchies: one per v1 controller, and the v2 one if mounted. */
interface Hierarchies {
  v1: Partial<Record<Controller, string>>;
  unified: string | null;
}

/**
 * Limits at or above this are the kernel's "no limit" (v1 prints 2^63 - 4096, which a
 * JSON number cannot hold exactly); they are reported as 0, as `pids.max` "max" is.
 */
const UNLIMITED = 2 ** 62;

/** v1 `memory.stat` hierarchical counters and the names cgroup v2 gives them. */
const V1_MEMORY_COUNTERS: ReadonlyArray<readonly [v1: string, v2: string]> = [
  ['total_rss', 'anon'],
  ['total_cache', 'file'],
  ['total_rss_huge', 'anon_thp'],
  ['total_shmem', 'shmem'],
  ['total_mapped_file', 'file_mapped'],
  ['total_dirty', 'file_dirty'],
  ['total_writeback', 'file_writeback'],
  ['total_swapcached', 'swapcached'],
  ['total_active_anon', 'active_anon'],
  ['total_inactive_anon', 'inactive_anon'],
  ['total_active_file', 'active_file'],
  ['total_inactive_file', 'inactive_file'],
  ['total_unevictable', 'unevictable'],
  ['total_pgfault', 'pgfault'],
  ['total_pgmajfault', 'pgmajfault'],
  ['total_workingset_refault_anon', 'workingset_refault_anon'],
  ['total_workingset_refault_file', 'workingset_refault_file'],
  ['total_workingset_activate_anon', 'workingset_activate_anon'],
  ['total_workingset_activate_file', 'workingset_activate_file'],
  ['total_workingset_restore_anon', 'workingset_restore_anon'],
  ['total_workingset_restore_file', 'workingset_restore_file'],
  ['total_workingset_nodereclaim', 'workingset_nodereclaim'],
];

// Cgroup hierarchies are mounted once at boot; reading the mount table per sample
// would cost more than the sample on a host with thousands of machine mounts.
let hierarchies: Promise<Hierarchies> | null = null;

function cgroupHierarchies(): Promise<Hierarchies> {
  hierarchies ??= readFile('/proc/self/mounts', 'utf8').then(parseCgroupMounts);
  return hierarchies;
}

/** The cgroup hierarchies in a mount table (`/proc/self/mounts`). */
export function parseCgroupMounts(text: string): Hierarchies {
  const out: Hierarchies = { v1: {}, unified: null };
  for (const line of text.split('\n')) {
    const [, mountPoint, type, options] = line.split(' ');
    if (mountPoint === undefined || options === undefined) continue;
    if (type === 'cgroup2') out.unified ??= mountPoint;
    if (type !== 'cgroup') continue;
    const opts = new Set(options.split(','));
    for (const c of CONTROLLERS) if (opts.has(c)) out.v1[c] ??= mountPoint;
  }
  return out;
}

async function readText(path: string | null): Promise<string | null> {
  if (path === null) return null;
  return readFile(path, 'utf8').catch(() => null);
}

/** A number from a one-value file; 0 when absent, and for "max" and sentinel limits. */
function toCount(text: string | null | undefined): number {
  const n = Number(text?.trim());
  return Number.isFinite(n) && n < UNLIMITED ? n : 0;
}

/** `key value` lines (memory.stat, cpu.stat, cpuacct.stat). */
export function parseKeyedValues(text: string | null): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of (text ?? '').split('\n')) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined) out.set(key, toCount(value));
  }
  return out;
}

/** Whitespace-separated numbers (cpuacct.usage_percpu). */
export function parseNumberList(text: string | null): number[] {
  return (text ?? '').split(/\s+/).filter(Boolean).map(toCount);
}

/** A kernel CPU or node list (`0-3,8,10-11`) as numbers. */
export function parseRangeList(text: string | null): number[] {
  const out: number[] = [];
  for (const part of (text ?? '').trim().split(',').filter(Boolean)) {
    const [a, b] = part.split('-').map(Number);
    if (a === undefined || !Number.isInteger(a)) continue;
    for (let i = a; i <= (b ?? a); i++) out.push(i);
  }
  return out;
}

/** A `*.pressure` file (`some avg10=0.00 avg60=0.00 avg300=0.00 total=123`); null when absent. */
export function parsePressure(text: string | null): PressureStats | null {
  if (text === null) return null;
  const lines: Record<string, PressureLine> = {};
  for (const line of text.split('\n')) {
    const [kind, ...pairs] = line.trim().split(/\s+/);
    if (kind !== 'some' && kind !== 'full') continue;
    const v = Object.fromEntries(pairs.map((p) => p.split('=') as [string, string]));
    lines[kind] = { avg10: Number(v.avg10 ?? 0), avg60: Number(v.avg60 ?? 0), avg300: Number(v.avg300 ?? 0), totalUs: Number(v.total ?? 0) };
  }
  const zero: PressureLine = { avg10: 0, avg60: 0, avg300: 0, totalUs: 0 };
  return { some: lines.some ?? zero, full: lines.full ?? zero };
}

/** A v1 blkio recursive file (`8:0 Read 4096` lines, then `Total n`): its Read and Write entries. */
export function parseBlockIo(text: string | null): BlockIoEntry[] {
  const out: BlockIoEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const [device, op, value] = line.trim().split(/\s+/);
    const [major, minor] = (device ?? '').split(':').map(Number);
    if ((op !== 'Read' && op !== 'Write') || major === undefined || minor === undefined) continue;
    out.push({ major, minor, op, value: toCount(value) });
  }
  return out;
}

/** `memory.numa_stat`: `total=12 N0=12` lines, the `hierarchical_` ones apart. */
export function parseNumaStat(text: string | null): NumaUsage & { hierarchical: NumaUsage } {
  const empty = (): NumaUsage => ({ total: pages(), file: pages(), anon: pages(), unevictable: pages() });
  const out = { ...empty(), hierarchical: empty() };
  for (const line of (text ?? '').split('\n')) {
    const [head, ...nodes] = line.trim().split(/\s+/);
    const [key, total] = (head ?? '').split('=');
    if (key === undefined || total === undefined) continue;
    const hierarchical = key.startsWith('hierarchical_');
    const kind = key.replace(/^hierarchical_/, '');
    if (kind !== 'total' && kind !== 'file' && kind !== 'anon' && kind !== 'unevictable') continue;
    const entry: NumaPages = { total: toCount(total), nodes: {} };
    for (const n of nodes) {
      const m = /^N(\d+)=(\d+)$/.exec(n);
      if (m) entry.nodes[Number(m[1])] = Number(m[2]);
    }
    (hierarchical ? out.hierarchical : out)[kind] = entry;
  }
  return out;
}

function pages(): NumaPages {
  return { total: 0, nodes: {} };
}

/** `/proc/<pid>/net/dev`: the counters of each interface of that process's network namespace. */
export function parseNetDev(text: string | null): InterfaceStats[] {
  const out: InterfaceStats[] = [];
  for (const line of (text ?? '').split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0 || line.includes('|')) continue;
    const f = line.slice(colon + 1).trim().split(/\s+/).map(toCount);
    if (f.length < 16) continue;
    out.push({
      name: line.slice(0, colon).trim(),
      rxBytes: f[0]!, rxPackets: f[1]!, rxErrors: f[2]!, rxDropped: f[3]!,
      txBytes: f[8]!, txPackets: f[9]!, txErrors: f[10]!, txDropped: f[11]!,
    });
  }
  return out;
}

/** v1 `memory.stat` hierarchical counters under their cgroup v2 names. */
export function v2MemoryCounters(v1: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [from, to] of V1_MEMORY_COUNTERS) {
    const v = v1.get(from);
    if (v !== undefined) out[to] = v;
  }
  return out;
}

/**
 * One sample of a machine's usage, or null when its cgroup is gone (the machine
 * stopped meanwhile). Counters a host does not keep read as 0; PSI is null without
 * a cgroup v2 hierarchy.
 */
export async function readMachineStats(source: StatsSource): Promise<MachineStats | null> {
  const h = await cgroupHierarchies();
  const at = (c: Controller, file: string): string | null => {
    const root = h.v1[c];
    return root === undefined ? null : join(root, source.cgroupsPath, file);
  };
  const v1 = (c: Controller, file: string) => readText(at(c, file));
  const v2 = (file: string) => readText(h.unified === null ? null : join(h.unified, source.cgroupsPath, file));
  const count = async (c: Controller, file: string) => toCount(await v1(c, file));
  const counter = async (prefix: string): Promise<MemoryCounter> => {
    const [usage, maxUsage, failcnt, limit] = await Promise.all(
      ['usage_in_bytes', 'max_usage_in_bytes', 'failcnt', 'limit_in_bytes'].map((f) => count('memory', `${prefix}${f}`)),
    );
    return { usage: usage!, maxUsage: maxUsage!, failcnt: failcnt!, limit: limit! };
  };

  const usageText = await v1('memory', 'memory.usage_in_bytes');
  if (usageText === null) return null;

  const [cpuacct, cpuStat, perCpu, perCpuUser, perCpuKernel, cpuPressure] = await Promise.all([
    Promise.all(['cpuacct.usage', 'cpuacct.usage_user', 'cpuacct.usage_sys'].map((f) => count('cpuacct', f))),
    v1('cpu', 'cpu.stat').then(parseKeyedValues),
    v1('cpuacct', 'cpuacct.usage_percpu').then(parseNumberList),
    v1('cpuacct', 'cpuacct.usage_percpu_user').then(parseNumberList),
    v1('cpuacct', 'cpuacct.usage_percpu_sys').then(parseNumberList),
    v2('cpu.pressure').then(parsePressure),
  ]);
  const cpusetFlags = ['cpu_exclusive', 'mem_exclusive', 'mem_hardwall', 'memory_migrate', 'memory_pressure', 'memory_spread_page', 'memory_spread_slab', 'sched_load_balance'];
  const [cpus, mems, flags, relax] = await Promise.all([
    v1('cpuset', 'cpuset.cpus').then(parseRangeList),
    v1('cpuset', 'cpuset.mems').then(parseRangeList),
    Promise.all(cpusetFlags.map((f) => count('cpuset', `cpuset.${f}`))),
    // -1 ("the system default") is a real value here, not an absent one.
    v1('cpuset', 'cpuset.sched_relax_domain_level').then((t) => (t === null ? 0 : Number(t.trim()) || 0)),
  ]);
  const [usage, memoryAndSwap, kernel, kernelTcp, memStat, numa, useHierarchy, memPressure] = await Promise.all([
    counter('memory.'),
    counter('memory.memsw.'),
    counter('memory.kmem.'),
    counter('memory.kmem.tcp.'),
    v1('memory', 'memory.stat').then(parseKeyedValues),
    v1('memory', 'memory.numa_stat').then(parseNumaStat),
    count('memory', 'memory.use_hierarchy'),
    v2('memory.pressure').then(parsePressure),
  ]);
  const [pidsCurrent, pidsLimit, serviceBytes, serviced, ioPressure, netDev] = await Promise.all([
    count('pids', 'pids.current'),
    count('pids', 'pids.max'),
    // The throttle files count every bio the cgroup submits, whatever the device's scheduler.
    v1('blkio', 'blkio.throttle.io_service_bytes_recursive').then(parseBlockIo),
    v1('blkio', 'blkio.throttle.io_serviced_recursive').then(parseBlockIo),
    v2('io.pressure').then(parsePressure),
    readText(`/proc/${source.pid}/net/dev`).then(parseNetDev),
  ]);
  const counters = v2MemoryCounters(memStat);
  counters.kernel = kernel.usage;

  return {
    cpu: {
      totalNs: cpuacct[0]!,
      userNs: cpuacct[1]!,
      kernelNs: cpuacct[2]!,
      perCpuNs: perCpu,
      perCpuUserNs: perCpuUser,
      perCpuKernelNs: perCpuKernel,
      periods: cpuStat.get('nr_periods') ?? 0,
      throttledPeriods: cpuStat.get('nr_throttled') ?? 0,
      throttledNs: cpuStat.get('throttled_time') ?? 0,
      pressure: cpuPressure,
    },
    cpuset: {
      cpus,
      mems,
      cpuExclusive: flags[0]!,
      memExclusive: flags[1]!,
      memHardwall: flags[2]!,
      memoryMigrate: flags[3]!,
      memoryPressure: flags[4]!,
      memorySpreadPage: flags[5]!,
      memorySpreadSlab: flags[6]!,
      schedLoadBalance: flags[7]!,
      schedRelaxDomainLevel: relax,
    },
    memory: {
      cache: memStat.get('total_cache') ?? 0,
      usage,
      memoryAndSwap,
      // As runc reports it on v1: swap alone is memory+swap less memory.
      swapOnly: {
        usage: Math.max(0, memoryAndSwap.usage - usage.usage),
        maxUsage: 0,
        failcnt: Math.max(0, memoryAndSwap.failcnt - usage.failcnt),
        limit: 0,
      },
      kernel,
      kernelTcp,
      useHierarchy: useHierarchy === 1,
      numa,
      counters,
      pressure: memPressure,
    },
    pids: { current: pidsCurrent, limit: pidsLimit },
    blockIo: { serviceBytes, serviced, pressure: ioPressure },
    interfaces: netDev,
  };
}
