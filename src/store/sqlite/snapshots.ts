import type Database from 'better-sqlite3';
import type { SnapshotRecord } from '../../domain/snapshot.js';
import type { SnapshotStore } from '../store.js';
import { volumesFromColumn, volumesToColumn } from './machine-rows.js';

interface SnapshotRow {
  id: string;
  team_id: string;
  machine_id: string;
  kind: string;
  created_at: number;
  size_bytes: number;
  memory: number;
  template: string;
  template_build: string | null;
  config: string;
  env: string;
  cwd: string | null;
  volumes: string | null;
}

const toRow = (s: SnapshotRecord): SnapshotRow => ({
  id: s.id,
  team_id: s.teamId,
  machine_id: s.machineId,
  kind: s.kind,
  created_at: s.createdAt,
  size_bytes: s.sizeBytes,
  memory: s.memory ? 1 : 0,
  template: s.template,
  template_build: s.templateBuild,
  config: JSON.stringify(s.config),
  env: JSON.stringify(s.env),
  cwd: s.cwd,
  volumes: volumesToColumn(s.volumes),
});

const fromRow = (r: SnapshotRow): SnapshotRecord => ({
  id: r.id,
  teamId: r.team_id,
  machineId: r.machine_id,
  kind: r.kind as SnapshotRecord['kind'],
  createdAt: r.created_at,
  sizeBytes: r.size_bytes,
  memory: r.memory === 1,
  template: r.template,
  templateBuild: r.template_build ?? null,
  config: JSON.parse(r.config),
  env: JSON.parse(r.env),
  cwd: r.cwd,
  volumes: volumesFromColumn(r.volumes),
});

/** Snapshot records in `snapshots`. */
export class SqliteSnapshots implements SnapshotStore {
  private readonly stmts;

  constructor(db: Database.Database) {
    this.stmts = {
      insert: db.prepare(
        'INSERT INTO snapshots (id, team_id, machine_id, kind, created_at, size_bytes, memory, template, template_build, config, env, cwd, volumes) ' +
          'VALUES (@id, @team_id, @machine_id, @kind, @created_at, @size_bytes, @memory, @template, @template_build, @config, @env, @cwd, @volumes)',
      ),
      update: db.prepare(
        'UPDATE snapshots SET team_id = @team_id, machine_id = @machine_id, kind = @kind, created_at = @created_at, size_bytes = @size_bytes, ' +
          'memory = @memory, template = @template, template_build = @template_build, config = @config, env = @env, cwd = @cwd, volumes = @volumes WHERE id = @id',
      ),
      get: db.prepare<[string], SnapshotRow>('SELECT * FROM snapshots WHERE id = ?'),
      list: db.prepare<[string], SnapshotRow>('SELECT * FROM snapshots WHERE team_id = ? ORDER BY created_at DESC, id DESC'),
      listOfMachine: db.prepare<[string, string], SnapshotRow>(
        'SELECT * FROM snapshots WHERE team_id = ? AND machine_id = ? ORDER BY created_at DESC, id DESC',
      ),
      allIds: db.prepare<[], { id: string }>('SELECT id FROM snapshots'),
      hostIds: db.prepare<[string], { id: string }>('SELECT s.id FROM snapshots s JOIN machines m ON m.id = s.machine_id WHERE m.host_id = ?'),
      totals: db.prepare<[], { count: number; bytes: number }>('SELECT COUNT(*) AS count, COALESCE(SUM(size_bytes), 0) AS bytes FROM snapshots'),
      delete: db.prepare('DELETE FROM snapshots WHERE id = ?'),
    };
  }

  async insertSnapshot(snap: SnapshotRecord): Promise<void> {
    this.stmts.insert.run(toRow(snap));
  }

  async updateSnapshot(snap: SnapshotRecord): Promise<void> {
    this.stmts.update.run(toRow(snap));
  }

  async getSnapshot(id: string): Promise<SnapshotRecord | null> {
    const r = this.stmts.get.get(id);
    return r ? fromRow(r) : null;
  }

  async listSnapshots(teamId: string, machineId?: string): Promise<SnapshotRecord[]> {
    const rows = machineId === undefined ? this.stmts.list.all(teamId) : this.stmts.listOfMachine.all(teamId, machineId);
    return rows.map(fromRow);
  }

  async snapshotTotals(): Promise<{ count: number; bytes: number }> {
    return this.stmts.totals.get()!;
  }

  async allSnapshotIds(hostId?: string): Promise<string[]> {
    return (hostId === undefined ? this.stmts.allIds.all() : this.stmts.hostIds.all(hostId)).map((r) => r.id);
  }

  async deleteSnapshot(id: string): Promise<void> {
    this.stmts.delete.run(id);
  }
}
