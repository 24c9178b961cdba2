import type pg from 'pg';
import type { MetaStore } from '../store.js';

/** Server-wide settings in the `meta` table. */
export class PostgresMeta implements MetaStore {
  constructor(private readonly pool: pg.Pool) {}

  async getMeta(key: string): Promise<string | null> {
    const { rows } = await this.pool.query<{ value: string }>('SELECT value FROM meta WHERE key = $1', [key]);
    return rows[0]?.value ?? null;
  }

  async putMetaIfAbsent(key: string, value: string): Promise<string> {
    // Inserted, or else the value another writer got in first: one of the two rows answers.
    const inserted = await this.pool.query<{ value: string }>('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING value', [key, value]);
    if (inserted.rows[0]) return inserted.rows[0].value;
    return (await this.getMeta(key))!;
  }
}
