/** One operation at a time per machine; others are refused, not queued. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HangarError } from '../domain/errors.js';
import { MachineLocks } from './keyed-lock.js';

/** A promise with its resolve/reject exposed, so a test decides when an operation ends. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('MachineLocks', () => {
  it('returns the result of the operation and frees the lock', async () => {
    const locks = new MachineLocks();
    assert.equal(await locks.with('mch_a', 'pause', async () => 42), 42);
    assert.equal(locks.isBusy('mch_a'), false);
  });

  it('a second concurrent operation on the same id gets STATE_CONFLICT naming the first, and does not run', async () => {
    const locks = new MachineLocks();
    const gate = deferred();
    const first = locks.with('mch_a', 'pause', () => gate.promise.then(() => 'first'));
    assert.equal(locks.isBusy('mch_a'), true);
    let ran = false;
    await assert.rejects(
      locks.with('mch_a', 'resume', async () => {
        ran = true;
      }),
      (err: unknown) => {
        assert.ok(err instanceof HangarError);
        assert.equal(err.code, 'STATE_CONFLICT');
        assert.equal(err.status, 409);
        assert.deepEqual(err.details, { operation: 'pause' });
        assert.match(err.message, /pause/);
        return true;
      },
    );
    assert.equal(ran, false);
    // The refused call must not have released the holder's lock.
    assert.equal(locks.isBusy('mch_a'), true);
    gate.resolve();
    assert.equal(await first, 'first');
    assert.equal(locks.isBusy('mch_a'), false);
    assert.equal(await locks.with('mch_a', 'resume', async () => 'after'), 'after');
  });

  it('different ids run concurrently', async () => {
    const locks = new MachineLocks();
    const gateA = deferred();
    const order: string[] = [];
    const a = locks.with('mch_a', 'pause', async () => {
      await gateA.promise;
      order.push('a');
    });
    // b runs to completion while a still holds its lock.
    await locks.with('mch_b', 'pause', async () => {
      assert.equal(locks.isBusy('mch_a'), true);
      order.push('b');
    });
    assert.equal(locks.isBusy('mch_b'), false);
    gateA.resolve();
    await a;
    assert.deepEqual(order, ['b', 'a']);
  });

  it('the lock is released after the operation rejects, and the error propagates', async () => {
    const locks = new MachineLocks();
    const boom = new Error('boom');
    await assert.rejects(locks.with('mch_a', 'pause', async () => Promise.reject(boom)), (err) => err === boom);
    assert.equal(locks.isBusy('mch_a'), false);
    assert.equal(await locks.with('mch_a', 'pause', async () => 'ok'), 'ok');
  });

  it('the lock is released after the operation throws synchronously', async () => {
    const locks = new MachineLocks();
    const fn = (): Promise<never> => {
      throw new Error('sync boom');
    };
    await assert.rejects(locks.with('mch_a', 'pause', fn), /sync boom/);
    assert.equal(locks.isBusy('mch_a'), false);
  });

  it('the lock is released after a deferred rejection', async () => {
    const locks = new MachineLocks();
    const gate = deferred();
    const p = locks.with('mch_a', 'destroy', () => gate.promise);
    gate.reject(new Error('late'));
    await assert.rejects(p, /late/);
    assert.equal(locks.isBusy('mch_a'), false);
  });
});
