import type { Isolation } from '../../domain/machine.js';

/**
 * The OCI runtime command a machine's container is driven with: `runc` for the
 * container tier, `runsc` (gVisor) for the gvisor tier. runsc speaks runc's CLI (run
 * --detach, exec, state, list, kill, delete, with --root, --log and --log-format), so the
 * runc runtime drives both through this one description; only the binary, its global
 * flags and its state directory differ.
 */
export interface OciCli {
  readonly tier: Isolation;
  /** The binary: `runc` or `runsc`. */
  readonly binary: string;
  /** Its state directory for this instance (`--root`). */
  readonly stateDir: string;
  /** Flags before the subcommand, `--root` included. */
  readonly globalArgs: readonly string[];
  /** `exec` flags that give the command a terminal beside `--console-socket` (runsc has no `--tty`: the socket implies one). */
  readonly execTtyArgs: readonly string[];
  /** Whether `exec` passes extra descriptors (`--preserve-fds`), which the pid report of a background process needs. */
  readonly execPreservesFds: boolean;
}

/** runc with this instance's state directory. */
export function runcCli(binary: string, stateDir: string): OciCli {
  return { tier: 'container', binary, stateDir, globalArgs: ['--root', stateDir], execTtyArgs: ['--tty'], execPreservesFds: true };
}

/**
 * The OCI command of one user-namespaced machine: runc run inside the machine's network
 * namespace (`nsenter --net`). Its spec names no network namespace, so what runc starts
 * there (init, a restore, an exec) inherits that one; and CRIU, started by runc, sees the
 * machine's network as its own, so it neither dumps nor recreates it.
 */
export function userNamespaceCli(oci: OciCli, netnsPath: string): OciCli {
  return { ...oci, binary: 'nsenter', globalArgs: [`--net=${netnsPath}`, '--', oci.binary, ...oci.globalArgs] };
}

/** What the gvisor tier's runsc needs to know. */
export interface RunscOptions {
  /** The runsc binary. @default 'runsc' */
  binary: string;
  /** Its state directory. @default `/run/${instancePrefix}-gvisor` */
  stateDir: string;
  /** gVisor platform: how the sentry intercepts the machine's system calls. @default 'ptrace' (runsc 20221219 has no systrap) */
  platform: string;
}

/**
 * runsc's global flags, each chosen for Hangar's machines:
 * - `--network=host`: the sentry uses the network namespace Hangar made for the machine
 *   (joined by path from the spec) through the host's stack. `--network=sandbox` (gVisor's
 *   own stack) is refused by runsc 20221219 on Linux 6.x: its test for the root namespace
 *   (/proc/sys/net/core/rmem_default) is true in every namespace since Linux 6.x
 *   (gVisor issue 10704), so it fails with "cannot run with network enabled in root network namespace".
 * - `--host-uds=open`: the agent may connect to the server's socket bind-mounted into the
 *   machine (open only: it can create no socket on the host).
 * - `--oci-seccomp`: the spec's seccomp filter is applied inside the sandbox too.
 * - `--overlay2=none`: writes reach the machine's disk image, not the sentry's memory.
 */
export function runscCli(o: RunscOptions): OciCli {
  return {
    tier: 'gvisor',
    binary: o.binary,
    stateDir: o.stateDir,
    globalArgs: ['--root', o.stateDir, `--platform=${o.platform}`, '--network=host', '--host-uds=open', '--oci-seccomp', '--overlay2=none'],
    execTtyArgs: [],
    execPreservesFds: false,
  };
}

/**
 * The host pids limit of a gvisor machine whose processes are allowed `guestLimit`: the
 * host's cgroup counts gVisor's own threads, not the machine's processes. On the ptrace
 * platform the sentry and gofer hold about 100 host threads at rest, and each process in
 * the machine adds about 8 (measured on 2026-12-06: 8 processes 98 host threads, 58 → 494,
 * 158 → 1,258, 358 → 2,731). A limit of `guestLimit` itself ended a machine of 128 at
 * about 10 processes (the sentry panics when it cannot make a thread). Four per process
 * lets about half of `guestLimit` run, and keeps one machine's share of the host's pid
 * space (32,768 here) near 2,000 at the default of 512.
 */
export function gvisorHostPidsLimit(guestLimit: number): number {
  return 4 * guestLimit + 128;
}

