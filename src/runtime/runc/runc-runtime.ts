import { readFile, readdir, rm, rmdir, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { MachineSpec, Runtime, RuntimeInfo, RuntimeMachineState } from '../runtime.js';
import { RuntimeError } from '../runtime.js';
import { CommandError, run, runDetached } from './command.js';
import { buildOciSpec } from './oci-spec.js';
import { ensureDirInside, layerPaths, mountWritableLayer, unmountWritableLayer } from './writable-layer.js';

/** Options of the runc runtime; all host paths are passed in, none read from the environment. */
export interface RuncRuntimeOptions {
  /** The runc binary. @default 'runc' */
  runcPath: string;
  /** Directory holding one sub-directory per machine. */
  machinesDir: string;
  /** Prefix on every host resource: runc state dir, cgroup parent, mount sources. */
  instancePrefix: string;
  /** runc's state directory for this instance. @default `/run/${instancePrefix}` */
  stateDir: string;
  /** Tasks allowed per machine: stops fork bombs. */
  pidsLimit: number;
}

function isMissingContainer(err: unknown): boolean {
  return err instanceof CommandError && /does not exist|not exist|no such file/i.test(err.stderr);
}

/** Machines as runc containers on overlay root filesystems over loop-mounted ext4 images. */
export class RuncRuntime implements Runtime {
  constructor(private readonly opts: RuncRuntimeOptions) {}

  private runc(args: string[], timeoutMs?: number): Promise<string> {
    return run(this.opts.runcPath, ['--root', this.opts.stateDir, ...args], timeoutMs);
  }

  /** cgroup path (relative to each controller) of a machine: contains its id. */
  cgroupsPath(id: string): string {
    return `/${this.opts.instancePrefix}/${id}`;
  }

  async info(): Promise<RuntimeInfo> {
    const out = await run(this.opts.runcPath, ['--version']);
    const version = /runc version (\S+)/.exec(out)?.[1] ?? 'unknown';
    return { name: 'runc', version, instancePrefix: this.opts.instancePrefix };
  }

  async start(spec: MachineSpec): Promise<{ pid: number }> {
    const p = layerPaths(this.opts.machinesDir, spec.id);
    let step = 'prepare root filesystem';
    try {
      await mkdir(this.opts.stateDir, { recursive: true, mode: 0o700 });
      await mountWritableLayer(p, spec.templateRootfs, spec.config.disk_mb, `${this.opts.instancePrefix}-${spec.id}`);
      step = 'create working directory';
      await ensureDirInside(p.rootfs, spec.cwd);
      step = 'write OCI bundle';
      const oci = buildOciSpec(spec, { rootfs: p.rootfs, cgroupsPath: this.cgroupsPath(spec.id), pidsLimit: this.opts.pidsLimit });
      await writeFile(join(p.bundle, 'config.json'), JSON.stringify(oci));
      step = 'start container';
      const pidFile = join(p.bundle, 'init.pid');
      const log = join(p.bundle, 'runc.log');
      await runDetached(
        this.opts.runcPath,
        ['--root', this.opts.stateDir, '--log', log, '--log-format', 'json', 'run', '--detach', '--bundle', p.bundle, '--pid-file', pidFile, spec.id],
        log,
      );
      const pid = Number((await readFile(pidFile, 'utf8')).trim());
      return { pid };
    } catch (err) {
      await this.destroy(spec.id).catch(() => undefined);
      const detail = err instanceof Error ? err.message : String(err);
      throw new RuntimeError(`could not ${step}: ${detail}`, spec.id, step);
    }
  }

  async inspect(id: string): Promise<RuntimeMachineState | null> {
    try {
      const out = await this.runc(['state', id]);
      const s = JSON.parse(out) as { status: RuntimeMachineState['status']; pid: number };
      return { status: s.status, pid: s.pid };
    } catch (err) {
      if (isMissingContainer(err)) return null;
      throw err;
    }
  }

  async list(): Promise<Map<string, RuntimeMachineState>> {
    const out = await this.runc(['list', '--format', 'json']).catch((err) => {
      if (isMissingContainer(err)) return 'null';
      throw err;
    });
    const rows = (JSON.parse(out) ?? []) as Array<{ id: string; status: RuntimeMachineState['status']; pid: number }>;
    return new Map(rows.map((r) => [r.id, { status: r.status, pid: r.pid }]));
  }

  private async removeContainer(id: string): Promise<void> {
    try {
      await this.runc(['delete', '--force', id]);
    } catch (err) {
      if (!isMissingContainer(err)) throw err;
    }
    // runc removes the cgroup itself; this covers a container that died half-created.
    for (const root of await cgroupRoots()) {
      await rmdir(join(root, this.opts.instancePrefix, id)).catch(() => undefined);
    }
  }

  async stop(id: string): Promise<void> {
    const p = layerPaths(this.opts.machinesDir, id);
    await this.removeContainer(id);
    await unmountWritableLayer(p);
    await rm(p.rootfs, { recursive: true, force: true });
    await rm(p.layer, { recursive: true, force: true });
  }

  async destroy(id: string): Promise<void> {
    const p = layerPaths(this.opts.machinesDir, id);
    await this.removeContainer(id);
    await unmountWritableLayer(p);
    await rm(p.dir, { recursive: true, force: true });
  }

  async machinesOnDisk(): Promise<string[]> {
    return readdir(this.opts.machinesDir).catch(() => []);
  }

  async teardown(): Promise<void> {
    for (const root of await cgroupRoots()) {
      await rmdir(join(root, this.opts.instancePrefix)).catch(() => undefined);
    }
    const left = await this.list().catch(() => new Map());
    if (left.size === 0) await rm(this.opts.stateDir, { recursive: true, force: true });
  }
}

/** Mount points of every cgroup hierarchy (v1 controllers and the v2 unified one). */
async function cgroupRoots(): Promise<string[]> {
  const text = await readFile('/proc/self/mounts', 'utf8');
  return text
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[2] === 'cgroup' || f[2] === 'cgroup2')
    .map((f) => f[1]!);
}
