import type pg from 'pg';
import type { StartupScriptRecord } from '../../domain/startup-script.js';
import type { StartupScriptStore } from '../store.js';
import { changesOf, inTransaction, LOCK_CLASS, lockName, rowsOf } from './connection.js';

interface ScriptRow {
  id: string;
  team_id: string;
  name: string;
  script: string;
  run_once: boolean;
  created_at: number;
}

const fromRow = (r: ScriptRow): StartupScriptRecord => ({
  id: r.id,
  teamId: r.team_id,
  name: r.name,
  script: r.script,
  runOnce: r.run_once,
  createdAt: r.created_at,
});

/** Startup scripts in `startup_scripts`. */
export class PostgresStartupScripts implements StartupScriptStore {
  constructor(private readonly pool: pg.Pool) {}

  async insertStartupScript(s: StartupScriptRecord, maxPerTeam: number): Promise<boolean> {
    return inTransaction(this.pool, async (tx) => {
      // One insert per team at a time, so the count holds until the commit.
      await lockName(tx, LOCK_CLASS.teamStartupScripts, s.teamId);
      const [count] = await rowsOf<{ n: number }>(tx, 'SELECT count(*) AS n FROM startup_scripts WHERE team_id = $1', [s.teamId]);
      if (count!.n >= maxPerTeam) return false;
      await tx.query(
        'INSERT INTO startup_scripts (id, team_id, name, script, run_once, created_at) VALUES ($1, $2, $3, $4, $5, $6)',
        [s.id, s.teamId, s.name, s.script, s.runOnce, s.createdAt],
      );
      return true;
    });
  }

  async getStartupScript(id: string): Promise<StartupScriptRecord | null> {
    const [r] = await rowsOf<ScriptRow>(this.pool, 'SELECT * FROM startup_scripts WHERE id = $1', [id]);
    return r ? fromRow(r) : null;
  }

  async listStartupScripts(teamId: string): Promise<StartupScriptRecord[]> {
    return (await rowsOf<ScriptRow>(this.pool, 'SELECT * FROM startup_scripts WHERE team_id = $1 ORDER BY created_at DESC, id DESC', [teamId])).map(fromRow);
  }

  async deleteStartupScript(id: string): Promise<boolean> {
    return (await changesOf(this.pool, 'DELETE FROM startup_scripts WHERE id = $1', [id])) > 0;
  }
}
