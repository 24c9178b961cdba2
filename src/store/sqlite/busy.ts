/**
 * Waiting for a database file another process holds locked. SQLite's own busy timeout
 * sleeps inside the call, and better-sqlite3's calls are synchronous: while it waited,
 * the whole server would stand still (every request, `/healthz`, every timer). So the
 * connection's timeout is 0 and a call that finds the file locked is made again after an
 * asynchronous pause, until the store's busy timeout has passed; then 503 STORE_BUSY.
 * A call that failed busy changed nothing: each is one statement or one transaction,
 * which better-sqlite3 rolls back when it throws.
 */
import { HangarError } from '../../domain/errors.js';
import { aroundEveryMethod } from '../around-methods.js';

/** True for SQLite's "database is locked" (SQLITE_BUSY and its extended codes). */
export function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

/** The first pause after a busy answer, doubled each time up to `MAX_PAUSE_MS`. */
const FIRST_PAUSE_MS = 5;
const MAX_PAUSE_MS = 100;

/** `part` with every method retried while the file is locked, for up to `timeoutMs`. */
export function retriedWhileBusy<T extends object>(part: T, timeoutMs: number): T {
  return aroundEveryMethod(part, async (call) => {
    const deadline = performance.now() + timeoutMs;
    for (let pause = FIRST_PAUSE_MS; ; pause = Math.min(2 * pause, MAX_PAUSE_MS)) {
      try {
        return await call();
      } catch (err) {
        const left = deadline - performance.now();
        if (!isBusy(err)) throw err;
        if (left <= 0) throw storeBusy(timeoutMs);
        await new Promise((resolve) => setTimeout(resolve, Math.min(pause, left)));
      }
    }
  });
}

function storeBusy(timeoutMs: number): HangarError {
  return new HangarError('STORE_BUSY', `The database is locked by another process and stayed locked for ${timeoutMs} ms; nothing was changed. Retry shortly.`);
}
