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
import { boundedLoop, type LoopBounds, type LoopOutcome } from './bounded-loop.js';
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

async function measureOne(runtime: string, rootfs: string, warmup: number, bounds: LoopBounds, burst: number): Promise<FloorResult> {
  let version: string;
  try {
    version = (await run(runtime, ['--version'])).split('\n')[0]!.replace(/^\S+ version /, '').trim();
  } catch {
    return { runtime, available: false, reason: `${runtime} is not installed` };
  }
  const dir = await mkdtemp(join(tmpdir(), `${NAME}-`));
  const state = join('/run', `${NAME}-${runtime}`);
  const runMs: number[] = [];
  const deleteMs: number[] = [];
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
    // Whatever a failure left running.
    for (const id of (await run(runtime, ['--root', state, 'list', '-q']).catch(() => '')).split('\n').filter(Boolean)) {
      await quiet(runtime, ['--root', state, 'delete', '--force', id]).catch(() => undefined);
    }
    await rm(state, { recursive: true, force: true });
    await removeCgroups();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Time the bare `runc run -d` (and `crun run -d`, where installed) of the base template,
 * one at a time, then `burst` of them started at once.
 */
export async function measureRuntimeFloor(rootfs: string, warmup: number, bounds: LoopBounds, burst: number): Promise<FloorResult[]> {
  return [await measureOne('runc', rootfs, warmup, bounds, burst), await measureOne('crun', rootfs, warmup, bounds, burst)];
}
