import type pg from 'pg';
import type { TeamQuotas } from '../../domain/quota.js';
import type { ApiKeyRecord, MachineAccessor, Team, User, UserRole } from '../../domain/team.js';
import type { TeamStore } from '../store.js';
import { changesOf, rowsOf } from './connection.js';

interface TeamRow { id: string; name: string; is_admin: boolean; created_at: number }
interface KeyRow {
  id: string; team_id: string; name: string; hash: string; created_at: number; revoked_at: number | null; user_id: string | null;
  read_only: boolean; machine_id: string | null; expires_at: number | null;
  rate_per_s: number | null; rate_burst: number | null;
}
interface UserRow { id: string; team_id: string; email: string; first_name: string | null; last_name: string | null; role: string; created_at: number }
interface AccessorRow { machine_id: string; user_id: string; created_at: number; deleted_at: number | null }

const teamFromRow = (r: TeamRow): Team => ({ id: r.id, name: r.name, isAdmin: r.is_admin, createdAt: r.created_at });
const keyFromRow = (r: KeyRow): ApiKeyRecord => ({
  id: r.id, teamId: r.team_id, name: r.name, hash: r.hash, createdAt: r.created_at, revokedAt: r.revoked_at, userId: r.user_id,
  readOnly: r.read_only, machineId: r.machine_id, expiresAt: r.expires_at,
  rateLimit: r.rate_per_s === null ? null : { perSecond: r.rate_per_s, burst: r.rate_burst ?? 1 },
});
const userFromRow = (r: UserRow): User => ({
  id: r.id, teamId: r.team_id, email: r.email, firstName: r.first_name, lastName: r.last_name, role: r.role as UserRole, createdAt: r.created_at,
});
const accessorFromRow = (r: AccessorRow): MachineAccessor => ({
  machineId: r.machine_id, userId: r.user_id, createdAt: r.created_at, deletedAt: r.deleted_at,
});

/** Teams, API keys, users and machine accessors (`teams`, `api_keys`, `users`, `machine_accessors`). */
export class PostgresTeams implements TeamStore {
  constructor(private readonly pool: pg.Pool) {}

  async insertTeam(t: Team): Promise<void> {
    await this.pool.query('INSERT INTO teams (id, name, is_admin, created_at) VALUES ($1, $2, $3, $4)', [t.id, t.name, t.isAdmin, t.createdAt]);
  }

  async getTeam(id: string): Promise<Team | null> {
    const [r] = await rowsOf<TeamRow>(this.pool, 'SELECT * FROM teams WHERE id = $1', [id]);
    return r ? teamFromRow(r) : null;
  }

  async listTeams(): Promise<Team[]> {
    return (await rowsOf<TeamRow>(this.pool, 'SELECT * FROM teams ORDER BY created_at, id')).map(teamFromRow);
  }

  async insertApiKey(k: ApiKeyRecord): Promise<void> {
    await this.pool.query(
      'INSERT INTO api_keys (id, team_id, name, hash, created_at, revoked_at, user_id, read_only, machine_id, expires_at, rate_per_s, rate_burst) ' +
        'VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)',
      [k.id, k.teamId, k.name, k.hash, k.createdAt, k.revokedAt, k.userId, k.readOnly, k.machineId, k.expiresAt, k.rateLimit?.perSecond ?? null, k.rateLimit?.burst ?? null],
    );
  }

  async getApiKey(id: string): Promise<ApiKeyRecord | null> {
    const [r] = await rowsOf<KeyRow>(this.pool, 'SELECT * FROM api_keys WHERE id = $1', [id]);
    return r ? keyFromRow(r) : null;
  }

  async expireApiKey(id: string, at: number): Promise<boolean> {
    // An earlier expiry stays: expiring never extends a key.
    return (await changesOf(this.pool, 'UPDATE api_keys SET expires_at = least(coalesce(expires_at, $2), $2) WHERE id = $1 AND revoked_at IS NULL', [id, at])) > 0;
  }

  async findApiKeyByHash(hash: string): Promise<ApiKeyRecord | null> {
    const [r] = await rowsOf<KeyRow>(this.pool, 'SELECT * FROM api_keys WHERE hash = $1', [hash]);
    return r ? keyFromRow(r) : null;
  }

  async listApiKeys(teamId: string): Promise<ApiKeyRecord[]> {
    return (await rowsOf<KeyRow>(this.pool, 'SELECT * FROM api_keys WHERE team_id = $1 ORDER BY created_at, id', [teamId])).map(keyFromRow);
  }

  async revokeApiKey(id: string, at: number): Promise<boolean> {
    return (await changesOf(this.pool, 'UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [at, id])) === 1;
  }

  async countApiKeys(): Promise<number> {
    const [r] = await rowsOf<{ n: number }>(this.pool, 'SELECT count(*) AS n FROM api_keys WHERE revoked_at IS NULL');
    return r!.n;
  }

  async insertUser(u: User): Promise<void> {
    await this.pool.query(
      'INSERT INTO users (id, team_id, email, first_name, last_name, role, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
      [u.id, u.teamId, u.email, u.firstName, u.lastName, u.role, u.createdAt],
    );
  }

  async getUser(id: string): Promise<User | null> {
    const [r] = await rowsOf<UserRow>(this.pool, 'SELECT * FROM users WHERE id = $1', [id]);
    return r ? userFromRow(r) : null;
  }

  async findUserByEmail(teamId: string, email: string): Promise<User | null> {
    const [r] = await rowsOf<UserRow>(this.pool, 'SELECT * FROM users WHERE team_id = $1 AND email = $2', [teamId, email]);
    return r ? userFromRow(r) : null;
  }

  async listUsers(teamId: string): Promise<User[]> {
    return (await rowsOf<UserRow>(this.pool, 'SELECT * FROM users WHERE team_id = $1 ORDER BY created_at, id', [teamId])).map(userFromRow);
  }

  async putAccessor(a: MachineAccessor): Promise<void> {
    await this.pool.query(
      'INSERT INTO machine_accessors (machine_id, user_id, created_at, deleted_at) VALUES ($1, $2, $3, $4) ' +
        'ON CONFLICT (machine_id, user_id) DO UPDATE SET created_at = excluded.created_at, deleted_at = excluded.deleted_at',
      [a.machineId, a.userId, a.createdAt, a.deletedAt],
    );
  }

  async getAccessor(machineId: string, userId: string): Promise<MachineAccessor | null> {
    const [r] = await rowsOf<AccessorRow>(this.pool, 'SELECT * FROM machine_accessors WHERE machine_id = $1 AND user_id = $2', [machineId, userId]);
    return r ? accessorFromRow(r) : null;
  }

  async listAccessors(machineId: string): Promise<MachineAccessor[]> {
    return (await rowsOf<AccessorRow>(this.pool, 'SELECT * FROM machine_accessors WHERE machine_id = $1 AND deleted_at IS NULL ORDER BY user_id', [machineId])).map(accessorFromRow);
  }

  async removeAccessor(machineId: string, userId: string, at: number): Promise<boolean> {
    return (await changesOf(this.pool, 'UPDATE machine_accessors SET deleted_at = $1 WHERE machine_id = $2 AND user_id = $3 AND deleted_at IS NULL', [at, machineId, userId])) === 1;
  }

  async getTeamQuotas(teamId: string): Promise<TeamQuotas> {
    const [r] = await rowsOf<{ quotas: string }>(this.pool, 'SELECT quotas FROM team_quotas WHERE team_id = $1', [teamId]);
    return r ? (JSON.parse(r.quotas) as TeamQuotas) : {};
  }

  async setTeamQuotas(teamId: string, quotas: TeamQuotas): Promise<void> {
    if (Object.keys(quotas).length === 0) {
      await this.pool.query('DELETE FROM team_quotas WHERE team_id = $1', [teamId]);
      return;
    }
    await this.pool.query(
      'INSERT INTO team_quotas (team_id, quotas) VALUES ($1, $2) ON CONFLICT (team_id) DO UPDATE SET quotas = excluded.quotas',
      [teamId, JSON.stringify(quotas)],
    );
  }
}
