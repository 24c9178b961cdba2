import type pg from 'pg';
import type { IdempotencyRecord, IdempotencyStore } from '../store.js';
import { changesOf, rowsOf } from './connection.js';

interface IdempotencyRow {
  team_id: string;
  key: string;
  request_hash: string;
  machine_id: string;
  created_at: number;
}

/** Create results in `idempotency_keys`, so a retried create returns the first machine. */
export class PostgresIdempotency implements IdempotencyStore {
  constructor(private readonly pool: pg.Pool) {}

  async getIdempotency(teamId: string, key: string): Promise<IdempotencyRecord | null> {
    const [r] = await rowsOf<IdempotencyRow>(this.pool, 'SELECT * FROM idempotency_keys WHERE team_id = $1 AND key = $2', [teamId, key]);
    return r ? { teamId: r.team_id, key: r.key, requestHash: r.request_hash, machineId: r.machine_id, createdAt: r.created_at } : null;
  }

  async insertIdempotency(rec: IdempotencyRecord): Promise<void> {
    await this.pool.query(
      'INSERT INTO idempotency_keys (team_id, key, request_hash, machine_id, created_at) VALUES ($1, $2, $3, $4, $5)',
      [rec.teamId, rec.key, rec.requestHash, rec.machineId, rec.createdAt],
    );
  }

  async purgeIdempotency(before: number): Promise<number> {
    return changesOf(this.pool, 'DELETE FROM idempotency_keys WHERE created_at <= $1', [before]);
  }
}
