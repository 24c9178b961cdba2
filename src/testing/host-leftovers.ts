/**
 * What an instance of Hangar's runtime left on the host: the check behind the harness's
 * `dispose()` and the runtime conformance test. It imports nothing above the runtime, so
 * a runtime's own tests use it without starting a server.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../runtime/runc/command.js';
import { forwardMarker, linkNames } from '../runtime/runc/network.js';

/** Host resources of one instance still present: mounts, runc and runsc state, cgroups. */
export async function leftovers(dataDir: string, prefix: string): Promise<string[]> {
  const out: string[] = [];
  const mounts = await readFile('/proc/self/mounts', 'utf8');
  for (const line of mounts.split('\n')) {
    if (line.includes(dataDir) || line.includes(prefix)) out.push(`mount ${line.split(' ')[1]}`);
  }
  if (await stat(`/run/${prefix}`).catch(() => null)) out.push(`runc state dir /run/${prefix}`);
  // The gvisor tier's runsc state (a directory per instance, beside runc's).
  if (await stat(`/run/${prefix}-gvisor`).catch(() => null)) out.push(`runsc state dir /run/${prefix}-gvisor`);
  for (const ctl of await readdir('/sys/fs/cgroup').catch(() => [] as string[])) {
    if (await stat(join('/sys/fs/cgroup', ctl, prefix)).catch(() => null)) out.push(`cgroup ${ctl}/${prefix}`);
  }
  const loops = await run('losetup', ['-a']).catch(() => '');
  for (const line of loops.split('\n')) if (line.includes(dataDir)) out.push(`loop ${line}`);
  out.push(...(await networkLeftovers(prefix)));
  return out;
}

/** Network pieces of one instance still present: bridge, veths, namespaces, iptables chains and rules. */
export async function networkLeftovers(prefix: string): Promise<string[]> {
  const hex = prefix.replace(/^hangar-/, '');
  const out: string[] = [];
  const links = await linkNames();
  for (const link of links) {
    if (link.startsWith(`hg${hex}`) || link.startsWith(`h${hex}`)) out.push(`link ${link}`);
  }
  for (const ns of await readdir('/run/netns').catch(() => [] as string[])) {
    if (ns.startsWith(`${prefix}-`)) out.push(`netns ${ns}`);
  }
  for (const table of ['filter', 'nat']) {
    const rules = await run('iptables-save', ['-t', table]).catch(() => '');
    for (const line of rules.split('\n')) if (line.includes(`HANGAR-${hex}`)) out.push(`iptables ${table}: ${line}`);
  }
  const bridges = [...links].filter((l) => /^hg[0-9a-f]{8}$/.test(l));
  const marker = await forwardMarker();
  if (bridges.length === 0 && (await stat(marker).catch(() => null))) out.push(`ip_forward marker ${marker} (ip_forward not restored)`);
  return out;
}
