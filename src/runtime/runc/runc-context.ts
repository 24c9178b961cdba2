import type { AgentHost } from '../agent/agent-host.js';
import type { SnapshotSupport } from '../runtime.js';
import type { RuntimeLogger } from './best-effort.js';
import type { HostNetwork } from './network.js';
import type { OciCli } from './oci-cli.js';
import type { HostVolumes } from './volumes.js';

/**
 * What the runc runtime's operations (lifecycle, checkpoint, fork, revert, resize)
 * share: one instance's paths and binaries, its network and its logger. `RuncRuntime`
 * builds it once from its options; each operation is a plain function taking it.
 */
export interface RuncContext {
  /** The OCI runtime command of the machines this context drives (runc, or runsc for gvisor ones). */
  readonly oci: OciCli;
  readonly criuPath: string;
  readonly machinesDir: string;
  readonly snapshotsDir: string;
  /** Carried by every host resource: cgroup parent, mount sources, namespaces. */
  readonly instancePrefix: string;
  readonly pidsLimit: number;
  /** The compiled disk tool (`disk-tool.c`): image clone, loop and overlay mounts, unmounts. */
  readonly diskToolPath: string;
  /** Formatted blank images, one per disk size, that new machines' disks are cloned from. */
  readonly blankDisksDir: string;
  readonly network: HostNetwork;
  readonly log: RuntimeLogger;
  /** The server's ends of the in-machine agents. */
  readonly agents: AgentHost;
  /** The volumes' images and host mounts, and which running machines use them. */
  readonly volumes: HostVolumes;
  /** Where the current agent binary is installed (null: none built, machines start without one). */
  agentBinDir(): Promise<string | null>;
  /**
   * The machine's user-namespace range (user-namespace.ts) in a context made for one
   * machine; null for a machine without one, and in the runtime's shared context.
   */
  readonly uidBase: number | null;
  /** Whether CRIU works here; probed once and cached by the runtime. */
  snapshotSupport(): Promise<SnapshotSupport>;
}
