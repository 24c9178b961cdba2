/**
 * Machine networking without I/O: IPv4 CIDRs, outbound policies and the private
 * address allocator.
 */

/** An IPv4 network: its first address as a 32-bit number and its prefix length. */
export interface Cidr {
  base: number;
  prefix: number;
}

/** What a machine may reach beyond the host (other machines and the host are never reachable). */
export type OutboundPolicy =
  | { mode: 'allow' }
  | { mode: 'deny' }
  /** `allow` present: only those networks (minus `deny`); absent: everything but `deny`. */
  | { mode: 'rules'; allow: string[] | null; deny: string[] };

export const DEFAULT_OUTBOUND: OutboundPolicy = { mode: 'allow' };

/** True for the default policy, which needs no per-machine rules. */
export function isDefaultOutbound(p: OutboundPolicy): boolean {
  return p.mode === 'allow';
}

/** Parse a dotted IPv4 address to a 32-bit number; null when it is not one. */
export function parseIpv4(text: string): number | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let n = 0;
  for (const part of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(part)) return null;
    const v = Number(part);
    if (v > 255) return null;
    n = n * 256 + v;
  }
  return n;
}

/** Format a 32-bit number as a dotted IPv4 address. */
export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

const maskOf = (prefix: number): number => (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);

/**
 * Parse `a.b.c.d/n` (or a bare address, meaning /32). Host bits must be zero, so a typo
 * like 10.0.0.1/8 is reported rather than silently widened. Null with a reason otherwise.
 */
export function parseCidr(text: string): { cidr: Cidr } | { error: string } {
  const [addr, len, ...rest] = text.split('/');
  if (addr === undefined || rest.length > 0) return { error: 'must be an IPv4 CIDR such as 203.0.113.0/24' };
  const base = parseIpv4(addr);
  if (base === null) return { error: 'must be an IPv4 CIDR such as 203.0.113.0/24' };
  let prefix = 32;
  if (len !== undefined) {
    if (!/^\d{1,2}$/.test(len) || Number(len) > 32) return { error: 'prefix length must be 0 to 32' };
    prefix = Number(len);
  }
  if ((base & ~maskOf(prefix)) >>> 0 !== 0) {
    return { error: `has host bits set; the network is ${formatIpv4((base & maskOf(prefix)) >>> 0)}/${prefix}` };
  }
  return { cidr: { base, prefix } };
}

/** `a.b.c.d/n` of a CIDR. */
export function formatCidr(c: Cidr): string {
  return `${formatIpv4(c.base)}/${c.prefix}`;
}

/** True when the two networks share any address. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const prefix = Math.min(a.prefix, b.prefix);
  const mask = maskOf(prefix);
  return (a.base & mask) >>> 0 === (b.base & mask) >>> 0;
}

/** The address the host takes on the machines' bridge: the subnet's first host address. */
export function gatewayOf(subnet: Cidr): number {
  return subnet.base + 1;
}

/**
 * The default machine subnet of a server: a /20 inside 10.0.0.0/8 chosen by the instance
 * prefix's hash, so two servers on one host almost never pick the same one (and a clash
 * with any existing route is refused at start). 4093 machine addresses each.
 */
export function defaultSubnet(instanceHex: string): Cidr {
  const h = parseInt(instanceHex.slice(0, 3), 16) & 0xfff;
  return { base: ((10 << 24) | (h << 12)) >>> 0, prefix: 20 };
}

/**
 * Private addresses of one subnet: the gateway (first) and broadcast (last) are never
 * handed out. Allocation is synchronous, so concurrent creates never share an address.
 */
export class IpAllocator {
  /** Address → the machine holding it. */
  private readonly used = new Map<number, string>();
  private next: number;
  private readonly first: number;
  private readonly last: number;

  constructor(readonly subnet: Cidr) {
    this.first = gatewayOf(subnet) + 1;
    this.last = subnet.base + 2 ** (32 - subnet.prefix) - 2;
    this.next = this.first;
  }

  /** Mark an address as held by a machine (re-adopted at start). */
  reserve(ip: string, machineId: string): void {
    const n = parseIpv4(ip);
    if (n !== null) this.used.set(n, machineId);
  }

  /** Forget every address (before re-reserving the live ones). */
  clear(): void {
    this.used.clear();
  }

  /**
   * A free address, or null when the subnet is full. Hands out addresses round-robin, so a
   * released address is reused as late as possible (stale connections never reach a new machine).
   */
  allocate(machineId: string): string | null {
    const size = this.last - this.first + 1;
    for (let i = 0; i < size; i++) {
      const n = this.next;
      this.next = n >= this.last ? this.first : n + 1;
      if (!this.used.has(n)) {
        this.used.set(n, machineId);
        return formatIpv4(n);
      }
    }
    return null;
  }

  /** Free an address, only if this machine still holds it (a second release never frees another's). */
  release(ip: string, machineId: string): void {
    const n = parseIpv4(ip);
    if (n !== null && this.used.get(n) === machineId) this.used.delete(n);
  }
}
