import type pg from 'pg';
import type { MachineEventRecord } from '../../domain/machine-event.js';
import type { StartupScriptRun } from '../../domain/startup-script.js';
import type { EventHostScope, MachineEventListQuery, MachineEventStore } from '../store.js';
import { visibleMachine } from './access.js';
import { changesOf, Params, rowsOf } from './connection.js';

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
  /** JSON of a startup-script event's run; null for other events. */
  startup_script: string | null;
}

/** The values of an event's row: id first, then the columns an update sets. */
const toValues = (e: MachineEventRecord): unknown[] => [
  e.id, e.teamId, e.machineId, e.name, e.state, e.error, e.createdAt, e.startedAt, e.finishedAt,
  e.startupScript === null ? null : JSON.stringify(e.startupScript),
];

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
  startupScript: r.startup_script === null ? null : (JSON.parse(r.startup_script) as StartupScriptRun),
});

/** Machine events in `machine_events`. */
export class PostgresMachineEvents implements MachineEventStore {
  constructor(private readonly pool: pg.Pool) {}

  async insertMachineEvent(e: MachineEventRecord): Promise<void> {
    await this.pool.query(
      'INSERT INTO machine_events (id, team_id, machine_id, name, state, error, created_at, started_at, finished_at, startup_script) ' +
        'VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)',
      toValues(e),
    );
  }

  async updateMachineEvent(e: MachineEventRecord): Promise<void> {
    await this.pool.query(
      'UPDATE machine_events SET team_id = $2, machine_id = $3, name = $4, state = $5, error = $6, created_at = $7, started_at = $8, finished_at = $9, ' +
        'startup_script = $10 WHERE id = $1',
      toValues(e),
    );
  }

  async getMachineEvent(id: string): Promise<MachineEventRecord | null> {
    const [r] = await rowsOf<EventRow>(this.pool, 'SELECT * FROM machine_events WHERE id = $1', [id]);
    return r ? fromRow(r) : null;
  }

  async listMachineEvents(q: MachineEventListQuery): Promise<MachineEventRecord[]> {
    if (q.limit === 0) return [];
    const p = new Params();
    const where = [`team_id = ${p.add(q.teamId)}`];
    if (q.machineId !== undefined) where.push(`machine_id = ${p.add(q.machineId)}`);
    if (q.name !== undefined) where.push(`name = ${p.add(q.name)}`);
    if (q.visibleTo !== undefined) where.push(`machine_id IN (SELECT id FROM machines WHERE ${visibleMachine(p, q.visibleTo)})`);
    const cmp = q.order === 'asc' ? '>' : '<';
    if (q.after) where.push(`(created_at, id) ${cmp} (${p.add(q.after.createdAt)}::bigint, ${p.add(q.after.id)}::text)`);
    const dir = q.order === 'asc' ? 'ASC' : 'DESC';
    let sql = `SELECT * FROM machine_events WHERE ${where.join(' AND ')} ORDER BY created_at ${dir}, id ${dir}`;
    if (q.limit !== undefined) sql += ` LIMIT ${p.add(q.limit)}`;
    return (await rowsOf<EventRow>(this.pool, sql, p.values)).map(fromRow);
  }

  async failUnfinishedMachineEvents(error: string, at: number, scope?: EventHostScope): Promise<number> {
    const onHost =
      scope === undefined
        ? ''
        : scope.unhosted
          ? ' AND machine_id NOT IN (SELECT id FROM machines WHERE host_id IS NOT NULL AND host_id <> $3)'
          : ' AND machine_id IN (SELECT id FROM machines WHERE host_id = $3)';
    return changesOf(
      this.pool,
      `UPDATE machine_events SET state = 'error', error = $1, started_at = coalesce(started_at, $2), finished_at = $2 WHERE state IN ('new', 'in progress')${onHost}`,
      scope === undefined ? [error, at] : [error, at, scope.hostId],
    );
  }
}
