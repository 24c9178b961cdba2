import { readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  cidrsOverlap,
  formatCidr,
  formatIpv4,
  gatewayOf,
  isDefaultOutbound,
  parseCidr,
  type Cidr,
  type OutboundPolicy,
} from '../../domain/network.js';
import type { MachineNetworkSpec } from '../runtime.js';
import { run, runWithInput } from './command.js';

/** Options of the host network; names derive from the instance prefix. */
export interface HostNetworkOptions {
  /** `hangar-<8 hex>`: every link, namespace and chain carries its hex part. */
  instancePrefix: string;
  /** The machines' subnet; the host takes its first address on the bridge. */
  subnet: Cidr;
  /** Directory holding one sub-directory per machine (a small note of its network is kept there). */
  machinesDir: string;
}

/** Kept beside a machine so its rules can be removed without asking the service. */
interface NetworkNote {
  ip: string;
  outbound: OutboundPolicy;
  /** The private network it joined; absent in notes written before networks existed. */
  networkId?: string | null;
}

/** Link-local (cloud metadata services live there): never reachable from a machine. */
const LINK_LOCAL = '169.254.0.0/16';
/**
 * Shared by every Hangar server of one network namespace: ip_forward's value there before the
 * first one turned it on. ip_forward is a setting of each namespace, so the marker's name
 * carries the namespace's inode (`/run` is seen from every namespace).
 */
export const forwardMarker = async (): Promise<string> => `/run/hangar-ip-forward.${(await stat('/proc/self/ns/net')).ino}`;
const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';

const exists = (path: string): Promise<boolean> => stat(path).then(() => true, () => false);

/**
 * The links of this process's network namespace. Read from `/proc/self/net/dev`, not
 * `/sys/class/net`: sysfs shows the namespace it was mounted in, which is not this
 * process's when it was started with `nsenter --net` (a host in a namespace of its own).
 */
export async function linkNames(): Promise<Set<string>> {
  const text = await readFile('/proc/self/net/dev', 'utf8').catch(() => '');
  const names = new Set<string>();
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon > 0) names.add(line.slice(0, colon).trim());
  }
  return names;
}

const linkExists = async (name: string): Promise<boolean> => (await linkNames()).has(name);

/** How a machine's namespace is made. */
export interface AttachOptions {
  /** A user-namespaced machine: ports below 1024 and ping open to every id in its namespace. */
  openToAllIds?: boolean;
}

/**
 * Machine networking on the host: one bridge per server with the machines' subnet,
 * one network namespace per machine (made here and given to runc by path, so it
 * outlives a pause: CRIU leaves it alone and a restore joins it again), a veth pair
 * per machine with `eth0` inside, and iptables chains named after the instance.
 *
 * Isolation: bridge ports are `isolated` (machines never see each other at layer 2),
 * nothing is forwarded into the bridge except replies, and the host drops everything
 * from the bridge but replies (so the server reaches machines, never the other way).
 *
 * Private networks: the bridge answers a machine's ARP for another address of the subnet
 * with its own MAC (`proxy_arp_pvlan`, the RFC 3069 arrangement for isolated ports), so
 * traffic between machines goes through the host's forward path, where the `-NET` chain
 * accepts it only from a member of a network to a member of the same one (one chain per
 * network: a jump per member by source, an accept per member by destination). Anything
 * else between machines falls to the drop as before.
 */
export class HostNetwork {
  readonly hex: string;
  readonly bridge: string;
  readonly gateway: string;
  private readonly chain: { fwd: string; input: string; pol: string; nat: string; net: string; out: string };
  /** Network membership changes one at a time: whether a network's chain exists decides what to write. */
  private membership: Promise<unknown> = Promise.resolve();
  private ready: Promise<void> | null = null;

  constructor(private readonly o: HostNetworkOptions) {
    this.hex = o.instancePrefix.replace(/^hangar-/, '');
    this.bridge = `hg${this.hex}`;
    this.gateway = formatIpv4(gatewayOf(o.subnet));
    const base = `HANGAR-${this.hex}`;
    this.chain = { fwd: `${base}-FWD`, input: `${base}-IN`, pol: `${base}-POL`, nat: `${base}-NAT`, net: `${base}-NET`, out: `${base}-OUT` };
  }

  /** Network namespace name of a machine (`/run/netns/<name>`). */
  netnsName(id: string): string {
    return `${this.o.instancePrefix}-${id}`;
  }

  netnsPath(id: string): string {
    return `/run/netns/${this.netnsName(id)}`;
  }

  /** Host end of a machine's veth pair: 15 characters, the kernel's limit. */
  vethName(id: string): string {
    return `h${this.hex}${id.slice(-6)}`;
  }

  /** The machine's own outbound chain (only for a policy other than the default). */
  machineChain(id: string): string {
    return `HANGAR-${this.hex}-${id.slice(-10)}`;
  }

  /** A private network's chain: accepts traffic to its members. The `N` keeps it apart from machine chains (ids are lowercase). */
  networkChain(networkId: string): string {
    return `HANGAR-${this.hex}-N${networkId.slice(-10)}`;
  }

  private notePath(id: string): string {
    return join(this.o.machinesDir, id, 'network.json');
  }

  /** Bridge, forwarding and base chains, made once per process (`reconcile` does it at server start). */
  ensureHost(): Promise<void> {
    this.ready ??= this.setUp([]).catch((err: unknown) => {
      this.ready = null;
      throw err;
    });
    return this.ready;
  }

  /**
   * Server start: rebuild this instance's bridge, chains and every live machine's rules in
   * one transaction, re-create a running machine's missing host link, and remove
   * namespaces, links and chains of machines that are gone.
   */
  async reconcile(live: ReadonlyMap<string, MachineNetworkSpec>): Promise<void> {
    const p = this.setUp([...live]);
    this.ready = p.catch((err: unknown) => {
      this.ready = null;
      throw err;
    });
    await p;
    const liveNetns = new Set([...live.keys()].map((id) => this.netnsName(id)));
    for (const name of await readdir('/run/netns').catch(() => [] as string[])) {
      if (name.startsWith(`${this.o.instancePrefix}-`) && !liveNetns.has(name)) await run('ip', ['netns', 'del', name]);
    }
    const liveVeths = new Set([...live.keys()].map((id) => this.vethName(id)));
    for (const link of await linkNames()) {
      if (link.startsWith(`h${this.hex}`) && link !== this.bridge && !liveVeths.has(link)) await run('ip', ['link', 'del', link]);
    }
    for (const [id, spec] of live) {
      if ((await exists(this.netnsPath(id))) && !(await linkExists(this.vethName(id)))) {
        await this.link(id, spec, false);
      }
    }
  }

  private async setUp(live: Array<[string, MachineNetworkSpec]>): Promise<void> {
    await this.ensureBridge();
    await this.ensureForwarding();
    const existing = await this.instanceChains();
    const lines = ['*filter', ...this.baseFilterRules()];
    const keep = new Set([this.chain.fwd, this.chain.input, this.chain.pol, this.chain.net, this.chain.out]);
    for (const [id, spec] of live) {
      if (spec.networkId) {
        const c = this.networkChain(spec.networkId);
        if (!keep.has(c)) lines.push(`:${c} - [0:0]`);
        keep.add(c);
        lines.push(...this.memberRules(id, spec.ip, spec.networkId));
      }
      if (isDefaultOutbound(spec.outbound)) continue;
      keep.add(this.machineChain(id));
      lines.push(...this.machineRules(id, spec));
    }
    for (const stale of existing.filter((c) => !keep.has(c))) lines.push(`:${stale} - [0:0]`, `-X ${stale}`);
    lines.push('COMMIT', '*nat', `:${this.chain.nat} - [0:0]`, `-A ${this.chain.nat} -s ${formatCidr(this.o.subnet)} ! -o ${this.bridge} -j MASQUERADE`, 'COMMIT', '');
    await runWithInput('iptables-restore', ['-w', '--noflush'], lines.join('\n'));
    await this.ensureJump('filter', 'FORWARD', ['-j', this.chain.fwd]);
    await this.ensureJump('filter', 'INPUT', ['-i', this.bridge, '-j', this.chain.input]);
    await this.ensureJump('filter', 'OUTPUT', ['-o', this.bridge, '-j', this.chain.out]);
    await this.ensureJump('nat', 'POSTROUTING', ['-j', this.chain.nat]);
  }

  /** The static chains (declaring a chain in `iptables-restore --noflush` empties it first). */
  private baseFilterRules(): string[] {
    const { fwd, input, pol, net, out } = this.chain;
    const br = this.bridge;
    return [
      `:${fwd} - [0:0]`,
      `:${input} - [0:0]`,
      `:${pol} - [0:0]`,
      `:${net} - [0:0]`,
      `:${out} - [0:0]`,
      // Traffic between machines is routed back out of the bridge, which makes the kernel send the
      // sender an ICMP redirect ("reach it directly", which isolated ports cannot): keep those in.
      `-A ${out} -p icmp --icmp-type redirect -j DROP`,
      // Into the bridge only replies, and traffic between members of one private network (the NET chain
      // accepts only that): no other machine reaches another, nor machines of other servers.
      `-A ${fwd} -o ${br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
      `-A ${fwd} -i ${br} -o ${br} -j ${net}`,
      `-A ${fwd} -o ${br} -j DROP`,
      `-A ${fwd} -i ${br} ! -s ${formatCidr(this.o.subnet)} -j DROP`,
      `-A ${fwd} -i ${br} -j ${pol}`,
      `-A ${fwd} -i ${br} -d ${LINK_LOCAL} -j DROP`,
      `-A ${fwd} -i ${br} -j ACCEPT`,
      // The host answers connections it opened (the server reaching a machine's port), nothing else.
      `-A ${input} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
      `-A ${input} -j DROP`,
    ];
  }

  /** iptables-restore lines for a machine's own chain and the jump to it. */
  private machineRules(id: string, spec: MachineNetworkSpec): string[] {
    const c = this.machineChain(id);
    const lines = [`:${c} - [0:0]`];
    const p = spec.outbound;
    switch (p.mode) {
      case 'allow':
        break;
      case 'deny':
        lines.push(`-A ${c} -j DROP`);
        break;
      case 'rules':
        for (const d of p.deny) lines.push(`-A ${c} -d ${d} -j DROP`);
        if (p.allow !== null) {
          // RETURN, not ACCEPT: the base chain's link-local drop still applies to allowed networks.
          for (const a of p.allow) lines.push(`-A ${c} -d ${a} -j RETURN`);
          lines.push(`-A ${c} -j DROP`);
        }
        break;
    }
    lines.push(`-A ${this.chain.pol} -s ${spec.ip}/32 -j ${c}`);
    return lines;
  }

  /**
   * iptables-restore lines making a machine a member of its network: traffic from it goes to
   * the network's chain, which accepts traffic to it. Each carries the machine id as a comment,
   * so its removal needs nothing but the id.
   */
  private memberRules(id: string, ip: string, networkId: string): string[] {
    const c = this.networkChain(networkId);
    const tag = `-m comment --comment ${id}`;
    return [`-A ${this.chain.net} -s ${ip}/32 ${tag} -j ${c}`, `-A ${c} -d ${ip}/32 ${tag} -j ACCEPT`];
  }

  /** Run membership changes one after another (a chain is made by its first member and removed with its last). */
  private serially<T>(work: () => Promise<T>): Promise<T> {
    const p = this.membership.then(work, work);
    this.membership = p.catch(() => undefined);
    return p;
  }

  /** Add a machine to its network's rules, making the network's chain if it is the first member. */
  private join(id: string, ip: string, networkId: string): Promise<void> {
    return this.serially(async () => {
      const c = this.networkChain(networkId);
      const exists = (await this.instanceChains()).includes(c);
      const lines = ['*filter', ...(exists ? [] : [`:${c} - [0:0]`]), ...this.memberRules(id, ip, networkId), 'COMMIT', ''];
      await runWithInput('iptables-restore', ['-w', '--noflush'], lines.join('\n'));
    });
  }

  /** Remove every membership rule of a machine (found by its id), and network chains left without a member. */
  private leave(id: string): Promise<void> {
    return this.serially(async () => {
      const rules = (await run('iptables-save', ['-t', 'filter']).catch(() => '')).split('\n');
      // Network chains are `…-N` + lowercase id characters; the base chain `…-NET` is not one.
      const networkChain = new RegExp(`^HANGAR-${this.hex}-N[a-z0-9]+$`);
      const chainOf = (l: string): string => l.split(' ')[1] ?? '';
      const mine = rules.filter((l) => l.startsWith('-A ') && (chainOf(l) === this.chain.net || networkChain.test(chainOf(l))) && commentOf(l) === id);
      if (!mine.length) return;
      const chains = new Set(mine.map(chainOf).filter((c) => networkChain.test(c)));
      const emptied = [...chains].filter((c) => !rules.some((l) => l.startsWith(`-A ${c} `) && !mine.includes(l)));
      const lines = ['*filter', ...mine.map((l) => l.replace(/^-A /, '-D ')), ...emptied.map((c) => `-X ${c}`), 'COMMIT', ''];
      await runWithInput('iptables-restore', ['-w', '--noflush'], lines.join('\n'));
    });
  }

  private async ensureJump(table: string, chain: string, rule: string[]): Promise<void> {
    try {
      await run('iptables', ['-w', '-t', table, '-C', chain, ...rule]);
    } catch {
      await run('iptables', ['-w', '-t', table, '-I', chain, '1', ...rule]);
    }
  }

  /** User chains of this instance in the filter table. */
  private async instanceChains(): Promise<string[]> {
    const out = await run('iptables-save', ['-t', 'filter']);
    const prefix = `:HANGAR-${this.hex}-`;
    return out
      .split('\n')
      .filter((l) => l.startsWith(prefix))
      .map((l) => l.slice(1).split(' ')[0]!);
  }

  private async ensureBridge(): Promise<void> {
    const subnet = formatCidr(this.o.subnet);
    if (!(await linkExists(this.bridge))) {
      // Refuse a subnet that any route of the host already covers: machines would shadow it.
      const routes = JSON.parse(await run('ip', ['-j', '-4', 'route', 'show', 'table', 'all'])) as Array<{ dst?: string; dev?: string; type?: string }>;
      for (const r of routes) {
        if (!r.dst || r.dst === 'default' || r.dev === this.bridge || (r.type && r.type !== 'unicast')) continue;
        const parsed = parseCidr(r.dst.includes('/') ? r.dst : `${r.dst}/32`);
        if ('cidr' in parsed && cidrsOverlap(parsed.cidr, this.o.subnet)) {
          throw new Error(`the machine subnet ${subnet} overlaps the host route ${r.dst} (dev ${r.dev ?? '?'}); set HANGAR_SUBNET to a free private range`);
        }
      }
      await run('ip', ['link', 'add', this.bridge, 'type', 'bridge']);
      // No IPv6 on the bridge: machines would otherwise reach the host over link-local addresses.
      // A kernel without IPv6 has no such file, and nothing to disable.
      await writeFile(`/proc/sys/net/ipv6/conf/${this.bridge}/disable_ipv6`, '1').catch(() => undefined);
    }
    // Proxy ARP back out of the port that asked (isolated ports never hear each other): traffic
    // between machines is routed by the host and filtered by the FWD/NET chains. Answered at once
    // (the default delay of up to 0.8 s is for shared segments with real routers on them).
    await writeFile(`/proc/sys/net/ipv4/conf/${this.bridge}/proxy_arp_pvlan`, '1');
    await writeFile(`/proc/sys/net/ipv4/neigh/${this.bridge}/proxy_delay`, '0');
    // A fixed address: a bridge otherwise takes the lowest of its ports', which changes when a
    // machine goes, and every other machine's ARP entry for the gateway goes stale with it.
    const mac = `02:${this.hex.match(/../g)!.join(':')}:01`;
    await runWithInput('ip', ['-batch', '-'], `link set ${this.bridge} address ${mac}\naddr replace ${this.gateway}/${this.o.subnet.prefix} dev ${this.bridge}\nlink set ${this.bridge} up\n`);
  }

  private async ensureForwarding(): Promise<void> {
    const now = (await readFile(IP_FORWARD, 'utf8')).trim();
    if (now === '1') return;
    // Remember the original value once, for the last server to put back (see teardown).
    // EEXIST: another Hangar server wrote it first, and its value is the original one.
    await writeFile(await forwardMarker(), now, { flag: 'wx' }).catch(() => undefined);
    await writeFile(IP_FORWARD, '1');
  }

  /** Give a machine its namespace, link, address, route and rules. On failure nothing is left. */
  async attach(id: string, spec: MachineNetworkSpec, o: AttachOptions = {}): Promise<void> {
    await this.ensureHost();
    try {
      await this.link(id, spec, true, o);
      if (!isDefaultOutbound(spec.outbound)) {
        await runWithInput('iptables-restore', ['-w', '--noflush'], ['*filter', ...this.machineRules(id, spec), 'COMMIT', ''].join('\n'));
      }
      if (spec.networkId) await this.join(id, spec.ip, spec.networkId);
      await writeFile(this.notePath(id), JSON.stringify({ ip: spec.ip, outbound: spec.outbound, networkId: spec.networkId ?? null } satisfies NetworkNote));
    } catch (err) {
      // The attach error is the one to report. Detach is safe to repeat: the machine's
      // destroy (after any failed start or fork) and the start-up reconcile remove what it missed.
      await this.detach(id).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Make sure a machine about to be restored has its namespace and host link (a host
   * restart, or someone, may have removed them); its rules stay from `attach`.
   */
  async ensureAttached(id: string, spec: MachineNetworkSpec, o: AttachOptions = {}): Promise<void> {
    await this.ensureHost();
    if (!(await exists(this.netnsPath(id)))) {
      await this.attach(id, spec, o);
      return;
    }
    if (!(await linkExists(this.vethName(id)))) await this.link(id, spec, false);
  }

  /** The veth pair (and the namespace when `withNetns`), `eth0` addressed with a default route: two `ip` runs. */
  private async link(id: string, spec: MachineNetworkSpec, withNetns: boolean, o: AttachOptions = {}): Promise<void> {
    const ns = this.netnsName(id);
    const veth = this.vethName(id);
    const host = [
      ...(withNetns ? [`netns add ${ns}`] : []),
      `link add ${veth} type veth peer name eth0 netns ${ns}`,
      `link set ${veth} master ${this.bridge}`,
      `link set dev ${veth} type bridge_slave isolated on`,
      `link set ${veth} up`,
      // The new eth0 has a new MAC: a neighbour entry of the address's last holder would blackhole replies.
      `neigh flush to ${spec.ip} dev ${this.bridge}`,
    ];
    await runWithInput('ip', ['-batch', '-'], `${host.join('\n')}\n`);
    const inside = [
      `addr add ${spec.ip}/${this.o.subnet.prefix} dev eth0`,
      'link set eth0 up',
      'link set lo up',
      `route add default via ${this.gateway}`,
    ];
    await Promise.all([
      runWithInput('ip', ['-n', ns, '-batch', '-'], `${inside.join('\n')}\n`),
      // Beside the addresses: the namespace exists now, and the two touch different things.
      withNetns && o.openToAllIds ? this.openToAllIds(id) : undefined,
    ]);
  }

  /**
   * A user-namespaced machine's network namespace belongs to the host's user namespace, in
   * which the machine's root has no capability: ports below 1024 and ping are opened to
   * every id there, as they are for root in a machine without one.
   */
  private async openToAllIds(id: string): Promise<void> {
    await run('nsenter', [`--net=${this.netnsPath(id)}`, '--', 'sh', '-c',
      'echo 0 > /proc/sys/net/ipv4/ip_unprivileged_port_start && echo "0 2147483647" > /proc/sys/net/ipv4/ping_group_range']);
  }

  /** Remove a machine's link, namespace and rules; safe to call again. */
  async detach(id: string): Promise<void> {
    const veth = this.vethName(id);
    const batch: string[] = [];
    // Deleting the host end first makes the pair's removal synchronous (a namespace dies lazily).
    if (await linkExists(veth)) batch.push(`link del ${veth}`);
    if (await exists(this.netnsPath(id))) batch.push(`netns del ${this.netnsName(id)}`);
    if (batch.length) await runWithInput('ip', ['-batch', '-'], `${batch.join('\n')}\n`);
    const note = await readFile(this.notePath(id), 'utf8').then((t) => JSON.parse(t) as NetworkNote, () => null);
    if (note === null || !isDefaultOutbound(note.outbound)) await this.removeMachineChain(id);
    // Without a note (a failed attach, a crash) the rules are looked for anyway: they carry the id.
    if (note === null || note.networkId) await this.leave(id);
    await rm(this.notePath(id), { force: true });
  }

  private async removeMachineChain(id: string): Promise<void> {
    const c = this.machineChain(id);
    const rules = await run('iptables', ['-w', '-S', this.chain.pol]).catch(() => '');
    const jumps = rules.split('\n').filter((l) => l.startsWith(`-A ${this.chain.pol} `) && l.endsWith(`-j ${c}`));
    const chains = await this.instanceChains().catch(() => [] as string[]);
    if (!jumps.length && !chains.includes(c)) return;
    const lines = ['*filter', ...jumps.map((l) => l.replace(/^-A /, '-D ')), ...(chains.includes(c) ? [`:${c} - [0:0]`, `-X ${c}`] : []), 'COMMIT', ''];
    await runWithInput('iptables-restore', ['-w', '--noflush'], lines.join('\n'));
  }

  /**
   * Server stop with no machine left holding a namespace: remove the jumps, chains and
   * bridge, and put ip_forward back if this was the last Hangar bridge on the host.
   */
  async teardown(): Promise<void> {
    const names = await readdir('/run/netns').catch(() => [] as string[]);
    if (names.some((n) => n.startsWith(`${this.o.instancePrefix}-`))) return;
    const { fwd, input, pol, nat } = this.chain;
    for (const [table, chain, rule] of [
      ['filter', 'FORWARD', ['-j', fwd]],
      ['filter', 'INPUT', ['-i', this.bridge, '-j', input]],
      ['filter', 'OUTPUT', ['-o', this.bridge, '-j', this.chain.out]],
      ['nat', 'POSTROUTING', ['-j', nat]],
    ] as const) {
      // Fails when the jump is already gone (or was never made): gone is what is wanted.
      await run('iptables', ['-w', '-t', table, '-D', chain, ...rule]).catch(() => undefined);
    }
    const chains = await this.instanceChains().catch(() => [] as string[]);
    if (chains.length) {
      const lines = ['*filter', ...chains.map((c) => `:${c} - [0:0]`), ...chains.map((c) => `-X ${c}`), 'COMMIT', ''];
      await runWithInput('iptables-restore', ['-w', '--noflush'], lines.join('\n'));
    }
    const natChains = (await run('iptables-save', ['-t', 'nat']).catch(() => '')).includes(`:${nat} `);
    if (natChains) await runWithInput('iptables-restore', ['-w', '--noflush'], `*nat\n:${nat} - [0:0]\n-X ${nat}\nCOMMIT\n`);
    if (await linkExists(this.bridge)) await run('ip', ['link', 'del', this.bridge]);
    this.ready = null;
    await restoreForwarding();
  }
}

/** The `--comment` of an iptables-save rule line, or null. */
function commentOf(line: string): string | null {
  const m = / --comment "?([^" ]+)"? /.exec(line);
  return m ? m[1]! : null;
}

/** Put ip_forward back to its value before Hangar, once no Hangar bridge is left in this network namespace. */
async function restoreForwarding(): Promise<void> {
  const marker = await forwardMarker();
  const original = await readFile(marker, 'utf8').catch(() => null);
  if (original === null) return;
  const bridges = await run('ip', ['-o', 'link', 'show', 'type', 'bridge']).catch(() => '');
  if (bridges.split('\n').some((l) => /^\d+: hg[0-9a-f]{8}[:@]/.test(l))) return;
  await writeFile(IP_FORWARD, original.trim() === '0' ? '0' : original.trim());
  await rm(marker, { force: true });
}
