import type pg from 'pg';
import { inTransaction, LOCK_CLASS } from './connection.js';
import { POSTGRES_MIGRATIONS } from './migrations.js';

/** Thrown when the database was migrated by a newer Hangar than this one. */
export class SchemaTooNewError extends Error {
  override name = 'SchemaTooNewError';
  constructor(
    readonly databaseVersion: number,
    readonly knownVersion: number,
  ) {
    super(`the database schema is at version ${databaseVersion}, newer than this Hangar knows (${knownVersion}): upgrade Hangar`);
  }
}

/**
 * Apply the migrations the database has not seen yet, recorded one row each in
 * `schema_migrations`. All of them run in one transaction under an advisory lock: two
 * processes starting at once on one database migrate one after the other (the second finds
 * nothing left to do), and a failed migration leaves the schema as it was.
 * Returns the versions applied.
 */
export async function migrate(pool: pg.Pool, migrations: readonly string[] = POSTGRES_MIGRATIONS): Promise<number[]> {
  return inTransaction(pool, async (client) => {
    // Names and metadata hold any Unicode text, and the string order (hangar_utf16_order) needs it.
    const [encoding] = (await client.query<{ encoding: string }>("SELECT current_setting('server_encoding') AS encoding")).rows;
    if (encoding?.encoding !== 'UTF8') {
      throw new Error(`the database's encoding is ${encoding?.encoding ?? 'unknown'}; Hangar needs UTF8 (CREATE DATABASE ... ENCODING 'UTF8' TEMPLATE template0)`);
    }
    // Another server may be migrating: wait for it however long it takes (not the busy timeout).
    await client.query('SET LOCAL lock_timeout = 0');
    await client.query('SELECT pg_advisory_xact_lock($1, 0)', [LOCK_CLASS.migrations]);
    await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at bigint NOT NULL)');
    const { rows } = await client.query<{ version: number }>('SELECT coalesce(max(version), 0) AS version FROM schema_migrations');
    const current = rows[0]?.version ?? 0;
    if (current > migrations.length) throw new SchemaTooNewError(current, migrations.length);
    const applied: number[] = [];
    for (let i = current; i < migrations.length; i++) {
      await client.query(migrations[i]!);
      await client.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [i + 1, Date.now()]);
      applied.push(i + 1);
    }
    return applied;
  });
}
