/**
 * Resizing a running machine: CPU and memory with `runc update`, a larger disk grown
 * online when the host allows it, else offline while CRIU holds the processes.
 */
import { mkdir, readlink, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { MachineConfig } from '../../domain/machine.js';
import { ResizeRefusedError, RuntimeError, type MachineSpec } from '../runtime.js';
import { bestEffort, errorMessage } from './best-effort.js';
import { dumpContainer, keepDumpLog, recoverFromFailedDump } from './checkpoint.js';
import { CommandError } from './command.js';
import { cgroupPids, cgroupRoots, mountSource, removeContainer, restoreInit, runc, statusAfterFailure, writeBundle } from './container.js';
import { cgroupLimits } from './oci-spec.js';
import type { RuncContext } from './runc-context.js';
import { canGrowMounted, growMountedImage, growUnmountedImage, layerPaths, mountLayer, unmountWritableLayer } from './writable-layer.js';

/**
 * Change a running machine's limits from `previous` to `spec.config`; the bundle's
 * config.json is rewritten with them, so a later restart or resume keeps them. On
 * failure the old CPU and memory limits are put back.
 */
export async function resizeMachine(ctx: RuncContext, spec: MachineSpec, previous: MachineConfig): Promise<void> {
  const id = spec.id;
  const next = spec.config;
  const p = layerPaths(ctx.machinesDir, id);
  if (next.disk_mb < previous.disk_mb) throw new RuntimeError('a disk cannot shrink', id, 'resize', true);
  const grow = next.disk_mb > previous.disk_mb;
  const online = grow && (await canGrowMounted());
  if (grow && !online && !(await ctx.snapshotSupport()).memory) {
    throw new ResizeRefusedError(
      'growing the disk of a running machine needs CAP_SYS_RESOURCE (an online resize2fs) or CRIU (to hold the processes while the file system grows offline), and this host has neither',
      id,
      'disk_unsupported',
    );
  }
  const limits = next.vcpus !== previous.vcpus || next.memory_mb !== previous.memory_mb;
  if (limits) await updateLimits(ctx, id, next, previous);
  try {
    if (grow && online) await growMountedImage(p, next.disk_mb);
    else if (grow) await growDiskHeld(ctx, spec, previous);
    // config.json follows, so what reads the bundle later sees the machine as it is.
    await writeBundle(ctx, spec, p);
  } catch (err) {
    const running = (await statusAfterFailure(ctx, id)) === 'running';
    if (limits && running) await bestEffort(ctx.log, id, 'put the old CPU and memory limits back after a failed resize', updateLimits(ctx, id, previous, next));
    if (err instanceof RuntimeError) throw err;
    throw new RuntimeError(`could not grow the disk: ${errorMessage(err)}`, id, 'disk', running);
  }
}

/** `runc update` the CPU quota and memory (limit = limit with swap, as at create) of a running container. */
async function updateLimits(ctx: RuncContext, id: string, to: MachineConfig, from: MachineConfig): Promise<void> {
  const args = (c: MachineConfig): string[] => {
    const l = cgroupLimits(c);
    const mem = String(l.memoryBytes);
    return ['update', '--cpu-period', String(l.cpuPeriodUs), '--cpu-quota', String(l.cpuQuotaUs), '--memory', mem, '--memory-swap', mem, id];
  };
  try {
    await runc(ctx, args(to));
  } catch (err) {
    // The kernel refuses (EBUSY) a memory limit below what the machine's processes hold
    // (nothing to reclaim: no swap); runc says so with the usage. Memory is set before the
    // CPU quota, so nothing changed, but runc's state.json now holds the refused values:
    // write the ones in force back.
    await bestEffort(ctx.log, id, 'write the limits in force back into runc\'s state', runc(ctx, args(from)));
    const used = err instanceof CommandError ? /current usage: (\d+)/.exec(err.stderr)?.[1] : undefined;
    if (used !== undefined) {
      throw new ResizeRefusedError(`the machine uses ${used} bytes of memory, more than the new limit`, id, 'memory_in_use', Number(used));
    }
    throw new RuntimeError(`could not change the CPU and memory limits: ${errorMessage(err)}`, id, 'limits', true);
  }
}

/**
 * Grow the disk of a running machine when the file system cannot grow mounted: its
 * processes are checkpointed (CRIU, as for a pause), the image grows unmounted, and
 * the processes are restored on it, connections included; they stand still about as
 * long as a pause and resume take. Any failure before the restore restores them on the old disk.
 */
async function growDiskHeld(ctx: RuncContext, spec: MachineSpec, previous: MachineConfig): Promise<void> {
  const id = spec.id;
  const p = layerPaths(ctx.machinesDir, id);
  const work = join(p.dir, 'resize-checkpoint');
  const images = join(work, 'images');
  const logs = join(work, 'logs');
  if ((await timeNamespaces(ctx, id)).size > 1) {
    throw new ResizeRefusedError(
      'it runs processes started after its last restore (a resume or a disk resize), in another time namespace than the restored ones, and CRIU cannot restore such a mix',
      id,
      'mixed_time_namespaces',
    );
  }
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  try {
    await ctx.agents.quiesce(id);
    await runc(ctx, ['pause', id]);
    await dumpContainer(ctx, id, images, logs, false);
  } catch (err) {
    const why = await keepDumpLog(ctx, id, logs);
    const running = await recoverFromFailedDump(ctx, id);
    if (running) await bestEffort(ctx.log, id, 'listen for the agent again after a failed checkpoint', ctx.agents.reopen(id));
    await rm(work, { recursive: true, force: true });
    throw new RuntimeError(`could not checkpoint the machine to grow its disk: ${why ?? errorMessage(err)}`, id, 'checkpoint', running);
  }
  let growFailure: unknown = null;
  try {
    await unmountWritableLayer(ctx.diskToolPath, p);
    await growUnmountedImage(p.image, spec.config.disk_mb);
  } catch (err) {
    growFailure = err;
  }
  try {
    await mountLayer(ctx.diskToolPath, p, spec.templateLayers, mountSource(ctx, id), undefined, ctx.uidBase);
    // Restored with the limits in force: the new ones once the disk grew, else the old ones.
    await writeBundle(ctx, growFailure === null ? spec : { ...spec, config: previous }, p);
    await restoreInit(ctx, id, p, images);
    await ctx.agents.nudge(id);
  } catch (err) {
    await bestEffort(ctx.log, id, 'remove the container of a failed restore after a disk resize', removeContainer(ctx, id));
    throw new RuntimeError(`the machine's processes could not be restored after its disk was grown: ${errorMessage(err)}`, id, 'restore', false);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  if (growFailure !== null) throw new RuntimeError(`could not grow the disk: ${errorMessage(growFailure)}`, id, 'disk', true);
}

/**
 * The time namespaces of a machine's processes. Images with dumped clocks (taken by a
 * Hangar before the checkpoint dropped them) restore into a new time namespace that
 * `runc exec` does not join, so processes started later sit in another, and a further
 * checkpoint then fails to restore ("Can't restore sub-task in NS"): the processes would be lost.
 */
async function timeNamespaces(ctx: RuncContext, id: string): Promise<Set<string>> {
  const out = new Set<string>();
  for (const root of await cgroupRoots()) {
    const pids = await cgroupPids(ctx, root, id);
    for (const pid of pids) {
      // Exited since the cgroup was read: it holds no namespace any more.
      const ns = await readlink(`/proc/${pid}/ns/time`).catch(() => null);
      if (ns !== null) out.add(ns);
    }
    if (pids.length > 0) break;
  }
  return out;
}
