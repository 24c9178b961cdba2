import { HangarError } from '../domain/errors.js';
import type { MachineRecord } from '../domain/machine.js';
import type { SnapshotRecord } from '../domain/snapshot.js';
import type { Caller } from '../domain/team.js';
import { allows } from '../domain/transitions.js';
import { ActivityTracker } from './activity.js';
import { Deadlines } from './deadlines.js';
import { MachineCreator } from './machine-create.js';
import type { MachineCore } from './machine-core.js';
import type { CreateMachineInput, CreateOptions, ListMachinesInput, MachinePage, RestorePointRequest, UpdateMachineInput } from './machine-inputs.js';
import { MachineSnapshots } from './machine-snapshots.js';
import { MachineUpdates } from './machine-update.js';
import { PauseResume } from './pause-resume.js';
import { MachineListing } from './machine-listing.js';
import { Recovery, type RecoveryReport } from './recovery.js';
import type { NetworkService } from './network-service.js';
import type { VolumeService } from './volume-service.js';
import type { WarmPoolService } from './warm-pools.js';
import type { QuotaService } from './quotas.js';

/** What the machine service is built from. */
export interface MachineServiceOptions {
  core: MachineCore;
  /** Creates are served from these pools first. */
  pools: WarmPoolService;
  /** Checks the volumes a create attaches. */
  volumes: VolumeService;
  /** Checks the private network a create joins. */
  networks: NetworkService;
  /** Destroyed records stay this long. */
  retentionMs: number;
}

/**
 * The core of Hangar: every surface (native, Paperspace-style, compute) goes through
 * here. Each job lives in its own module (create, pause/resume, update and resize,
 * snapshots, activity, deadlines, recovery) over one shared `MachineCore`; this class is
 * the one door to them.
 */
export class MachineService {
  private readonly core: MachineCore;
  private readonly creator: MachineCreator;
  private readonly listing: MachineListing;
  private readonly pauses: PauseResume;
  private readonly updates: MachineUpdates;
  private readonly snapshots: MachineSnapshots;
  private readonly activity: ActivityTracker;
  private readonly deadlines: Deadlines;
  private readonly recovery: Recovery;
  readonly now: () => number;

  /** The teams' quotas (set by admins, enforced by every create, resume, resize, snapshot, volume and template build). */
  get quotas(): QuotaService {
    return this.core.quotas;
  }

  constructor(o: MachineServiceOptions) {
    this.core = o.core;
    this.now = o.core.now;
    this.snapshots = new MachineSnapshots(o.core);
    this.creator = new MachineCreator(o.core, this.snapshots, o.pools, o.volumes, o.networks);
    this.listing = new MachineListing(o.core);
    this.pauses = new PauseResume(o.core);
    this.updates = new MachineUpdates(o.core, this.snapshots);
    this.activity = new ActivityTracker(o.core);
    this.deadlines = new Deadlines(o.core, this.pauses, this.snapshots, this.activity, o.retentionMs);
    this.recovery = new Recovery(o.core);
  }

  /** Run `work` timed as `operation` for the metrics (exec and other services). */
  timed<T>(operation: string, work: () => Promise<T>): Promise<T> {
    return this.core.timed(operation, work);
  }

  /** The machine's traffic access token (derived, never stored). */
  trafficToken(id: string): string {
    return this.core.o.secret.trafficToken(id);
  }

  /** A machine's envd access token (E2B surface: commands and files), never the traffic token. */
  envdToken(id: string): string {
    return this.core.o.secret.envdToken(id);
  }

  /** Create and start a machine; with an idempotency key, a retry returns the first result. */
  create(caller: Caller, input: CreateMachineInput, idempotencyKey?: string, options: CreateOptions = {}): Promise<MachineRecord> {
    return this.core.timed(input.snapshotId === undefined ? 'create' : 'fork', () => this.creator.create(caller, input, idempotencyKey, options));
  }

  /** Any team's machine by id, for ingress (which authenticates with the machine's traffic token, not an API key). */
  findForTraffic(id: string): Promise<MachineRecord | null> {
    return this.core.store.getMachine(id);
  }

  /** A machine the caller reaches (its team's; for a member, one it created or is an accessor of), or NOT_FOUND. */
  get(caller: Caller, id: string): Promise<MachineRecord> {
    return this.core.get(caller, id);
  }

  /** `get`, for work on the machine's processes or files: 409 MACHINE_ON_OTHER_HOST when another host runs it. */
  async getHere(caller: Caller, id: string): Promise<MachineRecord> {
    const m = await this.core.get(caller, id);
    await this.core.assertHere(m);
    return m;
  }

  /** True when this host runs the machine (or no host holds it). */
  isHere(m: MachineRecord): boolean {
    return this.core.isHere(m);
  }

  /** 409 MACHINE_ON_OTHER_HOST when another host runs the machine. */
  assertHere(m: MachineRecord): Promise<void> {
    return this.core.assertHere(m);
  }

  /** List the caller's machines, newest first. */
  list(caller: Caller, input: ListMachinesInput): Promise<MachinePage> {
    return this.listing.list(caller, input);
  }

  /** Destroy a machine: processes, mounts, cgroups, files and its pause snapshot all go. */
  destroy(caller: Caller, id: string): Promise<MachineRecord> {
    return this.core.timed('delete', () => this.destroyNow(caller, id));
  }

  private destroyNow(caller: Caller, id: string): Promise<MachineRecord> {
    return this.core.locked(
      caller,
      id,
      'destroy',
      async (m) => {
        if (!allows(m.status, 'destroy')) throw new HangarError('STATE_CONFLICT', `Machine ${id} is already destroyed.`, { status: m.status });
        return this.core.recorded(m, 'delete', () => this.core.destroyLocked(m));
      },
      { destroyWhenDown: true },
    );
  }

  /** Move the hard deadline to now + timeoutMs. */
  refreshTimeout(caller: Caller, id: string, timeoutMs: number): Promise<MachineRecord> {
    return this.updates.refreshTimeout(caller, id, timeoutMs);
  }

  /** Change a machine's name, timers, restore point or resources (see MachineUpdates.update). */
  update(caller: Caller, id: string, input: UpdateMachineInput): Promise<MachineRecord> {
    return this.updates.update(caller, id, input);
  }

  /** Refuse a restore point request that cannot be applied to the machine as it is now. */
  checkRestorePoint(caller: Caller, id: string, request: RestorePointRequest): Promise<void> {
    return this.updates.checkRestorePoint(caller, id, request);
  }

  /** Restart a running machine's processes from its template's init, its files kept. */
  restart(caller: Caller, id: string): Promise<MachineRecord> {
    return this.pauses.restart(caller, id);
  }

  /** Bytes in use in a machine's writable layer, or null when it is not mounted. */
  diskUsage(id: string): Promise<number | null> {
    // Measuring is best effort (a view field): a machine stopping meanwhile reads as unknown.
    return this.core.runtime.diskUsage(id).catch(() => null);
  }

  /** Pause a running machine to a snapshot of its memory and disk. */
  pause(caller: Caller, id: string): Promise<MachineRecord> {
    return this.core.timed('pause', () => this.pauses.pause(caller, id));
  }

  /** Resume a paused machine from its snapshot: same processes, timers restarted. */
  resume(caller: Caller, id: string): Promise<MachineRecord> {
    return this.core.timed('resume', () => this.pauses.resume(caller, id));
  }

  /** Resume a paused auto_resume machine for ingress traffic (one resume shared by all callers). */
  resumeForTraffic(id: string): Promise<MachineRecord> {
    return this.pauses.resumeForTraffic(id);
  }

  /** Snapshot a running machine without stopping it. */
  snapshot(caller: Caller, id: string): Promise<SnapshotRecord> {
    return this.core.timed('snapshot', () => this.snapshots.snapshot(caller, id));
  }

  /** The caller's snapshots, newest first: for a member, those of machines it reaches. */
  listSnapshots(caller: Caller, machineId?: string): Promise<SnapshotRecord[]> {
    return this.snapshots.list(caller, machineId);
  }

  /** One of the caller's snapshots, or NOT_FOUND. */
  getSnapshot(caller: Caller, id: string): Promise<SnapshotRecord> {
    return this.snapshots.get(caller, id);
  }

  /** Delete a snapshot; one a paused machine needs to resume, or a restore point, is a 409. */
  deleteSnapshot(caller: Caller, id: string): Promise<void> {
    return this.snapshots.delete(caller, id);
  }

  /** Record activity on a machine (an exec, a file call, ...): it moves the inactivity deadline. */
  touch(id: string): void {
    this.activity.touch(id);
  }

  /** Store all pending activity now and ignore later touches (server shutdown). */
  stopActivityTracking(): Promise<void> {
    return this.activity.stop();
  }

  /** Apply every lifecycle deadline that has passed (the scheduler's sweep). */
  runDue(): Promise<void> {
    return this.deadlines.runDue();
  }

  /** Reconcile the store with the host after a (re)start. */
  recover(): Promise<RecoveryReport> {
    return this.recovery.recover();
  }

  /** Destroy every machine and snapshot of this server (tests and `hangar clean`), then instance resources. */
  destroyAll(): Promise<void> {
    return this.recovery.destroyAll();
  }
}
