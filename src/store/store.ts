import type { HostRecord, HostState } from '../domain/host.js';
import type { MachineEventName, MachineEventRecord } from '../domain/machine-event.js';
import type { StartupScriptRecord } from '../domain/startup-script.js';
import type { MachineConfig, MachineRecord, MachineStatus } from '../domain/machine.js';
import type { NetworkMember, NetworkRecord } from '../domain/private-network.js';
import type { SnapshotRecord } from '../domain/snapshot.js';
import type { TeamQuotas } from '../domain/quota.js';
import type { TemplateBuildRecord } from '../domain/template.js';
import type { ApiKeyRecord, MachineAccessor, Team, User } from '../domain/team.js';
import type { VolumeHolder, VolumeRecord } from '../domain/volume.js';
import type { WarmPool } from '../domain/warm-pool.js';

/** Position in the newest-first machine order: (created_at desc, id desc). */
export interface ListCursor {
  createdAt: number;
  id: string;
}

/** A page request over one team's machines. */
export interface MachineListQuery {
  teamId: string;
  statuses: readonly MachineStatus[];
  template?: string;
  metadata?: Record<string, unknown>;
  /** Start strictly after this position. */
  after?: ListCursor;
  /** Maximum rows; omit for all. */
  limit?: number;
  /** Only machines this user created or is an active accessor of. */
  visibleTo?: string;
}

/** A page request over one team's machine events, ordered by (created_at, id). */
export interface MachineEventListQuery {
  teamId: string;
  /** Only this machine's events. */
  machineId?: string;
  /** Oldest first (`asc`) or newest first (`desc`). */
  order: 'asc' | 'desc';
  /** Start strictly after this position, in the order asked for. */
  after?: ListCursor;
  /** Maximum rows; omit for all. */
  limit?: number;
  /** Only events of machines this user created or is an active accessor of. */
  visibleTo?: string;
  /** Only events of this name. */
  name?: MachineEventName;
}

/** Only values in `oneOf`, or only values in none of `noneOf`. */
export type ValueFilter<T> = { oneOf: readonly T[] } | { noneOf: readonly T[] };

/** A machine's size as machine types name it: vCPUs and memory. */
export type MachineSize = Pick<MachineConfig, 'vcpus' | 'memory_mb'>;

/** One rule of a label order: machines in `status` with `tag` (null: untagged) get `label`; the first match wins. */
export interface LabelRule {
  status: MachineStatus;
  tag: string | null;
  label: string;
}

/**
 * What a machine page is ordered by, ties broken by id (ids are ASCII: every byte order
 * agrees). Keys that are strings compare as JavaScript compares them, by UTF-16 code unit,
 * not by a database collation, so the order is the same in every store.
 */
export type MachinePageOrder =
  | { by: 'createdAt' }
  /** `name`, else the id (the name a machine never named shows). */
  | { by: 'displayName' }
  /**
   * A label from the machine's status and tag, e.g. the Paperspace state: the status refined
   * by the operation in flight (the tag). `tags` maps machine ids to tags; a machine no
   * rule covers has the empty label.
   */
  | { by: 'label'; tags: ReadonlyMap<string, string>; rules: readonly LabelRule[] };

/** Position in a machine page: the order's key (a number for createdAt, else a string), then the id. */
export interface MachinePagePosition {
  key: string | number;
  id: string;
}

/** A filtered, ordered page request over one team's machines (the Paperspace-style listing). */
export interface MachinePageQuery {
  teamId: string;
  statuses: readonly MachineStatus[];
  /** Only machines whose display name (`name`, else the id) is exactly this. */
  displayName?: string;
  templates?: ValueFilter<string>;
  sizes?: ValueFilter<MachineSize>;
  /** Only machines this user created or is an active accessor of. */
  visibleTo?: string;
  /** Only machines of this region; `orDefault`: machines stored without one (the server's default region) too. */
  region?: { name: string; orDefault: boolean };
  order: MachinePageOrder;
  direction: 'asc' | 'desc';
  /** Start strictly after this position, in the order asked for. */
  after?: MachinePagePosition;
  /** Maximum rows. */
  limit: number;
}

/** A stored create result, so a retried create returns the first machine. */
export interface IdempotencyRecord {
  teamId: string;
  key: string;
  requestHash: string;
  machineId: string;
  createdAt: number;
}

/** Server-wide settings (the server secret, …). */
export interface MetaStore {
  getMeta(key: string): Promise<string | null>;
  /** Set a value only if absent; returns the value now stored. */
  putMetaIfAbsent(key: string, value: string): Promise<string>;
}

/** Teams, their API keys and users, and who else reaches a machine. */
export interface TeamStore {
  insertTeam(team: Team): Promise<void>;
  getTeam(id: string): Promise<Team | null>;
  listTeams(): Promise<Team[]>;

  insertApiKey(key: ApiKeyRecord): Promise<void>;
  findApiKeyByHash(hash: string): Promise<ApiKeyRecord | null>;
  listApiKeys(teamId: string): Promise<ApiKeyRecord[]>;
  revokeApiKey(id: string, at: number): Promise<boolean>;
  /** A key by id (revoked and expired ones too), or null. */
  getApiKey(id: string): Promise<ApiKeyRecord | null>;
  /** Make a key stop working at `at` (or keep its earlier expiry); false when it is unknown or revoked. */
  expireApiKey(id: string, at: number): Promise<boolean>;
  countApiKeys(): Promise<number>;

  /** Insert a user; throws if the team already has a user with this email. */
  insertUser(user: User): Promise<void>;
  getUser(id: string): Promise<User | null>;
  findUserByEmail(teamId: string, email: string): Promise<User | null>;
  /** A team's users, oldest first. */
  listUsers(teamId: string): Promise<User[]>;

  /** Grant access (again): inserts the accessor, or clears `deletedAt` and sets `createdAt` of a removed one. */
  putAccessor(a: MachineAccessor): Promise<void>;
  /** The accessor row, removed ones included. */
  getAccessor(machineId: string, userId: string): Promise<MachineAccessor | null>;
  /** A machine's active accessors (not removed). */
  listAccessors(machineId: string): Promise<MachineAccessor[]>;
  /** Set `deletedAt` of an active accessor; false when there is none. */
  removeAccessor(machineId: string, userId: string, at: number): Promise<boolean>;

  /** A team's quotas; `{}` (no ceiling) when none were set. */
  getTeamQuotas(teamId: string): Promise<TeamQuotas>;
  /** Replace a team's quotas (`{}` removes every ceiling). */
  setTeamQuotas(teamId: string, quotas: TeamQuotas): Promise<void>;
}

/** Machine records and the queries over them. */
export interface MachineStore {
  /**
   * Insert a machine. With volumes, atomically: each must exist in the machine's team, and
   * one it attaches read-write must not be attached read-write to another live (not
   * destroyed) machine; otherwise `VolumeConflictError` and nothing is written. With a
   * network, atomically: it must exist in the machine's team, otherwise `NetworkConflictError`.
   */
  insertMachine(m: MachineRecord): Promise<void>;
  /**
   * Replace the stored machine with this one (matched by id); its volumes and network never change
   * after the insert. Its host does not change here either: when the stored record names another host
   * than `m.hostId` (it moved, see `movePausedMachine`), nothing is written and `MachineMovedError` is thrown.
   * An unknown id writes nothing.
   */
  updateMachine(m: MachineRecord): Promise<void>;
  getMachine(id: string): Promise<MachineRecord | null>;
  listMachines(q: MachineListQuery): Promise<MachineRecord[]>;
  /** A page of machines filtered and ordered as asked, keyset-paged by `after`. */
  pageMachines(q: MachinePageQuery): Promise<MachineRecord[]>;
  /** The distinct templates of a team's machines, whatever their status. */
  machineTemplates(teamId: string): Promise<string[]>;
  /** How many machines (not purged) there are in each status and template, across teams (for metrics). */
  machineCounts(): Promise<{ status: MachineStatus; template: string; count: number }[]>;
  /** Machines in any of these statuses, across teams (for start-up re-adoption); with `hostId`, only that host's. */
  machinesInStatus(statuses: readonly MachineStatus[], hostId?: string): Promise<MachineRecord[]>;
  /** Machines whose `deadlineAt` is at or before `now`, oldest deadline first; with `hostId`, only that host's. */
  dueMachines(now: number, limit: number, hostId?: string): Promise<MachineRecord[]>;
  /** Give every machine no host holds (rows from before hosts existed) to this host; returns how many. */
  adoptUnhostedMachines(hostId: string): Promise<number>;
  /**
   * Delete destroyed machines destroyed at or before `before`, the idempotency keys
   * that pointed at them (a retry then creates anew) and their events; returns how many machines.
   */
  purgeDestroyed(before: number): Promise<number>;
}

/** Snapshot records (their files belong to the runtime). */
export interface SnapshotStore {
  insertSnapshot(s: SnapshotRecord): Promise<void>;
  updateSnapshot(s: SnapshotRecord): Promise<void>;
  getSnapshot(id: string): Promise<SnapshotRecord | null>;
  /** A team's snapshots, newest first; optionally of one machine. */
  listSnapshots(teamId: string, machineId?: string): Promise<SnapshotRecord[]>;
  /** Every snapshot id (for start-up reconciliation with the files on disk); with `hostId`, those of that host's machines. */
  allSnapshotIds(hostId?: string): Promise<string[]>;
  /** How many snapshots there are and their bytes, across teams (for metrics). */
  snapshotTotals(): Promise<{ count: number; bytes: number }>;
  deleteSnapshot(id: string): Promise<void>;
}

/** Template builds; a build that ended `ready` is a version of its name. */
export interface TemplateStore {
  /** Insert a build as the next version of its name (its `version` is ignored); returns the version it got. */
  insertTemplateBuild(b: TemplateBuildRecord): Promise<number>;
  /** Store a build's status, result, error, finish and deletion. */
  updateTemplateBuild(b: TemplateBuildRecord): Promise<void>;
  getTemplateBuild(id: string): Promise<TemplateBuildRecord | null>;
  /** The newest build of a name, whatever its status, unless the name was deleted. */
  latestTemplateBuild(teamId: string | null, name: string): Promise<TemplateBuildRecord | null>;
  /** The newest `ready` build of a name not deleted: what a create gets. */
  currentTemplate(teamId: string | null, name: string): Promise<TemplateBuildRecord | null>;
  /** The newest build of each name a team sees (its own and server-wide ones), by name after `after`. */
  pageTemplates(teamId: string, after: string | null, limit: number): Promise<TemplateBuildRecord[]>;
  /** Mark every version of a name deleted; returns how many. */
  deleteTemplateName(teamId: string | null, name: string, at: number): Promise<number>;
  /** Machines (not destroyed) and snapshots on one template version. */
  templateBuildUsers(id: string): Promise<{ machines: number; snapshots: number }>;
  /** Every build, oldest first (for the layer collector and start-up). */
  allTemplateBuilds(): Promise<TemplateBuildRecord[]>;
  /** Forget a build entirely (a deleted or superseded version nothing uses any more). */
  dropTemplateBuild(id: string): Promise<void>;
}

/** What inserting a volume did. */
export type VolumeInsertOutcome = 'inserted' | 'name_taken' | 'team_full';

/** Volumes of a team, and the live machines holding them (attachments live on machine records). */
export interface VolumeStore {
  /**
   * Insert a volume, atomically refused (nothing written) when its team already has one of
   * that name (`name_taken`) or `maxPerTeam` volumes (`team_full`).
   */
  insertVolume(v: VolumeRecord, maxPerTeam: number): Promise<VolumeInsertOutcome>;
  getVolume(id: string): Promise<VolumeRecord | null>;
  /** A team's volumes, newest first (created_at desc, then id desc). */
  listVolumes(teamId: string): Promise<VolumeRecord[]>;
  /** Every volume id (for start-up reconciliation with the files on disk). */
  allVolumeIds(): Promise<string[]>;
  /** The live (not destroyed) machines the volume is attached to, oldest first. */
  volumeHolders(volumeId: string): Promise<VolumeHolder[]>;
  /**
   * Delete a volume no live machine holds, atomically with that check; when one does,
   * nothing changes and `deleted` is false with the holders. A missing volume is `deleted: false`, no holders.
   */
  deleteVolume(id: string): Promise<{ deleted: boolean; holders: VolumeHolder[] }>;
}

/** A team's startup scripts (machines keep copies of theirs, so deleting one touches no machine). */
export interface StartupScriptStore {
  /** Insert a script; false (nothing written) when its team already has `maxPerTeam`. */
  insertStartupScript(s: StartupScriptRecord, maxPerTeam: number): Promise<boolean>;
  getStartupScript(id: string): Promise<StartupScriptRecord | null>;
  /** A team's scripts, newest first (created_at desc, then id desc). */
  listStartupScripts(teamId: string): Promise<StartupScriptRecord[]>;
  /** Delete a script; false when there was none. */
  deleteStartupScript(id: string): Promise<boolean>;
}

/** What inserting a private network did. */
export type NetworkInsertOutcome = 'inserted' | 'name_taken' | 'team_full';

/** Private networks of a team, and the live machines on them (membership lives on machine records). */
export interface NetworkStore {
  /**
   * Insert a network, atomically refused (nothing written) when its team already has one of
   * that name (`name_taken`) or `maxPerTeam` networks (`team_full`).
   */
  insertNetwork(n: NetworkRecord, maxPerTeam: number): Promise<NetworkInsertOutcome>;
  getNetwork(id: string): Promise<NetworkRecord | null>;
  /** A team's networks, newest first (created_at desc, then id desc). */
  listNetworks(teamId: string): Promise<NetworkRecord[]>;
  /** The live (not destroyed) machines on the network, oldest first. */
  networkMembers(networkId: string): Promise<NetworkMember[]>;
  /**
   * Delete a network no live machine is on, atomically with that check; when one is,
   * nothing changes and `deleted` is false with the members. A missing network is `deleted: false`, no members.
   */
  deleteNetwork(id: string): Promise<{ deleted: boolean; members: NetworkMember[] }>;
}

/** Warm pools: their settings and counters, and the idle machines they hold. */
export interface WarmPoolStore {
  /** Insert or replace a pool's settings (counters included). */
  putWarmPool(pool: WarmPool): Promise<void>;
  getWarmPool(name: string): Promise<WarmPool | null>;
  listWarmPools(): Promise<WarmPool[]>;
  deleteWarmPool(name: string): Promise<void>;
  /** Record (or clear, with null) a pool's last refill error. */
  setWarmPoolError(name: string, error: string | null): Promise<void>;
  /** Add to a pool's hit or miss counter. */
  countPoolCheckout(name: string, hit: boolean): Promise<void>;
  /** Idle running machines of a pool, oldest first; with `hostId`, only that host's. */
  poolMachines(name: string, hostId?: string): Promise<MachineRecord[]>;
  /**
   * Atomically take the oldest idle running machine of a pool for a team (its `pool`
   * cleared, its team set), or null when none is ready. Two claims never get one machine.
   * With `hostId`, only one of that host's.
   */
  claimPoolMachine(name: string, teamId: string, hostId?: string): Promise<MachineRecord | null>;
}

/** Machine events: operations as they are recorded, run and finished. */
export interface MachineEventStore {
  insertMachineEvent(e: MachineEventRecord): Promise<void>;
  /** Replace the stored event with this one (matched by id). */
  updateMachineEvent(e: MachineEventRecord): Promise<void>;
  getMachineEvent(id: string): Promise<MachineEventRecord | null>;
  listMachineEvents(q: MachineEventListQuery): Promise<MachineEventRecord[]>;
  /**
   * Finish every event still `new` or `in progress` as `error` with this text at `at`
   * (operations a stopped server never finished); returns how many. With `scope`, only the
   * events of machines its host holds, and (`unhosted`) of machines no host holds or with no record.
   */
  failUnfinishedMachineEvents(error: string, at: number, scope?: EventHostScope): Promise<number>;
}

/** The hosts sharing this store (see domain/host.ts). */
export interface HostStore {
  /** Insert or replace a host as `up` (a draining host stays draining), heartbeating at `startedAt`. */
  registerHost(h: HostRecord): Promise<void>;
  /** Record a heartbeat (the host is `up` again, or still `draining`); returns the state it had, or null when unknown. */
  heartbeatHost(id: string, at: number): Promise<HostState | null>;
  /** Start (true) or end draining a host that is up or draining; returns the host as it is then (unchanged when stopped or down), or null when unknown. */
  setHostDraining(id: string, draining: boolean): Promise<HostRecord | null>;
  /** Mark a host `stopped` (a clean shutdown). */
  stopHost(id: string, at: number): Promise<void>;
  getHost(id: string): Promise<HostRecord | null>;
  /** Every host, by id. */
  listHosts(): Promise<HostRecord[]>;
  /**
   * Atomically mark `down`, with `reason`, every up or draining host other than `except` whose last
   * heartbeat is before `before`; returns the hosts this call marked (a concurrent call marks each at most once).
   */
  markHostsDown(before: number, except: string, reason: (h: HostRecord) => string): Promise<HostRecord[]>;
  /** How many machines (creating, running or paused, pool machines included) each host holds. */
  hostLoads(): Promise<Map<string, number>>;
  /**
   * Hand a paused machine of host `from` to host `to`, its private address cleared (the new
   * host gives it one of its own at resume). Only when it is still paused on `from`: true when
   * this call moved it (of concurrent calls, one does).
   */
  movePausedMachine(id: string, from: string, to: string, at: number): Promise<boolean>;
  /**
   * Delete the rows of hosts that are down or stopped, silent since before `before`, and named by no
   * machine that is not destroyed (an API server's pod that is gone, a host taken out of the fleet);
   * returns their ids. A host that comes back registers anew.
   */
  forgetHosts(before: number): Promise<string[]>;
  /**
   * Call `onChange` soon after any server changes a host's state, address, capacity or snapshots
   * directory (and once when watching starts), until the returned function is called. PostgreSQL:
   * LISTEN/NOTIFY. SQLite (one server per file): never, as no other server writes its hosts.
   */
  watchHosts(onChange: () => void, onError?: (err: Error) => void): () => Promise<void>;
}

/** Which machines' events: those of one host, and of machines no host holds when `unhosted`. */
export interface EventHostScope {
  hostId: string;
  unhosted: boolean;
}

/** Stored create results for retried creates. */
export interface IdempotencyStore {
  getIdempotency(teamId: string, key: string): Promise<IdempotencyRecord | null>;
  insertIdempotency(rec: IdempotencyRecord): Promise<void>;
  purgeIdempotency(before: number): Promise<number>;
}

/**
 * Everything Hangar persists. One implementation per database (sqlite/, postgres/),
 * each passing store.conformance.ts and built of one part per interface above.
 * Methods are async so a network database fits.
 */
export interface Store extends MetaStore, TeamStore, MachineStore, SnapshotStore, TemplateStore, VolumeStore, StartupScriptStore, NetworkStore, WarmPoolStore, MachineEventStore, IdempotencyStore, HostStore {
  /** Short name for logs and /v1/info. */
  readonly kind: string;
  close(): Promise<void>;
}
