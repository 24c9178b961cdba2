import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mostHeld } from './host-service.js';

describe('mostHeld (where a create a warm pool can serve goes)', () => {
  const all = (): boolean => true;
  it('the host holding the most idle pool machines, among those that may take machines', () => {
    assert.equal(mostHeld(['b', 'c', 'c', null], all, 'a'), 'c');
    assert.equal(mostHeld(['b', 'c', 'c'], (id) => id !== 'c', 'a'), 'b', 'a host that takes no machines (down, draining) is passed over');
    assert.equal(mostHeld([], all, 'a'), null);
    assert.equal(mostHeld([null, 'c'], (id) => id !== 'c', 'a'), null);
  });

  it('a tie goes to the preferred host (the one answering, no forwarding) when it is in it, else to the first by id', () => {
    assert.equal(mostHeld(['c', 'a', 'b'], all, 'a'), 'a');
    assert.equal(mostHeld(['c', 'b'], all, 'a'), 'b');
    assert.equal(mostHeld(['c', 'a', 'c', 'a'], all, 'a'), 'a');
  });
});
