import type pg from 'pg';
import type { TemplateBuildRecord } from '../../domain/template.js';
import type { TemplateStore } from '../store.js';
import { changesOf, inTransaction, LOCK_CLASS, lockName, rowsOf } from './connection.js';

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

/** Server-wide templates are stored under team '' (a NULL would defeat the unique version). */
const teamKey = (teamId: string | null): string => teamId ?? '';

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

const json = (v: unknown): string | null => (v === null ? null : JSON.stringify(v));

/** Template builds in `template_builds`. */
export class PostgresTemplates implements TemplateStore {
  constructor(private readonly pool: pg.Pool) {}

  async insertTemplateBuild(b: TemplateBuildRecord): Promise<number> {
    // The version is taken and the row inserted under a lock on the name: two builds of a name never share one.
    return inTransaction(this.pool, async (tx) => {
      const team = teamKey(b.teamId);
      await lockName(tx, LOCK_CLASS.templateVersions, `${team}/${b.name}`);
      const [next] = await rowsOf<{ v: number }>(tx, 'SELECT coalesce(max(version), 0) + 1 AS v FROM template_builds WHERE team_id = $1 AND name = $2', [team, b.name]);
      const version = next!.v;
      await tx.query(
        'INSERT INTO template_builds (id, team_id, name, version, status, spec, result, error, created_at, finished_at, deleted_at, host_id) ' +
          'VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)',
        [b.id, team, b.name, version, b.status, JSON.stringify(b.spec), json(b.result), json(b.error), b.createdAt, b.finishedAt, b.deletedAt, b.hostId],
      );
      return version;
    });
  }

  async updateTemplateBuild(b: TemplateBuildRecord): Promise<void> {
    await this.pool.query(
      'UPDATE template_builds SET status = $2, result = $3, error = $4, finished_at = $5, deleted_at = $6 WHERE id = $1',
      [b.id, b.status, json(b.result), json(b.error), b.finishedAt, b.deletedAt],
    );
  }

  async getTemplateBuild(id: string): Promise<TemplateBuildRecord | null> {
    const [r] = await rowsOf<BuildRow>(this.pool, 'SELECT * FROM template_builds WHERE id = $1', [id]);
    return r ? fromRow(r) : null;
  }

  async latestTemplateBuild(teamId: string | null, name: string): Promise<TemplateBuildRecord | null> {
    const [r] = await rowsOf<BuildRow>(
      this.pool,
      'SELECT * FROM template_builds WHERE team_id = $1 AND name = $2 AND deleted_at IS NULL ORDER BY version DESC LIMIT 1',
      [teamKey(teamId), name],
    );
    return r ? fromRow(r) : null;
  }

  async currentTemplate(teamId: string | null, name: string): Promise<TemplateBuildRecord | null> {
    const [r] = await rowsOf<BuildRow>(
      this.pool,
      "SELECT * FROM template_builds WHERE team_id = $1 AND name = $2 AND deleted_at IS NULL AND status = 'ready' ORDER BY version DESC LIMIT 1",
      [teamKey(teamId), name],
    );
    return r ? fromRow(r) : null;
  }

  async pageTemplates(teamId: string, after: string | null, limit: number): Promise<TemplateBuildRecord[]> {
    const rows = await rowsOf<BuildRow>(
      this.pool,
      "SELECT b.* FROM template_builds b WHERE b.team_id IN ($1, '') AND b.deleted_at IS NULL AND b.name > $2 " +
        'AND b.version = (SELECT max(version) FROM template_builds o WHERE o.team_id = b.team_id AND o.name = b.name AND o.deleted_at IS NULL) ' +
        'ORDER BY b.name, b.team_id DESC LIMIT $3',
      [teamId, after ?? '', limit],
    );
    return rows.map(fromRow);
  }

  async deleteTemplateName(teamId: string | null, name: string, at: number): Promise<number> {
    return changesOf(this.pool, 'UPDATE template_builds SET deleted_at = $1 WHERE team_id = $2 AND name = $3 AND deleted_at IS NULL', [at, teamKey(teamId), name]);
  }

  async templateBuildUsers(id: string): Promise<{ machines: number; snapshots: number }> {
    const [r] = await rowsOf<{ machines: number; snapshots: number }>(
      this.pool,
      "SELECT (SELECT count(*) FROM machines WHERE template_build = $1 AND status <> 'destroyed') AS machines, " +
        '(SELECT count(*) FROM snapshots WHERE template_build = $1) AS snapshots',
      [id],
    );
    return { machines: r!.machines, snapshots: r!.snapshots };
  }

  async allTemplateBuilds(): Promise<TemplateBuildRecord[]> {
    return (await rowsOf<BuildRow>(this.pool, 'SELECT * FROM template_builds ORDER BY created_at, id')).map(fromRow);
  }

  async dropTemplateBuild(id: string): Promise<void> {
    await this.pool.query('DELETE FROM template_builds WHERE id = $1', [id]);
  }
}
