import type Database from 'better-sqlite3';
import type { HostRecord, HostState } from '../../domain/host.js';
import { hostFromRow, type HostRow } from '../host-rows.js';
import type { HostStore } from '../store.js';

/** Hosts in `hosts`. Marking down runs in one IMMEDIATE transaction: processes sharing the file take turns. */
export class SqliteHosts implements Omit<HostStore, 'watchHosts'> {
  private readonly stmts;

  constructor(private readonly db: Database.Database) {
    this.stmts = {
      put: db.prepare(
        'INSERT INTO hosts (id, state, url, capacity_machines, started_at, heartbeat_at, down_reason, snapshot_store) ' +
          "VALUES (@id, 'up', @url, @capacity_machines, @started_at, @started_at, NULL, @snapshot_store) " +
          "ON CONFLICT (id) DO UPDATE SET state = CASE WHEN hosts.state = 'draining' THEN 'draining' ELSE 'up' END, url = excluded.url, capacity_machines = excluded.capacity_machines, " +
          'started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, down_reason = NULL, snapshot_store = excluded.snapshot_store',
      ),
      state: db.prepare<[string], { state: string }>('SELECT state FROM hosts WHERE id = ?'),
      beat: db.prepare("UPDATE hosts SET heartbeat_at = ?, state = CASE WHEN state = 'draining' THEN 'draining' ELSE 'up' END, down_reason = NULL WHERE id = ?"),
      drain: db.prepare("UPDATE hosts SET state = ? WHERE id = ? AND state IN ('up', 'draining')"),
      stop: db.prepare("UPDATE hosts SET state = 'stopped', heartbeat_at = ? WHERE id = ?"),
      forget: db.prepare<[number], { id: string }>(
        "DELETE FROM hosts WHERE state IN ('down', 'stopped') AND heartbeat_at < ? " +
          "AND NOT EXISTS (SELECT 1 FROM machines m WHERE m.host_id = hosts.id AND m.status <> 'destroyed') RETURNING id",
      ),
      get: db.prepare<[string], HostRow>('SELECT * FROM hosts WHERE id = ?'),
      list: db.prepare<[], HostRow>('SELECT * FROM hosts ORDER BY id'),
      stale: db.prepare<[number, string], HostRow>("SELECT * FROM hosts WHERE state IN ('up', 'draining') AND heartbeat_at < ? AND id <> ? ORDER BY id"),
      down: db.prepare("UPDATE hosts SET state = 'down', down_reason = ? WHERE id = ? AND state IN ('up', 'draining')"),
      move: db.prepare("UPDATE machines SET host_id = ?, private_ip = NULL, updated_at = ? WHERE id = ? AND host_id = ? AND status = 'paused'"),
      loads: db.prepare<[], { host_id: string; n: number }>(
        "SELECT host_id, COUNT(*) AS n FROM machines WHERE host_id IS NOT NULL AND status IN ('creating', 'running', 'paused') GROUP BY host_id",
      ),
    };
  }

  async movePausedMachine(id: string, from: string, to: string, at: number): Promise<boolean> {
    return this.stmts.move.run(to, at, id, from).changes === 1;
  }

  async registerHost(h: HostRecord): Promise<void> {
    this.stmts.put.run({ id: h.id, url: h.url, capacity_machines: h.capacityMachines, started_at: h.startedAt, snapshot_store: h.snapshotStore });
  }

  async heartbeatHost(id: string, at: number): Promise<HostState | null> {
    return this.db.transaction(() => {
      const row = this.stmts.state.get(id);
      if (!row) return null;
      this.stmts.beat.run(at, id);
      return row.state as HostState;
    }).immediate();
  }

  async stopHost(id: string, at: number): Promise<void> {
    this.stmts.stop.run(at, id);
  }

  async setHostDraining(id: string, draining: boolean): Promise<HostRecord | null> {
    this.stmts.drain.run(draining ? 'draining' : 'up', id);
    return this.getHost(id);
  }

  async getHost(id: string): Promise<HostRecord | null> {
    const row = this.stmts.get.get(id);
    return row ? hostFromRow(row) : null;
  }

  async listHosts(): Promise<HostRecord[]> {
    return this.stmts.list.all().map(hostFromRow);
  }

  async markHostsDown(before: number, except: string, reason: (h: HostRecord) => string): Promise<HostRecord[]> {
    return this.db.transaction(() => {
      const marked: HostRecord[] = [];
      for (const row of this.stmts.stale.all(before, except)) {
        const h = hostFromRow(row);
        const why = reason(h);
        this.stmts.down.run(why, h.id);
        marked.push({ ...h, state: 'down', downReason: why });
      }
      return marked;
    }).immediate();
  }

  async forgetHosts(before: number): Promise<string[]> {
    return this.stmts.forget.all(before).map((r) => r.id).sort();
  }

  async hostLoads(): Promise<Map<string, number>> {
    return new Map(this.stmts.loads.all().map((r) => [r.host_id, r.n]));
  }
}
