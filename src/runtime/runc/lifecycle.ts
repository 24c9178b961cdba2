import { mkdir, rm } from 'node:fs/promises';
import { RuntimeError, type MachineSpec } from '../runtime.js';
import { bestEffort, errorMessage } from './best-effort.js';
import { rememberAgent } from './agent-mounts.js';
import { mountSource, removeContainer, runInit, writeBundle } from './container.js';
import type { RuncContext } from './runc-context.js';
import { blankImage } from './disk-tool.js';
import { ensureDirInside, layerPaths, mountLayer, unmountWritableLayer } from './writable-layer.js';

/**
 * Prepare a machine's disk, root filesystem, network and bundle and run its init:
 * the disk cloned from a formatted blank, loop and overlay mounts, cwd, config.json, `runc run`. Any
 * failure undoes every step.
 */
export async function startMachine(ctx: RuncContext, spec: MachineSpec): Promise<{ pid: number }> {
  const p = layerPaths(ctx.machinesDir, spec.id);
  let step = 'prepare root filesystem and network';
  try {
    await mkdir(ctx.oci.stateDir, { recursive: true, mode: 0o700 });
    // The network is made (and, with a user namespace, opened to the machine's ids) while the
    // disk is cloned and mounted: it costs no time of its own.
    const net = ctx.network.attach(spec.id, spec.network, { openToAllIds: ctx.uidBase !== null });
    await Promise.all([
      (async () => {
        await mkdir(p.dir, { recursive: true });
        const blank = await blankImage(ctx.blankDisksDir, spec.config.disk_mb);
        await mountLayer(ctx.diskToolPath, p, spec.templateLayers, mountSource(ctx, spec.id), blank, ctx.uidBase);
      })(),
      net,
    ]);
    step = 'create working directory';
    await ensureDirInside(p.rootfs, spec.cwd, ctx.uidBase);
    step = 'mount volumes';
    await ctx.volumes.acquire(spec.id, spec.volumes ?? []);
    step = 'write OCI bundle';
    await rememberAgent(p.dir, await ctx.agentBinDir(), ctx.agents.runDir(spec.id));
    await writeBundle(ctx, spec, p);
    step = 'start container';
    return { pid: await runInit(ctx, spec.id, p) };
  } catch (err) {
    await bestEffort(ctx.log, spec.id, 'remove a machine that failed to start', destroyMachine(ctx, spec.id));
    throw new RuntimeError(`could not ${step}: ${errorMessage(err)}`, spec.id, step);
  }
}

/** Kill every process and run init again on the same, still mounted, root filesystem. */
export async function restartMachine(ctx: RuncContext, spec: MachineSpec): Promise<{ pid: number }> {
  const p = layerPaths(ctx.machinesDir, spec.id);
  let step = 'stop container';
  try {
    // The overlay and the image stay mounted: only the processes (and the cgroup) go. The
    // agent goes with them on purpose: its socket is closed first, so that is not taken for a crash.
    await ctx.agents.quiesce(spec.id);
    await removeContainer(ctx, spec.id);
    // Still counted as a user of its volumes (their host mounts stayed); this only makes sure.
    step = 'mount volumes';
    await ctx.volumes.acquire(spec.id, spec.volumes ?? []);
    step = 'write OCI bundle';
    await writeBundle(ctx, spec, p);
    step = 'start container';
    return { pid: await runInit(ctx, spec.id, p) };
  } catch (err) {
    await bestEffort(ctx.log, spec.id, 'remove the container of a failed restart', removeContainer(ctx, spec.id));
    throw new RuntimeError(`could not restart (${step}): ${errorMessage(err)}`, spec.id, step);
  }
}

/** Kill the processes and release network, mounts and cgroups, keeping the disk image. */
export async function stopMachine(ctx: RuncContext, id: string): Promise<void> {
  const p = layerPaths(ctx.machinesDir, id);
  await ctx.agents.close(id);
  await removeContainer(ctx, id);
  await ctx.volumes.release(id);
  await ctx.network.detach(id);
  await unmountWritableLayer(ctx.diskToolPath, p);
  await rm(p.rootfs, { recursive: true, force: true });
  await rm(p.layer, { recursive: true, force: true });
}

/** Kill everything and remove every host resource and file of the machine; safe to call again. */
export async function destroyMachine(ctx: RuncContext, id: string): Promise<void> {
  const p = layerPaths(ctx.machinesDir, id);
  await ctx.agents.close(id);
  await removeContainer(ctx, id);
  await ctx.volumes.release(id);
  await ctx.network.detach(id);
  await unmountWritableLayer(ctx.diskToolPath, p);
  await rm(p.dir, { recursive: true, force: true });
  ctx.agents.forget(id);
}
