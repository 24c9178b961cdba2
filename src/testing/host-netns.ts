/**
 * Network namespaces for the hosts of a fleet test, so each host has a network of its own
 * as on separate machines: its own bridge, machine links, iptables rules and ip_forward.
 * The namespaces hang off one bridge in this (the test's) namespace, on a /24 of 198.18.0.0/15
 * (the benchmarking range) with no default route: a host reaches this namespace and the
 * other hosts, nothing else. A host runs in its namespace through `nsenter --net` only, so
 * it shares the test's mounts (its machines' mounts stay visible to the clean-up checks).
 */
import { randomInt } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { parseCidr, type Cidr } from '../domain/network.js';
import { run, runWithInput } from '../runtime/runc/command.js';
import { linkNames } from '../runtime/runc/network.js';
import { subnetTaken } from './harness.js';

export interface HostNamespaces {
  /** This namespace's address on the bridge: a server here that hosts must reach listens on it. */
  readonly gateway: string;
  /** The host's address in its namespace. */
  address(name: string): string;
  /** The command prefix that runs a program in the host's namespace. */
  enter(name: string): string[];
  /** Remove the namespaces (and with them everything a host left in its own), the links and the bridge. */
  close(): Promise<void>;
  /** What of this is still present after `close` (empty when clean). */
  leftovers(): Promise<string[]>;
}

/** One namespace per name, each with `eth0` on the bridge. */
export async function makeHostNamespaces(names: readonly string[]): Promise<HostNamespaces> {
  const subnet = (third: number): Cidr => (parseCidr(`198.18.${third}.0/24`) as { cidr: Cidr }).cidr;
  let third = randomInt(0, 256);
  for (let i = 0; i < 16 && (await subnetTaken(subnet(third))); i++) third = randomInt(0, 256);
  const tag = randomInt(0, 36 ** 5).toString(36).padStart(5, '0');
  const bridge = `hgth${tag}`;
  const nsName = (name: string): string => `hgtest-host-${tag}-${name}`;
  const addressOf = new Map(names.map((name, i) => [name, `198.18.${third}.${i + 2}`]));
  const gateway = `198.18.${third}.1`;
  const close = async (): Promise<void> => {
    // A namespace goes once nothing holds it, its links with it: the pairs are removed here first, at once.
    for (const [i, name] of names.entries()) {
      if ((await linkNames()).has(`${bridge}${i}`)) await run('ip', ['link', 'del', `${bridge}${i}`]).catch(() => undefined);
      await run('ip', ['netns', 'del', nsName(name)]).catch(() => undefined);
    }
    await run('ip', ['link', 'del', bridge]).catch(() => undefined);
  };
  try {
    await runWithInput('ip', ['-batch', '-'], [
      `link add ${bridge} type bridge`,
      `addr add ${gateway}/24 dev ${bridge}`,
      `link set ${bridge} up`,
      ...names.flatMap((name, i) => [
        `netns add ${nsName(name)}`,
        `link add ${bridge}${i} type veth peer name eth0 netns ${nsName(name)}`,
        `link set ${bridge}${i} master ${bridge} up`,
      ]),
    ].join('\n') + '\n');
    for (const name of names) {
      await runWithInput('ip', ['-n', nsName(name), '-batch', '-'], [`addr add ${addressOf.get(name)!}/24 dev eth0`, 'link set eth0 up', 'link set lo up'].join('\n') + '\n');
    }
  } catch (err) {
    await close();
    throw err;
  }
  return {
    gateway,
    address: (name) => addressOf.get(name)!,
    enter: (name) => ['nsenter', `--net=/run/netns/${nsName(name)}`, '--'],
    close,
    leftovers: async () => {
      const out = [...(await linkNames())].filter((l) => l.startsWith(bridge)).map((l) => `link ${l}`);
      for (const name of names) if (await stat(`/run/netns/${nsName(name)}`).catch(() => null)) out.push(`netns ${nsName(name)}`);
      return out;
    },
  };
}
