/** Where ingress requests go: the path form, the host form, and the traffic token taken off the query. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hostTarget, pathTarget } from './ingress-routes.js';

describe('ingress targets', () => {
  it('path form: the rest of the path, the query less the token', () => {
    assert.deepEqual(pathTarget('/v1/machines/mch_a1/ports/8080'), { id: 'mch_a1', port: '8080', path: '/', queryToken: undefined });
    assert.deepEqual(pathTarget('/v1/machines/mch_a1/ports/8080/a/b.html?x=1&traffic_access_token=t%2Bk&y=2'), {
      id: 'mch_a1',
      port: '8080',
      path: '/a/b.html?x=1&y=2',
      queryToken: 't+k',
    });
    assert.deepEqual(pathTarget('/v1/machines/mch_a1/ports/80?traffic_access_token=tok'), { id: 'mch_a1', port: '80', path: '/', queryToken: 'tok' });
    assert.equal(pathTarget('/v1/machines/mch_a1/pty'), null);
    assert.equal(pathTarget('/v1/machines'), null);
  });

  it('host form: {port}-{id}.{domain}, any case, any port after a colon, the whole path', () => {
    const t = hostTarget('8080-mch_a1.machines.test', '/v1/machines?traffic_access_token=tok', 'machines.test');
    assert.deepEqual(t, { id: 'mch_a1', port: '8080', path: '/v1/machines', queryToken: 'tok' });
    assert.deepEqual(hostTarget('3000-MCH_A1.Machines.Test:8443', '/x?a=b', 'machines.test'), { id: 'mch_a1', port: '3000', path: '/x?a=b', queryToken: undefined });
  });

  it('host form: anything else is not ingress', () => {
    for (const host of ['machines.test', 'www.machines.test', '8080-mch_a1.other.test', '8080-mch_a1.x.machines.test', 'mch_a1.machines.test', '127.0.0.1:8080', '8080-mch_a1.machines.testx']) {
      assert.equal(hostTarget(host, '/', 'machines.test'), null, host);
    }
    assert.equal(hostTarget(undefined, '/', 'machines.test'), null);
    assert.equal(hostTarget('8080-mch_a1.machines.test', '/', null), null, 'no domain: host routing is off');
  });
});
