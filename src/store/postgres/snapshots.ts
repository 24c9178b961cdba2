import type pg from 'pg';
import type { SnapshotRecord } from '../../domain/snapshot.js';
import type { SnapshotStore } from '../store.js';
import { rowsOf } from './connection.js';
import { volumesFromColumn, volumesToColumn } from './machine-rows.js';

interface SnapshotRow {
  id: string;
  team_id: string;
  machine_id: string;
  kind: string;
  created_at: number;
  size_bytes: number;
  memory: boolean;
  template: string;
  template_build: string | null;
  config: string;
  env: string;
  cwd: string | null;
  volumes: string | null;
}

/** The columns of `snapshots` in the order inserts and updates bind them ($1 is the id). */
const COLUMNS = ['id', 'team_id', 'machine_id', 'kind', 'created_at', 'size_bytes', 'memory', 'template', 'template_build', 'config', 'env', 'cwd', 'volumes'] as const;

const toValues = (s: SnapshotRecord): unknown[] => {
  const row: SnapshotRow = {
    id: s.id,
    team_id: s.teamId,
    machine_id: s.machineId,
    kind: s.kind,
    created_at: s.createdAt,
    size_bytes: s.sizeBytes,
    memory: s.memory,
    template: s.template,
    template_build: s.templateBuild,
    config: JSON.stringify(s.config),
    env: JSON.stringify(s.env),
    cwd: s.cwd,
    volumes: volumesToColumn(s.volumes),
  };
  return COLUMNS.map((c) => row[c]);
};

const fromRow = (r: SnapshotRow): SnapshotRecord => ({
  id: r.id,
  teamId: r.team_id,
  machineId: r.machine_id,
  kind: r.kind as SnapshotRecord['kind'],
  createdAt: r.created_at,
  sizeBytes: r.size_bytes,
  memory: r.memory,
  template: r.template,
  templateBuild: r.template_build,
  config: JSON.parse(r.config),
  env: JSON.parse(r.env),
  cwd: r.cwd,
  volumes: volumesFromColumn(r.volumes),
});

const INSERT_SQL = `INSERT INTO snapshots (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map((_, i) => `$${i + 1}`).join(', ')})`;
const UPDATE_SQL = `UPDATE snapshots SET ${COLUMNS.slice(1).map((c, i) => `${c} = $${i + 2}`).join(', ')} WHERE id = $1`;

/** Snapshot records in `snapshots`. */
export class PostgresSnapshots implements SnapshotStore {
  constructor(private readonly pool: pg.Pool) {}

  async insertSnapshot(snap: SnapshotRecord): Promise<void> {
    await this.pool.query(INSERT_SQL, toValues(snap));
  }

  async updateSnapshot(snap: SnapshotRecord): Promise<void> {
    await this.pool.query(UPDATE_SQL, toValues(snap));
  }

  async getSnapshot(id: string): Promise<SnapshotRecord | null> {
    const [r] = await rowsOf<SnapshotRow>(this.pool, 'SELECT * FROM snapshots WHERE id = $1', [id]);
    return r ? fromRow(r) : null;
  }

  async listSnapshots(teamId: string, machineId?: string): Promise<SnapshotRecord[]> {
    const rows =
      machineId === undefined
        ? await rowsOf<SnapshotRow>(this.pool, 'SELECT * FROM snapshots WHERE team_id = $1 ORDER BY created_at DESC, id DESC', [teamId])
        : await rowsOf<SnapshotRow>(this.pool, 'SELECT * FROM snapshots WHERE team_id = $1 AND machine_id = $2 ORDER BY created_at DESC, id DESC', [teamId, machineId]);
    return rows.map(fromRow);
  }

  async snapshotTotals(): Promise<{ count: number; bytes: number }> {
    // sum(bigint) is numeric, which the driver returns as a string: cast back to bigint.
    const [r] = await rowsOf<{ count: number; bytes: number }>(this.pool, 'SELECT count(*) AS count, coalesce(sum(size_bytes), 0)::bigint AS bytes FROM snapshots');
    return { count: r!.count, bytes: r!.bytes };
  }

  async allSnapshotIds(hostId?: string): Promise<string[]> {
    const rows =
      hostId === undefined
        ? await rowsOf<{ id: string }>(this.pool, 'SELECT id FROM snapshots')
        : await rowsOf<{ id: string }>(this.pool, 'SELECT s.id FROM snapshots s JOIN machines m ON m.id = s.machine_id WHERE m.host_id = $1', [hostId]);
    return rows.map((r) => r.id);
  }

  async deleteSnapshot(id: string): Promise<void> {
    await this.pool.query('DELETE FROM snapshots WHERE id = $1', [id]);
  }
}
