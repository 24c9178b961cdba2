import type pg from 'pg';
import type { MachineRecord } from '../../domain/machine.js';
import type { WarmPool } from '../../domain/warm-pool.js';
import type { WarmPoolStore } from '../store.js';
import { rowsOf } from './connection.js';
import { machineFromRow, type MachineRow } from './machine-rows.js';

interface PoolRow {
  name: string;
  template: string;
  config: string;
  size: number;
  hits: number;
  misses: number;
  last_error: string | null;
  created_at: number;
  updated_at: number;
}

const fromRow = (r: PoolRow): WarmPool => ({
  name: r.name,
  template: r.template,
  config: JSON.parse(r.config),
  size: r.size,
  hits: r.hits,
  misses: r.misses,
  lastError: r.last_error,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/** Warm pools in `warm_pools`; their idle machines are `machines` rows with `pool` set. */
export class PostgresWarmPools implements WarmPoolStore {
  constructor(private readonly pool: pg.Pool) {}

  async putWarmPool(p: WarmPool): Promise<void> {
    await this.pool.query(
      'INSERT INTO warm_pools (name, template, config, size, hits, misses, last_error, created_at, updated_at) ' +
        'VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ' +
        'ON CONFLICT (name) DO UPDATE SET template = excluded.template, config = excluded.config, size = excluded.size, ' +
        'hits = excluded.hits, misses = excluded.misses, last_error = excluded.last_error, updated_at = excluded.updated_at',
      [p.name, p.template, JSON.stringify(p.config), p.size, p.hits, p.misses, p.lastError, p.createdAt, p.updatedAt],
    );
  }

  async getWarmPool(name: string): Promise<WarmPool | null> {
    const [r] = await rowsOf<PoolRow>(this.pool, 'SELECT * FROM warm_pools WHERE name = $1', [name]);
    return r ? fromRow(r) : null;
  }

  async listWarmPools(): Promise<WarmPool[]> {
    return (await rowsOf<PoolRow>(this.pool, 'SELECT * FROM warm_pools ORDER BY name')).map(fromRow);
  }

  async deleteWarmPool(name: string): Promise<void> {
    await this.pool.query('DELETE FROM warm_pools WHERE name = $1', [name]);
  }

  async setWarmPoolError(name: string, error: string | null): Promise<void> {
    await this.pool.query('UPDATE warm_pools SET last_error = $1 WHERE name = $2', [error, name]);
  }

  async countPoolCheckout(name: string, hit: boolean): Promise<void> {
    await this.pool.query(hit ? 'UPDATE warm_pools SET hits = hits + 1 WHERE name = $1' : 'UPDATE warm_pools SET misses = misses + 1 WHERE name = $1', [name]);
  }

  async poolMachines(name: string, hostId?: string): Promise<MachineRecord[]> {
    const onHost = hostId === undefined ? '' : ' AND host_id = $2';
    const params = hostId === undefined ? [name] : [name, hostId];
    return (await rowsOf<MachineRow>(this.pool, `SELECT * FROM machines WHERE pool = $1 AND status = 'running'${onHost} ORDER BY created_at, id`, params)).map(machineFromRow);
  }

  async claimPoolMachine(name: string, teamId: string, hostId?: string): Promise<MachineRecord | null> {
    // One statement (its own transaction): the oldest idle machine no concurrent claim holds
    // is locked and taken; a claim skips rows another has locked rather than waiting for them.
    const [claimed] = await rowsOf<MachineRow>(
      this.pool,
      'UPDATE machines SET pool = NULL, team_id = $1 WHERE id = (' +
        `SELECT id FROM machines WHERE pool = $2 AND status = 'running'${hostId === undefined ? '' : ' AND host_id = $3'} ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED` +
        ') RETURNING *',
      hostId === undefined ? [teamId, name] : [teamId, name, hostId],
    );
    return claimed ? machineFromRow(claimed) : null;
  }
}
