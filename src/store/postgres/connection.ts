import pg from 'pg';
import { DEFAULT_BUSY_TIMEOUT_MS } from './busy.js';

/** What the parts query through: the pool, or one connection inside a transaction. */
export interface Queryable {
  query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

/** The rows one statement returns. */
export async function rowsOf<R extends pg.QueryResultRow>(db: Queryable, sql: string, params: unknown[] = []): Promise<R[]> {
  return (await db.query<R>(sql, params)).rows;
}

/** How many rows one statement inserted, changed or deleted. */
export async function changesOf(db: Queryable, sql: string, params: unknown[] = []): Promise<number> {
  return (await db.query(sql, params)).rowCount ?? 0;
}

/** Options for the connection pool. */
export interface PoolOptions {
  /** A `postgres://` or `postgresql://` URL (`?host=/dir` for a unix socket directory). */
  url: string;
  /** Connections at most. @default 10 */
  max?: number;
  /** Called when an idle connection fails (the pool drops it and opens another when needed). */
  onConnectionError?: (err: Error) => void;
  /**
   * How long a statement waits for a lock, and a call for a free connection, before it
   * fails (busy.ts: 503 STORE_BUSY). @default 5000
   */
  busyTimeoutMs?: number;
}

const INT8_OID = 20;

/**
 * Milliseconds and byte counts are `bigint` columns, which the driver returns as strings
 * (they may exceed 2^53). Hangar's never do: read them as numbers, for this pool only.
 */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format ?? 'text')) as pg.CustomTypesConfig['getTypeParser'],
};

/** A pool of connections that reads bigints as numbers. */
export function createPool(options: PoolOptions): pg.Pool {
  // (0 would mean no bound to the pool: at least 1 ms.)
  const busy = Math.max(1, options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS);
  const pool = new pg.Pool({ connectionString: options.url, max: options.max ?? 10, types, lock_timeout: busy, connectionTimeoutMillis: busy });
  // Without a listener an idle connection's error (a restarted server) would crash the process.
  pool.on('error', (err) => options.onConnectionError?.(err));
  return pool;
}

/**
 * Run `fn` in one transaction on one connection: committed when it resolves, rolled back
 * when it throws (the error is rethrown).
 */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    try {
      await client.query('ROLLBACK');
    } catch (rollbackErr) {
      // A connection that cannot roll back is not given back to the pool for reuse.
      broken = rollbackErr as Error;
    }
    throw err;
  } finally {
    client.release(broken);
  }
}

/** Positional parameters of one statement: `add` binds a value and returns its `$n`. */
export class Params {
  readonly values: unknown[] = [];

  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

/**
 * Transaction-scoped advisory lock keys (`pg_advisory_xact_lock(class, key)`): the class
 * says what is locked, the key (a hash of a name) which one. Hangar's classes start at 0x4847 ("HG").
 */
export const LOCK_CLASS = {
  /** Schema migrations (key 0): two processes starting at once (a restart overlapping the old one) migrate one after the other. */
  migrations: 0x48470001,
  /** A team's volumes (key: hash of the team id): the name and count checks of an insert. */
  teamVolumes: 0x48470002,
  /** A template name's versions (key: hash of team and name): the next version. */
  templateVersions: 0x48470003,
  /** A team's startup scripts (key: hash of the team id): the count check of an insert. */
  teamStartupScripts: 0x48470004,
  /** A team's private networks (key: hash of the team id): the name and count checks of an insert. */
  teamNetworks: 0x48470005,
} as const;

/** Take a transaction-scoped advisory lock of `lockClass` on `name` (released at commit or rollback). */
export async function lockName(client: Queryable, lockClass: number, name: string): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [lockClass, name]);
}
