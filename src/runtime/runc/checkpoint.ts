/**
 * Checkpoint and restore with CRIU (through `runc checkpoint`/`restore`): pause, resume,
 * live snapshot and thaw. The writable layer's image travels with the CRIU images.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NoSpaceError, RuntimeError, type MachineSpec, type SnapshotResult, type SnapshotSupport } from '../runtime.js';
import { bestEffort, errorMessage } from './best-effort.js';
import { run } from './command.js';
import { markSnapshot, snapshotAgent } from './agent-mounts.js';
import { mountSource, removeContainer, restoreInit, runc, runInit, statusAfterFailure, writeBundle } from './container.js';
import type { RuncContext } from './runc-context.js';
import { allocatedBytes, exists, manifestProblem, moveFile, snapshotPaths, writeManifest } from './snapshot-files.js';
import { layerPaths, mountLayer, mountPoints, unmountWritableLayer } from './writable-layer.js';

/** Whether `criu` is installed and `criu check` passes on this host. */
export async function probeSnapshotSupport(criuPath: string): Promise<SnapshotSupport> {
  let version: string | null = null;
  try {
    const out = await run(criuPath, ['--version'], 5_000);
    version = /Version:\s*(\S+)/.exec(out)?.[1] ?? out.trim();
  } catch {
    return { memory: false, criuVersion: null, reason: `${criuPath} not found: install CRIU 4 (see README)` };
  }
  try {
    await run(criuPath, ['check'], 10_000);
    return { memory: true, criuVersion: version, reason: null };
  } catch (err) {
    return { memory: false, criuVersion: version, reason: `criu check failed: ${errorMessage(err)}` };
  }
}

/**
 * Dump a frozen container's processes into `images` (CRIU's logs in `work`). Without
 * `leaveRunning` CRIU kills the container once dumped. The network namespace is
 * Hangar's (external to CRIU) and stays, address and rules, for the restore.
 */
export async function dumpContainer(ctx: RuncContext, id: string, images: string, work: string, leaveRunning: boolean): Promise<void> {
  await runc(ctx, [
    '--criu', ctx.criuPath, 'checkpoint', ...(leaveRunning ? ['--leave-running'] : []), '--tcp-established', '--file-locks',
    '--image-path', images, '--work-path', work, id,
  ], 120_000);
  await forgetDumpedClocks(images);
}

/**
 * After a failed dump: thaw a container the dump left frozen and say whether its
 * processes still run (`RuntimeError.stillRunning`).
 */
export async function recoverFromFailedDump(ctx: RuncContext, id: string): Promise<boolean> {
  const status = await statusAfterFailure(ctx, id);
  if (status === 'running') return true;
  // A dump killed between freeze and thaw leaves the cgroup frozen.
  if (status === 'paused') await bestEffort(ctx.log, id, 'thaw the machine after a failed checkpoint', runc(ctx, ['resume', id]));
  return (await statusAfterFailure(ctx, id)) === 'running';
}

/**
 * Keep CRIU's log of a failed dump beside the machine (`last-dump.log`) and return
 * its error lines, which say why far better than runc does.
 */
export async function keepDumpLog(ctx: RuncContext, id: string, workDir: string): Promise<string | null> {
  // No log: CRIU never ran (runc failed first), and runc's own message is used instead.
  const log = await readFile(join(workDir, 'dump.log'), 'utf8').catch(() => null);
  if (log === null) return null;
  // The copy is for a person reading the machine's directory; the error lines are returned either way.
  await writeFile(join(layerPaths(ctx.machinesDir, id).dir, 'last-dump.log'), log).catch(() => undefined);
  const errors = log
    .split('\n')
    .filter((l) => /Error \(/.test(l) && !/RLIMIT_NOFILE/.test(l))
    .map((l) => l.replace(/^\([\d.]+\)\s*/, ''));
  if (errors.length) return `CRIU: ${errors.slice(0, 3).join('; ')}`;
  // A CRIU killed mid-dump (the OOM killer, a person) logs nothing; runc only says its socket closed.
  if (!/Dumping finished successfully/.test(log)) return 'CRIU stopped before the dump finished and logged no error (it was killed)';
  return null;
}

/** The error of a failed checkpoint: `NoSpaceError` when the data dir had no room for the images. */
function checkpointError(message: string, id: string, step: string, stillRunning: boolean): RuntimeError {
  return /No space left on device|ENOSPC/.test(message) ? new NoSpaceError(message, id, step, stillRunning) : new RuntimeError(message, id, step, stillRunning);
}

/**
 * Checkpoint and stop a running machine: CRIU dumps it (unless `memory` is false or CRIU
 * is unavailable), the container goes, and the unmounted layer image moves into the snapshot.
 */
export async function pauseMachine(ctx: RuncContext, id: string, snapshotId: string, options: { memory?: boolean }): Promise<SnapshotResult> {
  const p = layerPaths(ctx.machinesDir, id);
  const s = snapshotPaths(ctx.snapshotsDir, snapshotId);
  const criu = options.memory !== false && (await ctx.snapshotSupport()).memory;
  await mkdir(s.dir, { recursive: true });
  let memory = false;
  if (criu) {
    try {
      // Freeze first: CRIU checks the freezer once and, if the cgroup is still freezing,
      // sleeps 100 ms before looking again.
      // CRIU dumps no socket whose peer is outside the machine: the agent's connections close first.
      await ctx.agents.quiesce(id);
      await runc(ctx, ['pause', id]);
      await dumpContainer(ctx, id, s.criu, s.work, false);
      memory = true;
    } catch (err) {
      const why = await keepDumpLog(ctx, id, s.work);
      await rm(s.dir, { recursive: true, force: true });
      const alive = await recoverFromFailedDump(ctx, id);
      if (alive) await bestEffort(ctx.log, id, 'listen for the agent again after a failed checkpoint', ctx.agents.reopen(id));
      throw checkpointError(`checkpoint failed: ${why ?? errorMessage(err)}`, id, 'checkpoint', alive);
    }
  }
  try {
    await ctx.agents.close(id);
    await removeContainer(ctx, id);
    await ctx.volumes.release(id);
    await unmountWritableLayer(ctx.diskToolPath, p);
    await moveFile(p.image, s.image);
    await markSnapshot(p.dir, s.dir);
    await writeManifest(s);
  } catch (err) {
    // The processes are gone; the layer image stays wherever it is (nothing is deleted).
    throw new RuntimeError(`could not stop the machine after its checkpoint: ${errorMessage(err)}`, id, 'stop', false);
  }
  await rm(p.rootfs, { recursive: true, force: true });
  await rm(p.layer, { recursive: true, force: true });
  return { memory, sizeBytes: await allocatedBytes(s.dir) };
}

/**
 * Bring a paused machine back from its pause snapshot, which is consumed: the image moves
 * back, is remounted, and the processes are restored (or init restarted for a
 * filesystem-only snapshot). On failure everything is put back: the snapshot stays intact.
 *
 * `arriving`: the machine was paused on another host (the snapshot is on storage both
 * read). It gets a network namespace here with the address this host gave it, so CRIU
 * restores its TCP connections closed (their address is gone), as a fork's are; a failure
 * leaves nothing of it on this host.
 */
export async function resumeMachine(ctx: RuncContext, spec: MachineSpec, snapshotId: string, arriving = false): Promise<{ pid: number }> {
  const p = layerPaths(ctx.machinesDir, spec.id);
  const s = snapshotPaths(ctx.snapshotsDir, snapshotId);
  if (!(await exists(s.image))) {
    throw new RuntimeError(`snapshot ${snapshotId} is missing its disk image (${s.image}); it cannot be resumed`, spec.id, 'check snapshot');
  }
  const damage = await manifestProblem(s);
  if (damage) throw new RuntimeError(`snapshot ${snapshotId} is damaged: ${damage}`, spec.id, 'check snapshot');
  const memory = await exists(s.inventory);
  await mkdir(ctx.oci.stateDir, { recursive: true, mode: 0o700 });
  await moveFile(s.image, p.image);
  let step = 'mount writable layer';
  const criuConfig = arriving && memory ? join(p.dir, 'criu-restore.conf') : undefined;
  try {
    await mountLayer(ctx.diskToolPath, p, spec.templateLayers, mountSource(ctx, spec.id), undefined, ctx.uidBase);
    step = 'check network';
    // Kept while paused; only a host restart (or a person) removes it.
    await ctx.network.ensureAttached(spec.id, spec.network, { openToAllIds: ctx.uidBase !== null });
    step = 'mount volumes';
    await ctx.volumes.acquire(spec.id, spec.volumes ?? []);
    step = 'write OCI bundle';
    // Restored processes map the agent they were dumped with (a revert may have brought another's).
    if (memory) await snapshotAgent(s.dir, p.dir, ctx.agents.runDir(spec.id), await ctx.agentBinDir());
    if (criuConfig !== undefined) await writeFile(criuConfig, 'tcp-close\n');
    await writeBundle(ctx, spec, p, criuConfig);
    step = memory ? 'restore processes' : 'restart init';
    const pid = memory ? await restoreInit(ctx, spec.id, p, s.criu) : await runInit(ctx, spec.id, p);
    await ctx.agents.nudge(spec.id);
    // runc keeps the annotation: later checkpoints read the file too, so empty it.
    if (criuConfig !== undefined) await writeFile(criuConfig, '');
    await rm(s.dir, { recursive: true, force: true });
    return { pid };
  } catch (err) {
    // Put everything back as it was: container gone, layer unmounted, image in the snapshot.
    const undo = (what: string, step: Promise<unknown>): Promise<void> => bestEffort(ctx.log, spec.id, `${what} after a failed resume`, step);
    await undo('remove the container', removeContainer(ctx, spec.id));
    await undo('release the volumes', ctx.volumes.release(spec.id));
    await undo('unmount the writable layer', unmountWritableLayer(ctx.diskToolPath, p));
    await undo('move the disk image back into its snapshot', moveFile(p.image, s.image));
    await undo('remove the root filesystem mount point', rm(p.rootfs, { recursive: true, force: true }));
    await undo('remove the layer mount point', rm(p.layer, { recursive: true, force: true }));
    if (arriving) {
      // It was never here: the next try (on this host or another) arrives afresh.
      await undo('remove its network namespace', ctx.network.detach(spec.id));
      if (!(await exists(p.image))) await undo('remove its directory', rm(p.dir, { recursive: true, force: true }));
    }
    throw new RuntimeError(`could not ${step}: ${errorMessage(err)}`, spec.id, step);
  }
}

/**
 * After a crash, make a pause snapshot whole again: a pause or resume the server did not
 * finish may have left the container, the mounted layer or the disk image in the machine's
 * directory. The container goes (its processes were dumped, or not restored yet), the
 * layer is unmounted, the image moves into the snapshot and the manifest is written if the
 * pause had not got that far. True when the snapshot now has its disk image.
 */
export async function settlePause(ctx: RuncContext, id: string, snapshotId: string): Promise<boolean> {
  const p = layerPaths(ctx.machinesDir, id);
  const s = snapshotPaths(ctx.snapshotsDir, snapshotId);
  await removeContainer(ctx, id);
  await ctx.volumes.release(id);
  const mounted = await mountPoints();
  if (mounted.has(p.rootfs) || mounted.has(p.layer)) await unmountWritableLayer(ctx.diskToolPath, p);
  if (!(await exists(s.image)) && (await exists(p.image))) {
    await mkdir(s.dir, { recursive: true });
    await moveFile(p.image, s.image);
  }
  if (!(await exists(s.image))) return false;
  if ((await manifestProblem(s)) === 'its manifest.json is missing') {
    await markSnapshot(p.dir, s.dir).catch(() => undefined);
    await writeManifest(s);
  }
  await rm(p.rootfs, { recursive: true, force: true });
  await rm(p.layer, { recursive: true, force: true });
  return true;
}

/**
 * Snapshot a running machine without stopping it: frozen while its image is copied
 * and its processes dumped (`--leave-running`), so disk and memory are of one instant.
 */
export async function liveSnapshot(ctx: RuncContext, id: string, snapshotId: string): Promise<SnapshotResult> {
  const p = layerPaths(ctx.machinesDir, id);
  const s = snapshotPaths(ctx.snapshotsDir, snapshotId);
  const { memory: criu } = await ctx.snapshotSupport();
  await mkdir(s.dir, { recursive: true });
  if (criu) await ctx.agents.quiesce(id);
  await runc(ctx, ['pause', id]);
  try {
    await run('sync', ['-f', p.layer]);
    await run('cp', ['--sparse=always', p.image, s.image], 300_000);
    if (criu) await dumpContainer(ctx, id, s.criu, s.work, true);
    await markSnapshot(p.dir, s.dir);
    await writeManifest(s);
  } catch (err) {
    const why = await keepDumpLog(ctx, id, s.work);
    await rm(s.dir, { recursive: true, force: true });
    throw checkpointError(`snapshot failed: ${why ?? errorMessage(err)}`, id, 'snapshot', true);
  } finally {
    // Logged, not thrown: the caller must see the snapshot's own outcome. A machine left
    // frozen is thawed by the next server start (the service's recover).
    await bestEffort(ctx.log, id, 'thaw the machine after its live snapshot', runc(ctx, ['resume', id]));
    if (criu) await bestEffort(ctx.log, id, 'listen for the agent again after a live snapshot', ctx.agents.reopen(id));
  }
  return { memory: criu, sizeBytes: await allocatedBytes(s.dir) };
}

/** Thaw a machine a live snapshot left frozen (the server stopped between freeze and thaw). */
export async function thawMachine(ctx: RuncContext, id: string): Promise<void> {
  await runc(ctx, ['resume', id]);
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
