import Database from 'better-sqlite3';
import type { MachineEventRecord } from '../../domain/machine-event.js';
import type { AutoSnapshotFrequency, MachineRecord, MachineStatus } from '../../domain/machine.js';
import { metadataMatches } from '../../domain/metadata.js';
import { DEFAULT_OUTBOUND } from '../../domain/network.js';
import type { SnapshotRecord } from '../../domain/snapshot.js';
import type { ApiKeyRecord, MachineAccessor, Team, User, UserRole } from '../../domain/team.js';
import type { WarmPool } from '../../domain/warm-pool.js';
import type { IdempotencyRecord, MachineEventListQuery, MachineListQuery, Store } from '../store.js';
import { SQLITE_MIGRATIONS } from './migrations.js';

/** Options for the SQLite store. */
export interface SqliteStoreOptions {
  /** Database file path, or ':memory:'. */
  path: string;
}

interface MachineRow {
  id: string;
  team_id: string;
  status: string;
  template: string;
  config: string;
  metadata: string;
  env: string;
  cwd: string | null;
  ephemeral: number;
  timeout_ms: number;
  timeout_at: number;
  timeout_action: string;
  inactivity_timeout_ms: number | null;
  auto_delete_after_ms: number | null;
  created_at: number;
  started_at: number | null;
  last_active_at: number | null;
  paused_at: number | null;
  resumed_at: number | null;
  destroyed_at: number | null;
  snapshot_id: string | null;
  warm_pool_checkout: string | null;
  pool: string | null;
  error_reason: string | null;
  deadline_at: number | null;
  private_ip: string | null;
  outbound: string | null;
  public: number;
  auto_resume: number;
  name: string | null;
  updated_at: number | null;
  created_by: string | null;
  auto_snapshot_frequency: string | null;
  auto_snapshot_keep: number | null;
  auto_snapshot_since: number | null;
  auto_snapshot_last_at: number | null;
  restore_point_frequency: string | null;
  restore_point_snapshot_id: string | null;
}

const MACHINE_COLUMNS = [
  'id', 'team_id', 'status', 'template', 'config', 'metadata', 'env', 'cwd', 'ephemeral',
  'timeout_ms', 'timeout_at', 'timeout_action', 'inactivity_timeout_ms', 'auto_delete_after_ms',
  'created_at', 'started_at', 'last_active_at', 'paused_at', 'resumed_at', 'destroyed_at', 'snapshot_id',
  'warm_pool_checkout', 'pool', 'error_reason', 'deadline_at', 'private_ip', 'outbound', 'public', 'auto_resume', 'name', 'updated_at',
  'created_by',
  'auto_snapshot_frequency', 'auto_snapshot_keep', 'auto_snapshot_since', 'auto_snapshot_last_at', 'restore_point_frequency', 'restore_point_snapshot_id',
] as const;

function toRow(m: MachineRecord): MachineRow {
  return {
    id: m.id,
    team_id: m.teamId,
    status: m.status,
    template: m.template,
    config: JSON.stringify(m.config),
    metadata: JSON.stringify(m.metadata),
    env: JSON.stringify(m.env),
    cwd: m.cwd,
    ephemeral: m.ephemeral ? 1 : 0,
    timeout_ms: m.timeoutMs,
    timeout_at: m.timeoutAt,
    timeout_action: m.timeoutAction,
    inactivity_timeout_ms: m.inactivityTimeoutMs,
    auto_delete_after_ms: m.autoDeleteAfterMs,
    created_at: m.createdAt,
    started_at: m.startedAt,
    last_active_at: m.lastActiveAt,
    paused_at: m.pausedAt,
    resumed_at: m.resumedAt,
    destroyed_at: m.destroyedAt,
    snapshot_id: m.snapshotId,
    warm_pool_checkout: m.warmPoolCheckout ? JSON.stringify(m.warmPoolCheckout) : null,
    pool: m.pool,
    error_reason: m.errorReason,
    deadline_at: m.deadlineAt,
    private_ip: m.privateIp,
    outbound: JSON.stringify(m.outbound),
    public: m.public ? 1 : 0,
    auto_resume: m.autoResume ? 1 : 0,
    name: m.name,
    updated_at: m.updatedAt,
    created_by: m.createdBy,
    auto_snapshot_frequency: m.autoSnapshot?.frequency ?? null,
    auto_snapshot_keep: m.autoSnapshot?.keep ?? null,
    auto_snapshot_since: m.autoSnapshot?.since ?? null,
    auto_snapshot_last_at: m.autoSnapshot?.lastAt ?? null,
    restore_point_frequency: m.restorePoint?.frequency ?? null,
    restore_point_snapshot_id: m.restorePoint?.snapshotId ?? null,
  };
}

function fromRow(r: MachineRow): MachineRecord {
  return {
    id: r.id,
    teamId: r.team_id,
    status: r.status as MachineStatus,
    template: r.template,
    config: JSON.parse(r.config),
    metadata: JSON.parse(r.metadata),
    env: JSON.parse(r.env),
    cwd: r.cwd,
    ephemeral: r.ephemeral === 1,
    timeoutMs: r.timeout_ms,
    timeoutAt: r.timeout_at,
    timeoutAction: r.timeout_action as MachineRecord['timeoutAction'],
    inactivityTimeoutMs: r.inactivity_timeout_ms,
    autoDeleteAfterMs: r.auto_delete_after_ms,
    createdAt: r.created_at,
    startedAt: r.started_at,
    lastActiveAt: r.last_active_at,
    pausedAt: r.paused_at,
    resumedAt: r.resumed_at,
    destroyedAt: r.destroyed_at,
    snapshotId: r.snapshot_id,
    warmPoolCheckout: r.warm_pool_checkout ? JSON.parse(r.warm_pool_checkout) : null,
    pool: r.pool,
    errorReason: r.error_reason,
    deadlineAt: r.deadline_at,
    privateIp: r.private_ip,
    // Machines stored before networking existed had the default.
    outbound: r.outbound === null ? { ...DEFAULT_OUTBOUND } : JSON.parse(r.outbound),
    public: r.public === 1,
    autoResume: r.auto_resume === 1,
    name: r.name,
    updatedAt: r.updated_at,
    createdBy: r.created_by,
    autoSnapshot:
      r.auto_snapshot_frequency === null
        ? null
        : {
            frequency: r.auto_snapshot_frequency as AutoSnapshotFrequency,
            keep: r.auto_snapshot_keep ?? 1,
            since: r.auto_snapshot_since ?? r.created_at,
            lastAt: r.auto_snapshot_last_at,
          },
    restorePoint: r.restore_point_snapshot_id === null ? null : { frequency: 'shutdown', snapshotId: r.restore_point_snapshot_id },
  };
}

interface SnapshotRow {
  id: string;
  team_id: string;
  machine_id: string;
  kind: string;
  created_at: number;
  size_bytes: number;
  memory: number;
  template: string;
  config: string;
  env: string;
  cwd: string | null;
}

const snapshotToRow = (s: SnapshotRecord): SnapshotRow => ({
  id: s.id,
  team_id: s.teamId,
  machine_id: s.machineId,
  kind: s.kind,
  created_at: s.createdAt,
  size_bytes: s.sizeBytes,
  memory: s.memory ? 1 : 0,
  template: s.template,
  config: JSON.stringify(s.config),
  env: JSON.stringify(s.env),
  cwd: s.cwd,
});

const snapshotFromRow = (r: SnapshotRow): SnapshotRecord => ({
  id: r.id,
  teamId: r.team_id,
  machineId: r.machine_id,
  kind: r.kind as SnapshotRecord['kind'],
  createdAt: r.created_at,
  sizeBytes: r.size_bytes,
  memory: r.memory === 1,
  template: r.template,
  config: JSON.parse(r.config),
  env: JSON.parse(r.env),
  cwd: r.cwd,
});

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
}

const eventToRow = (e: MachineEventRecord): EventRow => ({
  id: e.id,
  team_id: e.teamId,
  machine_id: e.machineId,
  name: e.name,
  state: e.state,
  error: e.error,
  created_at: e.createdAt,
  started_at: e.startedAt,
  finished_at: e.finishedAt,
});

const eventFromRow = (r: EventRow): MachineEventRecord => ({
  id: r.id,
  teamId: r.team_id,
  machineId: r.machine_id,
  name: r.name as MachineEventRecord['name'],
  state: r.state as MachineEventRecord['state'],
  error: r.error,
  createdAt: r.created_at,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
});

interface PoolRow {
  name: string;
  template: string;
  config: string;
  size: number;
  hits: number;
  misses: number;
  last_error: string | null;
  created_at: number;
  updated_at: number;
}

const poolFromRow = (r: PoolRow): WarmPool => ({
  name: r.name,
  template: r.template,
  config: JSON.parse(r.config),
  size: r.size,
  hits: r.hits,
  misses: r.misses,
  lastError: r.last_error,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

interface TeamRow { id: string; name: string; is_admin: number; created_at: number }
interface KeyRow { id: string; team_id: string; name: string; hash: string; created_at: number; revoked_at: number | null; user_id: string | null }
interface UserRow { id: string; team_id: string; email: string; first_name: string | null; last_name: string | null; role: string; created_at: number }
interface AccessorRow { machine_id: string; user_id: string; created_at: number; deleted_at: number | null }

const teamFromRow = (r: TeamRow): Team => ({ id: r.id, name: r.name, isAdmin: r.is_admin === 1, createdAt: r.created_at });
const keyFromRow = (r: KeyRow): ApiKeyRecord => ({
  id: r.id, teamId: r.team_id, name: r.name, hash: r.hash, createdAt: r.created_at, revokedAt: r.revoked_at, userId: r.user_id,
});
const userFromRow = (r: UserRow): User => ({
  id: r.id, teamId: r.team_id, email: r.email, firstName: r.first_name, lastName: r.last_name, role: r.role as UserRole, createdAt: r.created_at,
});
const accessorFromRow = (r: AccessorRow): MachineAccessor => ({
  machineId: r.machine_id, userId: r.user_id, createdAt: r.created_at, deletedAt: r.deleted_at,
});
/** Rows of machines a user created or is an active accessor of (machines aliased as the table itself). */
const VISIBLE_MACHINE = '(created_by = ? OR id IN (SELECT machine_id FROM machine_accessors WHERE user_id = ? AND deleted_at IS NULL))';

/** The default store: one SQLite file in WAL mode. Calls are synchronous underneath. */
export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  private readonly db: Database.Database;
  private readonly stmts;

  constructor(options: SqliteStoreOptions) {
    this.db = new Database(options.path);
    this.db.pragma('journal_mode = WAL');
    // NORMAL is durable across application crashes in WAL mode; only a power cut can lose the last commits.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
    const cols = MACHINE_COLUMNS.join(', ');
    const params = MACHINE_COLUMNS.map((c) => `@${c}`).join(', ');
    const sets = MACHINE_COLUMNS.filter((c) => c !== 'id').map((c) => `${c} = @${c}`).join(', ');
    this.stmts = {
      getMeta: this.db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      putMeta: this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING'),
      insertTeam: this.db.prepare('INSERT INTO teams (id, name, is_admin, created_at) VALUES (@id, @name, @is_admin, @created_at)'),
      getTeam: this.db.prepare<[string], TeamRow>('SELECT * FROM teams WHERE id = ?'),
      listTeams: this.db.prepare<[], TeamRow>('SELECT * FROM teams ORDER BY created_at, id'),
      insertKey: this.db.prepare(
        'INSERT INTO api_keys (id, team_id, name, hash, created_at, revoked_at, user_id) VALUES (@id, @team_id, @name, @hash, @created_at, @revoked_at, @user_id)',
      ),
      findKey: this.db.prepare<[string], KeyRow>('SELECT * FROM api_keys WHERE hash = ?'),
      listKeys: this.db.prepare<[string], KeyRow>('SELECT * FROM api_keys WHERE team_id = ? ORDER BY created_at, id'),
      revokeKey: this.db.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
      countKeys: this.db.prepare<[], { n: number }>('SELECT count(*) AS n FROM api_keys WHERE revoked_at IS NULL'),
      insertUser: this.db.prepare(
        'INSERT INTO users (id, team_id, email, first_name, last_name, role, created_at) VALUES (@id, @team_id, @email, @first_name, @last_name, @role, @created_at)',
      ),
      getUser: this.db.prepare<[string], UserRow>('SELECT * FROM users WHERE id = ?'),
      findUserByEmail: this.db.prepare<[string, string], UserRow>('SELECT * FROM users WHERE team_id = ? AND email = ?'),
      listUsers: this.db.prepare<[string], UserRow>('SELECT * FROM users WHERE team_id = ? ORDER BY created_at, id'),
      putAccessor: this.db.prepare(
        'INSERT INTO machine_accessors (machine_id, user_id, created_at, deleted_at) VALUES (@machine_id, @user_id, @created_at, @deleted_at) ' +
          'ON CONFLICT (machine_id, user_id) DO UPDATE SET created_at = excluded.created_at, deleted_at = excluded.deleted_at',
      ),
      getAccessor: this.db.prepare<[string, string], AccessorRow>('SELECT * FROM machine_accessors WHERE machine_id = ? AND user_id = ?'),
      listAccessors: this.db.prepare<[string], AccessorRow>(
        'SELECT * FROM machine_accessors WHERE machine_id = ? AND deleted_at IS NULL ORDER BY user_id',
      ),
      removeAccessor: this.db.prepare('UPDATE machine_accessors SET deleted_at = ? WHERE machine_id = ? AND user_id = ? AND deleted_at IS NULL'),
      insertMachine: this.db.prepare(`INSERT INTO machines (${cols}) VALUES (${params})`),
      updateMachine: this.db.prepare(`UPDATE machines SET ${sets} WHERE id = @id`),
      getMachine: this.db.prepare<[string], MachineRow>('SELECT * FROM machines WHERE id = ?'),
      due: this.db.prepare<[number, number], MachineRow>(
        'SELECT * FROM machines WHERE deadline_at IS NOT NULL AND deadline_at <= ? ORDER BY deadline_at LIMIT ?',
      ),
      purgeDestroyed: this.db.prepare("DELETE FROM machines WHERE status = 'destroyed' AND destroyed_at <= ?"),
      // A key whose machine is purged has nothing left to return: it goes too.
      purgeOrphanIdem: this.db.prepare('DELETE FROM idempotency_keys WHERE machine_id NOT IN (SELECT id FROM machines)'),
      purgeOrphanEvents: this.db.prepare('DELETE FROM machine_events WHERE machine_id NOT IN (SELECT id FROM machines)'),
      purgeOrphanAccessors: this.db.prepare('DELETE FROM machine_accessors WHERE machine_id NOT IN (SELECT id FROM machines)'),
      insertEvent: this.db.prepare(
        'INSERT INTO machine_events (id, team_id, machine_id, name, state, error, created_at, started_at, finished_at) ' +
          'VALUES (@id, @team_id, @machine_id, @name, @state, @error, @created_at, @started_at, @finished_at)',
      ),
      updateEvent: this.db.prepare(
        'UPDATE machine_events SET team_id = @team_id, machine_id = @machine_id, name = @name, state = @state, error = @error, ' +
          'created_at = @created_at, started_at = @started_at, finished_at = @finished_at WHERE id = @id',
      ),
      getEvent: this.db.prepare<[string], EventRow>('SELECT * FROM machine_events WHERE id = ?'),
      failUnfinishedEvents: this.db.prepare(
        "UPDATE machine_events SET state = 'error', error = ?, started_at = coalesce(started_at, ?), finished_at = ? WHERE state IN ('new', 'in progress')",
      ),
      insertSnapshot: this.db.prepare(
        'INSERT INTO snapshots (id, team_id, machine_id, kind, created_at, size_bytes, memory, template, config, env, cwd) ' +
          'VALUES (@id, @team_id, @machine_id, @kind, @created_at, @size_bytes, @memory, @template, @config, @env, @cwd)',
      ),
      updateSnapshot: this.db.prepare(
        'UPDATE snapshots SET team_id = @team_id, machine_id = @machine_id, kind = @kind, created_at = @created_at, size_bytes = @size_bytes, ' +
          'memory = @memory, template = @template, config = @config, env = @env, cwd = @cwd WHERE id = @id',
      ),
      getSnapshot: this.db.prepare<[string], SnapshotRow>('SELECT * FROM snapshots WHERE id = ?'),
      listSnapshots: this.db.prepare<[string], SnapshotRow>('SELECT * FROM snapshots WHERE team_id = ? ORDER BY created_at DESC, id DESC'),
      listMachineSnapshots: this.db.prepare<[string, string], SnapshotRow>(
        'SELECT * FROM snapshots WHERE team_id = ? AND machine_id = ? ORDER BY created_at DESC, id DESC',
      ),
      allSnapshotIds: this.db.prepare<[], { id: string }>('SELECT id FROM snapshots'),
      deleteSnapshot: this.db.prepare('DELETE FROM snapshots WHERE id = ?'),
      putPool: this.db.prepare(
        'INSERT INTO warm_pools (name, template, config, size, hits, misses, last_error, created_at, updated_at) ' +
          'VALUES (@name, @template, @config, @size, @hits, @misses, @last_error, @created_at, @updated_at) ' +
          'ON CONFLICT (name) DO UPDATE SET template = excluded.template, config = excluded.config, size = excluded.size, ' +
          'hits = excluded.hits, misses = excluded.misses, last_error = excluded.last_error, updated_at = excluded.updated_at',
      ),
      getPool: this.db.prepare<[string], PoolRow>('SELECT * FROM warm_pools WHERE name = ?'),
      listPools: this.db.prepare<[], PoolRow>('SELECT * FROM warm_pools ORDER BY name'),
      deletePool: this.db.prepare('DELETE FROM warm_pools WHERE name = ?'),
      poolError: this.db.prepare('UPDATE warm_pools SET last_error = ? WHERE name = ?'),
      poolHit: this.db.prepare('UPDATE warm_pools SET hits = hits + 1 WHERE name = ?'),
      poolMiss: this.db.prepare('UPDATE warm_pools SET misses = misses + 1 WHERE name = ?'),
      poolMachines: this.db.prepare<[string], MachineRow>(
        "SELECT * FROM machines WHERE pool = ? AND status = 'running' ORDER BY created_at, id",
      ),
      claimPool: this.db.prepare<[string, string], { id: string }>(
        "UPDATE machines SET pool = NULL, team_id = ? WHERE id = (SELECT id FROM machines WHERE pool = ? AND status = 'running' ORDER BY created_at, id LIMIT 1) RETURNING id",
      ),
      getIdem: this.db.prepare<[string, string], { team_id: string; key: string; request_hash: string; machine_id: string; created_at: number }>(
        'SELECT * FROM idempotency_keys WHERE team_id = ? AND key = ?',
      ),
      insertIdem: this.db.prepare(
        'INSERT INTO idempotency_keys (team_id, key, request_hash, machine_id, created_at) VALUES (?, ?, ?, ?, ?)',
      ),
      purgeIdem: this.db.prepare('DELETE FROM idempotency_keys WHERE created_at <= ?'),
    };
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    for (let i = version; i < SQLITE_MIGRATIONS.length; i++) {
      const sql = SQLITE_MIGRATIONS[i]!;
      this.db.transaction(() => {
        this.db.exec(sql);
        this.db.pragma(`user_version = ${i + 1}`);
      })();
    }
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  async getMeta(key: string): Promise<string | null> {
    return this.stmts.getMeta.get(key)?.value ?? null;
  }

  async putMetaIfAbsent(key: string, value: string): Promise<string> {
    this.stmts.putMeta.run(key, value);
    return this.stmts.getMeta.get(key)!.value;
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
    });
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

  async insertMachine(m: MachineRecord): Promise<void> {
    this.stmts.insertMachine.run(toRow(m));
  }

  async updateMachine(m: MachineRecord): Promise<void> {
    this.stmts.updateMachine.run(toRow(m));
  }

  async getMachine(id: string): Promise<MachineRecord | null> {
    const r = this.stmts.getMachine.get(id);
    return r ? fromRow(r) : null;
  }

  async listMachines(q: MachineListQuery): Promise<MachineRecord[]> {
    if (q.statuses.length === 0 || q.limit === 0) return [];
    const where = ['team_id = ?', `status IN (${q.statuses.map(() => '?').join(', ')})`];
    const args: unknown[] = [q.teamId, ...q.statuses];
    if (q.template !== undefined) {
      where.push('template = ?');
      args.push(q.template);
    }
    if (q.visibleTo !== undefined) {
      where.push(VISIBLE_MACHINE);
      args.push(q.visibleTo, q.visibleTo);
    }
    if (q.after) {
      where.push('(created_at < ? OR (created_at = ? AND id < ?))');
      args.push(q.after.createdAt, q.after.createdAt, q.after.id);
    }
    const sql = `SELECT * FROM machines WHERE ${where.join(' AND ')} ORDER BY created_at DESC, id DESC`;
    const stmt = this.db.prepare<unknown[], MachineRow>(sql);
    const out: MachineRecord[] = [];
    // Metadata equality is exact JSON equality, which SQL cannot express portably:
    // rows stream in keyset order and stop as soon as the page is full.
    for (const row of stmt.iterate(...args)) {
      const m = fromRow(row);
      if (q.metadata && !metadataMatches(m.metadata, q.metadata)) continue;
      out.push(m);
      if (q.limit !== undefined && out.length >= q.limit) break;
    }
    return out;
  }

  async machinesInStatus(statuses: readonly MachineStatus[]): Promise<MachineRecord[]> {
    if (statuses.length === 0) return [];
    const sql = `SELECT * FROM machines WHERE status IN (${statuses.map(() => '?').join(', ')}) ORDER BY created_at, id`;
    return this.db.prepare<unknown[], MachineRow>(sql).all(...statuses).map(fromRow);
  }

  async dueMachines(now: number, limit: number): Promise<MachineRecord[]> {
    return this.stmts.due.all(now, limit).map(fromRow);
  }

  async purgeDestroyed(before: number): Promise<number> {
    return this.db.transaction(() => {
      const n = this.stmts.purgeDestroyed.run(before).changes;
      if (n > 0) {
        this.stmts.purgeOrphanIdem.run();
        this.stmts.purgeOrphanEvents.run();
        this.stmts.purgeOrphanAccessors.run();
      }
      return n;
    })();
  }

  async insertSnapshot(snap: SnapshotRecord): Promise<void> {
    this.stmts.insertSnapshot.run(snapshotToRow(snap));
  }

  async updateSnapshot(snap: SnapshotRecord): Promise<void> {
    this.stmts.updateSnapshot.run(snapshotToRow(snap));
  }

  async getSnapshot(id: string): Promise<SnapshotRecord | null> {
    const r = this.stmts.getSnapshot.get(id);
    return r ? snapshotFromRow(r) : null;
  }

  async listSnapshots(teamId: string, machineId?: string): Promise<SnapshotRecord[]> {
    const rows = machineId === undefined ? this.stmts.listSnapshots.all(teamId) : this.stmts.listMachineSnapshots.all(teamId, machineId);
    return rows.map(snapshotFromRow);
  }

  async allSnapshotIds(): Promise<string[]> {
    return this.stmts.allSnapshotIds.all().map((r) => r.id);
  }

  async deleteSnapshot(id: string): Promise<void> {
    this.stmts.deleteSnapshot.run(id);
  }

  async putWarmPool(p: WarmPool): Promise<void> {
    this.stmts.putPool.run({
      name: p.name, template: p.template, config: JSON.stringify(p.config), size: p.size, hits: p.hits, misses: p.misses,
      last_error: p.lastError, created_at: p.createdAt, updated_at: p.updatedAt,
    });
  }

  async getWarmPool(name: string): Promise<WarmPool | null> {
    const r = this.stmts.getPool.get(name);
    return r ? poolFromRow(r) : null;
  }

  async listWarmPools(): Promise<WarmPool[]> {
    return this.stmts.listPools.all().map(poolFromRow);
  }

  async deleteWarmPool(name: string): Promise<void> {
    this.stmts.deletePool.run(name);
  }

  async setWarmPoolError(name: string, error: string | null): Promise<void> {
    this.stmts.poolError.run(error, name);
  }

  async countPoolCheckout(name: string, hit: boolean): Promise<void> {
    (hit ? this.stmts.poolHit : this.stmts.poolMiss).run(name);
  }

  async poolMachines(name: string): Promise<MachineRecord[]> {
    return this.stmts.poolMachines.all(name).map(fromRow);
  }

  async claimPoolMachine(name: string, teamId: string): Promise<MachineRecord | null> {
    // One UPDATE ... RETURNING: atomic, also between processes sharing the file.
    const claimed = this.stmts.claimPool.get(teamId, name);
    return claimed ? this.getMachine(claimed.id) : null;
  }

  async insertMachineEvent(e: MachineEventRecord): Promise<void> {
    this.stmts.insertEvent.run(eventToRow(e));
  }

  async updateMachineEvent(e: MachineEventRecord): Promise<void> {
    this.stmts.updateEvent.run(eventToRow(e));
  }

  async getMachineEvent(id: string): Promise<MachineEventRecord | null> {
    const r = this.stmts.getEvent.get(id);
    return r ? eventFromRow(r) : null;
  }

  async listMachineEvents(q: MachineEventListQuery): Promise<MachineEventRecord[]> {
    if (q.limit === 0) return [];
    const where = ['team_id = ?'];
    const args: unknown[] = [q.teamId];
    if (q.machineId !== undefined) {
      where.push('machine_id = ?');
      args.push(q.machineId);
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
    return this.db.prepare<unknown[], EventRow>(sql).all(...args).map(eventFromRow);
  }

  async failUnfinishedMachineEvents(error: string, at: number): Promise<number> {
    return this.stmts.failUnfinishedEvents.run(error, at, at).changes;
  }

  async getIdempotency(teamId: string, key: string): Promise<IdempotencyRecord | null> {
    const r = this.stmts.getIdem.get(teamId, key);
    return r ? { teamId: r.team_id, key: r.key, requestHash: r.request_hash, machineId: r.machine_id, createdAt: r.created_at } : null;
  }

  async insertIdempotency(rec: IdempotencyRecord): Promise<void> {
    this.stmts.insertIdem.run(rec.teamId, rec.key, rec.requestHash, rec.machineId, rec.createdAt);
  }

  async purgeIdempotency(before: number): Promise<number> {
    return this.stmts.purgeIdem.run(before).changes;
  }
}
