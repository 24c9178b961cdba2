/**
 * The machines' seccomp filter: allow by default, deny with EPERM the system calls
 * that Docker's default profile withholds from containers without extra
 * capabilities. Written from that list of facts (kernel modules, kexec, mounts,
 * bpf, keyrings, namespaces, clock and swap control, tracing of other processes'
 * memory, reboot, perf, userfaultfd, handle-based opens).
 */

const EPERM = 1;
const ENOSYS = 38;
const CLONE_NEWUSER = 0x10000000;

const DENIED = [
  // kernel modules and replacing the kernel
  'init_module', 'finit_module', 'delete_module', 'create_module', 'query_module', 'get_kernel_syms',
  'kexec_load', 'kexec_file_load',
  // filesystems and mounts
  'mount', 'umount', 'umount2', 'pivot_root', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount',
  'open_tree', 'mount_setattr', 'quotactl', 'quotactl_fd', 'swapon', 'swapoff', 'nfsservctl', 'sysfs',
  '_sysctl', 'ustat', 'uselib', 'name_to_handle_at', 'open_by_handle_at', 'lookup_dcookie',
  // bpf, keyrings, perf, tracing other processes
  'bpf', 'keyctl', 'add_key', 'request_key', 'perf_event_open', 'kcmp', 'process_vm_readv',
  'process_vm_writev', 'userfaultfd', 'acct',
  // namespaces: a machine may not make new ones or enter others
  'unshare', 'setns',
  // clocks, reboot and hardware
  'clock_adjtime', 'clock_settime', 'settimeofday', 'stime', 'adjtimex', 'reboot', 'ioperm', 'iopl',
  'vm86', 'vm86old',
  // NUMA policy of other processes
  'get_mempolicy', 'set_mempolicy', 'mbind', 'move_pages', 'migrate_pages',
];

const ARCHES: Record<string, string[]> = {
  x64: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  arm64: ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'],
};

/** The OCI `linux.seccomp` section for every machine. */
export function seccompProfile(arch: string = process.arch): Record<string, unknown> {
  return {
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ARCHES[arch] ?? [],
    syscalls: [
      { names: DENIED, action: 'SCMP_ACT_ERRNO', errnoRet: EPERM },
      // A new user namespace through clone(): the flags are argument 0 on x86-64 and arm64.
      {
        names: ['clone'],
        action: 'SCMP_ACT_ERRNO',
        errnoRet: EPERM,
        args: [{ index: 0, value: CLONE_NEWUSER, valueTwo: CLONE_NEWUSER, op: 'SCMP_CMP_MASKED_EQ' }],
      },
      // clone3 passes flags in memory seccomp cannot read; ENOSYS makes libc fall back to clone.
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
    ],
  };
}

/** The denied system call names, for tests and docs. */
export const DENIED_SYSCALLS: readonly string[] = DENIED;
