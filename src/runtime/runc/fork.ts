import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RuntimeError, type MachineSpec } from '../runtime.js';
import { bestEffort, errorMessage } from './best-effort.js';
import { run } from './command.js';
import { rememberAgent, snapshotAgent } from './agent-mounts.js';
import { mountSource, restoreInit, runInit, writeBundle } from './container.js';
import { destroyMachine } from './lifecycle.js';
import type { RuncContext } from './runc-context.js';
import { exists, manifestProblem, snapshotPaths } from './snapshot-files.js';
import { layerPaths, mountLayer } from './writable-layer.js';

/**
 * Start a new machine from a snapshot: a copy of its disk image in a new machine
 * directory, a new bundle (own id, cgroup, root path, network namespace), the source's
 * processes restored into it (or init started for a filesystem-only snapshot), and its
 * own hostname. The snapshot is left as it was; on failure the new machine is removed.
 */
export async function forkMachine(ctx: RuncContext, spec: MachineSpec, snapshotId: string): Promise<{ pid: number }> {
  const p = layerPaths(ctx.machinesDir, spec.id);
  const s = snapshotPaths(ctx.snapshotsDir, snapshotId);
  let step = 'copy the snapshot';
  try {
    if (!(await exists(s.image))) throw new Error(`snapshot ${snapshotId} is missing its disk image`);
    const damage = await manifestProblem(s);
    if (damage) throw new Error(`snapshot ${snapshotId} is damaged: ${damage}`);
    const memory = await exists(s.inventory);
    await mkdir(ctx.oci.stateDir, { recursive: true, mode: 0o700 });
    await mkdir(p.dir, { recursive: true });
    const net = ctx.network.attach(spec.id, spec.network, { openToAllIds: ctx.uidBase !== null });
    await Promise.all([run('cp', ['--sparse=always', s.image, p.image], 300_000), net]);
    step = 'mount writable layer';
    await mountLayer(ctx.diskToolPath, p, spec.templateLayers, mountSource(ctx, spec.id), undefined, ctx.uidBase);
    step = 'mount volumes';
    await ctx.volumes.acquire(spec.id, spec.volumes ?? []);
    step = 'write OCI bundle';
    // The fork has its own address: TCP connections of the source cannot be bound in it,
    // so CRIU restores them closed (their peers talk to the source, not to the fork).
    const criuConfig = memory ? join(p.dir, 'criu-restore.conf') : undefined;
    if (criuConfig !== undefined) await writeFile(criuConfig, 'tcp-close\n');
    // Restored processes need the agent they were dumped with; a cold start takes today's.
    const runDir = ctx.agents.runDir(spec.id);
    const current = await ctx.agentBinDir();
    if (!(await snapshotAgent(s.dir, p.dir, runDir, current)) && criuConfig === undefined) await rememberAgent(p.dir, current, runDir);
    await writeBundle(ctx, spec, p, criuConfig);
    if (criuConfig === undefined) {
      step = 'start container';
      return { pid: await runInit(ctx, spec.id, p) };
    }
    step = 'restore processes';
    const pid = await restoreInit(ctx, spec.id, p, s.criu);
    await ctx.agents.nudge(spec.id);
    // runc keeps the annotation: later checkpoints of the fork read this file too, so empty it.
    await writeFile(criuConfig, '');
    // The UTS namespace comes back with the source's hostname: give the fork its own.
    step = 'set hostname';
    // Through /proc: hostname(1) refuses the underscore in machine ids, the kernel does not.
    await run('nsenter', ['--target', String(pid), '--uts', '--', 'sh', '-c', 'printf %s "$1" > /proc/sys/kernel/hostname', 'sh', spec.hostname]);
    return { pid };
  } catch (err) {
    await bestEffort(ctx.log, spec.id, 'remove a fork that failed to start', destroyMachine(ctx, spec.id));
    throw new RuntimeError(`could not ${step}: ${errorMessage(err)}`, spec.id, step);
  }
}
