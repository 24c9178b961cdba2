import type { TeamQuotas } from '../../domain/quota.js';
import Database from 'better-sqlite3';
import type { HostRecord, HostState } from '../../domain/host.js';
import type { MachineEventRecord } from '../../domain/machine-event.js';
import type { MachineRecord, MachineStatus } from '../../domain/machine.js';
import type { NetworkMember, NetworkRecord } from '../../domain/private-network.js';
import type { SnapshotRecord } from '../../domain/snapshot.js';
import type { StartupScriptRecord } from '../../domain/startup-script.js';
import type { TemplateBuildRecord } from '../../domain/template.js';
import type { ApiKeyRecord, MachineAccessor, Team, User } from '../../domain/team.js';
import type { VolumeHolder, VolumeRecord } from '../../domain/volume.js';
import type { WarmPool } from '../../domain/warm-pool.js';
import type { EventHostScope, IdempotencyRecord, MachineEventListQuery, MachineListQuery, MachinePageQuery, NetworkInsertOutcome, Store, VolumeInsertOutcome } from '../store.js';
import { retriedWhileBusy } from './busy.js';
import { SqliteMachineEvents } from './events.js';
import { SqliteHosts } from './hosts.js';
import { SqliteIdempotency } from './idempotency.js';
import { SqliteMachines } from './machines.js';
import { SqliteMeta } from './meta.js';
import { SqliteNetworks } from './networks.js';
import { SQLITE_MIGRATIONS } from './migrations.js';
import { SqliteSnapshots } from './snapshots.js';
import { SqliteStartupScripts } from './startup-scripts.js';
import { SqliteTeams } from './teams.js';
import { SqliteTemplates } from './templates.js';
import { SqliteVolumes } from './volumes.js';
import { SqliteWarmPools } from './warm-pools.js';

/** Options for the SQLite store. */
export interface SqliteStoreOptions {
  /** Database file path, or ':memory:'. */
  path: string;
  /** How long a call waits for the file while another process holds it locked, then rejects with STORE_BUSY. @default 5000 */
  busyTimeoutMs?: number;
}

/** Apply the migrations the file has not seen yet, each in its own transaction. */
function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  for (let i = version; i < SQLITE_MIGRATIONS.length; i++) {
    const sql = SQLITE_MIGRATIONS[i]!;
    db.transaction(() => {
      db.exec(sql);
      db.pragma(`user_version = ${i + 1}`);
    })();
  }
}

/**
 * The default store: one SQLite file in WAL mode. Calls are synchronous underneath. It
 * opens and migrates the file, then hands each part of `Store` to the file of that part
 * (machines, snapshots, volumes, startup scripts, teams, events, pools, idempotency, meta), all on one connection.
 * (machines, snapshots, volumes, networks, teams, events, pools, idempotency, meta), all on one connection.
 */
export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  private readonly db: Database.Database;
  private readonly meta: SqliteMeta;
  private readonly teams: SqliteTeams;
  private readonly machines: SqliteMachines;
  private readonly snapshots: SqliteSnapshots;
  private readonly templates: SqliteTemplates;
  private readonly volumes: SqliteVolumes;
  private readonly networks: SqliteNetworks;
  private readonly pools: SqliteWarmPools;
  private readonly scripts: SqliteStartupScripts;
  private readonly events: SqliteMachineEvents;
  private readonly idempotency: SqliteIdempotency;
  private readonly hosts: SqliteHosts;

  constructor(options: SqliteStoreOptions) {
    this.db = new Database(options.path);
    this.db.pragma('journal_mode = WAL');
    // NORMAL is durable across application crashes in WAL mode; only a power cut can lose the last commits.
    this.db.pragma('synchronous = NORMAL');
    const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    // The migrations run before the server serves anything: they may wait inside SQLite.
    this.db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    migrate(this.db);
    // From here on a locked file is waited for without blocking the event loop (busy.ts).
    this.db.pragma('busy_timeout = 0');
    const waiting = <T extends object>(part: T): T => retriedWhileBusy(part, busyTimeoutMs);
    this.meta = waiting(new SqliteMeta(this.db));
    this.teams = waiting(new SqliteTeams(this.db));
    this.machines = waiting(new SqliteMachines(this.db));
    this.snapshots = waiting(new SqliteSnapshots(this.db));
    this.templates = waiting(new SqliteTemplates(this.db));
    this.volumes = waiting(new SqliteVolumes(this.db));
    this.networks = waiting(new SqliteNetworks(this.db));
    this.pools = waiting(new SqliteWarmPools(this.db));
    this.scripts = waiting(new SqliteStartupScripts(this.db));
    this.events = waiting(new SqliteMachineEvents(this.db));
    this.idempotency = waiting(new SqliteIdempotency(this.db));
    this.hosts = waiting(new SqliteHosts(this.db));
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  // Every method below hands over to its part; a closed connection makes each reject.

  getMeta(key: string): Promise<string | null> {
    return this.meta.getMeta(key);
  }

  putMetaIfAbsent(key: string, value: string): Promise<string> {
    return this.meta.putMetaIfAbsent(key, value);
  }

  insertTeam(team: Team): Promise<void> {
    return this.teams.insertTeam(team);
  }

  getTeam(id: string): Promise<Team | null> {
    return this.teams.getTeam(id);
  }

  listTeams(): Promise<Team[]> {
    return this.teams.listTeams();
  }

  insertApiKey(key: ApiKeyRecord): Promise<void> {
    return this.teams.insertApiKey(key);
  }

  findApiKeyByHash(hash: string): Promise<ApiKeyRecord | null> {
    return this.teams.findApiKeyByHash(hash);
  }

  listApiKeys(teamId: string): Promise<ApiKeyRecord[]> {
    return this.teams.listApiKeys(teamId);
  }

  revokeApiKey(id: string, at: number): Promise<boolean> {
    return this.teams.revokeApiKey(id, at);
  }

  countApiKeys(): Promise<number> {
    return this.teams.countApiKeys();
  }

  insertUser(user: User): Promise<void> {
    return this.teams.insertUser(user);
  }

  getUser(id: string): Promise<User | null> {
    return this.teams.getUser(id);
  }

  findUserByEmail(teamId: string, email: string): Promise<User | null> {
    return this.teams.findUserByEmail(teamId, email);
  }

  listUsers(teamId: string): Promise<User[]> {
    return this.teams.listUsers(teamId);
  }

  putAccessor(a: MachineAccessor): Promise<void> {
    return this.teams.putAccessor(a);
  }

  getAccessor(machineId: string, userId: string): Promise<MachineAccessor | null> {
    return this.teams.getAccessor(machineId, userId);
  }

  listAccessors(machineId: string): Promise<MachineAccessor[]> {
    return this.teams.listAccessors(machineId);
  }

  removeAccessor(machineId: string, userId: string, at: number): Promise<boolean> {
    return this.teams.removeAccessor(machineId, userId, at);
  }

  getApiKey(id: string): Promise<ApiKeyRecord | null> {
    return this.teams.getApiKey(id);
  }

  expireApiKey(id: string, at: number): Promise<boolean> {
    return this.teams.expireApiKey(id, at);
  }

  getTeamQuotas(teamId: string): Promise<TeamQuotas> {
    return this.teams.getTeamQuotas(teamId);
  }

  setTeamQuotas(teamId: string, quotas: TeamQuotas): Promise<void> {
    return this.teams.setTeamQuotas(teamId, quotas);
  }

  insertMachine(m: MachineRecord): Promise<void> {
    return this.machines.insertMachine(m);
  }

  updateMachine(m: MachineRecord): Promise<void> {
    return this.machines.updateMachine(m);
  }

  getMachine(id: string): Promise<MachineRecord | null> {
    return this.machines.getMachine(id);
  }

  listMachines(q: MachineListQuery): Promise<MachineRecord[]> {
    return this.machines.listMachines(q);
  }

  pageMachines(q: MachinePageQuery): Promise<MachineRecord[]> {
    return this.machines.pageMachines(q);
  }

  machineCounts(): Promise<{ status: MachineStatus; template: string; count: number }[]> {
    return this.machines.machineCounts();
  }

  machineTemplates(teamId: string): Promise<string[]> {
    return this.machines.machineTemplates(teamId);
  }

  machinesInStatus(statuses: readonly MachineStatus[], hostId?: string): Promise<MachineRecord[]> {
    return this.machines.machinesInStatus(statuses, hostId);
  }

  adoptUnhostedMachines(hostId: string): Promise<number> {
    return this.machines.adoptUnhostedMachines(hostId);
  }

  dueMachines(now: number, limit: number, hostId?: string): Promise<MachineRecord[]> {
    return this.machines.dueMachines(now, limit, hostId);
  }

  purgeDestroyed(before: number): Promise<number> {
    return this.machines.purgeDestroyed(before);
  }

  insertTemplateBuild(b: TemplateBuildRecord): Promise<number> {
    return this.templates.insertTemplateBuild(b);
  }

  updateTemplateBuild(b: TemplateBuildRecord): Promise<void> {
    return this.templates.updateTemplateBuild(b);
  }

  getTemplateBuild(id: string): Promise<TemplateBuildRecord | null> {
    return this.templates.getTemplateBuild(id);
  }

  latestTemplateBuild(teamId: string | null, name: string): Promise<TemplateBuildRecord | null> {
    return this.templates.latestTemplateBuild(teamId, name);
  }

  currentTemplate(teamId: string | null, name: string): Promise<TemplateBuildRecord | null> {
    return this.templates.currentTemplate(teamId, name);
  }

  pageTemplates(teamId: string, after: string | null, limit: number): Promise<TemplateBuildRecord[]> {
    return this.templates.pageTemplates(teamId, after, limit);
  }

  deleteTemplateName(teamId: string | null, name: string, at: number): Promise<number> {
    return this.templates.deleteTemplateName(teamId, name, at);
  }

  templateBuildUsers(id: string): Promise<{ machines: number; snapshots: number }> {
    return this.templates.templateBuildUsers(id);
  }

  allTemplateBuilds(): Promise<TemplateBuildRecord[]> {
    return this.templates.allTemplateBuilds();
  }

  dropTemplateBuild(id: string): Promise<void> {
    return this.templates.dropTemplateBuild(id);
  }

  insertSnapshot(s: SnapshotRecord): Promise<void> {
    return this.snapshots.insertSnapshot(s);
  }

  updateSnapshot(s: SnapshotRecord): Promise<void> {
    return this.snapshots.updateSnapshot(s);
  }

  getSnapshot(id: string): Promise<SnapshotRecord | null> {
    return this.snapshots.getSnapshot(id);
  }

  listSnapshots(teamId: string, machineId?: string): Promise<SnapshotRecord[]> {
    return this.snapshots.listSnapshots(teamId, machineId);
  }

  snapshotTotals(): Promise<{ count: number; bytes: number }> {
    return this.snapshots.snapshotTotals();
  }

  allSnapshotIds(hostId?: string): Promise<string[]> {
    return this.snapshots.allSnapshotIds(hostId);
  }

  deleteSnapshot(id: string): Promise<void> {
    return this.snapshots.deleteSnapshot(id);
  }

  insertVolume(v: VolumeRecord, maxPerTeam: number): Promise<VolumeInsertOutcome> {
    return this.volumes.insertVolume(v, maxPerTeam);
  }

  getVolume(id: string): Promise<VolumeRecord | null> {
    return this.volumes.getVolume(id);
  }

  listVolumes(teamId: string): Promise<VolumeRecord[]> {
    return this.volumes.listVolumes(teamId);
  }

  allVolumeIds(): Promise<string[]> {
    return this.volumes.allVolumeIds();
  }

  volumeHolders(volumeId: string): Promise<VolumeHolder[]> {
    return this.volumes.volumeHolders(volumeId);
  }

  deleteVolume(id: string): Promise<{ deleted: boolean; holders: VolumeHolder[] }> {
    return this.volumes.deleteVolume(id);
  }

  insertNetwork(n: NetworkRecord, maxPerTeam: number): Promise<NetworkInsertOutcome> {
    return this.networks.insertNetwork(n, maxPerTeam);
  }

  getNetwork(id: string): Promise<NetworkRecord | null> {
    return this.networks.getNetwork(id);
  }

  listNetworks(teamId: string): Promise<NetworkRecord[]> {
    return this.networks.listNetworks(teamId);
  }

  networkMembers(networkId: string): Promise<NetworkMember[]> {
    return this.networks.networkMembers(networkId);
  }

  deleteNetwork(id: string): Promise<{ deleted: boolean; members: NetworkMember[] }> {
    return this.networks.deleteNetwork(id);
  }

  putWarmPool(pool: WarmPool): Promise<void> {
    return this.pools.putWarmPool(pool);
  }

  getWarmPool(name: string): Promise<WarmPool | null> {
    return this.pools.getWarmPool(name);
  }

  listWarmPools(): Promise<WarmPool[]> {
    return this.pools.listWarmPools();
  }

  deleteWarmPool(name: string): Promise<void> {
    return this.pools.deleteWarmPool(name);
  }

  setWarmPoolError(name: string, error: string | null): Promise<void> {
    return this.pools.setWarmPoolError(name, error);
  }

  countPoolCheckout(name: string, hit: boolean): Promise<void> {
    return this.pools.countPoolCheckout(name, hit);
  }

  poolMachines(name: string, hostId?: string): Promise<MachineRecord[]> {
    return this.pools.poolMachines(name, hostId);
  }

  claimPoolMachine(name: string, teamId: string, hostId?: string): Promise<MachineRecord | null> {
    return this.pools.claimPoolMachine(name, teamId, hostId);
  }

  registerHost(h: HostRecord): Promise<void> {
    return this.hosts.registerHost(h);
  }

  heartbeatHost(id: string, at: number): Promise<HostState | null> {
    return this.hosts.heartbeatHost(id, at);
  }

  stopHost(id: string, at: number): Promise<void> {
    return this.hosts.stopHost(id, at);
  }

  getHost(id: string): Promise<HostRecord | null> {
    return this.hosts.getHost(id);
  }

  setHostDraining(id: string, draining: boolean): Promise<HostRecord | null> {
    return this.hosts.setHostDraining(id, draining);
  }

  listHosts(): Promise<HostRecord[]> {
    return this.hosts.listHosts();
  }

  markHostsDown(before: number, except: string, reason: (h: HostRecord) => string): Promise<HostRecord[]> {
    return this.hosts.markHostsDown(before, except, reason);
  }

  hostLoads(): Promise<Map<string, number>> {
    return this.hosts.hostLoads();
  }

  forgetHosts(before: number): Promise<string[]> {
    return this.hosts.forgetHosts(before);
  }

  watchHosts(): () => Promise<void> {
    // One server per SQLite file: no other writes its hosts.
    return async () => undefined;
  }

  movePausedMachine(id: string, from: string, to: string, at: number): Promise<boolean> {
    return this.hosts.movePausedMachine(id, from, to, at);
  }

  insertMachineEvent(e: MachineEventRecord): Promise<void> {
    return this.events.insertMachineEvent(e);
  }

  updateMachineEvent(e: MachineEventRecord): Promise<void> {
    return this.events.updateMachineEvent(e);
  }

  getMachineEvent(id: string): Promise<MachineEventRecord | null> {
    return this.events.getMachineEvent(id);
  }

  listMachineEvents(q: MachineEventListQuery): Promise<MachineEventRecord[]> {
    return this.events.listMachineEvents(q);
  }

  failUnfinishedMachineEvents(error: string, at: number, scope?: EventHostScope): Promise<number> {
    return this.events.failUnfinishedMachineEvents(error, at, scope);
  }

  getIdempotency(teamId: string, key: string): Promise<IdempotencyRecord | null> {
    return this.idempotency.getIdempotency(teamId, key);
  }

  insertIdempotency(rec: IdempotencyRecord): Promise<void> {
    return this.idempotency.insertIdempotency(rec);
  }

  purgeIdempotency(before: number): Promise<number> {
    return this.idempotency.purgeIdempotency(before);
  }

  insertStartupScript(s: StartupScriptRecord, maxPerTeam: number): Promise<boolean> {
    return this.scripts.insertStartupScript(s, maxPerTeam);
  }

  getStartupScript(id: string): Promise<StartupScriptRecord | null> {
    return this.scripts.getStartupScript(id);
  }

  listStartupScripts(teamId: string): Promise<StartupScriptRecord[]> {
    return this.scripts.listStartupScripts(teamId);
  }

  deleteStartupScript(id: string): Promise<boolean> {
    return this.scripts.deleteStartupScript(id);
  }
}
