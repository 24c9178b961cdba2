import { chmod, mkdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MachineSpec, RuntimeMachineState } from '../runtime.js';
import { errorMessage } from './best-effort.js';
import { CommandError, run, runDetached } from './command.js';
import { machineAgent } from './agent-mounts.js';
import { buildOciSpec, type VolumeBind } from './oci-spec.js';
import type { RuncContext } from './runc-context.js';
import { idmappedVolumesDir, layerPaths, mountPoints, type LayerPaths } from './writable-layer.js';

/** True when runc (or the file system) says the container or its state is not there. */
export function isMissingContainer(err: unknown): boolean {
  return err instanceof CommandError && /does not exist|not exist|no such file/i.test(err.stderr);
}

/** Run runc against this instance's state directory; resolves with stdout. */
export function runc(ctx: RuncContext, args: string[], timeoutMs?: number): Promise<string> {
  return run(ctx.oci.binary, [...ctx.oci.globalArgs, ...args], timeoutMs);
}

/** Start a container process that outlives runc (run / restore) with its log captured. */
function runcDetached(ctx: RuncContext, args: string[], log: string): Promise<void> {
  return runDetached(ctx.oci.binary, [...ctx.oci.globalArgs, '--log', log, '--log-format', 'json', ...args], log);
}

/** cgroup path (relative to each controller) of a machine: contains its id. */
export function cgroupsPath(ctx: RuncContext, id: string): string {
  return `/${ctx.instancePrefix}/${id}`;
}

/** Source name of a machine's overlay mount: the prefix marks it as this instance's. */
export function mountSource(ctx: RuncContext, id: string): string {
  return `${ctx.instancePrefix}-${id}`;
}

/** Write the machine's OCI bundle (`config.json`) for its next run or restore. */
export async function writeBundle(ctx: RuncContext, spec: MachineSpec, p: LayerPaths, criuConfig?: string): Promise<void> {
  // The agent the machine started with (its mark beside it), or none; its socket listens before init runs.
  const agent = await machineAgent(p.dir, ctx.agents.runDir(spec.id));
  if (agent) await ctx.agents.open(spec.id);
  const oci = buildOciSpec(spec, {
    rootfs: p.rootfs,
    cgroupsPath: cgroupsPath(ctx, spec.id),
    pidsLimit: ctx.pidsLimit,
    netnsPath: ctx.network.netnsPath(spec.id),
    criuConfig,
    agent: agent ?? undefined,
    volumes: await idmappedBinds(ctx, p, ctx.volumes.binds(spec.volumes ?? [])),
    uidBase: ctx.uidBase,
  });
  await mkdir(p.bundle, { recursive: true });
  await writeFile(join(p.bundle, 'config.json'), JSON.stringify(oci));
}

/**
 * A user-namespaced machine's volumes: each host mount attached again under the
 * machine's directory, idmapped to its range (so the volume's files keep the machine's own
 * ids on disk, whichever machine wrote them); others' binds are the host mounts themselves.
 */
async function idmappedBinds(ctx: RuncContext, p: LayerPaths, binds: VolumeBind[]): Promise<VolumeBind[]> {
  if (ctx.uidBase === null || binds.length === 0) return binds;
  const mounted = await mountPoints();
  const out: VolumeBind[] = [];
  for (const [i, b] of binds.entries()) {
    const target = join(idmappedVolumesDir(p), String(i));
    if (!mounted.has(target)) {
      // Passable by the machine's root: CRIU's restore opens it from inside the user namespace.
      await mkdir(target, { recursive: true, mode: 0o755 });
      await run(ctx.diskToolPath, ['idmap-bind', String(ctx.uidBase), b.source, target]);
    }
    out.push({ ...b, source: target });
  }
  return out;
}

/** `runc run --detach` the bundle's init; returns its host pid. */
export async function runInit(ctx: RuncContext, id: string, p: LayerPaths): Promise<number> {
  const pidFile = join(p.bundle, 'init.pid');
  await runcDetached(ctx, ['run', '--detach', '--bundle', p.bundle, '--pid-file', pidFile, id], join(p.bundle, 'runc.log'));
  return Number((await readFile(pidFile, 'utf8')).trim());
}

/** `runc restore --detach` from CRIU images; returns the restored init's host pid. */
export async function restoreInit(ctx: RuncContext, id: string, p: LayerPaths, images: string): Promise<number> {
  const pidFile = join(p.bundle, 'init.pid');
  const work = restoreWorkDir(ctx, id);
  await unmountRestoreLeftovers(ctx, id);
  await rm(work, { recursive: true, force: true });
  // A user-namespaced machine's restored init looks for its clock image itself, as the machine's root: it may search the directory.
  if (ctx.uidBase !== null) await chmod(images, 0o711);
  await runcDetached(
    ctx,
    [
      '--criu', ctx.criuPath, 'restore', '--detach', '--tcp-established', '--file-locks',
      '--image-path', images, '--work-path', work, '--bundle', p.bundle, '--pid-file', pidFile, id,
    ],
    join(p.bundle, 'runc.log'),
  );
  // The network namespace is Hangar's, joined by path: CRIU neither saved nor restored it.
  return Number((await readFile(pidFile, 'utf8')).trim());
}

/** CRIU's work directory of a machine's restores (its log, and its cgroup yard while it runs). */
function restoreWorkDir(ctx: RuncContext, id: string): string {
  return join(layerPaths(ctx.machinesDir, id).dir, 'restore-work');
}

/**
 * Unmount what a restore killed mid-way leaves behind: runc's `criu-root` (the root file
 * system it mounts for CRIU in the container's state directory) and CRIU's cgroup yard
 * (a tmpfs with every cgroup hierarchy, in its work directory). runc and CRIU remove them
 * when they finish, but a killed process removes nothing, and a mount left there makes the
 * next restore's and the machine's delete fail with EBUSY.
 */
export async function unmountRestoreLeftovers(ctx: RuncContext, id: string): Promise<void> {
  const under = [join(ctx.oci.stateDir, id), restoreWorkDir(ctx, id)].map((d) => `${d}/`);
  const left = [...(await mountPoints())].filter((m) => under.some((d) => m.startsWith(d)));
  // Deepest first: the yard's hierarchies are mounted on its tmpfs.
  for (const at of left.sort((a, b) => b.length - a.length)) {
    // Lazily: a half-restored process may still hold one; the kernel frees it with them.
    await run('umount', ['-l', at]).catch((err: unknown) => ctx.log.warn({ machineId: id, err: errorMessage(err), at }, 'could not unmount what a killed restore left'));
  }
}

/** The container's state, or null when runc has no such container. */
export async function inspectContainer(ctx: RuncContext, id: string): Promise<RuntimeMachineState | null> {
  try {
    const out = await runc(ctx, ['state', id]);
    const s = JSON.parse(out) as { status: RuntimeMachineState['status']; pid: number };
    return { status: s.status, pid: s.pid };
  } catch (err) {
    if (isMissingContainer(err)) return null;
    throw err;
  }
}

/**
 * The container's status after an operation failed, for deciding what to undo and for
 * `RuntimeError.stillRunning`. When runc cannot tell, null: the machine counts as not
 * running, the answer that never makes a caller trust processes that may be lost.
 */
export async function statusAfterFailure(ctx: RuncContext, id: string): Promise<RuntimeMachineState['status'] | null> {
  const state = await inspectContainer(ctx, id).catch((err: unknown) => {
    ctx.log.warn({ machineId: id, err: errorMessage(err) }, 'could not read the container state after a failure');
    return null;
  });
  return state?.status ?? null;
}

/** Every container of this instance, by machine id. */
export async function listContainers(ctx: RuncContext): Promise<Map<string, RuntimeMachineState>> {
  const out = await runc(ctx, ['list', '--format', 'json']).catch((err: unknown) => {
    // No state directory yet: no containers.
    if (isMissingContainer(err)) return 'null';
    throw err;
  });
  const rows = (JSON.parse(out) ?? []) as Array<{ id: string; status: RuntimeMachineState['status']; pid: number }>;
  return new Map(rows.map((r) => [r.id, { status: r.status, pid: r.pid }]));
}

/** Mount points of every cgroup hierarchy (v1 controllers and the v2 unified one). */
export async function cgroupRoots(): Promise<string[]> {
  const text = await readFile('/proc/self/mounts', 'utf8');
  return text
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[2] === 'cgroup' || f[2] === 'cgroup2')
    .map((f) => f[1]!);
}

/** Host pids in a machine's cgroup under one hierarchy; none when the cgroup does not exist. */
export async function cgroupPids(ctx: RuncContext, root: string, id: string): Promise<string[]> {
  const procs = await readFile(join(root, ctx.instancePrefix, id, 'cgroup.procs'), 'utf8').catch(() => '');
  return procs.split('\n').filter(Boolean);
}

/** SIGKILL every process in the machine's cgroup (whatever runc knows of it). */
async function killCgroup(ctx: RuncContext, id: string): Promise<void> {
  for (const root of await cgroupRoots()) {
    for (const pid of await cgroupPids(ctx, root, id)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // Already exited between the read and the kill: nothing to do.
      }
    }
  }
}

/** Kill the container's processes and delete it (and its cgroups); a missing container is fine. */
export async function removeContainer(ctx: RuncContext, id: string): Promise<void> {
  // Kill first: `runc delete --force` alone sleeps 100 ms before it looks again. This fails
  // for a container that is stopped or gone, which the kill and delete below both cover.
  await runc(ctx, ['kill', id, 'KILL']).catch(() => undefined);
  await killCgroup(ctx, id);
  await unmountRestoreLeftovers(ctx, id);
  try {
    await runc(ctx, ['delete', '--force', id]);
  } catch (err) {
    if (!isMissingContainer(err)) throw err;
  }
  // runc removes the cgroup itself; this covers a container that died half-created, so
  // ENOENT (runc did remove it) is the usual answer and fine; anything else is logged.
  for (const root of await cgroupRoots()) {
    await rmdir(join(root, ctx.instancePrefix, id)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') ctx.log.warn({ machineId: id, err: err.message }, 'could not remove the machine\'s cgroup');
    });
  }
}
