import type { MachineConfig } from '../../domain/machine.js';
import { AGENT_BIN_DIR_IN_MACHINE, AGENT_BINARY_IN_MACHINE, AGENT_RUN_DIR_IN_MACHINE } from '../agent/protocol.js';
import type { MachineSpec } from '../runtime.js';
import { UID_RANGE_SIZE } from '../user-namespace.js';
import { seccompProfile } from './seccomp.js';

/** Host-side settings that shape every machine's OCI spec. */
export interface OciSpecOptions {
  /** Mounted root filesystem (the overlay) of this machine. */
  rootfs: string;
  /** cgroup path relative to each controller's root; contains the machine id. */
  cgroupsPath: string;
  /** Maximum number of tasks in the machine. */
  pidsLimit: number;
  /** The machine's network namespace, made by Hangar (`/run/netns/...`), joined by path. */
  netnsPath: string;
  /** A CRIU configuration file for the next restore (runc reads it from the `org.criu.config` annotation). */
  criuConfig?: string;
  /** Host directories of the in-machine agent; without them the machine has none (init runs as it is). */
  agent?: AgentMounts;
  /** Volumes bound into the machine, in order (see volumes.ts). @default none */
  volumes?: readonly VolumeBind[];
  /**
   * The machine's user-namespace range (user-namespace.ts): its ids 0..65535 are these
   * host ids. Such a machine's spec names no network namespace: runc is run inside the
   * machine's (see userNamespaceCli), and the container inherits it. @default none
   */
  uidBase?: number | null;
}

/** One volume's bind mount: its host mount at a path inside the machine. */
export interface VolumeBind {
  source: string;
  destination: string;
  readOnly: boolean;
}

/** Where a machine's agent comes from on the host. */
export interface AgentMounts {
  /** Holds the static `hangar-agent` binary; read-only at /.hangar/bin. */
  binDir: string;
  /** The machine's own directory with the server's socket; read-only at /.hangar/run. */
  runDir: string;
}

const CPU_PERIOD_US = 100_000;
const MIB = 1024 * 1024;

/** The cgroup limits a machine config stands for: create and resize both set exactly these. */
export function cgroupLimits(config: MachineConfig): { cpuQuotaUs: number; cpuPeriodUs: number; memoryBytes: number } {
  return { cpuQuotaUs: Math.round(config.vcpus * CPU_PERIOD_US), cpuPeriodUs: CPU_PERIOD_US, memoryBytes: config.memory_mb * MIB };
}

/**
 * The OCI runtime spec of one machine. Capabilities, mounts and masked/read-only
 * /proc paths are those of `runc spec`'s default; resources come from the config.
 */
export function buildOciSpec(spec: MachineSpec, opts: OciSpecOptions): Record<string, unknown> {
  const caps = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
  const userns = opts.uidBase === undefined || opts.uidBase === null ? null : opts.uidBase;
  const idMap = userns === null ? [] : [{ containerID: 0, hostID: userns, size: UID_RANGE_SIZE }];
  const limits = cgroupLimits(spec.config);
  const memory = limits.memoryBytes;
  return {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      // The agent forks itself off first, then execs the template's init, which keeps pid 1.
      args: opts.agent ? [AGENT_BINARY_IN_MACHINE, 'launch', '--', ...spec.init] : spec.init,
      env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
      cwd: '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps, ambient: caps },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 4096, soft: 4096 }],
      noNewPrivileges: true,
    },
    root: { path: opts.rootfs, readonly: false },
    hostname: spec.hostname,
    ...(opts.criuConfig === undefined ? {} : { annotations: { 'org.criu.config': opts.criuConfig } }),
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      // sysfs may only be mounted from the user namespace that owns the network namespace;
      // a user-namespaced machine's is the host's, so its /sys is an empty tmpfs (read-only, below) with the cgroup mount.
      userns === null
        ? { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] }
        : { destination: '/sys', type: 'tmpfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'mode=755', 'size=64k'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
      ...(opts.agent
        ? [
            { destination: AGENT_BIN_DIR_IN_MACHINE, type: 'bind', source: opts.agent.binDir, options: ['bind', 'ro', 'nosuid', 'nodev'] },
            // Read-only: the machine can reach the server's socket, but never replace it.
            { destination: AGENT_RUN_DIR_IN_MACHINE, type: 'bind', source: opts.agent.runDir, options: ['bind', 'ro', 'nosuid', 'nodev', 'noexec'] },
          ]
        : []),
      // Binds, so runc names them to CRIU as external mounts: a checkpoint leaves the volume out, a restore binds it again.
      ...(opts.volumes ?? []).map((v) => ({ destination: v.destination, type: 'bind', source: v.source, options: ['bind', v.readOnly ? 'ro' : 'rw', 'nosuid', 'nodev'] })),
    ],
    linux: {
      cgroupsPath: opts.cgroupsPath,
      resources: {
        devices: [{ allow: false, access: 'rwm' }],
        cpu: { quota: limits.cpuQuotaUs, period: limits.cpuPeriodUs },
        // swap = limit: no swap beyond the memory limit.
        memory: { limit: memory, swap: memory },
        pids: { limit: opts.pidsLimit },
      },
      // A user-namespaced machine names no network namespace (runc joins namespaces user
      // first, and could then not join a host-owned one): it is run inside its own, and inherits it.
      namespaces:
        userns === null
          ? [{ type: 'pid' }, { type: 'network', path: opts.netnsPath }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }]
          : [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'user' }],
      ...(userns === null ? {} : { uidMappings: idMap, gidMappings: idMap }),
      maskedPaths: [
        '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
        '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger', ...(userns === null ? [] : ['/sys'])],
      seccomp: seccompProfile(),
    },
  };
}
