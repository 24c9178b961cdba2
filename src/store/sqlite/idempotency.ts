import type Database from 'better-sqlite3';
import type { IdempotencyRecord, IdempotencyStore } from '../store.js';

interface IdempotencyRow {
  team_id: string;
  key: string;
  request_hash: string;
  machine_id: string;
  created_at: number;
}

/** Create results in `idempotency_keys`, so a retried create returns the first machine. */
export class SqliteIdempotency implements IdempotencyStore {
  private readonly stmts;

  constructor(db: Database.Database) {
    this.stmts = {
      get: db.prepare<[string, string], IdempotencyRow>('SELECT * FROM idempotency_keys WHERE team_id = ? AND key = ?'),
      insert: db.prepare('INSERT INTO idempotency_keys (team_id, key, request_hash, machine_id, created_at) VALUES (?, ?, ?, ?, ?)'),
      purge: db.prepare('DELETE FROM idempotency_keys WHERE created_at <= ?'),
    };
  }

  async getIdempotency(teamId: string, key: string): Promise<IdempotencyRecord | null> {
    const r = this.stmts.get.get(teamId, key);
    return r ? { teamId: r.team_id, key: r.key, requestHash: r.request_hash, machineId: r.machine_id, createdAt: r.created_at } : null;
  }

  async insertIdempotency(rec: IdempotencyRecord): Promise<void> {
    this.stmts.insert.run(rec.teamId, rec.key, rec.requestHash, rec.machineId, rec.createdAt);
  }

  async purgeIdempotency(before: number): Promise<number> {
    return this.stmts.purge.run(before).changes;
  }
}
