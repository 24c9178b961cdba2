import type Database from 'better-sqlite3';
import type { MachineEventRecord } from '../../domain/machine-event.js';
import type { StartupScriptRun } from '../../domain/startup-script.js';
import type { EventHostScope, MachineEventListQuery, MachineEventStore } from '../store.js';
import { VISIBLE_MACHINE } from './access.js';

interface EventRow {
  id: string;
  team_id: string;
  machine_id: string;
  name: string;
  state: string;
  error: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  startup_script: string | null;
}

const toRow = (e: MachineEventRecord): EventRow => ({
  id: e.id,
  team_id: e.teamId,
  machine_id: e.machineId,
  name: e.name,
  state: e.state,
  error: e.error,
  created_at: e.createdAt,
  started_at: e.startedAt,
  finished_at: e.finishedAt,
  startup_script: e.startupScript === null ? null : JSON.stringify(e.startupScript),
});

const fromRow = (r: EventRow): MachineEventRecord => ({
  id: r.id,
  teamId: r.team_id,
  machineId: r.machine_id,
  name: r.name as MachineEventRecord['name'],
  state: r.state as MachineEventRecord['state'],
  error: r.error,
  createdAt: r.created_at,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  startupScript: r.startup_script ? (JSON.parse(r.startup_script) as StartupScriptRun) : null,
});

/** Machine events in `machine_events`. */
export class SqliteMachineEvents implements MachineEventStore {
  private readonly stmts;

  constructor(private readonly db: Database.Database) {
    this.stmts = {
      insert: db.prepare(
        'INSERT INTO machine_events (id, team_id, machine_id, name, state, error, created_at, started_at, finished_at, startup_script) ' +
          'VALUES (@id, @team_id, @machine_id, @name, @state, @error, @created_at, @started_at, @finished_at, @startup_script)',
      ),
      update: db.prepare(
        'UPDATE machine_events SET team_id = @team_id, machine_id = @machine_id, name = @name, state = @state, error = @error, ' +
          'created_at = @created_at, started_at = @started_at, finished_at = @finished_at, startup_script = @startup_script WHERE id = @id',
      ),
      get: db.prepare<[string], EventRow>('SELECT * FROM machine_events WHERE id = ?'),
      failUnfinishedNotElsewhere: db.prepare(
        "UPDATE machine_events SET state = 'error', error = ?, started_at = coalesce(started_at, ?), finished_at = ? WHERE state IN ('new', 'in progress') " +
          'AND machine_id NOT IN (SELECT id FROM machines WHERE host_id IS NOT NULL AND host_id <> ?)',
      ),
      failUnfinishedOnHost: db.prepare(
        "UPDATE machine_events SET state = 'error', error = ?, started_at = coalesce(started_at, ?), finished_at = ? WHERE state IN ('new', 'in progress') " +
          'AND machine_id IN (SELECT id FROM machines WHERE host_id = ?)',
      ),
      failUnfinished: db.prepare(
        "UPDATE machine_events SET state = 'error', error = ?, started_at = coalesce(started_at, ?), finished_at = ? WHERE state IN ('new', 'in progress')",
      ),
    };
  }

  async insertMachineEvent(e: MachineEventRecord): Promise<void> {
    this.stmts.insert.run(toRow(e));
  }

  async updateMachineEvent(e: MachineEventRecord): Promise<void> {
    this.stmts.update.run(toRow(e));
  }

  async getMachineEvent(id: string): Promise<MachineEventRecord | null> {
    const r = this.stmts.get.get(id);
    return r ? fromRow(r) : null;
  }

  async listMachineEvents(q: MachineEventListQuery): Promise<MachineEventRecord[]> {
    if (q.limit === 0) return [];
    const where = ['team_id = ?'];
    const args: unknown[] = [q.teamId];
    if (q.machineId !== undefined) {
      where.push('machine_id = ?');
      args.push(q.machineId);
    }
    if (q.name !== undefined) {
      where.push('name = ?');
      args.push(q.name);
    }
    if (q.visibleTo !== undefined) {
      where.push(`machine_id IN (SELECT id FROM machines WHERE ${VISIBLE_MACHINE})`);
      args.push(q.visibleTo, q.visibleTo);
    }
    const cmp = q.order === 'asc' ? '>' : '<';
    if (q.after) {
      where.push(`(created_at ${cmp} ? OR (created_at = ? AND id ${cmp} ?))`);
      args.push(q.after.createdAt, q.after.createdAt, q.after.id);
    }
    const dir = q.order === 'asc' ? 'ASC' : 'DESC';
    let sql = `SELECT * FROM machine_events WHERE ${where.join(' AND ')} ORDER BY created_at ${dir}, id ${dir}`;
    if (q.limit !== undefined) {
      sql += ' LIMIT ?';
      args.push(q.limit);
    }
    return this.db.prepare<unknown[], EventRow>(sql).all(...args).map(fromRow);
  }

  async failUnfinishedMachineEvents(error: string, at: number, scope?: EventHostScope): Promise<number> {
    if (scope === undefined) return this.stmts.failUnfinished.run(error, at, at).changes;
    const stmt = scope.unhosted ? this.stmts.failUnfinishedNotElsewhere : this.stmts.failUnfinishedOnHost;
    return stmt.run(error, at, at, scope.hostId).changes;
  }
}
