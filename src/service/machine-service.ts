import { createHash } from 'node:crypto';
import { HangarError, machineNotFound } from '../domain/errors.js';
import { newMachineId } from '../domain/ids.js';
import { deadlineOf, nextDue, type DueAction } from '../domain/lifecycle.js';
import {
  DEFAULT_CONFIG,
  DEFAULT_TIMEOUT_MS,
  MACHINE_STATUSES,
  type MachineConfig,
  type MachineRecord,
  type MachineStatus,
  type TimeoutAction,
} from '../domain/machine.js';
import type { Caller } from '../domain/team.js';
import type { Runtime } from '../runtime/runtime.js';
import { RuntimeError } from '../runtime/runtime.js';
import type { Store } from '../store/store.js';
import type { TemplateCatalog } from '../templates/templates.js';
import { MachineLocks } from './keyed-lock.js';
import { CursorCodec } from './list-cursor.js';
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

/** Dependencies and policy of the machine service. */
export interface MachineServiceOptions {
  store: Store;
  runtime: Runtime;
  templates: TemplateCatalog;
  secret: ServerSecret;
  log: ServiceLogger;
  /** Destroyed records stay this long. */
  retentionMs: number;
  /** Machines holding resources on this host at most. */
  maxMachines: number;
  /** Whether pause/hibernate is available (snapshots). @default false */
  snapshots: boolean;
  /** Injectable clock for tests. @default Date.now */
  now?: () => number;
}

const LIVE_STATUSES = MACHINE_STATUSES.filter((s) => s !== 'destroyed');
const IDEMPOTENCY_TTL_MS = 24 * 3_600_000;

/** The core of Hangar: every surface (native, Paperspace-style, compute) goes through here. */
export class MachineService {
  private readonly locks = new MachineLocks();
  private readonly cursors: CursorCodec;
  private readonly inflightCreates = new Map<string, Promise<MachineRecord>>();
  /** Machines holding host resources on this server, for the capacity check. */
  private readonly holding = new Set<string>();
  readonly now: () => number;

  constructor(private readonly o: MachineServiceOptions) {
    this.cursors = new CursorCodec(o.secret);
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

  /** Create and start a machine; with an idempotency key, a retry returns the first result. */
  async create(caller: Caller, input: CreateMachineInput, idempotencyKey?: string): Promise<MachineRecord> {
    if (idempotencyKey === undefined) return this.createNow(caller, input);
    const requestHash = createHash('sha256').update(JSON.stringify(input)).digest('hex');
    const slot = `${caller.team.id}\0${idempotencyKey}`;
    const inflight = this.inflightCreates.get(slot);
    if (inflight) {
      await inflight.catch(() => undefined);
    }
    const prior = await this.o.store.getIdempotency(caller.team.id, idempotencyKey);
    if (prior) {
      if (prior.requestHash !== requestHash) {
        throw new HangarError('IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was used with a different request body; use a new key for a new machine.');
      }
      const m = await this.o.store.getMachine(prior.machineId);
      if (m) return m;
    }
    const p = this.createNow(caller, input, async (m) => {
      await this.o.store.insertIdempotency({ teamId: caller.team.id, key: idempotencyKey, requestHash, machineId: m.id, createdAt: m.createdAt });
    });
    this.inflightCreates.set(slot, p);
    try {
      return await p;
    } finally {
      this.inflightCreates.delete(slot);
    }
  }

  private async createNow(
    caller: Caller,
    input: CreateMachineInput,
    onRecorded?: (m: MachineRecord) => Promise<void>,
  ): Promise<MachineRecord> {
    const templateName = input.template ?? 'base';
    const template = await this.o.templates.get(templateName);
    if (!template) {
      const known = (await this.o.templates.list()).map((t) => t.name);
      throw new HangarError('UNKNOWN_TEMPLATE', `Template "${templateName}" does not exist. Available: ${known.join(', ') || 'none'}.`, {
        template: templateName,
        available: known,
      });
    }
    const timeoutAction = input.timeoutAction ?? 'destroy';
    const ephemeral = input.ephemeral ?? false;
    const inactivity = input.inactivityTimeoutMs ?? null;
    if (!this.o.snapshots) {
      if (timeoutAction === 'hibernate') {
        throw new HangarError('UNSUPPORTED_OPERATION', 'timeout_action "hibernate" needs memory snapshots, which this server does not offer yet; use "destroy".', { field: 'timeout_action' });
      }
      if (inactivity !== null && !ephemeral) {
        throw new HangarError('UNSUPPORTED_OPERATION', 'An inactivity timeout on a non-ephemeral machine hibernates it, which needs snapshots this server does not offer yet; set "ephemeral": true to destroy on inactivity instead.', { field: 'inactivity_timeout_ms' });
      }
    }
    if (this.holding.size >= this.o.maxMachines) {
      throw new HangarError('CAPACITY_EXCEEDED', `This server runs at most ${this.o.maxMachines} machines; destroy one or try later.`);
    }

    const now = this.now();
    const timeoutMs = input.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const m: MachineRecord = {
      id: newMachineId(),
      teamId: caller.team.id,
      status: 'creating',
      template: templateName,
      config: { ...DEFAULT_CONFIG, ...input.config },
      metadata: input.metadata ?? {},
      env: input.env ?? {},
      cwd: input.cwd ?? null,
      ephemeral,
      timeoutMs,
      timeoutAt: now + timeoutMs,
      timeoutAction,
      inactivityTimeoutMs: inactivity,
      autoDeleteAfterMs: input.autoDeleteAfterMs ?? null,
      createdAt: now,
      startedAt: null,
      lastActiveAt: null,
      pausedAt: null,
      destroyedAt: null,
      snapshotId: null,
      warmPoolCheckout: null,
      errorReason: null,
      deadlineAt: null,
    };
    this.holding.add(m.id);
    return this.locks.with(m.id, 'create', async () => {
      await this.o.store.insertMachine(m);
      await onRecorded?.(m);
      try {
        await this.o.runtime.start({
          id: m.id,
          hostname: m.id,
          templateRootfs: template.rootfs,
          init: template.init,
          env: { ...template.env, ...m.env, HOSTNAME: m.id },
          cwd: m.cwd ?? template.cwd,
          config: m.config,
        });
      } catch (err) {
        this.holding.delete(m.id);
        const reason = err instanceof RuntimeError ? err.message : 'the runtime failed unexpectedly';
        this.o.log.error({ machine: m.id, err }, 'machine start failed');
        m.status = 'error';
        m.errorReason = reason;
        await this.save(m);
        throw new HangarError('RUNTIME_FAILED', `Machine ${m.id} could not be started: ${reason}.`, { machine_id: m.id });
      }
      const started = this.now();
      m.status = 'running';
      m.startedAt = started;
      m.timeoutAt = started + timeoutMs;
      return this.save(m);
    });
  }

  /** A machine of the caller's team, or NOT_FOUND. */
  async get(caller: Caller, id: string): Promise<MachineRecord> {
    const m = await this.o.store.getMachine(id);
    if (!m || m.teamId !== caller.team.id) throw machineNotFound(id);
    return m;
  }

  /** List the caller's machines, newest first. */
  async list(caller: Caller, input: ListMachinesInput): Promise<MachinePage> {
    const statuses = input.states ?? LIVE_STATUSES;
    if (!input.paginated) {
      const items = await this.o.store.listMachines({ teamId: caller.team.id, statuses });
      return { items, nextToken: null };
    }
    const scope = JSON.stringify([[...statuses].sort(), input.template ?? null, input.metadata ?? null]);
    const after = input.nextToken === undefined ? undefined : this.cursors.decode(input.nextToken, caller.team.id, scope);
    const limit = input.limit ?? 100;
    const rows = await this.o.store.listMachines({
      teamId: caller.team.id,
      statuses,
      template: input.template,
      metadata: input.metadata,
      after,
      limit: limit + 1,
    });
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    const nextToken = rows.length > limit && last ? this.cursors.encode({ createdAt: last.createdAt, id: last.id }, caller.team.id, scope) : null;
    return { items, nextToken };
  }

  /** Destroy a machine: processes, mounts, cgroups and files all go. */
  async destroy(caller: Caller, id: string): Promise<MachineRecord> {
    const m = await this.get(caller, id);
    return this.locks.with(id, 'destroy', async () => {
      const fresh = (await this.o.store.getMachine(id)) ?? m;
      if (fresh.status === 'destroyed') {
        throw new HangarError('STATE_CONFLICT', `Machine ${id} is already destroyed.`, { status: fresh.status });
      }
      return this.destroyLocked(fresh);
    });
  }

  private async destroyLocked(m: MachineRecord): Promise<MachineRecord> {
    try {
      await this.o.runtime.destroy(m.id);
    } catch (err) {
      const reason = `destroy failed: ${err instanceof Error ? err.message : String(err)}`;
      this.o.log.error({ machine: m.id, err }, 'machine destroy failed');
      m.status = 'error';
      m.errorReason = reason;
      await this.save(m);
      throw new HangarError('RUNTIME_FAILED', `Machine ${m.id} could not be destroyed (${reason}); it is now in error. Retry the delete.`, { machine_id: m.id });
    }
    this.holding.delete(m.id);
    m.status = 'destroyed';
    m.destroyedAt = this.now();
    m.snapshotId = null;
    m.errorReason = null;
    return this.save(m);
  }

  /** Move the hard deadline to now + timeoutMs. */
  async refreshTimeout(caller: Caller, id: string, timeoutMs: number): Promise<MachineRecord> {
    await this.get(caller, id);
    return this.locks.with(id, 'timeout refresh', async () => {
      const m = (await this.o.store.getMachine(id))!;
      if (m.status !== 'running') {
        throw new HangarError('STATE_CONFLICT', `Machine ${id} is ${m.status}; only a running machine's timeout can be refreshed.`, { status: m.status });
      }
      m.timeoutMs = timeoutMs;
      m.timeoutAt = this.now() + timeoutMs;
      return this.save(m);
    });
  }

  /**
   * Apply every lifecycle deadline that has passed, and purge destroyed records past
   * retention. Called by the scheduler; safe to call at any time.
   */
  async runDue(): Promise<void> {
    const now = this.now();
    for (const m of await this.o.store.dueMachines(now, 50)) {
      const due = nextDue(m);
      if (!due || due.at > now || this.locks.isBusy(m.id)) continue;
      await this.locks
        .with(m.id, `${due.kind} deadline`, () => this.applyDue(m, due))
        .catch((err) => this.o.log.error({ machine: m.id, err }, 'lifecycle action failed'));
    }
    await this.o.store.purgeDestroyed(now - this.o.retentionMs);
    await this.o.store.purgeIdempotency(now - IDEMPOTENCY_TTL_MS);
  }

  private async applyDue(m: MachineRecord, due: DueAction): Promise<void> {
    this.o.log.info({ machine: m.id, kind: due.kind, action: due.action }, 'lifecycle deadline reached');
    switch (due.action) {
      case 'destroy':
        await this.destroyLocked(m);
        return;
      case 'hibernate':
        // Creates refuse hibernate while snapshots are unavailable; a record from a server
        // that had them keeps its data: processes stop, the writable layer stays.
        await this.o.runtime.stop(m.id);
        this.holding.delete(m.id);
        m.status = 'error';
        m.errorReason = `${due.kind} deadline asked to hibernate, but this server cannot take snapshots; the writable layer is kept`;
        await this.save(m);
        return;
    }
  }

  /**
   * Reconcile the store with the host after a (re)start: keep machines whose container
   * still runs, mark the others `error` with the reason (their data kept), and remove
   * containers and files that belong to no live machine.
   */
  async recover(): Promise<{ adopted: number; lost: number; orphans: number }> {
    const containers = await this.o.runtime.list();
    let adopted = 0;
    let lost = 0;
    const known = new Set<string>();
    for (const m of await this.o.store.machinesInStatus(['creating', 'running', 'paused'])) {
      known.add(m.id);
      const c = containers.get(m.id);
      if (m.status === 'running' && c?.status === 'running') {
        this.holding.add(m.id);
        adopted++;
        continue;
      }
      if (m.status === 'paused') {
        this.holding.add(m.id);
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
    return { adopted, lost, orphans };
  }

  /** Destroy every machine of this server (tests and `hangar clean`), then instance resources. */
  async destroyAll(): Promise<void> {
    for (const m of await this.o.store.machinesInStatus(['creating', 'running', 'paused', 'error'])) {
      await this.locks.with(m.id, 'destroy', () => this.destroyLocked(m)).catch((err) => this.o.log.error({ machine: m.id, err }, 'destroy failed'));
    }
    for (const id of [...(await this.o.runtime.list()).keys(), ...(await this.o.runtime.machinesOnDisk())]) {
      await this.o.runtime.destroy(id);
    }
    await this.o.runtime.teardown();
  }
}
