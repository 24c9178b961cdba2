import type pg from 'pg';
import type { HostRecord, HostState } from '../../domain/host.js';
import { hostFromRow, type HostRow } from '../host-rows.js';
import type { HostStore } from '../store.js';
import { inTransaction, rowsOf } from './connection.js';

/** Hosts in `hosts`. Marking down locks the stale rows it marks, skipping rows a concurrent sweep holds. */
export class PostgresHosts implements Omit<HostStore, 'watchHosts'> {
  constructor(private readonly pool: pg.Pool) {}

  async movePausedMachine(id: string, from: string, to: string, at: number): Promise<boolean> {
    const r = await this.pool.query("UPDATE machines SET host_id = $1, private_ip = NULL, updated_at = $2 WHERE id = $3 AND host_id = $4 AND status = 'paused'", [to, at, id, from]);
    return r.rowCount === 1;
  }

  async registerHost(h: HostRecord): Promise<void> {
    await this.pool.query(
      'INSERT INTO hosts (id, state, url, capacity_machines, started_at, heartbeat_at, down_reason, snapshot_store) ' +
        "VALUES ($1, 'up', $2, $3, $4, $4, NULL, $5) " +
        "ON CONFLICT (id) DO UPDATE SET state = CASE WHEN hosts.state = 'draining' THEN 'draining' ELSE 'up' END, url = excluded.url, capacity_machines = excluded.capacity_machines, " +
        'started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, down_reason = NULL, snapshot_store = excluded.snapshot_store',
      [h.id, h.url, h.capacityMachines, h.startedAt, h.snapshotStore],
    );
  }

  async heartbeatHost(id: string, at: number): Promise<HostState | null> {
    // The row is locked before its state is read: a drain or undrain committed meanwhile is kept (in one
    // UPDATE with a self-join, the joined copy is the statement's snapshot, and an undrain could be undone).
    return inTransaction(this.pool, async (tx) => {
      const [row] = await rowsOf<{ state: string }>(tx, 'SELECT state FROM hosts WHERE id = $1 FOR UPDATE', [id]);
      if (!row) return null;
      await tx.query("UPDATE hosts SET heartbeat_at = $1, state = CASE WHEN state = 'draining' THEN 'draining' ELSE 'up' END, down_reason = NULL WHERE id = $2", [at, id]);
      return row.state as HostState;
    });
  }

  async stopHost(id: string, at: number): Promise<void> {
    await this.pool.query("UPDATE hosts SET state = 'stopped', heartbeat_at = $1 WHERE id = $2", [at, id]);
  }

  async setHostDraining(id: string, draining: boolean): Promise<HostRecord | null> {
    await this.pool.query("UPDATE hosts SET state = $1 WHERE id = $2 AND state IN ('up', 'draining')", [draining ? 'draining' : 'up', id]);
    return this.getHost(id);
  }

  async getHost(id: string): Promise<HostRecord | null> {
    const [row] = await rowsOf<HostRow>(this.pool, 'SELECT * FROM hosts WHERE id = $1', [id]);
    return row ? hostFromRow(row) : null;
  }

  async listHosts(): Promise<HostRecord[]> {
    return (await rowsOf<HostRow>(this.pool, 'SELECT * FROM hosts ORDER BY id')).map(hostFromRow);
  }

  async markHostsDown(before: number, except: string, reason: (h: HostRecord) => string): Promise<HostRecord[]> {
    return inTransaction(this.pool, async (tx) => {
      const stale = await rowsOf<HostRow>(
        tx,
        "SELECT * FROM hosts WHERE state IN ('up', 'draining') AND heartbeat_at < $1 AND id <> $2 ORDER BY id FOR UPDATE SKIP LOCKED",
        [before, except],
      );
      const marked: HostRecord[] = [];
      for (const row of stale) {
        const h = hostFromRow(row);
        const why = reason(h);
        await tx.query("UPDATE hosts SET state = 'down', down_reason = $1 WHERE id = $2", [why, h.id]);
        marked.push({ ...h, state: 'down', downReason: why });
      }
      return marked;
    });
  }

  async forgetHosts(before: number): Promise<string[]> {
    const rows = await rowsOf<{ id: string }>(
      this.pool,
      "DELETE FROM hosts h WHERE state IN ('down', 'stopped') AND heartbeat_at < $1 " +
        "AND NOT EXISTS (SELECT 1 FROM machines m WHERE m.host_id = h.id AND m.status <> 'destroyed') RETURNING id",
      [before],
    );
    return rows.map((r) => r.id).sort();
  }

  async hostLoads(): Promise<Map<string, number>> {
    const rows = await rowsOf<{ host_id: string; n: string }>(
      this.pool,
      "SELECT host_id, COUNT(*) AS n FROM machines WHERE host_id IS NOT NULL AND status IN ('creating', 'running', 'paused') GROUP BY host_id",
    );
    return new Map(rows.map((r) => [r.host_id, Number(r.n)]));
  }
}
