import type Database from 'better-sqlite3';
import type { MachineRecord } from '../../domain/machine.js';
import type { WarmPool } from '../../domain/warm-pool.js';
import type { WarmPoolStore } from '../store.js';
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
export class SqliteWarmPools implements WarmPoolStore {
  private readonly stmts;

  constructor(db: Database.Database) {
    this.stmts = {
      put: db.prepare(
        'INSERT INTO warm_pools (name, template, config, size, hits, misses, last_error, created_at, updated_at) ' +
          'VALUES (@name, @template, @config, @size, @hits, @misses, @last_error, @created_at, @updated_at) ' +
          'ON CONFLICT (name) DO UPDATE SET template = excluded.template, config = excluded.config, size = excluded.size, ' +
          'hits = excluded.hits, misses = excluded.misses, last_error = excluded.last_error, updated_at = excluded.updated_at',
      ),
      get: db.prepare<[string], PoolRow>('SELECT * FROM warm_pools WHERE name = ?'),
      list: db.prepare<[], PoolRow>('SELECT * FROM warm_pools ORDER BY name'),
      delete: db.prepare('DELETE FROM warm_pools WHERE name = ?'),
      setError: db.prepare('UPDATE warm_pools SET last_error = ? WHERE name = ?'),
      hit: db.prepare('UPDATE warm_pools SET hits = hits + 1 WHERE name = ?'),
      miss: db.prepare('UPDATE warm_pools SET misses = misses + 1 WHERE name = ?'),
      machines: db.prepare<[string], MachineRow>("SELECT * FROM machines WHERE pool = ? AND status = 'running' ORDER BY created_at, id"),
      machinesOnHost: db.prepare<[string, string], MachineRow>("SELECT * FROM machines WHERE pool = ? AND status = 'running' AND host_id = ? ORDER BY created_at, id"),
      claimOnHost: db.prepare<[string, string, string], MachineRow>(
        "UPDATE machines SET pool = NULL, team_id = ? WHERE id = (SELECT id FROM machines WHERE pool = ? AND status = 'running' AND host_id = ? ORDER BY created_at, id LIMIT 1) RETURNING *",
      ),
      claim: db.prepare<[string, string], MachineRow>(
        "UPDATE machines SET pool = NULL, team_id = ? WHERE id = (SELECT id FROM machines WHERE pool = ? AND status = 'running' ORDER BY created_at, id LIMIT 1) RETURNING *",
      ),
    };
  }

  async putWarmPool(p: WarmPool): Promise<void> {
    this.stmts.put.run({
      name: p.name, template: p.template, config: JSON.stringify(p.config), size: p.size, hits: p.hits, misses: p.misses,
      last_error: p.lastError, created_at: p.createdAt, updated_at: p.updatedAt,
    });
  }

  async getWarmPool(name: string): Promise<WarmPool | null> {
    const r = this.stmts.get.get(name);
    return r ? fromRow(r) : null;
  }

  async listWarmPools(): Promise<WarmPool[]> {
    return this.stmts.list.all().map(fromRow);
  }

  async deleteWarmPool(name: string): Promise<void> {
    this.stmts.delete.run(name);
  }

  async setWarmPoolError(name: string, error: string | null): Promise<void> {
    this.stmts.setError.run(error, name);
  }

  async countPoolCheckout(name: string, hit: boolean): Promise<void> {
    (hit ? this.stmts.hit : this.stmts.miss).run(name);
  }

  async poolMachines(name: string, hostId?: string): Promise<MachineRecord[]> {
    return (hostId === undefined ? this.stmts.machines.all(name) : this.stmts.machinesOnHost.all(name, hostId)).map(machineFromRow);
  }

  async claimPoolMachine(name: string, teamId: string, hostId?: string): Promise<MachineRecord | null> {
    // One UPDATE ... RETURNING: atomic, also between processes sharing the file.
    const claimed = hostId === undefined ? this.stmts.claim.get(teamId, name) : this.stmts.claimOnHost.get(teamId, name, hostId);
    return claimed ? machineFromRow(claimed) : null;
  }
}
