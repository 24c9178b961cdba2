import { mkdir, readFile, readdir, rm, rmdir, statfs, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_ISOLATION, ISOLATIONS, type Isolation, type MachineConfig } from '../../domain/machine.js';
import type { Cidr } from '../../domain/network.js';
import type {
  ExecIo,
  ExecOptions,
  ExecResult,
  MachineNetworkSpec,
  MachineSpec,
  ProcessHandle,
  ProcessOptions,
  PtyHandle,
  PtyOptions,
  Runtime,
  RuntimeInfo,
  RuntimeMachineState,
  SnapshotResult,
  SnapshotRuntime,
  SnapshotSupport,
  VolumeMountSpec,
  VolumeRuntime,
} from '../runtime.js';
import type { MachineHostPaths, MachineStats } from '../machine-stats.js';
import { ExecStartError, RuntimeError } from '../runtime.js';
import { agentExec, agentStartProcess, agentStartPty } from '../agent/agent-commands.js';
import { AgentHost, type AgentConnection } from '../agent/agent-host.js';
import { AGENT_BINARY_IN_MACHINE } from '../agent/protocol.js';
import { installAgent } from './agent-mounts.js';
import { bestEffort, errorMessage, SILENT_LOGGER, type RuntimeLogger } from './best-effort.js';
import { liveSnapshot, pauseMachine, probeSnapshotSupport, resumeMachine, settlePause, thawMachine } from './checkpoint.js';
import { inBackground, run } from './command.js';
import { cgroupPids, cgroupRoots, cgroupsPath, inspectContainer, listContainers } from './container.js';
import { runcExec, type RuncExecContext } from './exec.js';
import { DEFAULT_DISK_TOOL_PATH } from './disk-tool.js';
import { forkMachine } from './fork.js';
import { destroyMachine, restartMachine, startMachine, stopMachine } from './lifecycle.js';
import { HostNetwork } from './network.js';
import { gvisorHostPidsLimit, runcCli, runscCli, userNamespaceCli, type OciCli, type RunscOptions } from './oci-cli.js';
import { allowTraversal, copyUidBase, firstRangeFor, rangeHolder, readUidBase, UidRanges, writeUidBase } from '../user-namespace.js';
import { runcStartProcess } from './process.js';
import { runcStartPty } from './pty.js';
import { DEFAULT_PTY_RELAY_PATH, ptyRelayProblem } from './pty-relay.js';
import { resizeMachine } from './resize.js';
import { revertSnapshot, snapshotsOnDisk } from './revert.js';
import type { RuncContext } from './runc-context.js';
import { readMachineStats } from './stats.js';
import { exists, snapshotPaths, snapshotStoreId } from './snapshot-files.js';
import { ensureDirInside, exportUpper, layerPaths } from './writable-layer.js';
import { HostVolumes } from './volumes.js';

/** Options of the runc runtime; all host paths are passed in, none read from the environment. */
export interface RuncRuntimeOptions {
  /** The runc binary. @default 'runc' */
  runcPath: string;
  /** The criu binary (memory snapshots). @default 'criu' */
  criuPath: string;
  /** Directory holding one sub-directory per machine. */
  machinesDir: string;
  /** Directory holding one sub-directory per snapshot. */
  snapshotsDir: string;
  /** Prefix on every host resource: runc state dir, cgroup parent, mount sources. */
  instancePrefix: string;
  /** runc's state directory for this instance. @default `/run/${instancePrefix}` */
  stateDir: string;
  /** Tasks allowed per machine: stops fork bombs. */
  pidsLimit: number;
  /** The machines' private subnet (one bridge per server). */
  subnet: Cidr;
  /** The compiled disk tool. @default `disk-tool` beside disk-tool.js (built by `npm run build`) */
  diskToolPath?: string;
  /** Formatted blank disk images, one per size. @default `blank-disks` beside machinesDir */
  blankDisksDir?: string;
  /** The compiled terminal relay. @default `pty-relay` beside pty-relay.js (built by `npm run build`) */
  ptyRelayPath?: string;
  /** Told about cleanup that failed while another error was being handled. @default a logger that drops everything */
  logger?: RuntimeLogger;
  /** The built in-machine agent. @default `dist/agent/hangar-agent` (built by `npm run build`) */
  agentPath?: string;
  /** Where agent binaries are installed by content, one directory each. @default `agents` beside machinesDir */
  agentsDir?: string;
  /** Directory holding one sub-directory per volume (and their host mounts). @default `volumes` beside machinesDir */
  volumesDir?: string;
  /** runsc for machines with isolation 'gvisor'; null: this server refuses to start them. @default null */
  gvisor?: RunscOptions | null;
  /**
   * Start new container-tier machines in user namespaces of their own (user-namespace.ts).
   * Machines made without one keep running without. @default false
   */
  userNamespaces?: boolean;
}

/** Where `npm run build` puts the agent, from this module in dist/src/runtime/runc/. */
const DEFAULT_AGENT_PATH: string = fileURLToPath(new URL('../../../agent/hangar-agent', import.meta.url));
/** A request waits this long for the agent's idle connection before it takes the `runc exec` path. */
const AGENT_WAIT_MS = 1_000;
/** A machine whose agent stopped answering is given a new one at most this often. */
const AGENT_RELAUNCH_EVERY_MS = 5_000;

/**
 * Machines as runc containers on overlay root filesystems over loop-mounted ext4
 * images; snapshots with CRIU (through `runc checkpoint`/`restore`) plus the image.
 * Each operation lives in a file of its own (lifecycle, checkpoint, fork, revert,
 * resize) as a function of one shared `RuncContext`; this class only composes them.
 */
export class RuncRuntime implements Runtime, SnapshotRuntime, VolumeRuntime {
  private support: Promise<SnapshotSupport> | null = null;
  /** Bridge, namespaces, veths and iptables chains of this instance. */
  readonly network: HostNetwork;
  private readonly ctx: RuncContext;
  private readonly ptyRelayPath: string;
  private readonly agents: AgentHost;
  private readonly volumes: HostVolumes;
  private agentInstall: Promise<string | null> | null = null;
  private readonly relaunchedAt = new Map<string, number>();
  /** The gvisor tier's context (runsc), or null when none is configured. */
  private readonly gvisorCtx: RuncContext | null;
  /** Each machine's tier, as its `isolation` file beside it says (read once). */
  private readonly tiers = new Map<string, Isolation>();
  /** Each machine's user-namespace range (null: none), as its `uid-base` file says (read once). */
  private readonly uidBases = new Map<string, number | null>();
  /** The machines directory and those above it made passable to user-namespaced machines' roots (once). */
  private traversable: Promise<void> | null = null;
  /** Hands out new machines' ranges; null when user namespaces are off. */
  private readonly uidRanges: UidRanges | null;

  constructor(private readonly opts: RuncRuntimeOptions) {
    const log = opts.logger ?? SILENT_LOGGER;
    this.agents = new AgentHost(
      opts.machinesDir,
      log,
      async (id) => {
        const pids = new Set<number>();
        for (const root of await cgroupRoots()) for (const pid of await cgroupPids(this.ctx, root, id)) pids.add(Number(pid));
        return [...pids];
      },
      (id) => this.relaunchAgent(id),
    );
    this.network = new HostNetwork({ instancePrefix: opts.instancePrefix, subnet: opts.subnet, machinesDir: opts.machinesDir });
    this.ptyRelayPath = opts.ptyRelayPath ?? DEFAULT_PTY_RELAY_PATH;
    this.volumes = new HostVolumes({
      volumesDir: opts.volumesDir ?? join(dirname(opts.machinesDir), 'volumes'),
      instancePrefix: opts.instancePrefix,
      log,
    });
    this.ctx = {
      oci: runcCli(opts.runcPath, opts.stateDir),
      criuPath: opts.criuPath,
      machinesDir: opts.machinesDir,
      snapshotsDir: opts.snapshotsDir,
      instancePrefix: opts.instancePrefix,
      pidsLimit: opts.pidsLimit,
      diskToolPath: opts.diskToolPath ?? DEFAULT_DISK_TOOL_PATH,
      blankDisksDir: opts.blankDisksDir ?? join(dirname(opts.machinesDir), 'blank-disks'),
      network: this.network,
      log,
      agents: this.agents,
      volumes: this.volumes,
      agentBinDir: () => this.agentBinDir(),
      snapshotSupport: () => this.snapshotSupport(),
      uidBase: null,
    };
    this.uidRanges = opts.userNamespaces ? new UidRanges([opts.machinesDir, opts.snapshotsDir], firstRangeFor(opts.instancePrefix)) : null;
    this.gvisorCtx = opts.gvisor ? { ...this.ctx, oci: runscCli(opts.gvisor), pidsLimit: gvisorHostPidsLimit(opts.pidsLimit) } : null;
  }

  /** Every tier's context this server has. */
  private contexts(): RuncContext[] {
    return this.gvisorCtx ? [this.ctx, this.gvisorCtx] : [this.ctx];
  }

  /** The context of a tier; a RuntimeError when the tier is not configured here. */
  private tierContext(tier: Isolation, id: string): RuncContext {
    switch (tier) {
      case 'container':
        return this.ctx;
      case 'gvisor':
        if (this.gvisorCtx === null) throw new RuntimeError('this server has no gVisor tier (runsc is not configured)', id, 'isolation');
        return this.gvisorCtx;
    }
  }

  /** Where a machine's tier is written, beside its disk: id-only calls (exec, stop, destroy…) read it. */
  private tierFile(id: string): string {
    return join(layerPaths(this.opts.machinesDir, id).dir, 'isolation');
  }

  /** A machine's tier: remembered, else read from its directory; none written is the container tier. */
  private async tierOf(id: string): Promise<Isolation> {
    const known = this.tiers.get(id);
    if (known) return known;
    const text = (await readFile(this.tierFile(id), 'utf8').catch(() => '')).trim();
    const tier = (ISOLATIONS as readonly string[]).includes(text) ? (text as Isolation) : DEFAULT_ISOLATION;
    // Only a written tier is remembered: a machine whose directory is not made yet must not be pinned.
    if (text !== '') this.tiers.set(id, tier);
    return tier;
  }

  /** The context that drives machine `id`. */
  private async contextOf(id: string): Promise<RuncContext> {
    const tier = await this.tierOf(id);
    // A machine on disk of a tier this server lacks (runsc unset since): the container context only finds nothing.
    if (tier === 'gvisor') return this.gvisorCtx === null ? this.ctx : this.tierContext(tier, id);
    return this.withUidBase(id, await this.uidBaseOf(id));
  }

  /** A machine's user-namespace range: remembered, else read from its directory. */
  private async uidBaseOf(id: string): Promise<number | null> {
    if (this.uidBases.has(id)) return this.uidBases.get(id)!;
    const base = await readUidBase(layerPaths(this.opts.machinesDir, id).dir);
    // "None" is remembered only for a machine whose directory is made (its tier was read):
    // one not made yet must not be pinned to none. So exec and the rest read the file once.
    if (base !== null || this.tiers.has(id)) this.uidBases.set(id, base);
    return base;
  }

  /** The container context for one machine with (or without) a user namespace. */
  private withUidBase(id: string, base: number | null): RuncContext {
    if (base === null) return this.ctx;
    return { ...this.ctx, uidBase: base, oci: userNamespaceCli(this.ctx.oci, this.network.netnsPath(id)) };
  }

  /**
   * Once per server: a user-namespaced machine's root must pass through the directories
   * above its own and above its snapshots (a restore reads the images as that root), also
   * when the snapshots directory is shared storage elsewhere.
   */
  private allowTraversal(): Promise<void> {
    this.traversable ??= (async () => {
      await allowTraversal(this.opts.machinesDir);
      await mkdir(this.opts.snapshotsDir, { recursive: true });
      await allowTraversal(this.opts.snapshotsDir);
    })();
    return this.traversable;
  }

  /**
   * A machine started from a snapshot (a fork, or a paused machine arriving from another
   * host) keeps the snapshot's user-namespace range: its memory and disk hold those ids. The
   * range is written into its new directory before anything of it runs.
   */
  private async takeSnapshotRange(id: string, snapshotId: string): Promise<number | null> {
    const dir = layerPaths(this.opts.machinesDir, id).dir;
    await mkdir(dir, { recursive: true });
    const base = await copyUidBase(snapshotPaths(this.opts.snapshotsDir, snapshotId).dir, dir);
    this.uidBases.set(id, base);
    if (base !== null) {
      this.uidRanges?.claim(base);
      await this.allowTraversal();
    }
    return base;
  }

  /** Record a new machine's tier in its directory before anything of it runs. */
  private async rememberTier(spec: MachineSpec): Promise<RuncContext> {
    const tier = spec.isolation ?? DEFAULT_ISOLATION;
    const ctx = this.tierContext(tier, spec.id);
    const dir = layerPaths(this.opts.machinesDir, spec.id).dir;
    await mkdir(dir, { recursive: true });
    await writeFile(this.tierFile(spec.id), `${tier}\n`);
    this.tiers.set(spec.id, tier);
    if (tier !== 'container' || this.uidRanges === null) {
      this.uidBases.set(spec.id, null);
      return ctx;
    }
    // A new container-tier machine gets a range of its own, written before anything of it runs.
    await this.allowTraversal();
    const base = await this.uidRanges.allocate();
    await writeUidBase(dir, base);
    this.uidBases.set(spec.id, base);
    return this.withUidBase(spec.id, base);
  }

  /** Refuse a checkpoint-based operation on a gvisor machine: runsc has no CRIU, so nothing is tried. */
  private async assertCheckpoints(id: string, what: string): Promise<void> {
    if ((await this.tierOf(id)) !== 'container') throw new RuntimeError(`a gvisor machine cannot ${what}: its runtime (runsc) has no CRIU checkpoints`, id, what, true);
  }

  /** cgroup path (relative to each controller) of a machine: contains its id. */
  cgroupsPath(id: string): string {
    return cgroupsPath(this.ctx, id);
  }

  async info(): Promise<RuntimeInfo> {
    const out = await run(this.opts.runcPath, ['--version']);
    const version = /runc version (\S+)/.exec(out)?.[1] ?? 'unknown';
    return { name: 'runc', version, instancePrefix: this.opts.instancePrefix };
  }

  async start(spec: MachineSpec): Promise<{ pid: number }> {
    let ctx: RuncContext;
    try {
      ctx = await this.rememberTier(spec);
    } catch (err) {
      this.tiers.delete(spec.id);
      this.uidBases.delete(spec.id);
      await rm(layerPaths(this.opts.machinesDir, spec.id).dir, { recursive: true, force: true });
      if (err instanceof RuntimeError) throw err;
      throw new RuntimeError(`could not prepare the machine's directory: ${errorMessage(err)}`, spec.id, 'prepare');
    }
    const started = spec.background ? inBackground(() => startMachine(ctx, spec)) : startMachine(ctx, spec);
    // A failed start removed the machine's directory, its tier file included.
    return started.catch((err: unknown) => {
      this.tiers.delete(spec.id);
      this.uidBases.delete(spec.id);
      throw err;
    });
  }

  async restart(spec: MachineSpec): Promise<{ pid: number }> {
    return restartMachine(await this.contextOf(spec.id), spec);
  }

  async diskUsage(id: string): Promise<number | null> {
    const p = layerPaths(this.opts.machinesDir, id);
    // `upper` lives inside the image: it exists only while the image is mounted.
    if (!(await exists(join(p.layer, 'upper')))) return null;
    // Unmounted between the check and the call (a stop or pause): no usage to report.
    const s = await statfs(p.layer).catch(() => null);
    return s ? (s.blocks - s.bfree) * s.bsize : null;
  }

  async ensureDir(id: string, path: string): Promise<void> {
    await ensureDirInside(layerPaths(this.opts.machinesDir, id).rootfs, path, await this.uidBaseOf(id));
  }

  private async execContext(id: string): Promise<RuncExecContext> {
    return { oci: (await this.contextOf(id)).oci, machineDir: layerPaths(this.opts.machinesDir, id).dir, log: this.ctx.log };
  }

  hasAgent(id: string): Promise<boolean> {
    return this.agents.has(id);
  }

  /** Where the current agent is installed, once per server (null, logged: none was built). */
  private agentBinDir(): Promise<string | null> {
    this.agentInstall ??= installAgent(this.opts.agentPath ?? DEFAULT_AGENT_PATH, this.opts.agentsDir ?? join(dirname(this.opts.machinesDir), 'agents')).then(
      ({ binDir, problem }) => {
        if (problem !== null) this.ctx.log.warn({}, problem);
        return binDir;
      },
    );
    return this.agentInstall;
  }

  /**
   * A connection to the machine's agent for a command as `uid:gid`, or null for the
   * `runc exec` path: the agent has the machine's own capabilities, which do not include
   * changing user, so only root's commands go through it. A machine whose agent does not
   * answer (killed inside the machine) is given a new one in the background.
   */
  private async agentFor(id: string, uid: number, gid: number): Promise<AgentConnection | null> {
    if (uid !== 0 || gid !== 0) return null;
    const socket = await this.agents.connect(id, AGENT_WAIT_MS);
    if (socket === null && (await this.agents.has(id))) this.relaunchAgent(id);
    return socket;
  }

  /** Start the agent again inside a running machine (`runc exec -d`), at most once every few seconds. */
  private relaunchAgent(id: string): void {
    const last = this.relaunchedAt.get(id) ?? -Infinity;
    if (Date.now() - last < AGENT_RELAUNCH_EVERY_MS) return;
    this.relaunchedAt.set(id, Date.now());
    const relaunch = async (): Promise<void> => {
      // One that is only slow to reconnect (just restored, say) is woken, not doubled.
      if ((await this.agents.wake(id)) > 0) return;
      const { oci } = await this.contextOf(id);
      await run(oci.binary, [...oci.globalArgs, 'exec', '--detach', id, AGENT_BINARY_IN_MACHINE, 'serve']);
    };
    void bestEffort(this.ctx.log, id, 'start the agent again', relaunch());
  }

  /**
   * Start through the agent's connection, or through `runc exec` (`fallback`) when there
   * is none, or when it closed before the command started while the machine still runs:
   * the agent was killed after the server took its idle connection and before it noticed.
   */
  private async viaAgent<T>(id: string, agent: AgentConnection | null, start: (agent: AgentConnection) => Promise<T>, fallback: () => Promise<T>): Promise<T> {
    if (agent === null) return fallback();
    try {
      return await start(agent);
    } catch (err) {
      if (!(err instanceof ExecStartError && err.failure === 'not_running') || (await this.inspect(id))?.status !== 'running') throw err;
      this.relaunchAgent(id);
      return fallback();
    }
  }

  async exec(id: string, options: ExecOptions, io: ExecIo): Promise<ExecResult> {
    const agent = await this.agentFor(id, options.uid, options.gid);
    return this.viaAgent(id, agent, (a) => agentExec(a, id, options, io), async () => runcExec(await this.execContext(id), id, options, io));
  }

  async startProcess(id: string, options: ProcessOptions, io: ExecIo): Promise<ProcessHandle> {
    const agent = await this.agentFor(id, options.uid, options.gid);
    return this.viaAgent(id, agent, (a) => agentStartProcess(a, id, options, io), async () => runcStartProcess(await this.execContext(id), id, options, io));
  }

  async startPty(id: string, options: PtyOptions, output: (chunk: Buffer) => void): Promise<PtyHandle> {
    const agent = await this.agentFor(id, options.uid, options.gid);
    return this.viaAgent(id, agent, (a) => agentStartPty(a, id, options, output), () => this.runcPty(id, options, output));
  }

  private async runcPty(id: string, options: PtyOptions, output: (chunk: Buffer) => void): Promise<PtyHandle> {
    // Checked at each terminal, not once: a build run after the server started is picked up.
    const problem = await ptyRelayProblem(this.ptyRelayPath);
    if (problem !== null) throw new RuntimeError(problem, id, 'pty');
    return runcStartPty(await this.execContext(id), this.ptyRelayPath, id, options, output);
  }

  async inspect(id: string): Promise<RuntimeMachineState | null> {
    return inspectContainer(await this.contextOf(id), id);
  }

  async list(): Promise<Map<string, RuntimeMachineState>> {
    const all = new Map<string, RuntimeMachineState>();
    for (const ctx of this.contexts()) for (const [id, state] of await listContainers(ctx)) all.set(id, state);
    return all;
  }

  async stats(id: string): Promise<MachineStats | null> {
    const state = await this.inspect(id);
    if (state === null || state.pid <= 0 || (state.status !== 'running' && state.status !== 'paused')) return null;
    return readMachineStats({ cgroupsPath: this.cgroupsPath(id), pid: state.pid });
  }

  hostPaths(id: string): MachineHostPaths {
    const p = layerPaths(this.opts.machinesDir, id);
    return { rootfs: p.rootfs, bundle: p.bundle };
  }

  async resize(spec: MachineSpec, previous: MachineConfig): Promise<void> {
    // runsc has no `update`, and its disk grow would need a checkpoint.
    if ((await this.tierOf(spec.id)) !== 'container') throw new RuntimeError('a gvisor machine cannot be resized: its runtime (runsc) has no update', spec.id, 'resize', true);
    return resizeMachine(await this.contextOf(spec.id), spec, previous);
  }

  async stop(id: string): Promise<void> {
    this.relaunchedAt.delete(id);
    return stopMachine(await this.contextOf(id), id);
  }

  exportLayer(id: string, dest: string): Promise<void> {
    return exportUpper(layerPaths(this.opts.machinesDir, id), dest);
  }

  async destroy(id: string): Promise<void> {
    this.relaunchedAt.delete(id);
    await destroyMachine(await this.contextOf(id), id);
    this.tiers.delete(id);
    this.uidBases.delete(id);
  }

  async machinesOnDisk(): Promise<string[]> {
    // No machines directory yet: no machines.
    return readdir(this.opts.machinesDir).catch(() => []);
  }

  reconcileNetwork(live: ReadonlyMap<string, MachineNetworkSpec>): Promise<void> {
    return this.network.reconcile(live);
  }

  async teardown(): Promise<void> {
    // The agents wait for the next server (they reconnect on their own).
    await this.agents.closeAll();
    await this.volumes.teardown();
    await this.network.teardown();
    for (const root of await cgroupRoots()) {
      // EBUSY while machines are left running (they keep their cgroups), ENOENT when none was made: both fine.
      await rmdir(join(root, this.opts.instancePrefix)).catch(() => undefined);
    }
    for (const ctx of this.contexts()) {
      const left = await listContainers(ctx).catch((err: unknown) => {
        this.ctx.log.warn({ err: errorMessage(err) }, `could not list containers at teardown; removing the ${ctx.oci.binary} state directory`);
        return new Map<string, RuntimeMachineState>();
      });
      if (left.size === 0) await rm(ctx.oci.stateDir, { recursive: true, force: true });
    }
  }

  snapshotSupport(): Promise<SnapshotSupport> {
    this.support ??= probeSnapshotSupport(this.opts.criuPath);
    return this.support;
  }

  async pause(id: string, snapshotId: string, options: { memory?: boolean } = {}): Promise<SnapshotResult> {
    await this.assertCheckpoints(id, 'pause');
    return pauseMachine(await this.contextOf(id), id, snapshotId, options);
  }

  async resume(spec: MachineSpec, snapshotId: string): Promise<{ pid: number }> {
    if ((spec.isolation ?? DEFAULT_ISOLATION) !== 'container') throw new RuntimeError('a gvisor machine cannot resume: it is never paused', spec.id, 'resume');
    const dir = layerPaths(this.opts.machinesDir, spec.id).dir;
    if (await exists(dir)) return resumeMachine(await this.contextOf(spec.id), spec, snapshotId);
    // Paused on another host that shares the snapshots directory: it arrives here as a fork
    // does, with its tier and its snapshot's user-namespace range written before anything runs.
    // Its disk and memory hold that range's ids, so it keeps it: a machine here holding the
    // same one (handed out by another host) would share its host ids, and the resume is refused.
    const snapshotDir = snapshotPaths(this.opts.snapshotsDir, snapshotId).dir;
    const range = await readUidBase(snapshotDir);
    const holder = range === null ? null : await rangeHolder(this.opts.machinesDir, range, spec.id);
    if (holder !== null) {
      throw new RuntimeError(`its user-id range (${range}) is held by machine ${holder} on this host; drain this host to move it to another`, spec.id, 'arrive');
    }
    const base = await this.takeSnapshotRange(spec.id, snapshotId);
    await writeFile(this.tierFile(spec.id), 'container\n');
    this.tiers.set(spec.id, 'container');
    return resumeMachine(this.withUidBase(spec.id, base), spec, snapshotId, true).catch((err: unknown) => {
      this.tiers.delete(spec.id);
      this.uidBases.delete(spec.id);
      throw err;
    });
  }

  /** The identity of the snapshots directory (`snapshotStoreId`): hosts that share it read each other's snapshots. */
  snapshotStore(): Promise<string> {
    return snapshotStoreId(this.opts.snapshotsDir);
  }

  async snapshot(id: string, snapshotId: string): Promise<SnapshotResult> {
    await this.assertCheckpoints(id, 'snapshot');
    return liveSnapshot(await this.contextOf(id), id, snapshotId);
  }

  async thaw(id: string): Promise<void> {
    // A gvisor machine is never frozen by a snapshot: nothing to thaw.
    if ((await this.tierOf(id)) !== 'container') return;
    return thawMachine(await this.contextOf(id), id);
  }

  async settlePause(id: string, snapshotId: string): Promise<boolean> {
    return settlePause(await this.contextOf(id), id, snapshotId);
  }

  async fork(spec: MachineSpec, snapshotId: string): Promise<{ pid: number }> {
    if ((spec.isolation ?? DEFAULT_ISOLATION) !== 'container') throw new RuntimeError('a gvisor machine cannot start from a snapshot: its runtime (runsc) has no CRIU restore', spec.id, 'fork');
    const base = await this.takeSnapshotRange(spec.id, snapshotId);
    return forkMachine(this.withUidBase(spec.id, base), spec, snapshotId).catch((err: unknown) => {
      this.uidBases.delete(spec.id);
      throw err;
    });
  }

  revertSnapshot(targetId: string, sourceId: string): Promise<SnapshotResult> {
    return revertSnapshot(this.ctx, targetId, sourceId);
  }

  async deleteSnapshot(snapshotId: string): Promise<void> {
    await rm(snapshotPaths(this.opts.snapshotsDir, snapshotId).dir, { recursive: true, force: true });
  }

  snapshotsOnDisk(): Promise<string[]> {
    return snapshotsOnDisk(this.ctx);
  }

  async createVolume(id: string, sizeMb: number): Promise<void> {
    try {
      await this.volumes.create(id, sizeMb);
    } catch (err) {
      throw new RuntimeError(`could not create volume ${id}: ${errorMessage(err)}`, '', 'volume');
    }
  }

  volumeImage(id: string): string {
    return this.volumes.image(id);
  }

  async deleteVolume(id: string): Promise<void> {
    try {
      await this.volumes.delete(id);
    } catch (err) {
      throw new RuntimeError(`could not delete volume ${id}: ${errorMessage(err)}`, '', 'volume');
    }
  }

  volumesOnDisk(): Promise<string[]> {
    return this.volumes.onDisk();
  }

  reconcileVolumes(running: ReadonlyMap<string, readonly VolumeMountSpec[]>): Promise<void> {
    return this.volumes.reconcile(running);
  }
}
