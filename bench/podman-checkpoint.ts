import { mkdtemp, readdir, readFile, rm, rmdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../src/runtime/runc/command.js';
import { boundedLoop, type LoopBounds, type LoopOutcome } from './bounded-loop.js';
import { checkHolder, holderState, memoryUsageBytes, startHolder, type Exec, type HolderState } from './held-process.js';
import { cleanupPodman, IMAGE, importRootfs, LABEL, PODMAN_RUN_FLAGS, podmanCgroups, shortReason, timed } from './podman.js';

/** Exported checkpoints are written under a directory with this prefix in the system tmpdir. */
const EXPORT_PREFIX = 'hangar-bench-ckpt-';
const SLOW_MS = 180_000;

/** How much of podman's checkpoint/restore to measure. */
export interface CheckpointPlan {
  warmup: number;
  count: number;
  budgetMs: number;
  heldMiB: number;
}

/** Checkpoint + restore cycles of one container, or why they could not run. */
export type CheckpointCase =
  | {
      available: true;
      heldMiB: number;
      checkpointMs: number[];
      restoreMs: number[];
      /** `du -sk` of the container's checkpoint directory (CRIU images) while checkpointed. */
      checkpointDirKiB: number[];
      /** Size of `podman container checkpoint --export --compress none` after the cycles (images + rootfs changes). */
      exportBytes: number;
      holder: HolderState;
      holderAfter: HolderState;
      cgroupBytesBefore: number;
      cgroupBytesAfter: number;
      warmup: number;
      loop: LoopOutcome;
    }
  | { available: false; reason: string };

/** podman's checkpoint/restore of an idle container and of one holding memory. */
export interface PodmanCheckpointResult {
  version: string | null;
  idle: CheckpointCase;
  held: CheckpointCase;
}

const podman = (args: string[], timeoutMs?: number): Promise<string> => run('podman', args, timeoutMs);

/** The container's memory cgroup, from its init's /proc/<pid>/cgroup. */
async function memoryCgroup(ctr: string): Promise<string> {
  const pid = (await podman(['inspect', '--format', '{{.State.Pid}}', ctr])).trim();
  const line = (await readFile(`/proc/${pid}/cgroup`, 'utf8')).split('\n').find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l));
  if (!line) throw new Error(`no memory cgroup for podman container ${ctr.slice(0, 12)}`);
  return line.slice(line.lastIndexOf(':') + 1);
}

/** One checkpoint and restore; the holder must be the same process afterwards. */
async function cycle(ctr: string, exec: Exec, holder: HolderState, mib: number, when: string) {
  const checkpoint = await timed(() => podman(['container', 'checkpoint', ctr], SLOW_MS));
  const dir = (await podman(['inspect', '--format', '{{.State.CheckpointPath}}', ctr])).trim();
  const du = dir ? Number((await run('du', ['-sk', dir])).split('\t')[0]) : Number.NaN;
  const restore = await timed(() => podman(['container', 'restore', ctr], SLOW_MS));
  checkHolder(holder, await holderState(exec, holder.pid), mib, when);
  return { checkpointMs: checkpoint.ms, restoreMs: restore.ms, du };
}

/** A container of the imported image with a holder of `mib` MiB: checkpoint/restore cycles, then one uncompressed export. */
async function measureCase(mib: number, plan: CheckpointPlan, exportDir: string, signal: AbortSignal): Promise<CheckpointCase> {
  const ctr = (await podman(['run', '-d', '--label', LABEL, ...PODMAN_RUN_FLAGS, IMAGE, '/sbin/init'])).trim();
  try {
    const exec: Exec = (argv) => podman(['exec', ctr, ...argv], 60_000);
    const holder = await startHolder(exec, mib);
    const cgroupBytesBefore = await memoryUsageBytes(await memoryCgroup(ctr));
    for (let i = 0; i < plan.warmup; i++) await cycle(ctr, exec, holder, mib, `after warm-up restore ${i + 1}`);
    const checkpointMs: number[] = [];
    const restoreMs: number[] = [];
    const checkpointDirKiB: number[] = [];
    const bounds: LoopBounds = { count: plan.count, budgetMs: plan.budgetMs, signal };
    const loop = await boundedLoop(bounds, async (i) => {
      const c = await cycle(ctr, exec, holder, mib, `after restore ${i + 1}`);
      checkpointMs.push(c.checkpointMs);
      restoreMs.push(c.restoreMs);
      checkpointDirKiB.push(c.du);
    });
    const holderAfter = (await holderState(exec, holder.pid))!;
    const cgroupBytesAfter = await memoryUsageBytes(await memoryCgroup(ctr));
    const file = join(exportDir, `held-${mib}.tar`);
    await podman(['container', 'checkpoint', '--export', file, '--compress', 'none', ctr], SLOW_MS);
    const exportBytes = (await stat(file)).size;
    await rm(file, { force: true });
    return {
      available: true, heldMiB: mib, checkpointMs, restoreMs, checkpointDirKiB, exportBytes,
      holder, holderAfter, cgroupBytesBefore, cgroupBytesAfter, warmup: plan.warmup, loop,
    };
  } catch (err) {
    if (signal.aborted) throw err;
    return { available: false, reason: shortReason(err) };
  } finally {
    await podman(['rm', '-f', '-t', '0', ctr]).catch(() => undefined);
  }
}

/** Checkpoint export directories left in the system tmpdir. */
export async function checkpointLeftovers(): Promise<string[]> {
  const names = await readdir(tmpdir()).catch(() => [] as string[]);
  return names.filter((n) => n.startsWith(EXPORT_PREFIX)).map((n) => `checkpoint export dir ${join(tmpdir(), n)}`);
}

/**
 * `podman container checkpoint` / `restore` of the given root filesystem (imported as
 * an image) running /sbin/init, idle and with a holder of `plan.heldMiB` MiB; never
 * throws for podman's own failures, which become the case's reason.
 */
export async function measurePodmanCheckpoint(rootfs: string, plan: CheckpointPlan, signal: AbortSignal): Promise<PodmanCheckpointResult> {
  let version: string;
  try {
    version = (await podman(['--version'])).trim().replace(/^podman version /, '');
  } catch {
    const none = { available: false as const, reason: 'podman is not installed; run scripts/bench-setup.sh' };
    return { version: null, idle: none, held: none };
  }
  const cgroupsBefore = new Set(await podmanCgroups());
  const exportDir = await mkdtemp(join(tmpdir(), EXPORT_PREFIX));
  try {
    await cleanupPodman();
    await importRootfs(rootfs);
    const idle = await measureCase(0, plan, exportDir, signal);
    const held = await measureCase(plan.heldMiB, plan, exportDir, signal);
    return { version, idle, held };
  } catch (err) {
    if (signal.aborted) throw err;
    const failed = { available: false as const, reason: shortReason(err) };
    return { version, idle: failed, held: failed };
  } finally {
    await cleanupPodman().catch(() => undefined);
    await rm(exportDir, { recursive: true, force: true });
    for (const dir of await podmanCgroups()) if (!cgroupsBefore.has(dir)) await rmdir(dir).catch(() => undefined);
  }
}
