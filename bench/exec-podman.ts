import { rmdir } from 'node:fs/promises';
import { run } from '../src/runtime/runc/command.js';
import { boundedLoop, type LoopBounds, type LoopOutcome } from './bounded-loop.js';
import { cleanupPodman, IMAGE, importRootfs, LABEL, PODMAN_RUN_FLAGS, podmanCgroups, shortReason, timed } from './podman.js';
import { summarize } from './stats.js';

/** What `podman exec <ctr> true` measured, or why it could not. */
export type PodmanExecResult =
  | { available: true; version: string; execMs: number[]; p50: number; p95: number; warmup: number; loop: LoopOutcome }
  | { available: false; reason: string };

/**
 * Time `podman exec <ctr> true` in one running container of the given root filesystem
 * (imported as the benchmark image, running /sbin/init): the peer of Hangar's
 * `POST /v1/machines/{id}/exec` with `{"cmd": ["true"]}`. Never throws for podman's own
 * failures; always removes its container and image.
 */
export async function measurePodmanExec(rootfs: string, warmup: number, bounds: LoopBounds): Promise<PodmanExecResult> {
  let version: string;
  try {
    version = (await run('podman', ['--version'])).trim().replace(/^podman version /, '');
  } catch {
    return { available: false, reason: 'podman is not installed; run scripts/bench-setup.sh' };
  }
  const cgroupsBefore = new Set(await podmanCgroups());
  try {
    await cleanupPodman();
    await importRootfs(rootfs);
    const id = (await run('podman', ['run', '-d', '--label', LABEL, ...PODMAN_RUN_FLAGS, IMAGE, '/sbin/init'])).trim();
    const state = (await run('podman', ['inspect', '--format', '{{.State.Status}}', id])).trim();
    if (state !== 'running') throw new Error(`podman container ${id.slice(0, 12)} is ${state}, not running`);
    const execOnce = (): Promise<{ value: string; ms: number }> => timed(() => run('podman', ['exec', id, 'true']));
    for (let i = 0; i < warmup; i++) await execOnce();
    const execMs: number[] = [];
    const loop = await boundedLoop(bounds, async () => {
      execMs.push((await execOnce()).ms);
    });
    const s = summarize(execMs);
    return { available: true, version, execMs, p50: s.p50, p95: s.p95, warmup, loop };
  } catch (err) {
    if (bounds.signal.aborted) throw err;
    return { available: false, reason: shortReason(err) };
  } finally {
    await cleanupPodman().catch(() => undefined);
    // Only the empty parents this run made (rmdir refuses a cgroup still in use).
    for (const dir of await podmanCgroups()) if (!cgroupsBefore.has(dir)) await rmdir(dir).catch(() => undefined);
  }
}
