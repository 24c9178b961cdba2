/** Host memory and the host resources one Hangar instance holds, read from /proc, /sys and runc. */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../src/runtime/runc/command.js';
import type { Settings } from '../src/settings.js';

/** What one instance holds on the host (its data dir and instance prefix name them). */
export interface InstanceResources {
  /** Lines of /proc/self/mounts naming the data dir or the prefix. */
  mounts: number;
  /** Loop devices backed by a file in the data dir. */
  loops: number;
  /** Containers in the instance's runc state dir. */
  containers: number;
  /** Sub-cgroups below `<controller>/<prefix>`, per controller that has any. */
  cgroups: Record<string, number>;
}

/** MemAvailable of /proc/meminfo, in KiB. */
export async function memAvailableKiB(): Promise<number> {
  const text = await readFile('/proc/meminfo', 'utf8');
  const kib = /^MemAvailable:\s+(\d+) kB$/m.exec(text)?.[1];
  if (kib === undefined) throw new Error('/proc/meminfo has no MemAvailable line');
  return Number(kib);
}

/** Sum of memory.usage_in_bytes (cgroup v1) of the machines' memory cgroups; `read` counts the ones found. */
export async function cgroupMemorySum(prefix: string, ids: readonly string[]): Promise<{ bytes: number; read: number }> {
  let bytes = 0;
  let read = 0;
  for (const id of ids) {
    const text = await readFile(`/sys/fs/cgroup/memory/${prefix}/${id}/memory.usage_in_bytes`, 'utf8').catch(() => null);
    if (text === null) continue;
    bytes += Number(text.trim());
    read++;
  }
  return { bytes, read };
}

/** Count the mounts, loop devices, runc containers and cgroups of one instance. */
export async function instanceResources(s: Pick<Settings, 'dataDir' | 'instancePrefix' | 'runcStateDir' | 'runcPath'>): Promise<InstanceResources> {
  const { dataDir, instancePrefix: prefix } = s;
  const mounts = (await readFile('/proc/self/mounts', 'utf8')).split('\n').filter((l) => l.includes(dataDir) || l.includes(prefix)).length;
  const loops = (await run('losetup', ['-a']).catch(() => '')).split('\n').filter((l) => l.includes(dataDir)).length;
  const containers = (await run(s.runcPath, ['--root', s.runcStateDir, 'list', '-q']).catch(() => '')).split('\n').filter(Boolean).length;
  const cgroups: Record<string, number> = {};
  for (const ctl of await readdir('/sys/fs/cgroup', { withFileTypes: true }).catch(() => [])) {
    if (!ctl.isDirectory()) continue; // cpu -> cpu,cpuacct and the like are symlinks
    const subs = await readdir(join('/sys/fs/cgroup', ctl.name, prefix), { withFileTypes: true }).catch(() => []);
    const n = subs.filter((d) => d.isDirectory()).length;
    if (n) cgroups[ctl.name] = n;
  }
  return { mounts, loops, containers, cgroups };
}

/** "2,000 mounts, 1,000 loop devices, …" */
export function describeResources(r: InstanceResources): string {
  const n = (x: number): string => x.toLocaleString('en-US');
  const cg = Object.entries(r.cgroups).map(([ctl, k]) => `${ctl} ${n(k)}`).join(', ');
  return `${n(r.mounts)} mounts, ${n(r.loops)} loop devices, ${n(r.containers)} runc containers, machine cgroups: ${cg || 'none'}`;
}
