import type Database from 'better-sqlite3';
import type { MetaStore } from '../store.js';

/** Server-wide settings in the `meta` table. */
export class SqliteMeta implements MetaStore {
  private readonly stmts;

  constructor(db: Database.Database) {
    this.stmts = {
      get: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      putIfAbsent: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING'),
    };
  }

  async getMeta(key: string): Promise<string | null> {
    return this.stmts.get.get(key)?.value ?? null;
  }

  async putMetaIfAbsent(key: string, value: string): Promise<string> {
    this.stmts.putIfAbsent.run(key, value);
    return this.stmts.get.get(key)!.value;
  }
}
