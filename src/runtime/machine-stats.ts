/**
 * Live resource usage of one machine, as a runtime measures it: the model behind
 * `Runtime.stats`. It follows the counters the kernel keeps per container (cgroups,
 * the network namespace) and knows nothing of any API's field names.
 */

/** One line of pressure stall information: shares of time stalled (percent) and the total. */
export interface PressureLine {
  avg10: number;
  avg60: number;
  avg300: number;
  /** Time stalled since the cgroup was created, in microseconds. */
  totalUs: number;
}

/** Pressure stall information of one resource: some tasks stalled, and all of them. */
export interface PressureStats {
  some: PressureLine;
  full: PressureLine;
}

/** One block I/O counter of one device. */
export interface BlockIoEntry {
  major: number;
  minor: number;
  op: 'Read' | 'Write';
  value: number;
}

/** A memory counter with its limit, all in bytes. */
export interface MemoryCounter {
  usage: number;
  maxUsage: number;
  failcnt: number;
  limit: number;
}

/** Pages (not bytes) on each NUMA node, and their total. */
export interface NumaPages {
  total: number;
  /** Pages by node number. */
  nodes: Record<number, number>;
}

/** The page usage kinds of `memory.numa_stat`. */
export interface NumaUsage {
  total: NumaPages;
  file: NumaPages;
  anon: NumaPages;
  unevictable: NumaPages;
}

/** Counters of one network interface inside the machine. */
export interface InterfaceStats {
  name: string;
  rxBytes: number;
  rxPackets: number;
  rxErrors: number;
  rxDropped: number;
  txBytes: number;
  txPackets: number;
  txErrors: number;
  txDropped: number;
}

/** One sample of a running machine's usage. Counters are cumulative since it started. */
export interface MachineStats {
  cpu: {
    totalNs: number;
    userNs: number;
    kernelNs: number;
    /** Per CPU of the host, in the order the kernel numbers them. */
    perCpuNs: number[];
    perCpuUserNs: number[];
    perCpuKernelNs: number[];
    /** Enforcement periods of the CPU quota that have elapsed. */
    periods: number;
    throttledPeriods: number;
    throttledNs: number;
    pressure: PressureStats | null;
  };
  cpuset: {
    cpus: number[];
    mems: number[];
    cpuExclusive: number;
    memExclusive: number;
    memHardwall: number;
    memoryMigrate: number;
    memoryPressure: number;
    memorySpreadPage: number;
    memorySpreadSlab: number;
    schedLoadBalance: number;
    schedRelaxDomainLevel: number;
  };
  memory: {
    /** Page cache, shared memory included. */
    cache: number;
    usage: MemoryCounter;
    /** Memory plus swap. */
    memoryAndSwap: MemoryCounter;
    swapOnly: MemoryCounter;
    kernel: MemoryCounter;
    kernelTcp: MemoryCounter;
    useHierarchy: boolean;
    numa: NumaUsage & { hierarchical: NumaUsage };
    /**
     * Counters named as cgroup v2's `memory.stat` names them (anon, file, shmem, pgfault…),
     * whatever the host's cgroup version; a counter the host does not keep is absent.
     */
    counters: Record<string, number>;
    pressure: PressureStats | null;
  };
  pids: {
    current: number;
    /** 0 when unlimited. */
    limit: number;
  };
  blockIo: {
    serviceBytes: BlockIoEntry[];
    serviced: BlockIoEntry[];
    pressure: PressureStats | null;
  };
  /** Interfaces of the machine's network namespace. */
  interfaces: InterfaceStats[];
}

/** Where a machine's files are on the host. */
export interface MachineHostPaths {
  /** The root filesystem the machine sees as `/` (present while it runs). */
  rootfs: string;
  /** The OCI bundle directory (`config.json`). */
  bundle: string;
}
