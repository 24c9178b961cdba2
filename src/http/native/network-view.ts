import type { OutboundPolicy } from '../../domain/network.js';

/** The API form of a machine's network settings (the `network` object of create). */
export interface NetworkBody {
  outbound?: 'allow' | 'deny';
  allow?: string[];
  deny?: string[];
}

/** A validated `network` body as the domain's policy. */
export function outboundPolicy(n: NetworkBody): OutboundPolicy {
  if ((n.outbound ?? 'allow') === 'allow') return n.deny?.length ? { mode: 'rules', allow: null, deny: [...n.deny] } : { mode: 'allow' };
  return n.allow?.length ? { mode: 'rules', allow: [...n.allow], deny: [] } : { mode: 'deny' };
}

/** A policy as the API shows it, in the shape create takes. */
export function networkView(p: OutboundPolicy): NetworkBody {
  switch (p.mode) {
    case 'allow':
      return { outbound: 'allow' };
    case 'deny':
      return { outbound: 'deny' };
    case 'rules':
      return p.allow === null ? { outbound: 'allow', deny: p.deny } : { outbound: 'deny', allow: p.allow, ...(p.deny.length ? { deny: p.deny } : {}) };
  }
}
