/**
 * Waiting on another session of the database. A statement that waits for a lock (a row,
 * a table, an advisory lock) longer than the store's busy timeout is cancelled by the
 * server itself (`lock_timeout`, code 55P03), and a call that waits for a free pooled
 * connection as long gives up too (the pool's `connectionTimeoutMillis`). Both become
 * 503 STORE_BUSY. A call that failed so changed nothing: each is one statement, or one
 * transaction, which `inTransaction` rolls back when it throws.
 */
import { HangarError } from '../../domain/errors.js';
import { aroundEveryMethod } from '../around-methods.js';

/** The busy timeout when none is given (HANGAR_POSTGRES_BUSY_TIMEOUT_MS's default). */
export const DEFAULT_BUSY_TIMEOUT_MS = 5000;

/** PostgreSQL's lock_not_available: a lock wait ended by lock_timeout. */
const LOCK_NOT_AVAILABLE = '55P03';

/** True when `err` is a lock wait past lock_timeout, or no pooled connection came free in time. */
export function isBusy(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  // pg-pool's own error for a connection request that timed out in its queue.
  return e?.code === LOCK_NOT_AVAILABLE || (typeof e?.message === 'string' && e.message.startsWith('timeout exceeded when trying to connect'));
}

/** `part` with every method's busy failure rejected as 503 STORE_BUSY (other errors as they are). */
export function busyAsStoreBusy<T extends object>(part: T, timeoutMs: number): T {
  return aroundEveryMethod(part, async (call) => {
    try {
      return await call();
    } catch (err) {
      if (!isBusy(err)) throw err;
      throw new HangarError('STORE_BUSY', `The database held a lock, or every connection, for longer than ${timeoutMs} ms; nothing was changed. Retry shortly.`);
    }
  });
}
