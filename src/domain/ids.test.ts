/** Id formats and their randomness. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MACHINE_ID_PATTERN, newKeyId, newMachineId, newSnapshotId, newTeamId, randomLowerAlnum } from './ids.js';

describe('ids', () => {
  it('machine ids are mch_ + 16 lowercase letters/digits, distinct over 10k, and accepted by MACHINE_ID_PATTERN', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const id = newMachineId();
      assert.match(id, /^mch_[a-z0-9]{16}$/);
      assert.match(id, MACHINE_ID_PATTERN);
      seen.add(id);
    }
    assert.equal(seen.size, 10_000);
  });

  it('uses the whole alphabet (letters and digits)', () => {
    const chars = new Set<string>();
    for (let i = 0; i < 2_000; i++) for (const c of newMachineId().slice(4)) chars.add(c);
    assert.equal([...chars].sort().join(''), '0123456789abcdefghijklmnopqrstuvwxyz');
  });

  it('team, key and snapshot ids have their prefixes and lengths', () => {
    for (let i = 0; i < 200; i++) {
      assert.match(newTeamId(), /^team_[a-z0-9]{12}$/);
      assert.match(newKeyId(), /^key_[a-z0-9]{12}$/);
      assert.match(newSnapshotId(), /^snap_[a-z0-9]{16}$/);
    }
  });

  it('randomLowerAlnum returns exactly the asked length', () => {
    for (const n of [0, 1, 5, 16, 64, 257]) assert.match(randomLowerAlnum(n), new RegExp(`^[a-z0-9]{${n}}$`));
  });
});
