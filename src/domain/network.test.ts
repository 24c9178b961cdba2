import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cidrsOverlap, defaultSubnet, formatCidr, IpAllocator, parseCidr } from './network.js';

const cidr = (text: string) => {
  const p = parseCidr(text);
  assert.ok('cidr' in p, text);
  return p.cidr;
};

describe('network: CIDRs and the address allocator', () => {
  it('parses CIDRs and bare addresses, refusing host bits, bad octets and bad lengths', () => {
    assert.equal(formatCidr(cidr('203.0.113.0/24')), '203.0.113.0/24');
    assert.equal(formatCidr(cidr('198.51.100.7')), '198.51.100.7/32');
    assert.equal(formatCidr(cidr('0.0.0.0/0')), '0.0.0.0/0');
    for (const bad of ['10.0.0.1/8', '256.1.1.1/32', '10.0.0/8', '10.0.0.0/33', 'example.com', '01.2.3.4', '10.0.0.0/8/1', '']) {
      assert.ok('error' in parseCidr(bad), bad);
    }
    assert.match((parseCidr('10.0.0.1/8') as { error: string }).error, /network is 10\.0\.0\.0\/8/);
  });

  it('tells overlapping networks apart', () => {
    assert.ok(cidrsOverlap(cidr('10.0.0.0/8'), cidr('10.20.0.0/20')));
    assert.ok(!cidrsOverlap(cidr('10.20.16.0/20'), cidr('10.20.0.0/20')));
  });

  it('derives a /20 inside 10.0.0.0/8 from the instance hex', () => {
    assert.equal(formatCidr(defaultSubnet('00000000')), '10.0.0.0/20');
    assert.equal(formatCidr(defaultSubnet('fff12345')), '10.255.240.0/20');
    assert.equal(formatCidr(defaultSubnet('1a2b3c4d')), '10.26.32.0/20');
  });

  it('hands out every host address except the gateway and broadcast, round-robin, and releases only the holder\'s', () => {
    const ips = new IpAllocator(cidr('10.1.2.0/29'));
    const got = [1, 2, 3, 4, 5].map((n) => ips.allocate(`m${n}`));
    assert.deepEqual(got, ['10.1.2.2', '10.1.2.3', '10.1.2.4', '10.1.2.5', '10.1.2.6']);
    assert.equal(ips.allocate('m6'), null);
    ips.release('10.1.2.3', 'someone-else');
    assert.equal(ips.allocate('m6'), null);
    ips.release('10.1.2.3', 'm2');
    assert.equal(ips.allocate('m6'), '10.1.2.3');
    ips.clear();
    ips.reserve('10.1.2.5', 'm4');
    assert.equal(ips.allocate('m7'), '10.1.2.4');
    assert.equal(ips.allocate('m8'), '10.1.2.6');
    assert.equal(ips.allocate('m9'), '10.1.2.2');
  });
});
