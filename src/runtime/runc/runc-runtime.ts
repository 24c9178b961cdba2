import { mkdir, readFile, readdir, readlink, rename, rm, rmdir, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MachineConfig } from '../../domain/machine.js';
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
} from '../runtime.js';
import type { MachineHostPaths, MachineStats } from '../machine-stats.js';
import { ResizeRefusedError, RuntimeError } from '../runtime.js';
import { CommandError, inBackground, run, runDetached } from './command.js';
import { runcExec, type RuncExecContext } from './exec.js';
import { runcStartProcess } from './process.js';
import { runcStartPty } from './pty.js';
import { ensurePtyRelay } from './pty-relay.js';
import { readMachineStats } from './stats.js';
import { HostNetwork } from './network.js';
import { buildOciSpec, cgroupLimits } from './oci-spec.js';
import { allocatedBytes, exists, manifestProblem, snapshotPaths, writeManifest, type SnapshotPaths } from './snapshot-files.js';
import {
  canGrowMounted,
  createLayerImage,
  ensureDirInside,
  growMountedImage,
  growUnmountedImage,
  layerPaths,
  mountLayer,
  unmountWritableLayer,
  type LayerPaths,
} from './writable-layer.js';

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
  /** Where helper programs built on this host are kept (the terminal relay). */
  toolsDir: string;
  /** The machines' private subnet (one bridge per server). */
  subnet: Cidr;
}

function isMissingContainer(err: unknown): boolean {
  return err instanceof CommandError && /does not exist|not exist|no such file/i.test(err.stderr);
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * Machines as runc containers on overlay root filesystems over loop-mounted ext4
 * images; snapshots with CRIU (through `runc checkpoint`/`restore`) plus the image.
 */
export class RuncRuntime implements Runtime, SnapshotRuntime {
  private support: Promise<SnapshotSupport> | null = null;
  private ptyRelay: Promise<string> | null = null;
  /** Bridge, namespaces, veths and iptables chains of this instance. */
  readonly network: HostNetwork;

  constructor(private readonly opts: RuncRuntimeOptions) {
    this.network = new HostNetwork({ instancePrefix: opts.instancePrefix, subnet: opts.subnet, machinesDir: opts.machinesDir });
  }

  private runc(args: string[], timeoutMs?: number): Promise<string> {
    return run(this.opts.runcPath, ['--root', this.opts.stateDir, ...args], timeoutMs);
  }

  /** Start a container process that outlives runc (run / restore) with its log captured. */
  private runcDetached(args: string[], log: string): Promise<void> {
    return runDetached(this.opts.runcPath, ['--root', this.opts.stateDir, '--log', log, '--log-format', 'json', ...args], log);
  }

  /** cgroup path (relative to each controller) of a machine: contains its id. */
  cgroupsPath(id: string): string {
    return `/${this.opts.instancePrefix}/${id}`;
  }

  private mountSource(id: string): string {
    return `${this.opts.instancePrefix}-${id}`;
  }

  async info(): Promise<RuntimeInfo> {
    const out = await run(this.opts.runcPath, ['--version']);
    const version = /runc version (\S+)/.exec(out)?.[1] ?? 'unknown';
    return { name: 'runc', version, instancePrefix: this.opts.instancePrefix };
  }

  private async writeBundle(spec: MachineSpec, p: LayerPaths, criuConfig?: string): Promise<void> {
    const oci = buildOciSpec(spec, {
      rootfs: p.rootfs,
      cgroupsPath: this.cgroupsPath(spec.id),
      pidsLimit: this.opts.pidsLimit,
      netnsPath: this.network.netnsPath(spec.id),
      criuConfig,
    });
    await mkdir(p.bundle, { recursive: true });
    await writeFile(join(p.bundle, 'config.json'), JSON.stringify(oci));
  }

  /** `runc run --detach` the bundle's init; returns its host pid. */
  private async runInit(id: string, p: LayerPaths): Promise<number> {
    const pidFile = join(p.bundle, 'init.pid');
    await this.runcDetached(['run', '--detach', '--bundle', p.bundle, '--pid-file', pidFile, id], join(p.bundle, 'runc.log'));
    return Number((await readFile(pidFile, 'utf8')).trim());
  }

  /** `runc restore --detach` from CRIU images; returns the restored init's host pid. */
  private async restoreInit(id: string, p: LayerPaths, images: string): Promise<number> {
    const pidFile = join(p.bundle, 'init.pid');
    const work = join(p.dir, 'restore-work');
    await rm(work, { recursive: true, force: true });
    await this.runcDetached(
      [
        '--criu', this.opts.criuPath, 'restore', '--detach', '--tcp-established', '--file-locks',
        '--image-path', images, '--work-path', work, '--bundle', p.bundle, '--pid-file', pidFile, id,
      ],
      join(p.bundle, 'runc.log'),
    );
    // The network namespace is Hangar's, joined by path: CRIU neither saved nor restored it.
    return Number((await readFile(pidFile, 'utf8')).trim());
  }

  async start(spec: MachineSpec): Promise<{ pid: number }> {
    return spec.background ? inBackground(() => this.startNow(spec)) : this.startNow(spec);
  }

  private async startNow(spec: MachineSpec): Promise<{ pid: number }> {
    const p = layerPaths(this.opts.machinesDir, spec.id);
    let step = 'prepare root filesystem and network';
    try {
      await mkdir(this.opts.stateDir, { recursive: true, mode: 0o700 });
      // The network is made while mkfs runs: it costs no time of its own.
      const net = this.network.attach(spec.id, spec.network);
      await Promise.all([
        (async () => {
          await createLayerImage(p, spec.config.disk_mb);
          await mountLayer(p, spec.templateRootfs, this.mountSource(spec.id));
        })(),
        net,
      ]);
      step = 'create working directory';
      await ensureDirInside(p.rootfs, spec.cwd);
      step = 'write OCI bundle';
      await this.writeBundle(spec, p);
      step = 'start container';
      return { pid: await this.runInit(spec.id, p) };
    } catch (err) {
      await this.destroy(spec.id).catch(() => undefined);
      throw new RuntimeError(`could not ${step}: ${message(err)}`, spec.id, step);
    }
  }

  async restart(spec: MachineSpec): Promise<{ pid: number }> {
    const p = layerPaths(this.opts.machinesDir, spec.id);
    let step = 'stop container';
    try {
      // The overlay and the image stay mounted: only the processes (and the cgroup) go.
      await this.removeContainer(spec.id);
      step = 'write OCI bundle';
      await this.writeBundle(spec, p);
      step = 'start container';
      return { pid: await this.runInit(spec.id, p) };
    } catch (err) {
      await this.removeContainer(spec.id).catch(() => undefined);
      throw new RuntimeError(`could not restart (${step}): ${message(err)}`, spec.id, step);
    }
  }

  async diskUsage(id: string): Promise<number | null> {
    const p = layerPaths(this.opts.machinesDir, id);
    // `upper` lives inside the image: it exists only while the image is mounted.
    if (!(await exists(join(p.layer, 'upper')))) return null;
    const s = await statfs(p.layer).catch(() => null);
    return s ? (s.blocks - s.bfree) * s.bsize : null;
  }

  async ensureDir(id: string, path: string): Promise<void> {
    await ensureDirInside(layerPaths(this.opts.machinesDir, id).rootfs, path);
  }

  private execContext(id: string): RuncExecContext {
    return { runcPath: this.opts.runcPath, stateDir: this.opts.stateDir, machineDir: layerPaths(this.opts.machinesDir, id).dir };
  }

  exec(id: string, options: ExecOptions, io: ExecIo): Promise<ExecResult> {
    return runcExec(this.execContext(id), id, options, io);
  }

  startProcess(id: string, options: ProcessOptions, io: ExecIo): Promise<ProcessHandle> {
    return runcStartProcess(this.execContext(id), id, options, io);
  }

  async startPty(id: string, options: PtyOptions, output: (chunk: Buffer) => void): Promise<PtyHandle> {
    // Built once per server; a failure is retried at the next terminal (a compiler may have been installed).
    this.ptyRelay ??= ensurePtyRelay(this.opts.toolsDir).catch((err: unknown) => {
      this.ptyRelay = null;
      throw new RuntimeError(message(err), id, 'pty');
    });
    return runcStartPty(this.execContext(id), await this.ptyRelay, id, options, output);
  }

  async inspect(id: string): Promise<RuntimeMachineState | null> {
    try {
      const out = await this.runc(['state', id]);
      const s = JSON.parse(out) as { status: RuntimeMachineState['status']; pid: number };
      return { status: s.status, pid: s.pid };
    } catch (err) {
      if (isMissingContainer(err)) return null;
      throw err;
    }
  }

  async list(): Promise<Map<string, RuntimeMachineState>> {
    const out = await this.runc(['list', '--format', 'json']).catch((err) => {
      if (isMissingContainer(err)) return 'null';
      throw err;
    });
    const rows = (JSON.parse(out) ?? []) as Array<{ id: string; status: RuntimeMachineState['status']; pid: number }>;
    return new Map(rows.map((r) => [r.id, { status: r.status, pid: r.pid }]));
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

  /** SIGKILL every process in the machine's cgroup (whatever runc knows of it). */
  private async killCgroup(id: string): Promise<void> {
    for (const root of await cgroupRoots()) {
      const procs = await readFile(join(root, this.opts.instancePrefix, id, 'cgroup.procs'), 'utf8').catch(() => '');
      for (const pid of procs.split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  }

  private async removeContainer(id: string): Promise<void> {
    // Kill first: `runc delete --force` alone sleeps 100 ms before it looks again.
    await this.runc(['kill', id, 'KILL']).catch(() => undefined);
    await this.killCgroup(id);
    try {
      await this.runc(['delete', '--force', id]);
    } catch (err) {
      if (!isMissingContainer(err)) throw err;
    }
    // runc removes the cgroup itself; this covers a container that died half-created.
    for (const root of await cgroupRoots()) {
      await rmdir(join(root, this.opts.instancePrefix, id)).catch(() => undefined);
    }
  }

  async resize(spec: MachineSpec, previous: MachineConfig): Promise<void> {
    const id = spec.id;
    const next = spec.config;
    const p = layerPaths(this.opts.machinesDir, id);
    if (next.disk_mb < previous.disk_mb) throw new RuntimeError('a disk cannot shrink', id, 'resize', true);
    const grow = next.disk_mb > previous.disk_mb;
    const online = grow && (await canGrowMounted());
    if (grow && !online && !(await this.snapshotSupport()).memory) {
      throw new ResizeRefusedError(
        'growing the disk of a running machine needs CAP_SYS_RESOURCE (an online resize2fs) or CRIU (to hold the processes while the file system grows offline), and this host has neither',
        id,
        'disk_unsupported',
      );
    }
    const limits = next.vcpus !== previous.vcpus || next.memory_mb !== previous.memory_mb;
    if (limits) await this.updateLimits(id, next, previous);
    try {
      if (grow && online) await growMountedImage(p, next.disk_mb);
      else if (grow) await this.growDiskHeld(spec, previous);
      // config.json follows, so what reads the bundle later sees the machine as it is.
      await this.writeBundle(spec, p);
    } catch (err) {
      const running = (await this.inspect(id).catch(() => null))?.status === 'running';
      if (limits && running) await this.updateLimits(id, previous, next).catch(() => undefined);
      if (err instanceof RuntimeError) throw err;
      throw new RuntimeError(`could not grow the disk: ${message(err)}`, id, 'disk', running);
    }
  }

  /** `runc update` the CPU quota and memory (limit = limit with swap, as at create) of a running container. */
  private async updateLimits(id: string, to: MachineConfig, from: MachineConfig): Promise<void> {
    const args = (c: MachineConfig): string[] => {
      const l = cgroupLimits(c);
      const mem = String(l.memoryBytes);
      return ['update', '--cpu-period', String(l.cpuPeriodUs), '--cpu-quota', String(l.cpuQuotaUs), '--memory', mem, '--memory-swap', mem, id];
    };
    try {
      await this.runc(args(to));
    } catch (err) {
      // The kernel refuses (EBUSY) a memory limit below what the machine's processes hold
      // (nothing to reclaim: no swap); runc says so with the usage. Memory is set before the
      // CPU quota, so nothing changed, but runc's state.json now holds the refused values:
      // write the ones in force back.
      await this.runc(args(from)).catch(() => undefined);
      const used = err instanceof CommandError ? /current usage: (\d+)/.exec(err.stderr)?.[1] : undefined;
      if (used !== undefined) {
        throw new ResizeRefusedError(`the machine uses ${used} bytes of memory, more than the new limit`, id, 'memory_in_use', Number(used));
      }
      throw new RuntimeError(`could not change the CPU and memory limits: ${message(err)}`, id, 'limits', true);
    }
  }

  /**
   * Grow the disk of a running machine when the file system cannot grow mounted: its
   * processes are checkpointed (CRIU, as for a pause), the image grows unmounted, and
   * the processes are restored on it, connections included; they stand still about as
   * long as a pause and resume take. Any failure before the restore restores them on the old disk.
   */
  private async growDiskHeld(spec: MachineSpec, previous: MachineConfig): Promise<void> {
    const id = spec.id;
    const p = layerPaths(this.opts.machinesDir, id);
    const work = join(p.dir, 'resize-checkpoint');
    const images = join(work, 'images');
    const logs = join(work, 'logs');
    if ((await this.timeNamespaces(id)).size > 1) {
      throw new ResizeRefusedError(
        'it runs processes started after its last restore (a resume or a disk resize), in another time namespace than the restored ones, and CRIU cannot restore such a mix',
        id,
        'mixed_time_namespaces',
      );
    }
    await rm(work, { recursive: true, force: true });
    await mkdir(work, { recursive: true });
    try {
      await this.runc(['pause', id]);
      await this.runc([
        '--criu', this.opts.criuPath, 'checkpoint', '--tcp-established', '--file-locks',
        '--image-path', images, '--work-path', logs, id,
      ], 120_000);
      await forgetDumpedClocks(images);
    } catch (err) {
      const why = await this.keepDumpLog(id, logs);
      const state = await this.inspect(id).catch(() => null);
      if (state?.status === 'paused') await this.runc(['resume', id]).catch(() => undefined);
      await rm(work, { recursive: true, force: true });
      const running = (await this.inspect(id).catch(() => null))?.status === 'running';
      throw new RuntimeError(`could not checkpoint the machine to grow its disk: ${why ?? message(err)}`, id, 'checkpoint', running);
    }
    let growFailure: unknown = null;
    try {
      await unmountWritableLayer(p);
      await growUnmountedImage(p.image, spec.config.disk_mb);
    } catch (err) {
      growFailure = err;
    }
    try {
      await mountLayer(p, spec.templateRootfs, this.mountSource(id));
      // Restored with the limits in force: the new ones once the disk grew, else the old ones.
      await this.writeBundle(growFailure === null ? spec : { ...spec, config: previous }, p);
      await this.restoreInit(id, p, images);
    } catch (err) {
      await this.removeContainer(id).catch(() => undefined);
      throw new RuntimeError(`the machine's processes could not be restored after its disk was grown: ${message(err)}`, id, 'restore', false);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
    if (growFailure !== null) throw new RuntimeError(`could not grow the disk: ${message(growFailure)}`, id, 'disk', true);
  }

  /**
   * The time namespaces of a machine's processes. Images with dumped clocks (taken by a
   * Hangar before forgetDumpedClocks) restore into a new time namespace that `runc exec`
   * does not join, so processes started later sit in another, and a further checkpoint
   * then fails to restore ("Can't restore sub-task in NS"): the processes would be lost.
   */
  private async timeNamespaces(id: string): Promise<Set<string>> {
    const out = new Set<string>();
    for (const root of await cgroupRoots()) {
      const procs = await readFile(join(root, this.opts.instancePrefix, id, 'cgroup.procs'), 'utf8').catch(() => '');
      for (const pid of procs.split('\n').filter(Boolean)) {
        const ns = await readlink(`/proc/${pid}/ns/time`).catch(() => null);
        if (ns !== null) out.add(ns);
      }
      if (procs.trim()) break;
    }
    return out;
  }

  async stop(id: string): Promise<void> {
    const p = layerPaths(this.opts.machinesDir, id);
    await this.removeContainer(id);
    await this.network.detach(id);
    await unmountWritableLayer(p);
    await rm(p.rootfs, { recursive: true, force: true });
    await rm(p.layer, { recursive: true, force: true });
  }

  async destroy(id: string): Promise<void> {
    const p = layerPaths(this.opts.machinesDir, id);
    await this.removeContainer(id);
    await this.network.detach(id);
    await unmountWritableLayer(p);
    await rm(p.dir, { recursive: true, force: true });
  }

  async machinesOnDisk(): Promise<string[]> {
    return readdir(this.opts.machinesDir).catch(() => []);
  }

  reconcileNetwork(live: ReadonlyMap<string, MachineNetworkSpec>): Promise<void> {
    return this.network.reconcile(live);
  }

  async teardown(): Promise<void> {
    await this.network.teardown();
    for (const root of await cgroupRoots()) {
      await rmdir(join(root, this.opts.instancePrefix)).catch(() => undefined);
    }
    const left = await this.list().catch(() => new Map());
    if (left.size === 0) await rm(this.opts.stateDir, { recursive: true, force: true });
  }

  // --- snapshots -------------------------------------------------------------------

  snapshotSupport(): Promise<SnapshotSupport> {
    this.support ??= (async (): Promise<SnapshotSupport> => {
      let version: string | null = null;
      try {
        const out = await run(this.opts.criuPath, ['--version'], 5_000);
        version = /Version:\s*(\S+)/.exec(out)?.[1] ?? out.trim();
      } catch {
        return { memory: false, criuVersion: null, reason: `${this.opts.criuPath} not found: install CRIU 4 (see README)` };
      }
      try {
        await run(this.opts.criuPath, ['check'], 10_000);
        return { memory: true, criuVersion: version, reason: null };
      } catch (err) {
        return { memory: false, criuVersion: version, reason: `criu check failed: ${message(err)}` };
      }
    })();
    return this.support;
  }

  private snap(snapshotId: string): SnapshotPaths {
    return snapshotPaths(this.opts.snapshotsDir, snapshotId);
  }

  async pause(id: string, snapshotId: string, options: { memory?: boolean } = {}): Promise<SnapshotResult> {
    const p = layerPaths(this.opts.machinesDir, id);
    const s = this.snap(snapshotId);
    const criu = options.memory !== false && (await this.snapshotSupport()).memory;
    await mkdir(s.dir, { recursive: true });
    let memory = false;
    if (criu) {
      try {
        // Freeze first: CRIU checks the freezer once and, if the cgroup is still freezing,
        // sleeps 100 ms before looking again.
        await this.runc(['pause', id]);
        // CRIU dumps processes, memory, files and sockets, then kills the container; the network
        // namespace is Hangar's (external to CRIU) and stays, address and rules, for the resume.
        await this.runc([
          '--criu', this.opts.criuPath, 'checkpoint', '--tcp-established', '--file-locks',
          '--image-path', s.criu, '--work-path', s.work, id,
        ], 120_000);
        await forgetDumpedClocks(s.criu);
        memory = true;
      } catch (err) {
        const state = await this.inspect(id).catch(() => null);
        const why = await this.keepDumpLog(id, s.work);
        await rm(s.dir, { recursive: true, force: true });
        const running = state?.status === 'running';
        if (!running && state?.status === 'paused') {
          // A dump killed between freeze and thaw leaves the cgroup frozen: thaw it.
          await this.runc(['resume', id]).catch(() => undefined);
        }
        const alive = running || (await this.inspect(id).catch(() => null))?.status === 'running';
        throw new RuntimeError(`checkpoint failed: ${why ?? message(err)}`, id, 'checkpoint', alive);
      }
    }
    try {
      await this.removeContainer(id);
      await unmountWritableLayer(p);
      await rename(p.image, s.image);
      await writeManifest(s);
    } catch (err) {
      // The processes are gone; the layer image stays wherever it is (nothing is deleted).
      throw new RuntimeError(`could not stop the machine after its checkpoint: ${message(err)}`, id, 'stop', false);
    }
    await rm(p.rootfs, { recursive: true, force: true });
    await rm(p.layer, { recursive: true, force: true });
    return { memory, sizeBytes: await allocatedBytes(s.dir) };
  }

  /**
   * Keep CRIU's log of a failed dump beside the machine (`last-dump.log`) and return
   * its error lines, which say why far better than runc does.
   */
  private async keepDumpLog(id: string, workDir: string): Promise<string | null> {
    const log = await readFile(join(workDir, 'dump.log'), 'utf8').catch(() => null);
    if (log === null) return null;
    await writeFile(join(layerPaths(this.opts.machinesDir, id).dir, 'last-dump.log'), log).catch(() => undefined);
    const errors = log
      .split('\n')
      .filter((l) => /Error \(/.test(l) && !/RLIMIT_NOFILE/.test(l))
      .map((l) => l.replace(/^\([\d.]+\)\s*/, ''));
    return errors.length ? `CRIU: ${errors.slice(0, 3).join('; ')}` : null;
  }

  async resume(spec: MachineSpec, snapshotId: string): Promise<{ pid: number }> {
    const p = layerPaths(this.opts.machinesDir, spec.id);
    const s = this.snap(snapshotId);
    if (!(await exists(s.image))) {
      throw new RuntimeError(`snapshot ${snapshotId} is missing its disk image (${s.image}); it cannot be resumed`, spec.id, 'check snapshot');
    }
    const damage = await manifestProblem(s);
    if (damage) throw new RuntimeError(`snapshot ${snapshotId} is damaged: ${damage}`, spec.id, 'check snapshot');
    const memory = await exists(s.inventory);
    await mkdir(this.opts.stateDir, { recursive: true, mode: 0o700 });
    await rename(s.image, p.image);
    let step = 'mount writable layer';
    try {
      await mountLayer(p, spec.templateRootfs, this.mountSource(spec.id));
      step = 'check network';
      // Kept while paused; only a host restart (or a person) removes it.
      await this.network.ensureAttached(spec.id, spec.network);
      step = 'write OCI bundle';
      await this.writeBundle(spec, p);
      step = memory ? 'restore processes' : 'restart init';
      const pid = memory ? await this.restoreInit(spec.id, p, s.criu) : await this.runInit(spec.id, p);
      await rm(s.dir, { recursive: true, force: true });
      return { pid };
    } catch (err) {
      // Put everything back as it was: container gone, layer unmounted, image in the snapshot.
      await this.removeContainer(spec.id).catch(() => undefined);
      await unmountWritableLayer(p).catch(() => undefined);
      await rename(p.image, s.image).catch(() => undefined);
      await rm(p.rootfs, { recursive: true, force: true }).catch(() => undefined);
      await rm(p.layer, { recursive: true, force: true }).catch(() => undefined);
      throw new RuntimeError(`could not ${step}: ${message(err)}`, spec.id, step);
    }
  }

  async snapshot(id: string, snapshotId: string): Promise<SnapshotResult> {
    const p = layerPaths(this.opts.machinesDir, id);
    const s = this.snap(snapshotId);
    const { memory: criu } = await this.snapshotSupport();
    await mkdir(s.dir, { recursive: true });
    // Freeze so memory and disk are taken at the same instant.
    await this.runc(['pause', id]);
    try {
      await run('sync', ['-f', p.layer]);
      await run('cp', ['--sparse=always', p.image, s.image], 300_000);
      if (criu) {
        await this.runc([
          '--criu', this.opts.criuPath, 'checkpoint', '--leave-running', '--tcp-established', '--file-locks',
          '--image-path', s.criu, '--work-path', s.work, id,
        ], 120_000);
        await forgetDumpedClocks(s.criu);
      }
      await writeManifest(s);
    } catch (err) {
      const why = await this.keepDumpLog(id, s.work);
      await rm(s.dir, { recursive: true, force: true });
      throw new RuntimeError(`snapshot failed: ${why ?? message(err)}`, id, 'snapshot', true);
    } finally {
      await this.runc(['resume', id]).catch(() => undefined);
    }
    return { memory: criu, sizeBytes: await allocatedBytes(s.dir) };
  }

  async thaw(id: string): Promise<void> {
    await this.runc(['resume', id]);
  }

  async fork(spec: MachineSpec, snapshotId: string): Promise<{ pid: number }> {
    const p = layerPaths(this.opts.machinesDir, spec.id);
    const s = this.snap(snapshotId);
    let step = 'copy the snapshot';
    try {
      if (!(await exists(s.image))) throw new Error(`snapshot ${snapshotId} is missing its disk image`);
      const damage = await manifestProblem(s);
      if (damage) throw new Error(`snapshot ${snapshotId} is damaged: ${damage}`);
      const memory = await exists(s.inventory);
      await mkdir(this.opts.stateDir, { recursive: true, mode: 0o700 });
      await mkdir(p.dir, { recursive: true });
      await Promise.all([run('cp', ['--sparse=always', s.image, p.image], 300_000), this.network.attach(spec.id, spec.network)]);
      step = 'mount writable layer';
      await mountLayer(p, spec.templateRootfs, this.mountSource(spec.id));
      step = 'write OCI bundle';
      // The fork has its own address: TCP connections of the source cannot be bound in it,
      // so CRIU restores them closed (their peers talk to the source, not to the fork).
      const criuConfig = memory ? join(p.dir, 'criu-restore.conf') : undefined;
      if (criuConfig !== undefined) await writeFile(criuConfig, 'tcp-close\n');
      await this.writeBundle(spec, p, criuConfig);
      if (!memory) {
        step = 'start container';
        return { pid: await this.runInit(spec.id, p) };
      }
      step = 'restore processes';
      const pid = await this.restoreInit(spec.id, p, s.criu);
      // runc keeps the annotation: later checkpoints of the fork read this file too, so empty it.
      await writeFile(criuConfig!, '');
      // The UTS namespace comes back with the source's hostname: give the fork its own.
      step = 'set hostname';
      // Through /proc: hostname(1) refuses the underscore in machine ids, the kernel does not.
      await run('nsenter', ['--target', String(pid), '--uts', '--', 'sh', '-c', 'printf %s "$1" > /proc/sys/kernel/hostname', 'sh', spec.hostname]);
      return { pid };
    } catch (err) {
      await this.destroy(spec.id).catch(() => undefined);
      throw new RuntimeError(`could not ${step}: ${message(err)}`, spec.id, step);
    }
  }

  async revertSnapshot(targetId: string, sourceId: string): Promise<SnapshotResult> {
    const source = this.snap(sourceId);
    const target = this.snap(targetId);
    const damage = (await exists(source.image)) ? await manifestProblem(source) : 'its disk image is missing';
    if (damage) throw new RuntimeError(`snapshot ${sourceId} cannot be reverted to: ${damage}`, targetId, 'check snapshot');
    // Built beside the target, then swapped in: a failure before the swap leaves the target untouched.
    // Names with a dot are no snapshot id: a start after a crash removes them as orphans.
    const next = `${target.dir}.revert`;
    const old = `${target.dir}.old`;
    await rm(next, { recursive: true, force: true });
    try {
      await mkdir(next, { recursive: true });
      await run('cp', ['--sparse=always', source.image, join(next, 'disk.img')], 300_000);
      if (await exists(source.criu)) await run('cp', ['-a', source.criu, join(next, 'criu')], 300_000);
      // The same files under the same names: the source's manifest describes the copy.
      await run('cp', [join(source.dir, 'manifest.json'), join(next, 'manifest.json')]);
      const copied = snapshotPaths(this.opts.snapshotsDir, `${targetId}.revert`);
      const problem = await manifestProblem(copied);
      if (problem) throw new Error(`the copy does not match: ${problem}`);
      await rm(old, { recursive: true, force: true });
      await rename(target.dir, old);
      await rename(next, target.dir);
    } catch (err) {
      await rm(next, { recursive: true, force: true }).catch(() => undefined);
      if (!(await exists(target.dir)) && (await exists(old))) await rename(old, target.dir).catch(() => undefined);
      throw new RuntimeError(`could not revert to snapshot ${sourceId}: ${message(err)}`, targetId, 'revert');
    }
    await rm(old, { recursive: true, force: true });
    return { memory: await exists(target.inventory), sizeBytes: await allocatedBytes(target.dir) };
  }

  async deleteSnapshot(snapshotId: string): Promise<void> {
    await rm(this.snap(snapshotId).dir, { recursive: true, force: true });
  }

  async snapshotsOnDisk(): Promise<string[]> {
    const names = await readdir(this.opts.snapshotsDir).catch(() => [] as string[]);
    // A crash between the two renames of a revert left the checked copy beside a missing
    // snapshot: finish the revert, so the start-up sweep does not delete it as an orphan.
    for (const name of names.filter((n) => n.endsWith('.revert'))) {
      const id = name.slice(0, -'.revert'.length);
      if (names.includes(id) || !names.includes(`${id}.old`)) continue;
      await rename(join(this.opts.snapshotsDir, name), join(this.opts.snapshotsDir, id));
      names.push(id);
    }
    return readdir(this.opts.snapshotsDir).catch(() => []);
  }
}

/** Mount points of every cgroup hierarchy (v1 controllers and the v2 unified one). */
async function cgroupRoots(): Promise<string[]> {
  const text = await readFile('/proc/self/mounts', 'utf8');
  return text
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[2] === 'cgroup' || f[2] === 'cgroup2')
    .map((f) => f[1]!);
}

/**
 * Drop the clock values CRIU dumps beside a process tree that has no time namespace of
 * its own (`timens-0.img`). With them, a restore puts the processes in a new time
 * namespace whose monotonic clocks run on from the dump; runc 1.1 does not know time
 * namespaces, so every later `runc exec` starts in the host's, and the next checkpoint of
 * that mix cannot be restored ("Can't restore sub-task in NS"). Without them, restored
 * processes share the host's clocks, as a suspended computer's do after it wakes:
 * monotonic time has moved on by the time the machine was paused.
 */
async function forgetDumpedClocks(imagesDir: string): Promise<void> {
  await rm(join(imagesDir, 'timens-0.img'), { force: true });
}
