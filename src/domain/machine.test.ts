/** The machine model's pure helpers. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configProblems, CONFIG_LIMITS, holdsResources, isTerminal, MACHINE_STATUSES, normaliseCwd, type MachineStatus } from './machine.js';

describe('normaliseCwd', () => {
  const cases: Array<[string, string | null]> = [
    ['/', '/'],
    ['/a/../b', '/b'],
    ['/./x/', '/x'],
    ['/..', '/'],
    ['/../..', '/'],
    ['/a/b/../../..', '/'],
    ['//a//b//', '/a/b'],
    ['/home/user', '/home/user'],
    ['/a/./b/./c/.', '/a/b/c'],
    ['/a/b/..', '/a'],
    ['/...', '/...'],
    ['/a..b/.c', '/a..b/.c'],
    ['relative', null],
    ['./x', null],
    ['../x', null],
    ['', null],
    ['/a\0b', null],
    ['/\0', null],
  ];
  for (const [input, want] of cases) {
    it(`${JSON.stringify(input)} → ${JSON.stringify(want)}`, () => {
      assert.equal(normaliseCwd(input), want);
    });
  }

  it('is idempotent on its own output', () => {
    for (const [input] of cases) {
      const once = normaliseCwd(input);
      if (once !== null) assert.equal(normaliseCwd(once), once);
    }
  });
});

describe('isTerminal and holdsResources', () => {
  const terminal: Record<MachineStatus, boolean> = { creating: false, running: false, paused: false, destroyed: true, error: false };
  const holds: Record<MachineStatus, boolean> = { creating: true, running: true, paused: true, destroyed: false, error: false };

  it('cover exactly the five statuses', () => {
    assert.deepEqual([...MACHINE_STATUSES].sort(), Object.keys(terminal).sort());
  });

  for (const status of MACHINE_STATUSES) {
    it(`${status}: terminal=${terminal[status]}, holds resources=${holds[status]}`, () => {
      assert.equal(isTerminal(status), terminal[status]);
      assert.equal(holdsResources(status), holds[status]);
    });
  }

  it('a terminal status never holds resources', () => {
    for (const status of MACHINE_STATUSES) {
      if (isTerminal(status)) assert.equal(holdsResources(status), false, status);
    }
  });
});

describe('configProblems (resize requests)', () => {
  it('accepts the bounds of create and absent values', () => {
    assert.deepEqual(configProblems({}), []);
    assert.deepEqual(configProblems({ vcpus: CONFIG_LIMITS.vcpus.min, memory_mb: CONFIG_LIMITS.memory_mb.max, disk_mb: CONFIG_LIMITS.disk_mb.min }), []);
  });

  it('names every value out of bounds or not whole', () => {
    const fields = configProblems({ vcpus: 0, memory_mb: 15.5, disk_mb: CONFIG_LIMITS.disk_mb.max + 1 }).map((p) => p.field);
    assert.deepEqual(fields, ['config.vcpus', 'config.memory_mb', 'config.disk_mb']);
    assert.match(configProblems({ vcpus: 65 })[0]!.message, /from 1 to 64/);
    assert.equal(configProblems({ vcpus: Number.NaN }).length, 1);
  });
});
