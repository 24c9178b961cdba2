import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CommandError, run } from '../src/runtime/runc/command.js';
import { boundedLoop, type LoopBounds, type LoopOutcome } from './bounded-loop.js';

/** The image the benchmark imports from the base template's rootfs. */
export const IMAGE = 'hangar-bench-base';
/** Every container the benchmark starts carries this label, so cleanup finds them all. */
export const LABEL = 'hangar-bench=1';
/**
 * Same work as a Hangar machine where podman allows it: an empty network namespace
 * (Hangar sets up no network yet) and the base template's default limits.
 */
export const PODMAN_RUN_FLAGS = ['--network', 'none', '--memory', '512m', '--cpus', '1', '--pids-limit', '512'] as const;

/** What podman measured, or why it could not. */
export type PodmanResult =
  | { available: true; version: string; runMs: number[]; rmMs: number[]; warmup: number; loop: LoopOutcome }
  | { available: false; reason: string };

/** Run `fn` and time it. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - started };
}

/** Why podman failed, short enough for a table cell: the command and the end of what it printed. */
export function shortReason(err: unknown): string {
  let text: string;
  if (err instanceof CommandError) {
    const lines = err.stderr.split('\n').map((l) => l.trim().replace(/^Error: /, '')).filter(Boolean);
    text = `${err.command.split(' ').slice(0, 2).join(' ')} exited ${err.exitCode ?? 'on a signal'}: ${lines[lines.length - 1] ?? 'no message'}`;
  } else {
    text = err instanceof Error ? err.message : String(err);
  }
  text = text.replace(/\s+/g, ' ').replace(/\|/g, '/').trim();
  return text.length <= 220 ? text : `${text.slice(0, 90)} … ${text.slice(-125)}`;
}

/** Exit code of a child process (null when a signal or the timeout ended it). */
function exitCode(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
}

/** `tar -C rootfs -c . | podman import - IMAGE`, without a shell. */
export async function importRootfs(rootfs: string, timeoutMs = 120_000): Promise<void> {
  const tar = spawn('tar', ['-C', rootfs, '-c', '.'], { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
  const imp = spawn('podman', ['import', '-q', '-', IMAGE], { stdio: ['pipe', 'ignore', 'pipe'], timeout: timeoutMs });
  let stderr = '';
  tar.stderr.on('data', (c: Buffer) => (stderr += c));
  imp.stderr.on('data', (c: Buffer) => (stderr += c));
  // If podman dies first, tar's writes fail with EPIPE; the exit codes below report it.
  imp.stdin.on('error', () => undefined);
  tar.stdout.pipe(imp.stdin);
  const [tarCode, importCode] = await Promise.all([exitCode(tar), exitCode(imp)]);
  if (tarCode !== 0 || importCode !== 0) {
    throw new Error(`podman import failed (tar exit ${tarCode}, podman exit ${importCode}): ${stderr.trim()}`);
  }
}

async function runOnce(): Promise<{ runMs: number; rmMs: number }> {
  const started = await timed(() => run('podman', ['run', '-d', '--label', LABEL, ...PODMAN_RUN_FLAGS, IMAGE, '/sbin/init']));
  const id = started.value.trim();
  // Untimed: a container whose init died at once must not count as a start.
  const state = (await run('podman', ['inspect', '--format', '{{.State.Status}}', id])).trim();
  if (state !== 'running') throw new Error(`podman container ${id.slice(0, 12)} is ${state}, not running`);
  // -t 0: kill at once, like `runc delete --force`; busybox init ignores SIGTERM, so the default waits 10 s.
  const removed = await timed(() => run('podman', ['rm', '-f', '-t', '0', id]));
  return { runMs: started.ms, rmMs: removed.ms };
}

/** podman's cgroupfs parents in every hierarchy, children first: made by its first container, never removed by it. */
export async function podmanCgroups(): Promise<string[]> {
  const out: string[] = [];
  for (const root of await readdir('/sys/fs/cgroup').catch(() => [] as string[])) {
    for (const sub of ['libpod_parent/conmon', 'libpod_parent']) {
      const dir = join('/sys/fs/cgroup', root, sub);
      if (await stat(dir).catch(() => null)) out.push(dir);
    }
  }
  return out;
}

/** Remove the benchmark's podman containers and image (also those of an interrupted earlier run). */
export async function cleanupPodman(): Promise<void> {
  const ids = (await run('podman', ['ps', '-aq', '--filter', `label=${LABEL}`]).catch(() => '')).split('\n').filter(Boolean);
  if (ids.length) await run('podman', ['rm', '-f', '-t', '0', ...ids]);
  await run('podman', ['rmi', '-f', IMAGE]).catch(() => undefined);
}

/** What the benchmark left in podman: containers with its label, its image. */
export async function podmanLeftovers(): Promise<string[]> {
  if (!(await run('podman', ['--version']).catch(() => null))) return [];
  const out: string[] = [];
  const ids = (await run('podman', ['ps', '-aq', '--filter', `label=${LABEL}`])).split('\n').filter(Boolean);
  if (ids.length) out.push(`podman containers ${ids.join(' ')}`);
  if (await run('podman', ['image', 'exists', IMAGE]).then(() => true, () => false)) out.push(`podman image ${IMAGE}`);
  return out;
}

/**
 * Time `podman run -d` of the given root filesystem (imported as an image) running
 * /sbin/init, then `podman rm -f`; never throws for podman's own failures.
 */
export async function measurePodman(rootfs: string, warmup: number, bounds: LoopBounds): Promise<PodmanResult> {
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
    for (let i = 0; i < warmup; i++) await runOnce();
    const runMs: number[] = [];
    const rmMs: number[] = [];
    const loop = await boundedLoop(bounds, async () => {
      const t = await runOnce();
      runMs.push(t.runMs);
      rmMs.push(t.rmMs);
    });
    return { available: true, version, runMs, rmMs, warmup, loop };
  } catch (err) {
    if (bounds.signal.aborted) throw err;
    return { available: false, reason: shortReason(err) };
  } finally {
    await cleanupPodman().catch(() => undefined);
    // Only the empty parents this run made (rmdir refuses a cgroup still in use).
    for (const dir of await podmanCgroups()) if (!cgroupsBefore.has(dir)) await rmdir(dir).catch(() => undefined);
  }
}
