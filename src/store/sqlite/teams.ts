import type Database from 'better-sqlite3';
import type { ApiKeyRecord, MachineAccessor, Team, User, UserRole } from '../../domain/team.js';
import type { TeamQuotas } from '../../domain/quota.js';
import type { TeamStore } from '../store.js';

interface TeamRow { id: string; name: string; is_admin: number; created_at: number }
interface KeyRow {
  id: string; team_id: string; name: string; hash: string; created_at: number; revoked_at: number | null; user_id: string | null;
  read_only: number; machine_id: string | null; expires_at: number | null;
  rate_per_s: number | null; rate_burst: number | null;
}
interface UserRow { id: string; team_id: string; email: string; first_name: string | null; last_name: string | null; role: string; created_at: number }
interface AccessorRow { machine_id: string; user_id: string; created_at: number; deleted_at: number | null }

const teamFromRow = (r: TeamRow): Team => ({ id: r.id, name: r.name, isAdmin: r.is_admin === 1, createdAt: r.created_at });
const keyFromRow = (r: KeyRow): ApiKeyRecord => ({
  id: r.id, teamId: r.team_id, name: r.name, hash: r.hash, createdAt: r.created_at, revokedAt: r.revoked_at, userId: r.user_id,
  readOnly: r.read_only === 1, machineId: r.machine_id, expiresAt: r.expires_at,
  rateLimit: r.rate_per_s === null ? null : { perSecond: r.rate_per_s, burst: r.rate_burst ?? 1 },
});
const userFromRow = (r: UserRow): User => ({
  id: r.id, teamId: r.team_id, email: r.email, firstName: r.first_name, lastName: r.last_name, role: r.role as UserRole, createdAt: r.created_at,
});
const accessorFromRow = (r: AccessorRow): MachineAccessor => ({
  machineId: r.machine_id, userId: r.user_id, createdAt: r.created_at, deletedAt: r.deleted_at,
});

/** Teams, API keys, users and machine accessors (`teams`, `api_keys`, `users`, `machine_accessors`). */
export class SqliteTeams implements TeamStore {
  private readonly stmts;

  constructor(db: Database.Database) {
    this.stmts = {
      insertTeam: db.prepare('INSERT INTO teams (id, name, is_admin, created_at) VALUES (@id, @name, @is_admin, @created_at)'),
      getTeam: db.prepare<[string], TeamRow>('SELECT * FROM teams WHERE id = ?'),
      listTeams: db.prepare<[], TeamRow>('SELECT * FROM teams ORDER BY created_at, id'),
      insertKey: db.prepare(
        'INSERT INTO api_keys (id, team_id, name, hash, created_at, revoked_at, user_id, read_only, machine_id, expires_at, rate_per_s, rate_burst) ' +
          'VALUES (@id, @team_id, @name, @hash, @created_at, @revoked_at, @user_id, @read_only, @machine_id, @expires_at, @rate_per_s, @rate_burst)',
      ),
      getKey: db.prepare<[string], KeyRow>('SELECT * FROM api_keys WHERE id = ?'),
      expireKey: db.prepare('UPDATE api_keys SET expires_at = min(coalesce(expires_at, @at), @at) WHERE id = @id AND revoked_at IS NULL'),
      findKey: db.prepare<[string], KeyRow>('SELECT * FROM api_keys WHERE hash = ?'),
      listKeys: db.prepare<[string], KeyRow>('SELECT * FROM api_keys WHERE team_id = ? ORDER BY created_at, id'),
      revokeKey: db.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
      countKeys: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM api_keys WHERE revoked_at IS NULL'),
      insertUser: db.prepare(
        'INSERT INTO users (id, team_id, email, first_name, last_name, role, created_at) VALUES (@id, @team_id, @email, @first_name, @last_name, @role, @created_at)',
      ),
      getUser: db.prepare<[string], UserRow>('SELECT * FROM users WHERE id = ?'),
      findUserByEmail: db.prepare<[string, string], UserRow>('SELECT * FROM users WHERE team_id = ? AND email = ?'),
      listUsers: db.prepare<[string], UserRow>('SELECT * FROM users WHERE team_id = ? ORDER BY created_at, id'),
      putAccessor: db.prepare(
        'INSERT INTO machine_accessors (machine_id, user_id, created_at, deleted_at) VALUES (@machine_id, @user_id, @created_at, @deleted_at) ' +
          'ON CONFLICT (machine_id, user_id) DO UPDATE SET created_at = excluded.created_at, deleted_at = excluded.deleted_at',
      ),
      getAccessor: db.prepare<[string, string], AccessorRow>('SELECT * FROM machine_accessors WHERE machine_id = ? AND user_id = ?'),
      listAccessors: db.prepare<[string], AccessorRow>('SELECT * FROM machine_accessors WHERE machine_id = ? AND deleted_at IS NULL ORDER BY user_id'),
      removeAccessor: db.prepare('UPDATE machine_accessors SET deleted_at = ? WHERE machine_id = ? AND user_id = ? AND deleted_at IS NULL'),
      getQuotas: db.prepare<[string], { quotas: string }>('SELECT quotas FROM team_quotas WHERE team_id = ?'),
      putQuotas: db.prepare('INSERT INTO team_quotas (team_id, quotas) VALUES (?, ?) ON CONFLICT (team_id) DO UPDATE SET quotas = excluded.quotas'),
      dropQuotas: db.prepare('DELETE FROM team_quotas WHERE team_id = ?'),
    };
  }

  async insertTeam(t: Team): Promise<void> {
    this.stmts.insertTeam.run({ id: t.id, name: t.name, is_admin: t.isAdmin ? 1 : 0, created_at: t.createdAt });
  }

  async getTeam(id: string): Promise<Team | null> {
    const r = this.stmts.getTeam.get(id);
    return r ? teamFromRow(r) : null;
  }

  async listTeams(): Promise<Team[]> {
    return this.stmts.listTeams.all().map(teamFromRow);
  }

  async insertApiKey(k: ApiKeyRecord): Promise<void> {
    this.stmts.insertKey.run({
      id: k.id, team_id: k.teamId, name: k.name, hash: k.hash, created_at: k.createdAt, revoked_at: k.revokedAt, user_id: k.userId,
      read_only: k.readOnly ? 1 : 0, machine_id: k.machineId, expires_at: k.expiresAt,
      rate_per_s: k.rateLimit?.perSecond ?? null, rate_burst: k.rateLimit?.burst ?? null,
    });
  }

  async getApiKey(id: string): Promise<ApiKeyRecord | null> {
    const r = this.stmts.getKey.get(id);
    return r ? keyFromRow(r) : null;
  }

  async expireApiKey(id: string, at: number): Promise<boolean> {
    return this.stmts.expireKey.run({ id, at }).changes > 0;
  }

  async findApiKeyByHash(hash: string): Promise<ApiKeyRecord | null> {
    const r = this.stmts.findKey.get(hash);
    return r ? keyFromRow(r) : null;
  }

  async listApiKeys(teamId: string): Promise<ApiKeyRecord[]> {
    return this.stmts.listKeys.all(teamId).map(keyFromRow);
  }

  async revokeApiKey(id: string, at: number): Promise<boolean> {
    return this.stmts.revokeKey.run(at, id).changes === 1;
  }

  async countApiKeys(): Promise<number> {
    return this.stmts.countKeys.get()!.n;
  }

  async insertUser(u: User): Promise<void> {
    this.stmts.insertUser.run({
      id: u.id, team_id: u.teamId, email: u.email, first_name: u.firstName, last_name: u.lastName, role: u.role, created_at: u.createdAt,
    });
  }

  async getUser(id: string): Promise<User | null> {
    const r = this.stmts.getUser.get(id);
    return r ? userFromRow(r) : null;
  }

  async findUserByEmail(teamId: string, email: string): Promise<User | null> {
    const r = this.stmts.findUserByEmail.get(teamId, email);
    return r ? userFromRow(r) : null;
  }

  async listUsers(teamId: string): Promise<User[]> {
    return this.stmts.listUsers.all(teamId).map(userFromRow);
  }

  async putAccessor(a: MachineAccessor): Promise<void> {
    this.stmts.putAccessor.run({ machine_id: a.machineId, user_id: a.userId, created_at: a.createdAt, deleted_at: a.deletedAt });
  }

  async getAccessor(machineId: string, userId: string): Promise<MachineAccessor | null> {
    const r = this.stmts.getAccessor.get(machineId, userId);
    return r ? accessorFromRow(r) : null;
  }

  async listAccessors(machineId: string): Promise<MachineAccessor[]> {
    return this.stmts.listAccessors.all(machineId).map(accessorFromRow);
  }

  async removeAccessor(machineId: string, userId: string, at: number): Promise<boolean> {
    return this.stmts.removeAccessor.run(at, machineId, userId).changes === 1;
  }

  async getTeamQuotas(teamId: string): Promise<TeamQuotas> {
    const r = this.stmts.getQuotas.get(teamId);
    return r ? (JSON.parse(r.quotas) as TeamQuotas) : {};
  }

  async setTeamQuotas(teamId: string, quotas: TeamQuotas): Promise<void> {
    if (Object.keys(quotas).length === 0) this.stmts.dropQuotas.run(teamId);
    else this.stmts.putQuotas.run(teamId, JSON.stringify(quotas));
  }
}
