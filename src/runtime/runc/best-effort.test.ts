/** A best-effort cleanup step never throws, and a failed one is logged with its machine. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bestEffort, type RuntimeLogger } from './best-effort.js';

describe('bestEffort', () => {
  const recorder = (): RuntimeLogger & { lines: Array<[object, string]> } => {
    const lines: Array<[object, string]> = [];
    return { lines, warn: (obj, msg) => void lines.push([obj, msg]) };
  };

  it('logs a failed step with the machine id and the error, and resolves', async () => {
    const log = recorder();
    await bestEffort(log, 'mch_a', 'unmount the layer', Promise.reject(new Error('target is busy')));
    assert.deepEqual(log.lines, [[{ machineId: 'mch_a', err: 'target is busy' }, 'could not unmount the layer']]);
  });

  it('logs nothing when the step succeeds', async () => {
    const log = recorder();
    await bestEffort(log, 'mch_a', 'remove the container', Promise.resolve('done'));
    assert.deepEqual(log.lines, []);
  });
});
