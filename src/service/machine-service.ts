import { createHash } from 'node:crypto';
import { HangarError, machineNotFound, validationError } from '../domain/errors.js';
import { newMachineId, newSnapshotId } from '../domain/ids.js';
import { deadlineOf, nextDue, type DueAction } from '../domain/lifecycle.js';
import type { MachineEventName } from '../domain/machine-event.js';
import {
  configProblems,
  DEFAULT_CONFIG,
  DEFAULT_TIMEOUT_MS,
  MACHINE_STATUSES,
  newMachineRecord,
  type AutoSnapshotFrequency,
  type AutoSnapshotSettings,
  type MachineConfig,
  type MachineRecord,
  type MachineStatus,
  type TimeoutAction,
  type WarmPoolCheckout,
} from '../domain/machine.js';
import { canonicalJson } from '../domain/metadata.js';
import { DEFAULT_OUTBOUND, formatCidr, IpAllocator, isDefaultOutbound, type Cidr, type OutboundPolicy } from '../domain/network.js';
import { POOL_TEAM_ID, poolMatches, type WarmPool } from '../domain/warm-pool.js';
import type { SnapshotKind, SnapshotRecord } from '../domain/snapshot.js';
import type { Caller } from '../domain/team.js';
import type { MachineSpec, Runtime, SnapshotRuntime } from '../runtime/runtime.js';
import { ResizeRefusedError, RuntimeError } from '../runtime/runtime.js';
import type { ListCursor, Store } from '../store/store.js';
import { desktopEnv } from '../templates/desktop.js';
import { cwdProblem, type Template, type TemplateCatalog } from '../templates/templates.js';
import { callerReaches, listingNarrowedTo } from './access.js';
import { MachineLocks } from './keyed-lock.js';
import { CursorCodec, NEXT_TOKEN_FORMAT } from './cursor-codec.js';
import type { ServerSecret } from './secrets.js';

/** A create request after validation at the edge; absent fields take their defaults. */
export interface CreateMachineInput {
  template?: string;
  config?: Partial<MachineConfig>;
  metadata?: Record<string, unknown>;
  timeoutMs?: number;
  timeoutAction?: TimeoutAction;
  inactivityTimeoutMs?: number | null;
  autoDeleteAfterMs?: number | null;
  ephemeral?: boolean;
  /** Already normalised. */
  cwd?: string;
  env?: Record<string, string>;
  /** Start from this snapshot (a fork) instead of the template's init. */
  snapshotId?: string;
  /** What the machine may reach outside the host. @default allow */
  outbound?: OutboundPolicy;
  /** Ingress without a traffic access token. @default false */
  public?: boolean;
  /** Ingress traffic to the machine while paused resumes it. @default false */
  autoResume?: boolean;
  /** A human name. @default null */
  name?: string;
  /** Periodic automatic snapshots while the machine runs. @default off */
  autoSnapshot?: AutoSnapshotRequest;
  /** Once the machine runs, take a snapshot (kind `initial`) as part of the create. @default false */
  takeInitialSnapshot?: boolean;
  /** Take the initial snapshot and make it the machine's restore point. @default false */
  restorePointFromInitial?: boolean;
}

/** Auto snapshot settings as a request gives them (already validated). */
export interface AutoSnapshotRequest {
  frequency: AutoSnapshotFrequency;
  /** How many automatic snapshots to keep, 1..AUTO_SNAPSHOT_MAX_KEEP. */
  keep: number;
}

/** A restore point to set: a snapshot of the machine, or (no id) one taken now. */
export interface RestorePointRequest {
  snapshotId?: string;
}

/** Options of a create call that are not part of the request. */
export interface CreateOptions {
  /**
   * Told as soon as the machine's record exists (before its container starts), with a
   * copy of the record: lets a caller answer at once and follow the rest in the background.
   */
  onRecorded?: (m: MachineRecord) => void;
}

/** Settings of an existing machine that can be changed; absent fields stay as they are. */
export interface UpdateMachineInput {
  name?: string;
  /** The new hard deadline length; a running machine's deadline becomes now + this. */
  timeoutMs?: number;
  timeoutAction?: TimeoutAction;
  /** New auto snapshot settings; null turns them off (automatic snapshots already taken stay). */
  autoSnapshot?: AutoSnapshotRequest | null;
  /**
   * Set the restore point (each pause reverts the machine to it); null clears it (the
   * snapshot stays). Without an id, a running machine is snapshotted now, and a machine
   * that already has a restore point keeps it.
   */
  restorePoint?: RestorePointRequest | null;
  /**
   * New resources for a running machine (a resize); absent ones stay. The disk only grows.
   * Applied to the running machine before anything is saved.
   */
  config?: Partial<MachineConfig>;
}

/** A list request after validation at the edge. */
export interface ListMachinesInput {
  states?: MachineStatus[];
  template?: string;
  metadata?: Record<string, unknown>;
  limit?: number;
  nextToken?: string;
  /** False for the legacy bare-array form: everything, no cursor. */
  paginated: boolean;
}

/** One page of machines. */
export interface MachinePage {
  items: MachineRecord[];
  nextToken: string | null;
}

/** Minimal logger: Fastify's (pino) fits. */
export interface ServiceLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/**
 * Records operations on machines as machine events. The service calls it once an
 * operation is accepted (state checked, lock held), so refused requests record nothing.
 */
export interface OperationRecorder {
  /** Run `work` recorded as event `name` of the machine (or as part of an operation already recorded). */
  record<T>(teamId: string, machineId: string, name: MachineEventName, work: () => Promise<T>): Promise<T>;
}

/** Dependencies and policy of the machine service. */
export interface MachineServiceOptions {
  store: Store;
  runtime: Runtime & SnapshotRuntime;
  templates: TemplateCatalog;
  secret: ServerSecret;
  log: ServiceLogger;
  /** Destroyed records stay this long. */
  retentionMs: number;
  /** Machines holding resources on this host at most. */
  maxMachines: number;
  /** The machines' private subnet; each machine holds one address of it while it holds resources. */
  subnet: Cidr;
  /** Injectable clock for tests. @default Date.now */
  now?: () => number;
  /** Told after a create considered a warm pool, so it can refill. */
  onPoolCheckout?: (pool: string) => void;
  /** Records every create, start, stop, restart, update and delete as an event. @default none */
  recorder?: OperationRecorder;
}

const LIVE_STATUSES = MACHINE_STATUSES.filter((s) => s !== 'destroyed');
const IDEMPOTENCY_TTL_MS = 24 * 3_600_000;
const reasonOf = (err: unknown): string => (err instanceof RuntimeError ? err.message : 'the runtime failed unexpectedly');
/** A machine's activity reaches the store at most this often; in between it is held in memory. */
const ACTIVITY_FLUSH_MS = 1_000;
/** A flush that finds the machine busy with another operation tries again after this long. */
const ACTIVITY_RETRY_MS = 250;

/** The core of Hangar: every surface (native, Paperspace-style, compute) goes through here. */
export class MachineService {
  private readonly locks = new MachineLocks();
  private readonly cursors: CursorCodec<ListCursor>;
  private readonly inflightCreates = new Map<string, Promise<MachineRecord>>();
  /** Resumes in flight (from the API or from ingress), which ingress traffic waits for instead of a 409. */
  private readonly resuming = new Map<string, Promise<MachineRecord>>();
  /** Machines running on this server, for the capacity check. */
  private readonly holding = new Set<string>();
  private readonly ips: IpAllocator;
  private lastKeyPurge = 0;
  /** Latest activity per machine not yet in the store. */
  private readonly activity = new Map<string, number>();
  /** Per machine: the pending flush, or the quiet second after one. */
  private readonly activityTimers = new Map<string, NodeJS.Timeout>();
  private activityStopped = false;
  /** Activity writes in progress, awaited at shutdown. */
  private readonly activityWrites = new Set<Promise<void>>();
  readonly now: () => number;

  constructor(private readonly o: MachineServiceOptions) {
    this.cursors = new CursorCodec(o.secret, NEXT_TOKEN_FORMAT);
    this.ips = new IpAllocator(o.subnet);
    this.now = o.now ?? Date.now;
  }

  /** The machine's traffic access token (derived, never stored). */
  trafficToken(id: string): string {
    return this.o.secret.trafficToken(id);
  }

  private async save(m: MachineRecord): Promise<MachineRecord> {
    m.deadlineAt = deadlineOf(m);
    await this.o.store.updateMachine(m);
    return m;
  }

  /** Run an accepted operation, recorded as an event when a recorder is configured. */
  private recorded<T>(m: MachineRecord, name: MachineEventName, work: () => Promise<T>): Promise<T> {
    return this.o.recorder ? this.o.recorder.record(m.teamId, m.id, name, work) : work();
  }

  private async template(name: string): Promise<Template> {
    const template = await this.o.templates.get(name);
    if (template) return template;
    const known = (await this.o.templates.list()).map((t) => t.name);
    throw new HangarError('UNKNOWN_TEMPLATE', `Template "${name}" does not exist. Available: ${known.join(', ') || 'none'}.`, {
      template: name,
      available: known,
    });
  }

  /** A free private address for a machine, or 429 when the subnet is full. */
  private allocateIp(machineId: string): string {
    const ip = this.ips.allocate(machineId);
    if (ip === null) {
      throw new HangarError('CAPACITY_EXCEEDED', `The machine subnet ${formatCidr(this.o.subnet)} has no free address; destroy a machine or set a larger HANGAR_SUBNET.`);
    }
    return ip;
  }

  /** The machine no longer holds host resources: its address may go to another. */
  private releaseIp(m: MachineRecord): void {
    if (m.privateIp !== null) this.ips.release(m.privateIp, m.id);
  }

  private spec(m: MachineRecord, template: Template): MachineSpec {
    if (m.privateIp === null) throw new Error(`machine ${m.id} has no private address`);
    return {
      id: m.id,
      hostname: m.id,
      templateRootfs: template.rootfs,
      init: template.init,
      // The desktop's variables come last: a machine's own env cannot replace its VNC password.
      env: { ...template.env, ...m.env, ...(template.desktop ? desktopEnv(template.desktop, this.o.secret.vncPassword(m.id)) : {}), HOSTNAME: m.id },
      cwd: m.cwd ?? template.cwd,
      config: m.config,
      network: { ip: m.privateIp, outbound: m.outbound },
    };
  }

  /**
   * Give a fork of a desktop machine its own VNC password: the restored VNC server still
   * checks its source's, which is not the one derived from the fork's id.
   */
  private async setDesktopPassword(m: MachineRecord, template: Template): Promise<void> {
    const argv = template.desktop?.set_password;
    if (!template.desktop || !argv) return;
    const env = desktopEnv(template.desktop, this.o.secret.vncPassword(m.id));
    let output = '';
    const keep = (chunk: Buffer): void => {
      if (output.length < 2000) output += chunk.toString('utf8');
    };
    const r = await this.o.runtime.exec(m.id, { argv, cwd: '/', env, uid: 0, gid: 0, timeoutMs: 10_000 }, { stdout: keep, stderr: keep });
    if (r.exitCode !== 0) throw new Error(`setting the fork's VNC password failed (exit ${r.exitCode}): ${output.trim()}`);
  }

  /** Create and start a machine; with an idempotency key, a retry returns the first result. */
  async create(caller: Caller, input: CreateMachineInput, idempotencyKey?: string, options: CreateOptions = {}): Promise<MachineRecord> {
    const notify = options.onRecorded;
    if (idempotencyKey === undefined) return this.createNow(caller, input, notify && (async (m) => notify({ ...m })));
    const requestHash = createHash('sha256').update(JSON.stringify(input)).digest('hex');
    // Each user has its own keys: one member's retry never returns another member's machine.
    const key = caller.user ? `${caller.user.id}\0${idempotencyKey}` : idempotencyKey;
    const slot = `${caller.team.id}\0${key}`;
    const inflight = this.inflightCreates.get(slot);
    if (inflight) {
      await inflight.catch(() => undefined);
    }
    const prior = await this.o.store.getIdempotency(caller.team.id, key);
    if (prior) {
      if (prior.requestHash !== requestHash) {
        throw new HangarError('IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was used with a different request body; use a new key for a new machine.');
      }
      const m = await this.o.store.getMachine(prior.machineId);
      if (m) {
        notify?.({ ...m });
        return m;
      }
    }
    const p = this.createNow(caller, input, async (m) => {
      await this.o.store.insertIdempotency({ teamId: caller.team.id, key, requestHash, machineId: m.id, createdAt: m.createdAt });
      notify?.({ ...m });
    });
    this.inflightCreates.set(slot, p);
    try {
      return await p;
    } finally {
      this.inflightCreates.delete(slot);
    }
  }

  /** The snapshot a create starts from, checked against the request. */
  private async forkSource(caller: Caller, input: CreateMachineInput): Promise<SnapshotRecord | null> {
    if (input.snapshotId === undefined) return null;
    const snap = await this.o.store.getSnapshot(input.snapshotId);
    if (!snap || !(await this.snapshotReachable(caller, snap))) {
      throw new HangarError('UNKNOWN_SNAPSHOT', `Snapshot ${input.snapshotId} does not exist for this team; list yours with GET /v1/snapshots.`, {
        snapshot_id: input.snapshotId,
      });
    }
    const fixed: string[] = [];
    if (input.template !== undefined && input.template !== snap.template) fixed.push(`template (the snapshot's is "${snap.template}")`);
    if (input.config?.disk_mb !== undefined && input.config.disk_mb !== snap.config.disk_mb) fixed.push(`config.disk_mb (the snapshot's is ${snap.config.disk_mb})`);
    if (input.env !== undefined) fixed.push('env (the processes keep the environment they had)');
    if (input.cwd !== undefined) fixed.push('cwd (the processes keep the working directory they had)');
    if (fixed.length) {
      throw new HangarError('UNSUPPORTED_OPERATION', `A machine started from a snapshot takes these from the snapshot; omit them: ${fixed.join('; ')}.`, {
        snapshot_id: snap.id,
      });
    }
    return snap;
  }

  private async createNow(
    caller: Caller,
    input: CreateMachineInput,
    onRecorded?: (m: MachineRecord) => Promise<void>,
  ): Promise<MachineRecord> {
    const source = await this.forkSource(caller, input);
    const templateName = source?.template ?? input.template ?? 'base';
    const template = await this.template(templateName);
    if (input.cwd !== undefined) {
      const problem = await cwdProblem(template, input.cwd);
      if (problem) throw validationError([{ field: 'cwd', message: problem }]);
    }
    let warmPoolCheckout: WarmPoolCheckout | null = null;
    const outbound = input.outbound ?? DEFAULT_OUTBOUND;
    // Pool machines run the default policy: a create asking for another starts cold.
    if (!source && isDefaultOutbound(outbound)) {
      const config = { ...DEFAULT_CONFIG, ...input.config };
      const pool = (await this.o.store.listWarmPools()).find((p) => poolMatches(p, templateName, config));
      if (pool) {
        const taken = await this.checkout(caller, pool, input);
        if (taken) {
          await onRecorded?.(taken);
          return taken;
        }
        warmPoolCheckout = { hit: false, id: pool.name };
      }
    }
    if (this.holding.size >= this.o.maxMachines) {
      throw new HangarError('CAPACITY_EXCEEDED', `This server runs at most ${this.o.maxMachines} machines; destroy one or try later.`);
    }

    const now = this.now();
    const timeoutMs = input.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const id = newMachineId();
    const m = newMachineRecord({
      warmPoolCheckout,
      id,
      privateIp: this.allocateIp(id),
      outbound,
      public: input.public ?? false,
      autoResume: input.autoResume ?? false,
      teamId: caller.team.id,
      createdBy: caller.user?.id ?? null,
      template: templateName,
      createdAt: now,
      config: { ...DEFAULT_CONFIG, ...source?.config, ...input.config },
      metadata: input.metadata ?? {},
      env: source?.env ?? input.env ?? {},
      cwd: source ? source.cwd : (input.cwd ?? null),
      ephemeral: input.ephemeral ?? false,
      timeoutMs,
      timeoutAction: input.timeoutAction ?? 'destroy',
      inactivityTimeoutMs: input.inactivityTimeoutMs ?? null,
      autoDeleteAfterMs: input.autoDeleteAfterMs ?? null,
      name: input.name ?? null,
      autoSnapshot: autoSnapshotSettings(input.autoSnapshot, now),
    });
    this.holding.add(m.id);
    const createLocked = () => this.locks.with(m.id, 'create', async () => {
      await this.o.store.insertMachine(m);
      await onRecorded?.(m);
      return this.recorded(m, 'create', async () => {
        try {
          if (source) {
            await this.o.runtime.fork(this.spec(m, template), source.id);
            await this.setDesktopPassword(m, template);
          } else await this.o.runtime.start(this.spec(m, template));
        } catch (err) {
          this.holding.delete(m.id);
          this.releaseIp(m);
          this.o.log.error({ machine: m.id, err }, 'machine start failed');
          m.status = 'error';
          m.errorReason = reasonOf(err);
          await this.save(m);
          if (err instanceof HangarError) throw err;
          throw source
            ? new HangarError('RESTORE_FAILED', `Machine ${m.id} could not be started from snapshot ${source.id}: ${m.errorReason}.`, { machine_id: m.id })
            : new HangarError('RUNTIME_FAILED', `Machine ${m.id} could not be started: ${m.errorReason}.`, { machine_id: m.id });
        }
        const started = this.now();
        m.status = 'running';
        m.startedAt = started;
        m.timeoutAt = started + timeoutMs;
        await this.save(m);
        return this.initialSnapshotLocked(m, input);
      });
    });
    if (source?.kind !== 'pause') return createLocked();
    // A pause snapshot's disk belongs to its paused machine: hold that machine still meanwhile.
    return this.locks.with(source.machineId, 'a fork from its snapshot', createLocked).catch((err: unknown) => {
      if (m.status === 'creating') {
        // The source was busy: nothing was created.
        this.holding.delete(m.id);
        this.releaseIp(m);
      }
      throw err;
    });
  }

  /**
   * Hand a ready machine of `pool` to the caller: claimed atomically in the store, then
   * given the request's metadata, env, cwd and timers as if it had just started.
   * Null (a miss) when none is ready.
   */
  private async checkout(caller: Caller, pool: WarmPool, input: CreateMachineInput): Promise<MachineRecord | null> {
    const claimed = await this.o.store.claimPoolMachine(pool.name, caller.team.id);
    await this.o.store.countPoolCheckout(pool.name, claimed !== null);
    this.o.onPoolCheckout?.(pool.name);
    if (!claimed) return null;
    return this.locks.with(claimed.id, 'checkout', () => this.recorded(claimed, 'create', async () => {
      const now = this.now();
      const timeoutMs = input.timeoutMs ?? DEFAULT_TIMEOUT_MS;
      Object.assign(claimed, {
        teamId: caller.team.id,
        createdBy: caller.user?.id ?? null,
        metadata: input.metadata ?? {},
        env: input.env ?? {},
        cwd: input.cwd ?? null,
        ephemeral: input.ephemeral ?? false,
        timeoutMs,
        timeoutAt: now + timeoutMs,
        timeoutAction: input.timeoutAction ?? 'destroy',
        inactivityTimeoutMs: input.inactivityTimeoutMs ?? null,
        autoDeleteAfterMs: input.autoDeleteAfterMs ?? null,
        public: input.public ?? false,
        autoResume: input.autoResume ?? false,
        createdAt: now,
        startedAt: now,
        name: input.name ?? null,
        warmPoolCheckout: { hit: true, id: pool.name },
        autoSnapshot: autoSnapshotSettings(input.autoSnapshot, now),
        restorePoint: null,
      } satisfies Partial<MachineRecord>);
      if (input.cwd !== undefined) await this.o.runtime.ensureDir(claimed.id, input.cwd);
      await this.save(claimed);
      return this.initialSnapshotLocked(claimed, input);
    }));
  }

  /**
   * The snapshot a create asked for, once the machine runs (part of the create): a
   * failure leaves the machine running and fails the create with SNAPSHOT_FAILED.
   */
  private async initialSnapshotLocked(m: MachineRecord, input: CreateMachineInput): Promise<MachineRecord> {
    if (!input.takeInitialSnapshot && !input.restorePointFromInitial) return m;
    const snap = await this.takeSnapshotLocked(m, 'initial', 'its initial snapshot');
    if (input.restorePointFromInitial) {
      m.restorePoint = { frequency: 'shutdown', snapshotId: snap.id };
      await this.save(m);
    }
    return m;
  }

  /** Start one idle machine for a warm pool (the pool service calls this to refill). */
  async startPoolMachine(pool: WarmPool): Promise<MachineRecord> {
    const template = await this.template(pool.template);
    if (this.holding.size >= this.o.maxMachines) {
      throw new HangarError('CAPACITY_EXCEEDED', `This server runs at most ${this.o.maxMachines} machines.`);
    }
    const id = newMachineId();
    const m = newMachineRecord({ id, teamId: POOL_TEAM_ID, template: pool.template, createdAt: this.now(), config: pool.config, pool: pool.name, privateIp: this.allocateIp(id) });
    this.holding.add(m.id);
    return this.locks.with(m.id, 'create', async () => {
      await this.o.store.insertMachine(m);
      try {
        await this.o.runtime.start({ ...this.spec(m, template), background: true });
      } catch (err) {
        this.holding.delete(m.id);
        this.releaseIp(m);
        // A pool machine nobody saw: record it as gone rather than leave an error behind.
        Object.assign(m, { status: 'destroyed', destroyedAt: this.now(), pool: null, errorReason: null });
        await this.save(m);
        throw err;
      }
      m.status = 'running';
      m.startedAt = this.now();
      return this.save(m);
    });
  }

  /** Destroy idle machines of a pool, oldest first, keeping `keep` of them. */
  async trimPool(name: string, keep: number): Promise<number> {
    const idle = await this.o.store.poolMachines(name);
    let destroyed = 0;
    for (const m of idle.slice(0, Math.max(0, idle.length - keep))) {
      const ok = await this.locks.with(m.id, 'destroy', async () => {
        const fresh = await this.o.store.getMachine(m.id);
        if (fresh?.pool !== name || fresh.status !== 'running') return false; // checked out meanwhile
        await this.destroyLocked(fresh);
        return true;
      }).catch(() => false);
      if (ok) destroyed++;
    }
    return destroyed;
  }

  /** Any team's machine by id, for ingress (which authenticates with the machine's traffic token, not an API key). */
  findForTraffic(id: string): Promise<MachineRecord | null> {
    return this.o.store.getMachine(id);
  }

  /** A machine the caller reaches (its team's; for a member, one it created or is an accessor of), or NOT_FOUND. */
  async get(caller: Caller, id: string): Promise<MachineRecord> {
    const m = await this.o.store.getMachine(id);
    if (!m || !(await callerReaches(this.o.store, caller, m))) throw machineNotFound(id);
    return m;
  }

  /** List the caller's machines, newest first. */
  async list(caller: Caller, input: ListMachinesInput): Promise<MachinePage> {
    const statuses = input.states ?? LIVE_STATUSES;
    if (!input.paginated) {
      const items = await this.o.store.listMachines({ teamId: caller.team.id, statuses, visibleTo: listingNarrowedTo(caller) });
      return { items, nextToken: null };
    }
    // The cursor is bound to the filters, not to how the client spelled them.
    const scope = canonicalJson([[...statuses].sort(), input.template ?? null, input.metadata ?? null]);
    const after = input.nextToken === undefined ? undefined : this.cursors.decode(input.nextToken, caller.team.id, scope);
    const limit = input.limit ?? 100;
    const rows = await this.o.store.listMachines({
      teamId: caller.team.id,
      statuses,
      template: input.template,
      metadata: input.metadata,
      after,
      limit: limit + 1,
      visibleTo: listingNarrowedTo(caller),
    });
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    const nextToken = rows.length > limit && last ? this.cursors.encode({ createdAt: last.createdAt, id: last.id }, caller.team.id, scope) : null;
    return { items, nextToken };
  }

  /** Run `fn` on the caller's machine under its lock, with the freshest record. */
  private async locked<T>(caller: Caller, id: string, operation: string, fn: (m: MachineRecord) => Promise<T>): Promise<T> {
    await this.get(caller, id);
    return this.locks.with(id, operation, async () => fn((await this.o.store.getMachine(id))!));
  }

  private conflict(m: MachineRecord, operation: string, allowed: string): HangarError {
    return new HangarError('STATE_CONFLICT', `Machine ${m.id} is ${m.status}; ${operation} needs a machine that is ${allowed}.`, {
      status: m.status,
    });
  }

  /** Destroy a machine: processes, mounts, cgroups, files and its pause snapshot all go. */
  async destroy(caller: Caller, id: string): Promise<MachineRecord> {
    return this.locked(caller, id, 'destroy', async (m) => {
      if (m.status === 'destroyed') throw new HangarError('STATE_CONFLICT', `Machine ${id} is already destroyed.`, { status: m.status });
      return this.recorded(m, 'delete', () => this.destroyLocked(m));
    });
  }

  private async destroyLocked(m: MachineRecord): Promise<MachineRecord> {
    try {
      await this.o.runtime.destroy(m.id);
      // Its pause snapshot (and one a failed pause left behind) is part of the machine; manual ones outlive it.
      for (const snap of await this.o.store.listSnapshots(m.teamId, m.id)) {
        if (snap.kind !== 'pause') continue;
        await this.o.runtime.deleteSnapshot(snap.id);
        await this.o.store.deleteSnapshot(snap.id);
      }
    } catch (err) {
      const reason = `destroy failed: ${err instanceof Error ? err.message : String(err)}`;
      this.o.log.error({ machine: m.id, err }, 'machine destroy failed');
      m.status = 'error';
      m.errorReason = reason;
      await this.save(m);
      throw new HangarError('RUNTIME_FAILED', `Machine ${m.id} could not be destroyed (${reason}); it is now in error. Retry the delete.`, { machine_id: m.id });
    }
    this.holding.delete(m.id);
    this.releaseIp(m);
    m.status = 'destroyed';
    m.destroyedAt = this.now();
    m.snapshotId = null;
    m.errorReason = null;
    return this.save(m);
  }

  /** Move the hard deadline to now + timeoutMs. */
  async refreshTimeout(caller: Caller, id: string, timeoutMs: number): Promise<MachineRecord> {
    return this.locked(caller, id, 'timeout refresh', async (m) => {
      if (m.status !== 'running') throw this.conflict(m, 'a timeout refresh', 'running');
      return this.recorded(m, 'update', async () => {
        m.timeoutMs = timeoutMs;
        m.timeoutAt = this.now() + timeoutMs;
        m.updatedAt = this.now();
        return this.save(m);
      });
    });
  }

  /**
   * Change a machine's name, timers or resources; a destroyed machine is a 409. A
   * resize applies to the running machine first and is saved only once it took effect,
   * so a refused or failed resize changes nothing (the other fields included).
   */
  async update(caller: Caller, id: string, input: UpdateMachineInput): Promise<MachineRecord> {
    const wanted = input.config ?? {};
    const problems = configProblems(wanted);
    if (problems.length) throw validationError(problems);
    return this.locked(caller, id, 'update', async (m) => {
      if (m.status === 'destroyed') throw this.conflict(m, 'an update', 'not destroyed');
      // Refused before the event: a refused update records nothing.
      if (input.restorePoint) await this.restorePointProblem(m, input.restorePoint);
      const next: MachineConfig = { ...m.config, ...wanted };
      const resize = next.vcpus !== m.config.vcpus || next.memory_mb !== m.config.memory_mb || next.disk_mb !== m.config.disk_mb;
      if (resize) {
        if (next.disk_mb < m.config.disk_mb) {
          throw new HangarError(
            'UNSUPPORTED_OPERATION',
            `Shrinking the disk is not supported (machine ${m.id} has config.disk_mb ${m.config.disk_mb}, ${next.disk_mb} was asked); create a new machine with the smaller disk and copy the files over.`,
            { field: 'config.disk_mb', disk_mb: m.config.disk_mb },
          );
        }
        // Paused: the new limits could go into the bundle its restore reads, but a memory
        // limit below what its processes held would only fail at the resume (see docs).
        if (m.status !== 'running') throw this.conflict(m, 'a resize', 'running (start it first, then resize)');
      }
      return this.recorded(m, 'update', async () => {
        if (resize) await this.resizeLocked(m, next);
        const now = this.now();
        if (input.name !== undefined) m.name = input.name;
        if (input.timeoutAction !== undefined) m.timeoutAction = input.timeoutAction;
        if (input.timeoutMs !== undefined) {
          m.timeoutMs = input.timeoutMs;
          // A paused machine's deadline restarts from its resume, which reads timeoutMs then.
          if (m.status === 'running') m.timeoutAt = now + input.timeoutMs;
        }
        if (input.restorePoint !== undefined) await this.setRestorePointLocked(m, input.restorePoint);
        if (input.autoSnapshot !== undefined) {
          const current = m.autoSnapshot;
          m.autoSnapshot =
            input.autoSnapshot === null
              ? null
              : {
                  ...input.autoSnapshot,
                  // The same frequency keeps its schedule; a new one starts its first period now.
                  since: current?.frequency === input.autoSnapshot.frequency ? current.since : now,
                  lastAt: current?.lastAt ?? null,
                };
          if (m.autoSnapshot) await this.rotateAutoSnapshots(m);
        }
        m.updatedAt = now;
        return this.save(m);
      });
    });
  }

  /** Apply new resources to a running machine, then set them on the record (saved by the caller). */
  private async resizeLocked(m: MachineRecord, next: MachineConfig): Promise<void> {
    const template = await this.template(m.template);
    const previous = m.config;
    try {
      await this.o.runtime.resize(this.spec({ ...m, config: next }, template), previous);
    } catch (err) {
      if (err instanceof ResizeRefusedError) {
        switch (err.refusal) {
          case 'memory_in_use': {
            const usedMb = Math.ceil((err.usedBytes ?? 0) / (1024 * 1024));
            throw new HangarError(
              'STATE_CONFLICT',
              `Machine ${m.id} uses ${usedMb} MiB of memory now, more than the ${next.memory_mb} MiB asked; the kernel refused to lower the limit. Free memory inside the machine (end processes) or ask for at least ${usedMb} MiB. Nothing was changed.`,
              { field: 'config.memory_mb', used_mb: usedMb, memory_mb: m.config.memory_mb },
            );
          }
          case 'mixed_time_namespaces':
            throw new HangarError(
              'STATE_CONFLICT',
              `The disk of machine ${m.id} cannot grow while it runs: ${err.message}. Restart the machine (its files are kept), then grow the disk. Nothing was changed.`,
              { field: 'config.disk_mb' },
            );
          case 'disk_unsupported':
            throw new HangarError('UNSUPPORTED_OPERATION', `Growing the disk of machine ${m.id} is not possible on this server: ${err.message}. Nothing was changed.`, {
              field: 'config.disk_mb',
            });
        }
      }
      this.o.log.error({ machine: m.id, err }, 'resize failed');
      if (err instanceof RuntimeError && !err.stillRunning) {
        await this.o.runtime.stop(m.id).catch(() => undefined);
        this.holding.delete(m.id);
        this.releaseIp(m);
        m.status = 'error';
        m.errorReason = `resize failed after its processes stopped: ${reasonOf(err)}; the writable layer is kept`;
        await this.save(m);
        throw new HangarError('RUNTIME_FAILED', `Machine ${m.id} could not be resized: ${m.errorReason}.`, { machine_id: m.id });
      }
      throw new HangarError('RUNTIME_FAILED', `Machine ${m.id} could not be resized (${reasonOf(err)}); it is still running with its old resources.`, {
        machine_id: m.id,
      });
    }
    m.config = next;
  }

  /**
   * Refuse a restore point request that cannot be applied to the caller's machine as it
   * is now (a surface checks before it records an event); the update checks again.
   */
  async checkRestorePoint(caller: Caller, id: string, request: RestorePointRequest): Promise<void> {
    await this.restorePointProblem(await this.get(caller, id), request);
  }

  private async restorePointProblem(m: MachineRecord, request: RestorePointRequest): Promise<void> {
    if (request.snapshotId === undefined) {
      if (m.restorePoint === null && m.status !== 'running') {
        throw new HangarError(
          'STATE_CONFLICT',
          `Machine ${m.id} is ${m.status}; a restore point without a snapshot id is taken from a running machine. Start it first, or name one of its snapshots.`,
          { status: m.status },
        );
      }
      return;
    }
    const snap = await this.o.store.getSnapshot(request.snapshotId);
    if (!snap || snap.teamId !== m.teamId || snap.machineId !== m.id || snap.kind === 'pause') {
      throw new HangarError(
        'UNKNOWN_SNAPSHOT',
        `Snapshot ${request.snapshotId} is not a snapshot of machine ${m.id}; a restore point must be one (list them with GET /v1/snapshots?machine_id=${m.id}), or omit the id to take one now.`,
        { snapshot_id: request.snapshotId, machine_id: m.id },
      );
    }
  }

  /** Point the machine's restore point at a snapshot of it (taken now without an id), or clear it (lock held, request checked). */
  private async setRestorePointLocked(m: MachineRecord, request: RestorePointRequest | null): Promise<void> {
    if (request === null) {
      m.restorePoint = null;
      return;
    }
    if (request.snapshotId !== undefined) {
      m.restorePoint = { frequency: 'shutdown', snapshotId: request.snapshotId };
      return;
    }
    if (m.restorePoint !== null) return;
    const snap = await this.takeSnapshotLocked(m, 'restore_point', 'its restore point');
    m.restorePoint = { frequency: 'shutdown', snapshotId: snap.id };
  }

  /**
   * Restart a running machine's processes from its template's init, its files kept:
   * every process is killed and init starts again on the same writable layer.
   */
  async restart(caller: Caller, id: string): Promise<MachineRecord> {
    return this.locked(caller, id, 'restart', async (m) => {
      if (m.status !== 'running') throw this.conflict(m, 'restart', 'running');
      return this.recorded(m, 'restart', async () => {
        const template = await this.template(m.template);
        try {
          await this.o.runtime.restart(this.spec(m, template));
        } catch (err) {
          this.o.log.error({ machine: m.id, err }, 'restart failed');
          await this.o.runtime.stop(m.id).catch(() => undefined);
          this.holding.delete(m.id);
          m.status = 'error';
          m.errorReason = `restart failed: ${reasonOf(err)}; the writable layer is kept`;
          await this.save(m);
          throw new HangarError('RUNTIME_FAILED', `Machine ${m.id} could not be restarted: ${m.errorReason}.`, { machine_id: m.id });
        }
        m.updatedAt = this.now();
        return this.save(m);
      });
    });
  }

  /** Bytes in use in a machine's writable layer, or null when it is not mounted. */
  diskUsage(id: string): Promise<number | null> {
    return this.o.runtime.diskUsage(id).catch(() => null);
  }

  /** Pause a running machine to a snapshot of its memory and disk. */
  async pause(caller: Caller, id: string): Promise<MachineRecord> {
    return this.locked(caller, id, 'pause', async (m) => {
      if (m.status !== 'running') throw this.conflict(m, 'pause', 'running');
      return this.recorded(m, 'stop', () => this.pauseLocked(m));
    });
  }

  private async pauseLocked(m: MachineRecord, options: { memory?: boolean } = {}): Promise<MachineRecord> {
    // The record exists before the files, so a crash mid-pause never orphans the moved disk image.
    const snap: SnapshotRecord = {
      id: newSnapshotId(),
      teamId: m.teamId,
      machineId: m.id,
      kind: 'pause',
      createdAt: this.now(),
      sizeBytes: 0,
      memory: false,
      template: m.template,
      config: m.config,
      env: m.env,
      cwd: m.cwd,
    };
    await this.o.store.insertSnapshot(snap);
    try {
      const result = await this.o.runtime.pause(m.id, snap.id, options);
      snap.memory = result.memory;
      snap.sizeBytes = result.sizeBytes;
      await this.o.store.updateSnapshot(snap);
    } catch (err) {
      this.o.log.error({ machine: m.id, err }, 'pause failed');
      if (err instanceof RuntimeError && err.stillRunning) {
        await this.o.store.deleteSnapshot(snap.id);
        throw new HangarError('SNAPSHOT_FAILED', `Machine ${m.id} could not be paused (${err.message}); it is still running.`, { machine_id: m.id });
      }
      await this.o.runtime.stop(m.id).catch(() => undefined);
      this.holding.delete(m.id);
      this.releaseIp(m);
      m.status = 'error';
      m.errorReason = `pause failed after its processes stopped: ${reasonOf(err)}; the writable layer is kept`;
      await this.save(m);
      throw new HangarError('SNAPSHOT_FAILED', `Machine ${m.id} could not be paused: ${m.errorReason}.`, { machine_id: m.id });
    }
    this.holding.delete(m.id);
    m.status = 'paused';
    m.pausedAt = this.now();
    m.snapshotId = snap.id;
    await this.save(m);
    if (m.restorePoint !== null) await this.revertLocked(m, snap, m.restorePoint.snapshotId);
    return m;
  }

  /**
   * Replace a paused machine's state (memory and disk) with a copy of one of its
   * snapshots: the next resume continues from there. A failure leaves the pause
   * snapshot as it was (the machine resumes from its state at the stop).
   */
  private async revertLocked(m: MachineRecord, pauseSnap: SnapshotRecord, sourceId: string): Promise<void> {
    const started = performance.now();
    try {
      const result = await this.o.runtime.revertSnapshot(pauseSnap.id, sourceId);
      pauseSnap.memory = result.memory;
      pauseSnap.sizeBytes = result.sizeBytes;
      await this.o.store.updateSnapshot(pauseSnap);
    } catch (err) {
      this.o.log.error({ machine: m.id, err }, 'revert to the restore point failed');
      throw new HangarError(
        'RESTORE_FAILED',
        `Machine ${m.id} is stopped, but could not be reverted to its restore point ${sourceId} (${reasonOf(err)}); a start resumes it as it was at the stop.`,
        { machine_id: m.id, snapshot_id: sourceId },
      );
    }
    // The restore point's disk image comes back with its size, and its memory was taken
    // under its limits: the machine's resources are the restore point's again.
    const source = await this.o.store.getSnapshot(sourceId);
    if (source && JSON.stringify(source.config) !== JSON.stringify(m.config)) {
      m.config = { ...source.config };
      pauseSnap.config = { ...source.config };
      await this.o.store.updateSnapshot(pauseSnap);
      await this.save(m);
    }
    this.o.log.info({ machine: m.id, snapshot: sourceId, ms: Math.round(performance.now() - started) }, 'machine reverted to its restore point');
  }

  /** Resume a paused machine from its snapshot: same processes, timers restarted. */
  async resume(caller: Caller, id: string): Promise<MachineRecord> {
    await this.get(caller, id);
    // A second API resume still gets the lock's 409; ingress traffic waits for this one.
    return this.trackResume(id, this.locks.with(id, 'resume', async () => this.resumeLocked((await this.o.store.getMachine(id))!)));
  }

  /**
   * Resume a paused machine created with auto_resume because ingress traffic reached it.
   * Concurrent callers share one resume, and one already in flight (from the API too) is
   * waited for. A machine that is running by then is returned as it is.
   */
  resumeForTraffic(id: string): Promise<MachineRecord> {
    const inFlight = this.resuming.get(id);
    if (inFlight) return inFlight;
    return this.trackResume(
      id,
      this.locks.with(id, 'resume', async () => {
        const m = await this.o.store.getMachine(id);
        if (!m || m.status === 'destroyed') throw new HangarError('NOT_FOUND', `Machine ${id} does not exist.`);
        if (m.status === 'running') return m;
        if (!m.autoResume) throw this.conflict(m, 'traffic', 'running (it was not created with auto_resume)');
        return this.resumeLocked(m);
      }),
    );
  }

  private trackResume(id: string, resume: Promise<MachineRecord>): Promise<MachineRecord> {
    if (this.resuming.has(id)) return resume;
    this.resuming.set(id, resume);
    const done = () => {
      if (this.resuming.get(id) === resume) this.resuming.delete(id);
    };
    resume.then(done, done);
    return resume;
  }

  private async resumeLocked(m: MachineRecord): Promise<MachineRecord> {
    if (m.status !== 'paused' || m.snapshotId === null) throw this.conflict(m, 'resume', 'paused');
    const template = await this.template(m.template);
    if (this.holding.size >= this.o.maxMachines) {
      throw new HangarError('CAPACITY_EXCEEDED', `This server runs at most ${this.o.maxMachines} machines; destroy one or try later.`);
    }
    const snapshotId = m.snapshotId;
    return this.recorded(m, 'start', async () => {
      // A machine paused before networking existed gets its address now.
      const assigned = m.privateIp === null;
      if (assigned) m.privateIp = this.allocateIp(m.id);
      try {
        await this.o.runtime.resume(this.spec(m, template), snapshotId);
      } catch (err) {
        if (assigned) {
          this.releaseIp(m);
          m.privateIp = null;
        }
        this.o.log.error({ machine: m.id, err }, 'resume failed');
        throw new HangarError(
          'RESTORE_FAILED',
          `Machine ${m.id} could not be resumed (${reasonOf(err)}); it stays paused with snapshot ${snapshotId} intact.`,
          { machine_id: m.id, snapshot_id: snapshotId },
        );
      }
      await this.o.store.deleteSnapshot(snapshotId);
      this.holding.add(m.id);
      const now = this.now();
      m.status = 'running';
      m.snapshotId = null;
      m.pausedAt = null;
      m.resumedAt = now;
      m.timeoutAt = now + m.timeoutMs;
      return this.save(m);
    });
  }

  /** Snapshot a running machine without stopping it. */
  async snapshot(caller: Caller, id: string): Promise<SnapshotRecord> {
    return this.locked(caller, id, 'snapshot', async (m) => {
      if (m.status !== 'running') throw this.conflict(m, 'a snapshot', 'running');
      return this.takeSnapshotLocked(m, 'manual', 'a snapshot');
    });
  }

  /** Take a live snapshot of a running machine (lock held); SNAPSHOT_FAILED leaves it running. */
  private async takeSnapshotLocked(m: MachineRecord, kind: Exclude<SnapshotKind, 'pause'>, what: string): Promise<SnapshotRecord> {
    const snapId = newSnapshotId();
    let result;
    try {
      result = await this.o.runtime.snapshot(m.id, snapId);
    } catch (err) {
      this.o.log.error({ machine: m.id, err, kind }, 'snapshot failed');
      throw new HangarError('SNAPSHOT_FAILED', `Machine ${m.id} could not take ${what} (${reasonOf(err)}); it is still running.`, { machine_id: m.id });
    }
    const snap: SnapshotRecord = {
      id: snapId,
      teamId: m.teamId,
      machineId: m.id,
      kind,
      createdAt: this.now(),
      sizeBytes: result.sizeBytes,
      memory: result.memory,
      template: m.template,
      config: m.config,
      env: m.env,
      cwd: m.cwd,
    };
    await this.o.store.insertSnapshot(snap);
    return snap;
  }

  /**
   * The scheduled automatic snapshot (lock held): taken live, then the oldest automatic
   * ones beyond the machine's keep count are deleted. Taken or failed, the next one is
   * due a period later; a failure is the `snapshot` event's error and changes nothing else.
   */
  private async autoSnapshotLocked(m: MachineRecord): Promise<void> {
    if (m.autoSnapshot === null || m.status !== 'running') return;
    m.autoSnapshot.lastAt = this.now();
    try {
      await this.takeSnapshotLocked(m, 'auto', 'its automatic snapshot');
      await this.rotateAutoSnapshots(m);
    } finally {
      await this.save(m);
    }
  }

  /** Delete the machine's oldest automatic snapshots beyond its keep count (never its restore point). */
  private async rotateAutoSnapshots(m: MachineRecord): Promise<void> {
    if (m.autoSnapshot === null) return;
    const autos = (await this.o.store.listSnapshots(m.teamId, m.id)).filter((s) => s.kind === 'auto' && s.id !== m.restorePoint?.snapshotId);
    for (const old of autos.slice(m.autoSnapshot.keep)) {
      await this.o.runtime.deleteSnapshot(old.id);
      await this.o.store.deleteSnapshot(old.id);
    }
  }

  /** The caller's snapshots, newest first: for a member, those of machines it reaches. */
  async listSnapshots(caller: Caller, machineId?: string): Promise<SnapshotRecord[]> {
    const all = await this.o.store.listSnapshots(caller.team.id, machineId);
    const narrowed = listingNarrowedTo(caller);
    if (narrowed === undefined) return all;
    const reached = await this.o.store.listMachines({ teamId: caller.team.id, statuses: MACHINE_STATUSES, visibleTo: narrowed });
    const ids = new Set(reached.map((m) => m.id));
    return all.filter((s) => ids.has(s.machineId));
  }

  /** A snapshot is the caller's when the caller reaches the machine it was taken of. */
  private async snapshotReachable(caller: Caller, s: SnapshotRecord): Promise<boolean> {
    if (s.teamId !== caller.team.id) return false;
    if (listingNarrowedTo(caller) === undefined) return true;
    const m = await this.o.store.getMachine(s.machineId);
    return m !== null && (await callerReaches(this.o.store, caller, m));
  }

  /** One of the caller's snapshots, or NOT_FOUND. */
  async getSnapshot(caller: Caller, id: string): Promise<SnapshotRecord> {
    const s = await this.o.store.getSnapshot(id);
    if (!s || !(await this.snapshotReachable(caller, s))) throw new HangarError('NOT_FOUND', `Snapshot ${id} does not exist for this team.`);
    return s;
  }

  /** Delete a snapshot; one a paused machine needs to resume is a 409. */
  async deleteSnapshot(caller: Caller, id: string): Promise<void> {
    const s = await this.getSnapshot(caller, id);
    if (s.kind === 'pause') {
      throw new HangarError('STATE_CONFLICT', `Snapshot ${id} holds paused machine ${s.machineId}; resume or destroy that machine instead.`, {
        machine_id: s.machineId,
      });
    }
    const owner = await this.o.store.getMachine(s.machineId);
    if (owner && owner.status !== 'destroyed' && owner.restorePoint?.snapshotId === id) {
      throw new HangarError('STATE_CONFLICT', `Snapshot ${id} is the restore point of machine ${owner.id}; disable or change its restore point first.`, {
        machine_id: owner.id,
      });
    }
    await this.o.runtime.deleteSnapshot(id);
    await this.o.store.deleteSnapshot(id);
  }

  /**
   * Record activity on a machine (an exec, a file call, ...): it sets `last_active_at`
   * and moves the inactivity deadline. Held in memory and stored at most once a second
   * per machine, so a busy machine costs one write a second, not one per call.
   */
  touch(id: string): void {
    if (this.activityStopped) return;
    this.activity.set(id, this.now());
    if (!this.activityTimers.has(id)) this.scheduleActivityFlush(id, 0);
  }

  private scheduleActivityFlush(id: string, delayMs: number): void {
    const timer = setTimeout(() => void this.flushActivity(id), delayMs);
    timer.unref();
    this.activityTimers.set(id, timer);
  }

  /** Store a machine's pending activity, then keep quiet for a second (touches meanwhile wait for the next flush). */
  private async flushActivity(id: string): Promise<void> {
    const at = this.activity.get(id);
    if (at === undefined || this.activityStopped) {
      this.activityTimers.delete(id);
      return;
    }
    if (this.locks.isBusy(id)) {
      this.scheduleActivityFlush(id, ACTIVITY_RETRY_MS);
      return;
    }
    this.activity.delete(id);
    const write = this.storeActivity(id, at).catch((err) => this.o.log.error({ machine: id, err }, 'could not record activity'));
    this.activityWrites.add(write);
    await write;
    this.activityWrites.delete(write);
    if (!this.activityStopped) this.scheduleActivityFlush(id, ACTIVITY_FLUSH_MS);
  }

  /**
   * Write one activity time, under the machine's lock so no operation changes the record
   * between the read and the write (held only for one read and one write, so operations
   * practically never find it taken). Only a running machine's record is changed: a
   * pause or destroy that finished meanwhile wins.
   */
  private async storeActivity(id: string, at: number): Promise<void> {
    await this.locks.with(id, 'activity record', async () => {
      const m = await this.o.store.getMachine(id);
      if (!m || m.status !== 'running' || (m.lastActiveAt ?? -Infinity) >= at) return;
      m.lastActiveAt = at;
      await this.save(m);
    });
  }

  /** Store all pending activity now and ignore later touches (server shutdown). Busy machines are skipped. */
  async stopActivityTracking(): Promise<void> {
    this.activityStopped = true;
    for (const timer of this.activityTimers.values()) clearTimeout(timer);
    this.activityTimers.clear();
    await Promise.all(this.activityWrites);
    for (const [id, at] of this.activity) {
      if (this.locks.isBusy(id)) continue;
      await this.storeActivity(id, at).catch((err) => this.o.log.error({ machine: id, err }, 'could not record activity'));
    }
    this.activity.clear();
  }

  /** The record as it will be once its pending activity is stored. */
  private withPendingActivity(m: MachineRecord): MachineRecord {
    const at = this.activity.get(m.id);
    return at === undefined || (m.lastActiveAt ?? -Infinity) >= at ? m : { ...m, lastActiveAt: at };
  }

  /**
   * Apply every lifecycle deadline that has passed, and purge destroyed records past
   * retention. Called by the scheduler; safe to call at any time.
   */
  async runDue(): Promise<void> {
    const now = this.now();
    for (const listed of await this.o.store.dueMachines(now, 50)) {
      // Re-read: acting on the machines before this one took time, and it may have changed meanwhile.
      const m = await this.o.store.getMachine(listed.id);
      // Activity not yet stored still counts: it is at most a second old.
      const due = m && nextDue(this.withPendingActivity(m));
      if (!m || !due || due.at > now || this.locks.isBusy(m.id)) continue;
      await this.locks
        .with(m.id, `${due.kind} deadline`, () => this.applyDue(m, due))
        .catch((err) => this.o.log.error({ machine: m.id, err }, 'lifecycle action failed'));
    }
    await this.o.store.purgeDestroyed(now - this.o.retentionMs);
    if (now - this.lastKeyPurge >= 60_000) {
      this.lastKeyPurge = now;
      await this.o.store.purgeIdempotency(now - IDEMPOTENCY_TTL_MS);
    }
  }

  private async applyDue(m: MachineRecord, due: DueAction): Promise<void> {
    this.o.log.info({ machine: m.id, kind: due.kind, action: due.action }, 'lifecycle deadline reached');
    switch (due.action) {
      case 'snapshot': {
        const started = performance.now();
        await this.recorded(m, 'snapshot', () => this.autoSnapshotLocked(m));
        this.o.log.info({ machine: m.id, ms: Math.round(performance.now() - started) }, 'automatic snapshot taken');
        return;
      }
      case 'destroy':
        await this.recorded(m, 'delete', () => this.destroyLocked(m));
        return;
      case 'hibernate':
        await this.recorded(m, 'stop', async () => {
          try {
            await this.pauseLocked(m);
          } catch (err) {
            // Nobody waits on a timer to retry by hand: keep the disk, drop the memory.
            const fresh = await this.o.store.getMachine(m.id);
            if (fresh?.status !== 'running') throw err;
            this.o.log.warn({ machine: m.id, err }, 'hibernate with memory failed; pausing with the filesystem only');
            await this.pauseLocked(fresh, { memory: false });
          }
        });
        return;
    }
  }

  /**
   * Reconcile the store with the host after a (re)start: keep machines whose container
   * still runs, finish pauses and resumes a crash interrupted, mark the others `error`
   * with the reason (their data kept), and remove containers, machine files and snapshot
   * files that belong to nothing the store knows.
   */
  async recover(): Promise<{ adopted: number; lost: number; orphans: number }> {
    const containers = await this.o.runtime.list();
    let adopted = 0;
    let lost = 0;
    const known = new Set<string>();
    for (const m of await this.o.store.machinesInStatus(['creating', 'running', 'paused'])) {
      known.add(m.id);
      let c = containers.get(m.id);
      if (c?.status === 'paused' && m.status === 'running') {
        // Frozen by a live (e.g. automatic) snapshot the stop interrupted: its processes are intact.
        const thawed = await this.o.runtime.thaw(m.id).then(
          () => true,
          (err: unknown) => {
            this.o.log.warn({ machine: m.id, err }, 'could not thaw a machine frozen by an interrupted snapshot');
            return false;
          },
        );
        if (thawed) c = { ...c, status: 'running' };
      }
      if (c?.status === 'running' && m.status !== 'creating') {
        if (m.status === 'paused' && m.snapshotId !== null) {
          // Crashed after a resume restored the processes, before the record said so.
          await this.o.store.deleteSnapshot(m.snapshotId);
          Object.assign(m, { status: 'running', snapshotId: null, pausedAt: null, resumedAt: this.now() });
          m.timeoutAt = this.now() + m.timeoutMs;
          await this.save(m);
        }
        this.holding.add(m.id);
        adopted++;
        continue;
      }
      if (m.status === 'paused') continue;
      if (m.pool !== null) {
        // An idle pool machine holds no user data: replace it rather than keep an error.
        await this.o.runtime.destroy(m.id).catch((err) => this.o.log.warn({ machine: m.id, err }, 'cleanup of lost pool machine failed'));
        Object.assign(m, { status: 'destroyed', destroyedAt: this.now(), pool: null });
        await this.save(m);
        lost++;
        continue;
      }
      const pauseSnap = m.status === 'running' ? (await this.o.store.listSnapshots(m.teamId, m.id)).find((s) => s.kind === 'pause') : undefined;
      if (pauseSnap && (await this.o.runtime.snapshotsOnDisk()).includes(pauseSnap.id) && !c) {
        // Crashed after a pause moved the machine into its snapshot, before the record said so.
        Object.assign(m, { status: 'paused', snapshotId: pauseSnap.id, pausedAt: pauseSnap.createdAt });
        await this.save(m);
        continue;
      }
      await this.o.runtime.stop(m.id).catch((err) => this.o.log.warn({ machine: m.id, err }, 'cleanup of lost machine failed'));
      m.errorReason =
        m.status === 'creating'
          ? 'the server stopped while this machine was being created'
          : `its container ${c ? `was ${c.status}` : 'vanished'} while the server was down (host restart or killed); the writable layer is kept`;
      m.status = 'error';
      await this.save(m);
      lost++;
    }
    let orphans = 0;
    const errorKept = new Set((await this.o.store.machinesInStatus(['error'])).map((m) => m.id));
    for (const id of new Set([...containers.keys(), ...(await this.o.runtime.machinesOnDisk())])) {
      if (known.has(id)) continue;
      if (errorKept.has(id)) {
        if (containers.has(id)) await this.o.runtime.stop(id);
        continue;
      }
      await this.o.runtime.destroy(id);
      orphans++;
    }
    const snapshots = new Set(await this.o.store.allSnapshotIds());
    for (const id of await this.o.runtime.snapshotsOnDisk()) {
      if (snapshots.has(id)) continue;
      await this.o.runtime.deleteSnapshot(id);
      orphans++;
    }
    // Running and paused machines keep their address and network; everything else of this instance goes.
    this.ips.clear();
    const live = new Map<string, { ip: string; outbound: OutboundPolicy }>();
    for (const m of await this.o.store.machinesInStatus(['running', 'paused'])) {
      if (m.privateIp === null) continue;
      this.ips.reserve(m.privateIp, m.id);
      live.set(m.id, { ip: m.privateIp, outbound: m.outbound });
    }
    await this.o.runtime.reconcileNetwork(live);
    return { adopted, lost, orphans };
  }

  /** Destroy every machine and snapshot of this server (tests and `hangar clean`), then instance resources. */
  async destroyAll(): Promise<void> {
    for (const m of await this.o.store.machinesInStatus(['creating', 'running', 'paused', 'error'])) {
      await this.locks.with(m.id, 'destroy', () => this.destroyLocked(m)).catch((err) => this.o.log.error({ machine: m.id, err }, 'destroy failed'));
    }
    for (const id of [...(await this.o.runtime.list()).keys(), ...(await this.o.runtime.machinesOnDisk())]) {
      await this.o.runtime.destroy(id);
    }
    for (const id of await this.o.store.allSnapshotIds()) await this.o.store.deleteSnapshot(id);
    for (const id of await this.o.runtime.snapshotsOnDisk()) await this.o.runtime.deleteSnapshot(id);
    await this.o.runtime.teardown();
  }
}

/** Stored auto snapshot settings of a request (its first period starts at `now`), or null when off. */
function autoSnapshotSettings(request: AutoSnapshotRequest | undefined, now: number): AutoSnapshotSettings | null {
  return request === undefined ? null : { frequency: request.frequency, keep: request.keep, since: now, lastAt: null };
}
