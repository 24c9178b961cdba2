import type Database from 'better-sqlite3';
import type { TemplateBuildRecord } from '../../domain/template.js';
import type { TemplateStore } from '../store.js';

interface BuildRow {
  id: string;
  team_id: string;
  name: string;
  version: number;
  status: string;
  spec: string;
  result: string | null;
  error: string | null;
  created_at: number;
  finished_at: number | null;
  deleted_at: number | null;
  host_id: string | null;
}

/** Server-wide templates are stored under team '' (a NULL would defeat the unique version index). */
const teamKey = (teamId: string | null): string => teamId ?? '';

const toRow = (b: TemplateBuildRecord): BuildRow => ({
  id: b.id,
  team_id: teamKey(b.teamId),
  name: b.name,
  version: b.version,
  status: b.status,
  spec: JSON.stringify(b.spec),
  result: b.result === null ? null : JSON.stringify(b.result),
  error: b.error === null ? null : JSON.stringify(b.error),
  created_at: b.createdAt,
  finished_at: b.finishedAt,
  deleted_at: b.deletedAt,
  host_id: b.hostId,
});

const fromRow = (r: BuildRow): TemplateBuildRecord => ({
  id: r.id,
  teamId: r.team_id === '' ? null : r.team_id,
  name: r.name,
  version: r.version,
  status: r.status as TemplateBuildRecord['status'],
  spec: JSON.parse(r.spec),
  result: r.result === null ? null : JSON.parse(r.result),
  error: r.error === null ? null : JSON.parse(r.error),
  createdAt: r.created_at,
  finishedAt: r.finished_at,
  deletedAt: r.deleted_at,
  hostId: r.host_id ?? null,
});

/** Template builds in `template_builds`. */
export class SqliteTemplates implements TemplateStore {
  private readonly stmts;
  private readonly insertNext;

  constructor(db: Database.Database) {
    this.stmts = {
      nextVersion: db.prepare<[string, string], { v: number }>('SELECT COALESCE(MAX(version), 0) + 1 AS v FROM template_builds WHERE team_id = ? AND name = ?'),
      insert: db.prepare(
        'INSERT INTO template_builds (id, team_id, name, version, status, spec, result, error, created_at, finished_at, deleted_at, host_id) ' +
          'VALUES (@id, @team_id, @name, @version, @status, @spec, @result, @error, @created_at, @finished_at, @deleted_at, @host_id)',
      ),
      update: db.prepare(
        'UPDATE template_builds SET status = @status, result = @result, error = @error, finished_at = @finished_at, deleted_at = @deleted_at WHERE id = @id',
      ),
      get: db.prepare<[string], BuildRow>('SELECT * FROM template_builds WHERE id = ?'),
      latest: db.prepare<[string, string], BuildRow>(
        'SELECT * FROM template_builds WHERE team_id = ? AND name = ? AND deleted_at IS NULL ORDER BY version DESC LIMIT 1',
      ),
      current: db.prepare<[string, string], BuildRow>(
        "SELECT * FROM template_builds WHERE team_id = ? AND name = ? AND deleted_at IS NULL AND status = 'ready' ORDER BY version DESC LIMIT 1",
      ),
      page: db.prepare<[string, string, number], BuildRow>(
        'SELECT b.* FROM template_builds b WHERE b.team_id IN (?, \'\') AND b.deleted_at IS NULL AND b.name > ? ' +
          'AND b.version = (SELECT MAX(version) FROM template_builds o WHERE o.team_id = b.team_id AND o.name = b.name AND o.deleted_at IS NULL) ' +
          'ORDER BY b.name, b.team_id DESC LIMIT ?',
      ),
      remove: db.prepare('UPDATE template_builds SET deleted_at = ? WHERE team_id = ? AND name = ? AND deleted_at IS NULL'),
      all: db.prepare<[], BuildRow>('SELECT * FROM template_builds ORDER BY created_at, id'),
      drop: db.prepare('DELETE FROM template_builds WHERE id = ?'),
      machinesOn: db.prepare<[string], { n: number }>("SELECT COUNT(*) AS n FROM machines WHERE template_build = ? AND status <> 'destroyed'"),
      snapshotsOn: db.prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM snapshots WHERE template_build = ?'),
    };
    // The version is taken and the row inserted in one transaction: two builds of a name never share one.
    this.insertNext = db.transaction((b: TemplateBuildRecord): number => {
      const version = this.stmts.nextVersion.get(teamKey(b.teamId), b.name)!.v;
      this.stmts.insert.run(toRow({ ...b, version }));
      return version;
    });
  }

  async insertTemplateBuild(b: TemplateBuildRecord): Promise<number> {
    return this.insertNext(b);
  }

  async updateTemplateBuild(b: TemplateBuildRecord): Promise<void> {
    this.stmts.update.run(toRow(b));
  }

  async getTemplateBuild(id: string): Promise<TemplateBuildRecord | null> {
    const r = this.stmts.get.get(id);
    return r ? fromRow(r) : null;
  }

  async latestTemplateBuild(teamId: string | null, name: string): Promise<TemplateBuildRecord | null> {
    const r = this.stmts.latest.get(teamKey(teamId), name);
    return r ? fromRow(r) : null;
  }

  async currentTemplate(teamId: string | null, name: string): Promise<TemplateBuildRecord | null> {
    const r = this.stmts.current.get(teamKey(teamId), name);
    return r ? fromRow(r) : null;
  }

  async pageTemplates(teamId: string, after: string | null, limit: number): Promise<TemplateBuildRecord[]> {
    return this.stmts.page.all(teamId, after ?? '', limit).map(fromRow);
  }

  async deleteTemplateName(teamId: string | null, name: string, at: number): Promise<number> {
    return this.stmts.remove.run(at, teamKey(teamId), name).changes;
  }

  async templateBuildUsers(id: string): Promise<{ machines: number; snapshots: number }> {
    return { machines: this.stmts.machinesOn.get(id)!.n, snapshots: this.stmts.snapshotsOn.get(id)!.n };
  }

  async allTemplateBuilds(): Promise<TemplateBuildRecord[]> {
    return this.stmts.all.all().map(fromRow);
  }

  async dropTemplateBuild(id: string): Promise<void> {
    this.stmts.drop.run(id);
  }
}
