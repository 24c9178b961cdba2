import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HangarError } from './errors.js';
import { assertTierAllows, tierRefusal, type TierOperation } from './isolation.js';

const OPERATIONS: TierOperation[] = ['pause', 'snapshot', 'fork', 'resize', 'hibernate', 'auto_snapshot', 'restore_point'];

describe('isolation tiers', () => {
  it('the container tier can do everything; the gvisor tier none of the checkpoint or resize operations, each with a reason', () => {
    for (const op of OPERATIONS) {
      assert.equal(tierRefusal('container', op), null, op);
      assert.match(tierRefusal('gvisor', op) ?? '', /gVisor|runsc/, op);
    }
  });

  it('assertTierAllows is a 422 UNSUPPORTED_OPERATION naming the machine and its tier', () => {
    assert.doesNotThrow(() => assertTierAllows({ id: 'mch_a', isolation: 'container' }, 'pause'));
    assert.throws(
      () => assertTierAllows({ id: 'mch_b', isolation: 'gvisor' }, 'resize'),
      (err: unknown) => err instanceof HangarError && err.code === 'UNSUPPORTED_OPERATION' && err.status === 422 && err.message.includes('mch_b') && err.details?.isolation === 'gvisor',
    );
  });
});
