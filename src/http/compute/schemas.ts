/** Every schema of the compute surface (seed 004). */
import { z } from 'zod';
import { COMPUTE_STATUSES } from '../../service/compute-service.js';
import { dateTime } from '../shared/schemas.js';

/** The counters of `memory_stats.stats`, exactly the seed's (cgroup v2 `memory.stat` names). */
export const MEMORY_STAT_KEYS = [
  'active_anon', 'active_file', 'anon', 'anon_thp', 'file', 'file_dirty', 'file_mapped', 'file_thp', 'file_writeback',
  'inactive_anon', 'inactive_file', 'kernel', 'kernel_stack', 'pagetables', 'percpu', 'pgactivate', 'pgdeactivate',
  'pgfault', 'pglazyfree', 'pglazyfreed', 'pgmajfault', 'pgrefill', 'pgscan', 'pgscan_direct', 'pgscan_khugepaged',
  'pgscan_kswapd', 'pgsteal', 'pgsteal_direct', 'pgsteal_khugepaged', 'pgsteal_kswapd', 'sec_pagetables', 'shmem',
  'shmem_thp', 'slab', 'slab_reclaimable', 'slab_unreclaimable', 'sock', 'swapcached', 'thp_collapse_alloc',
  'thp_fault_alloc', 'thp_swpout', 'thp_swpout_fallback', 'unevictable', 'vmalloc', 'workingset_activate_anon',
  'workingset_activate_file', 'workingset_nodereclaim', 'workingset_refault_anon', 'workingset_refault_file',
  'workingset_restore_anon', 'workingset_restore_file', 'zswap', 'zswapped', 'zswpin', 'zswpout', 'zswpwb',
] as const;

/** `status` values of the listing; `*` means every status. */
export const COMPUTE_STATUS_FILTERS = [...COMPUTE_STATUSES, '*'] as const;

const count = z.number().int().min(0);

/** Query of GET /compute/machines: every filter given must match exactly. */
export const ComputeMachinesQuery = z.strictObject({
  machine: z.string().min(1).max(128).optional().describe('Filter by specific machine identifier (exact id).'),
  namespace: z.string().min(1).max(256).optional().describe('Filter by namespace: the metadata key `namespace`, else the team id.'),
  runtime: z.string().min(1).max(64).optional().describe('Filter by runtime type: the template manifest\'s `runtime` (e.g. `runc`).'),
  service: z.string().min(1).max(256).optional().describe('Filter by service identifier: the metadata key `service`, else the template name.'),
  status: z
    .enum(COMPUTE_STATUS_FILTERS)
    .optional()
    .describe('Filter by machine status: running, paused, stopped, or `*` for every status (the same as leaving it out).'),
});

const PsiLine = z.strictObject({ avg10: z.number(), avg300: z.number(), avg60: z.number(), total: count.describe('Microseconds stalled.') });
const PsiStats = z.strictObject({ full: PsiLine, some: PsiLine }).meta({ id: 'ComputePsiStats' });

const BlkioEntry = z.strictObject({ major: count, minor: count, op: z.enum(['Read', 'Write']), value: count });

const MemoryData = z
  .strictObject({ failcnt: count, limit: count.describe('Bytes; 0 when unlimited.'), max_usage: count, usage: count })
  .meta({ id: 'ComputeMemoryData' });

const PageStats = z.strictObject({ nodes: z.record(z.string(), count).describe('Pages by NUMA node.'), total: count });
const NumaInner = { anon: PageStats, file: PageStats, total: PageStats, unevictable: PageStats };

const CgroupStats = z
  .strictObject({
    blkio_stats: z.strictObject({
      io_service_bytes_recursive: z.array(BlkioEntry),
      io_serviced_recursive: z.array(BlkioEntry),
      psi: PsiStats,
    }),
    cpu_stats: z.strictObject({
      cpu_usage: z.strictObject({
        percpu_usage: z.array(count).describe('Nanoseconds per host CPU.'),
        percpu_usage_in_kernelmode: z.array(count).nullable(),
        percpu_usage_in_usermode: z.array(count).nullable(),
        total_usage: count.describe('Nanoseconds of CPU time since the machine started.'),
        usage_in_kernelmode: count,
        usage_in_usermode: count,
      }),
      psi: PsiStats,
      throttling_data: z.strictObject({ periods: count, throttled_periods: count, throttled_time: count.describe('Nanoseconds.') }),
    }),
    cpuset_stats: z.strictObject({
      cpu_exclusive: count,
      cpus: z.array(count),
      mem_exclusive: count,
      mem_hardwall: count,
      memory_migrate: count,
      memory_pressure: count,
      memory_spread_page: count,
      memory_spread_slab: count,
      mems: z.array(count),
      sched_load_balance: count,
      sched_relax_domain_level: z.number().int().describe('-1: the system default.'),
    }),
    memory_stats: z.strictObject({
      cache: count,
      kernel_tcp_usage: MemoryData,
      kernel_usage: MemoryData,
      page_usage_by_numa: z.strictObject({ ...NumaInner, hierarchical: z.strictObject(NumaInner) }),
      psi: PsiStats,
      stats: z.strictObject(Object.fromEntries(MEMORY_STAT_KEYS.map((k) => [k, count])) as Record<(typeof MEMORY_STAT_KEYS)[number], typeof count>),
      swap_only_usage: MemoryData,
      swap_usage: MemoryData.describe('Memory plus swap.'),
      usage: MemoryData,
      use_hierarchy: z.boolean(),
    }),
    pids_stats: z.strictObject({ current: count, limit: count.describe('0 when unlimited.') }),
    rdma_stats: z.strictObject({}),
  })
  .meta({ id: 'ComputeCgroupStats' });

const NetworkInterface = z
  .strictObject({
    Name: z.string(),
    RxBytes: count,
    RxDropped: count,
    RxErrors: count,
    RxPackets: count,
    TxBytes: count,
    TxDropped: count,
    TxErrors: count,
    TxPackets: count,
  })
  .meta({ id: 'ComputeNetworkInterface' });

/** A live sample of a machine's cgroups and network interfaces. */
export const ComputeMachineStatsSchema = z
  .strictObject({
    CgroupStats,
    IntelRdtStats: z.null().describe('Always null: this host has no Intel RDT (resctrl).'),
    Interfaces: z.array(NetworkInterface).describe('Interfaces of the machine\'s network namespace (`lo` and `eth0`).'),
  })
  .meta({ id: 'ComputeMachineStats' });

/** One machine of the listing. */
export const ComputeMachineSchema = z
  .strictObject({
    hydra_machine_version: z.string().describe('Hangar\'s version.'),
    id: z.string(),
    pid: count.describe('Host pid of the machine\'s init; 0 unless running.'),
    status: z.enum(COMPUTE_STATUSES),
    runtime: z.string().describe('The template manifest\'s `runtime`.'),
    runtime_version: z.string().describe('The container runtime\'s (runc\'s) version.'),
    memory: z.string().describe('Memory limit, e.g. "512.00 MB" (MiB, two decimals).'),
    rootfs: z.string().describe('Host path of the machine\'s root filesystem.'),
    created: dateTime(),
    annotations: z.record(z.string(), z.string()),
    owner: z.string().describe('The team id.'),
    stats: ComputeMachineStatsSchema,
    type: z.string(),
  })
  .meta({ id: 'ComputeMachine' });

/** The answer of GET /compute/machines, wrapped in `body` as the seed's is. */
export const ComputeMachinesResponse = z.strictObject({
  body: z.strictObject({
    results: z.array(ComputeMachineSchema),
    results_total: count.describe('Number of results.'),
  }),
});
