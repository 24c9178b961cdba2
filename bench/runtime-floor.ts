/**
 * The floor of a cold create on this host: the bare OCI runtime starting the same
 * machine (the base template's root filesystem, Hangar's own OCI spec: namespaces,
 * cgroup limits, seccomp, capabilities) with nothing of Hangar around it — no disk
 * image, no overlay, no network, no HTTP, no store. No create through Hangar can be
 * faster than this. crun, the faster runtime, is tried the same way where installed.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CONFIG } from '../src/domain/machine.js';
import { run } from '../src/runtime/runc/command.js';
import { buildOciSpec } from '../src/runtime/runc/oci-spec.js';
import { boundedLoop, boundedPool, type LoopBounds, type LoopOutcome } from './bounded-loop.js';
import { shortReason } from './podman.js';

/** What one runtime measured, or why it could not run the machine. */
export type FloorResult =
  | {
      runtime: string;
      available: true;
      version: string;
      runMs: number[];
      deleteMs: number[];
      loop: LoopOutcome;
      /** `burst` runs started at once: from the first spawn to the last exit. */
      burst: { count: number; wallMs: number };
    }
  | { runtime: string; available: false; reason: string };

/** Every cgroup and state directory of the floor runs carries this name. */
const NAME = 'hangar-bench-floor';

/**
 * Run a command until it exits. 'exit', not 'close': a detached container inherits the
 * stderr pipe and keeps it open, so the stream would never end.
 */
function quiet(file: string, args: string[]): Promise<{ code: number | null; ms: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    child.once('error', reject);
    child.once('exit', (code) => {
      const ms = performance.now() - started;
      child.stderr.destroy();
      resolve({ code, ms, stderr });
    });
  });
}

async function removeCgroups(): Promise<void> {
  for (const root of await readdir('/sys/fs/cgroup').catch(() => [] as string[])) {
    const dir = join('/sys/fs/cgroup', root, NAME);
    for (const child of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (child.isDirectory()) await rmdir(join(dir, child.name)).catch(() => undefined);
    }
    await rmdir(dir).catch(() => undefined);
  }
}

/** The runtime's version, or null when it is not installed. */
async function versionOf(runtime: string): Promise<string | null> {
  try {
    return (await run(runtime, ['--version'])).split('\n')[0]!.replace(/^\S+ version /, '').trim();
  } catch {
    return null;
  }
}

/** Bare containers of the base template under one runtime: bundles made, started, deleted, and all of it removed at the end. */
async function bareRuntime(runtime: string, rootfs: string) {
  const dir = await mkdtemp(join(tmpdir(), `${NAME}-`));
  const state = join('/run', `${NAME}-${runtime}`);
  let n = 0;
  const prepare = async (): Promise<string> => {
    const id = `floor${n++}`;
    const bundle = join(dir, id);
    await mkdir(bundle);
    const spec = buildOciSpec(
      { id, hostname: id, templateLayers: [rootfs], init: ['/sbin/init'], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, cwd: '/', config: DEFAULT_CONFIG, network: { ip: '0.0.0.0', outbound: { mode: 'allow' } } },
      { rootfs, cgroupsPath: `/${NAME}/${id}`, pidsLimit: 512, netnsPath: '' },
    ) as { root: { readonly: boolean }; linux: { namespaces: Array<{ type: string; path?: string }> } };
    // The template is shared: read-only here. A new, empty network namespace, as podman's --network none.
    spec.root.readonly = true;
    spec.linux.namespaces = spec.linux.namespaces.map((ns) => ({ type: ns.type }));
    await writeFile(join(bundle, 'config.json'), JSON.stringify(spec));
    return id;
  };
  const start = async (id: string): Promise<number> => {
    const started = await quiet(runtime, ['--root', state, 'run', '--detach', '--bundle', join(dir, id), id]);
    if (started.code !== 0) throw new Error(`${runtime} run failed: ${started.stderr.trim().split('\n').pop() ?? ''}`);
    return started.ms;
  };
  const remove = async (id: string): Promise<number> => {
    const deleted = await quiet(runtime, ['--root', state, 'delete', '--force', id]);
    if (deleted.code !== 0) throw new Error(`${runtime} delete failed: ${deleted.stderr.trim().split('\n').pop() ?? ''}`);
    return deleted.ms;
  };
  /** Whatever is left running, the state, the cgroups and the bundles. */
  const cleanup = async (): Promise<void> => {
    const left = (await run(runtime, ['--root', state, 'list', '-q']).catch(() => '')).split('\n').filter(Boolean);
    // Four at a time: a density pile-up leaves a thousand.
    await Promise.all(
      Array.from({ length: 4 }, async (_, lane) => {
        for (let i = lane; i < left.length; i += 4) await quiet(runtime, ['--root', state, 'delete', '--force', left[i]!]).catch(() => undefined);
      }),
    );
    await rm(state, { recursive: true, force: true });
    await removeCgroups();
    await rm(dir, { recursive: true, force: true });
  };
  return { prepare, start, remove, cleanup };
}

async function measureOne(runtime: string, rootfs: string, warmup: number, bounds: LoopBounds, burst: number): Promise<FloorResult> {
  const version = await versionOf(runtime);
  if (version === null) return { runtime, available: false, reason: `${runtime} is not installed` };
  const { prepare, start, remove, cleanup } = await bareRuntime(runtime, rootfs);
  const runMs: number[] = [];
  const deleteMs: number[] = [];
  const once = async (): Promise<{ run: number; del: number }> => {
    const id = await prepare();
    const run = await start(id);
    return { run, del: await remove(id) };
  };
  try {
    for (let i = 0; i < warmup; i++) await once();
    const loop = await boundedLoop(bounds, async () => {
      const t = await once();
      runMs.push(t.run);
      deleteMs.push(t.del);
    });
    const ids = await Promise.all(Array.from({ length: burst }, () => prepare()));
    const t0 = performance.now();
    await Promise.all(ids.map((id) => start(id)));
    const wallMs = performance.now() - t0;
    await Promise.all(ids.map((id) => remove(id)));
    return { runtime, available: true, version, runMs, deleteMs, loop, burst: { count: burst, wallMs } };
  } catch (err) {
    return { runtime, available: false, reason: shortReason(err) };
  } finally {
    await cleanup();
  }
}

/** What piling up bare containers measured, or why it could not. */
export type DensityFloorResult =
  | { runtime: string; available: true; count: number; concurrency: number; hostMountsEach: number; runMs: number[]; wallMs: number }
  | { runtime: string; available: false; reason: string; hostMountsEach: number };

/**
 * The floor of the density row: `count` bare `runtime run -d` of the base template kept
 * running, `concurrency` starts in flight, each timed in the order it started (the first
 * and the last are compared as Hangar's creates are); then all deleted. With
 * `hostMountsEach`, every container also leaves that many small tmpfs mounts on the host
 * before it starts, as a Hangar machine leaves its disk image, overlay and network
 * namespace mounted there: each new container's mount namespace starts as a copy of the
 * host's, so the host's mount table is part of what a start costs.
 */
export async function measureDensityFloor(
  runtime: string,
  rootfs: string,
  count: number,
  concurrency: number,
  signal: AbortSignal,
  hostMountsEach = 0,
): Promise<DensityFloorResult> {
  if ((await versionOf(runtime)) === null) return { runtime, available: false, reason: `${runtime} is not installed`, hostMountsEach };
  const { prepare, start, cleanup } = await bareRuntime(runtime, rootfs);
  const mountsDir = await mkdtemp(join(tmpdir(), `${NAME}-mounts-`));
  const mounted: string[] = [];
  const runMs: number[] = new Array<number>(count);
  try {
    const t0 = performance.now();
    const loop = await boundedPool({ count, budgetMs: 600_000, signal }, concurrency, async (i) => {
      for (let k = 0; k < hostMountsEach; k++) {
        const at = join(mountsDir, `${i}-${k}`);
        await mkdir(at);
        await run('mount', ['-t', 'tmpfs', '-o', 'size=64k', NAME, at]);
        mounted.push(at);
      }
      runMs[i] = await start(await prepare());
    });
    return { runtime, available: true, count: loop.iterations, concurrency, hostMountsEach, runMs: runMs.slice(0, loop.iterations), wallMs: performance.now() - t0 };
  } catch (err) {
    return { runtime, available: false, reason: shortReason(err), hostMountsEach };
  } finally {
    await cleanup();
    for (const at of mounted) await run('umount', [at]).catch(() => undefined);
    await rm(mountsDir, { recursive: true, force: true });
  }
}

/**
 * Time the bare `runc run -d` (and `crun run -d`, where installed) of the base template,
 * one at a time, then `burst` of them started at once.
 */
export async function measureRuntimeFloor(rootfs: string, warmup: number, bounds: LoopBounds, burst: number): Promise<FloorResult[]> {
  return [await measureOne('runc', rootfs, warmup, bounds, burst), await measureOne('crun', rootfs, warmup, bounds, burst)];
}
