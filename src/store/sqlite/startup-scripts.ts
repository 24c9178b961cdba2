import type Database from 'better-sqlite3';
import type { StartupScriptRecord } from '../../domain/startup-script.js';
import type { StartupScriptStore } from '../store.js';

interface ScriptRow {
  id: string;
  team_id: string;
  name: string;
  script: string;
  run_once: number;
  created_at: number;
}

const fromRow = (r: ScriptRow): StartupScriptRecord => ({
  id: r.id,
  teamId: r.team_id,
  name: r.name,
  script: r.script,
  runOnce: r.run_once === 1,
  createdAt: r.created_at,
});

/** Startup scripts in `startup_scripts`. */
export class SqliteStartupScripts implements StartupScriptStore {
  private readonly stmts;

  constructor(private readonly db: Database.Database) {
    this.stmts = {
      insert: db.prepare('INSERT INTO startup_scripts (id, team_id, name, script, run_once, created_at) VALUES (@id, @team_id, @name, @script, @run_once, @created_at)'),
      count: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM startup_scripts WHERE team_id = ?'),
      get: db.prepare<[string], ScriptRow>('SELECT * FROM startup_scripts WHERE id = ?'),
      list: db.prepare<[string], ScriptRow>('SELECT * FROM startup_scripts WHERE team_id = ? ORDER BY created_at DESC, id DESC'),
      delete: db.prepare('DELETE FROM startup_scripts WHERE id = ?'),
    };
  }

  async insertStartupScript(s: StartupScriptRecord, maxPerTeam: number): Promise<boolean> {
    return this.db.transaction((): boolean => {
      if (this.stmts.count.get(s.teamId)!.n >= maxPerTeam) return false;
      this.stmts.insert.run({ id: s.id, team_id: s.teamId, name: s.name, script: s.script, run_once: s.runOnce ? 1 : 0, created_at: s.createdAt });
      return true;
    })();
  }

  async getStartupScript(id: string): Promise<StartupScriptRecord | null> {
    const r = this.stmts.get.get(id);
    return r ? fromRow(r) : null;
  }

  async listStartupScripts(teamId: string): Promise<StartupScriptRecord[]> {
    return this.stmts.list.all(teamId).map(fromRow);
  }

  async deleteStartupScript(id: string): Promise<boolean> {
    return this.stmts.delete.run(id).changes > 0;
  }
}
