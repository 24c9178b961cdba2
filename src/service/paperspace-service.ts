import { HangarError, validationError } from '../domain/errors.js';
import type { MachineEventName, MachineEventRecord } from '../domain/machine-event.js';
import { CUSTOM_MACHINE_TYPE, machineTypeOf, type MachineType } from '../domain/machine-type.js';
import { MACHINE_STATUSES, TIMEOUT_LIMITS, type AutoSnapshotFrequency, type AutoSnapshotSettings, type MachineRecord, type MachineStatus } from '../domain/machine.js';
import type { Caller } from '../domain/team.js';
import type { MachinePageOrder, MachinePageQuery, MachineSize, Store } from '../store/store.js';
import type { TemplateResolver } from './template-service.js';
import { listingNarrowedTo } from './access.js';
import type { AccessorService } from './accessor-service.js';
import type { MachineOperations } from './machine-operations.js';
import type { StartupScriptRuns } from './startup-script-runs.js';
import type { AutoSnapshotRequest, RestorePointRequest, UpdateMachineInput } from './machine-inputs.js';
import type { MachineService } from './machine-service.js';
import { CursorCodec, pageCursorFormat, type PagePosition } from './cursor-codec.js';
import type { ServerSecret } from './secrets.js';
import { allows } from '../domain/transitions.js';

/** Every state the surface reports (the seed's example shows `off`; the others are Paperspace's). */
export const PAPERSPACE_STATES = ['off', 'starting', 'stopping', 'restarting', 'serviceready', 'ready', 'upgrading', 'provisioning'] as const;
/** A machine's state as the Paperspace-style surface names it. */
export type PaperspaceState = (typeof PAPERSPACE_STATES)[number];

/** The agent type of a machine whose template runs no desktop. */
export const AGENT_TYPE = 'LinuxHeadless';
/** The agent type of a machine whose template runs a desktop (VNC). */
export const DESKTOP_AGENT_TYPE = 'LinuxDesktop';
const HOUR_MS = 3_600_000;
const GIB_MB = 1024;
/** The statuses the machine list shows: all but destroyed, as MachineService.list. */
const LISTED_STATUSES: readonly MachineStatus[] = MACHINE_STATUSES.filter((s) => s !== 'destroyed');

/**
 * The Paperspace state of a machine: its Hangar status, refined by the operation in
 * flight on it (an operation ends with its event, after the status has changed).
 */
export function paperspaceState(status: MachineStatus, op: MachineEventName | undefined): PaperspaceState {
  switch (status) {
    case 'creating':
      return 'provisioning';
    case 'running':
      return runningState(op);
    case 'paused':
      return pausedState(op);
    case 'error':
    case 'destroyed':
      return 'off';
  }
}

function runningState(op: MachineEventName | undefined): PaperspaceState {
  switch (op) {
    case undefined:
    case 'update':
    case 'snapshot':
    case 'startup-script':
      return 'ready';
    case 'create':
      return 'provisioning';
    case 'start':
      return 'starting';
    case 'stop':
    case 'delete':
      return 'stopping';
    case 'restart':
      return 'restarting';
  }
}

function pausedState(op: MachineEventName | undefined): PaperspaceState {
  switch (op) {
    case 'start':
      return 'starting';
    case 'delete':
      return 'stopping';
    case undefined:
    case 'create':
    case 'stop':
    case 'restart':
    case 'update':
    case 'snapshot':
    case 'startup-script':
      return 'off';
  }
}

/**
 * Auto shutdown as Hangar's hard deadline: enabled means a deadline of `hours`, then
 * hibernate (the same as stop); disabled means the longest deadline Hangar allows.
 */
export function autoShutdownToTimeout(enabled: boolean, hours: number | undefined): { timeoutMs: number; timeoutAction: 'hibernate' } {
  if (!enabled) return { timeoutMs: TIMEOUT_LIMITS.max, timeoutAction: 'hibernate' };
  if (hours === undefined) {
    throw validationError([{ field: 'autoShutdownTimeout', message: 'is required when autoShutdownEnabled is true (hours, e.g. 1)' }]);
  }
  const ms = Math.round(hours * HOUR_MS);
  if (ms < TIMEOUT_LIMITS.min || ms > TIMEOUT_LIMITS.max) {
    throw validationError([{ field: 'autoShutdownTimeout', message: `must be between ${TIMEOUT_LIMITS.min / HOUR_MS} and ${TIMEOUT_LIMITS.max / HOUR_MS} hours` }]);
  }
  return { timeoutMs: ms, timeoutAction: 'hibernate' };
}

/** Auto shutdown read back from a machine's hard deadline. */
export function autoShutdownOf(m: Pick<MachineRecord, 'timeoutMs'>): { enabled: boolean; hours: number | null } {
  const enabled = m.timeoutMs < TIMEOUT_LIMITS.max;
  return { enabled, hours: enabled ? m.timeoutMs / HOUR_MS : null };
}

/** The auto snapshot fields of a create or update body. */
export interface AutoSnapshotFields {
  autoSnapshotEnabled?: boolean;
  autoSnapshotFrequency?: AutoSnapshotFrequency;
  /** Already checked by the schema: an integer 1..AUTO_SNAPSHOT_MAX_KEEP. */
  autoSnapshotSaveCount?: number;
}

/**
 * Auto snapshot fields against the machine's current settings (null on create):
 * undefined when none is given (no change), null for off, else the settings.
 */
export function autoSnapshotRequest(f: AutoSnapshotFields, current: AutoSnapshotSettings | null): AutoSnapshotRequest | null | undefined {
  if (f.autoSnapshotEnabled === undefined && f.autoSnapshotFrequency === undefined && f.autoSnapshotSaveCount === undefined) return undefined;
  const enabled = f.autoSnapshotEnabled ?? current !== null;
  if (!enabled) {
    const stray = (['autoSnapshotFrequency', 'autoSnapshotSaveCount'] as const).filter((k) => f[k] !== undefined);
    if (stray.length) throw validationError(stray.map((field) => ({ field, message: 'applies only with auto snapshots enabled; set autoSnapshotEnabled: true too' })));
    return null;
  }
  const frequency = f.autoSnapshotFrequency ?? current?.frequency;
  const keep = f.autoSnapshotSaveCount ?? current?.keep;
  const missing = [
    ...(frequency === undefined ? [{ field: 'autoSnapshotFrequency', message: 'is required when autoSnapshotEnabled is true (hourly, daily, weekly or monthly)' }] : []),
    ...(keep === undefined ? [{ field: 'autoSnapshotSaveCount', message: 'is required when autoSnapshotEnabled is true (how many to keep, e.g. 3)' }] : []),
  ];
  if (missing.length || frequency === undefined || keep === undefined) throw validationError(missing);
  return { frequency, keep };
}

/** One machine as the Paperspace-style surface shows it. */
export interface PaperspaceMachine {
  record: MachineRecord;
  state: PaperspaceState;
  machineType: string;
  region: string;
  /** Bytes used in the writable layer; 0 when it is not mounted. */
  storageUsed: number;
  /** LinuxDesktop when its template runs a desktop, else LinuxHeadless. */
  agentType: string;
}

/** A desktop machine's VNC settings (seed: `GET /machines/{id}/desktop`). */
export interface DesktopSettings {
  vnc: { hostname: string; port: number; password: string };
}

/** Policy and dependencies of the Paperspace-style surface. */
export interface PaperspaceServiceOptions {
  /** Read directly for the machine list, which pages in the store. */
  store: Store;
  machines: MachineService;
  accessors: AccessorService;
  operations: MachineOperations;
  templates: TemplateResolver;
  secret: ServerSecret;
  machineTypes: readonly MachineType[];
  /** The server's regions (HANGAR_REGIONS); the first is where machines without one are. */
  regions: readonly string[];
  /** Disk sizes (GB) a create may ask for. */
  diskSizesGb: readonly number[];
  /** Runs machines' startup scripts after a create, a start and a restart. */
  startupScripts: StartupScriptRuns;
}

/** A create request after validation at the edge. */
export interface PaperspaceCreateInput {
  name: string;
  machineType: string;
  templateId: string;
  region: string;
  diskSize: number;
  /** The team's private network to join. @default none */
  networkId?: string;
  autoShutdownEnabled?: boolean;
  autoShutdownTimeout?: number;
  startOnCreate?: boolean;
  /** Users of the team to make accessors of the new machine. */
  accessorIds?: string[];
  autoSnapshot?: AutoSnapshotFields;
  takeInitialSnapshot?: boolean;
  restorePointEnabled?: boolean;
  restorePointFrequency?: 'shutdown';
  /** A startup script of the team, copied into the machine and run after its starts. */
  startupScriptId?: string;
}

/** An update request after validation at the edge. */
export interface PaperspaceUpdateInput {
  name?: string;
  machineType?: string;
  diskSize?: number;
  autoShutdownEnabled?: boolean;
  autoShutdownTimeout?: number;
  autoSnapshot?: AutoSnapshotFields;
  restorePointEnabled?: boolean;
  restorePointFrequency?: 'shutdown';
  restorePointSnapshotId?: string;
}

/** What `GET /machines` may be ordered by. */
export const MACHINE_ORDER_FIELDS = ['dtCreated', 'name', 'state'] as const;

/** A list request after validation at the edge. */
export interface PaperspaceListInput {
  after?: string;
  limit: number;
  orderBy: (typeof MACHINE_ORDER_FIELDS)[number];
  order: 'asc' | 'desc';
  name?: string;
  region?: string;
  agentType?: string;
  machineType?: string;
}

/** A machine and the event of the operation started on it. */
export interface MachineWithEvent {
  machine: PaperspaceMachine;
  event: MachineEventRecord;
}

/**
 * The Paperspace-style surface over MachineService: machine types, regions, disk
 * sizes in GB, auto shutdown as the hard deadline, and every operation as an event.
 */
export class PaperspaceService {
  private readonly cursors: CursorCodec;

  constructor(private readonly o: PaperspaceServiceOptions) {
    this.cursors = new CursorCodec(o.secret, pageCursorFormat('paperspace-machines'));
  }

  private async view(m: MachineRecord): Promise<PaperspaceMachine> {
    return {
      record: m,
      state: paperspaceState(m.status, this.o.operations.inFlight(m.id)),
      machineType: machineTypeOf(m.config, this.o.machineTypes),
      region: m.region ?? this.defaultRegion,
      storageUsed: allows(m.status, 'disk_usage') ? ((await this.o.machines.diskUsage(m.id)) ?? 0) : 0,
      agentType: await this.agentType(m),
    };
  }

  private get defaultRegion(): string {
    return this.o.regions[0] ?? 'local';
  }

  private async agentType(m: MachineRecord | string): Promise<string> {
    return (await this.o.templates.ofRecord(typeof m === 'string' ? { template: m, templateBuild: null } : m).catch(() => null))?.desktop ? DESKTOP_AGENT_TYPE : AGENT_TYPE;
  }

  private machineType(label: string): MachineType {
    const t = this.o.machineTypes.find((x) => x.label === label);
    if (t) return t;
    throw validationError([{ field: 'machineType', message: `unknown machine type "${label}"; accepted: ${this.o.machineTypes.map((x) => x.label).join(', ')}` }]);
  }

  private checkDiskSize(gb: number): void {
    if (!this.o.diskSizesGb.includes(gb)) {
      throw validationError([{ field: 'diskSize', message: `must be one of: ${this.o.diskSizesGb.join(', ')} (GB)` }]);
    }
  }

  /** Validate a create, start the machine, and answer as soon as its record exists. */
  async create(caller: Caller, input: PaperspaceCreateInput): Promise<MachineWithEvent> {
    const type = this.machineType(input.machineType);
    if (!this.o.regions.includes(input.region)) {
      throw validationError([{ field: 'region', message: `unknown region "${input.region}"; this server's regions: ${this.o.regions.join(', ')}` }]);
    }
    this.checkDiskSize(input.diskSize);
    if (!(await this.o.templates.resolve(caller.team.id, input.templateId))) {
      const known = await this.o.templates.names(caller.team.id);
      throw validationError([{ field: 'templateId', message: `unknown template "${input.templateId}"; accepted: ${known.join(', ')}` }]);
    }
    if (input.autoShutdownTimeout !== undefined && input.autoShutdownEnabled !== true) {
      throw validationError([{ field: 'autoShutdownTimeout', message: 'applies only with autoShutdownEnabled: true; set both' }]);
    }
    const timers = autoShutdownToTimeout(input.autoShutdownEnabled ?? false, input.autoShutdownTimeout);
    const grantees = await this.o.accessors.users(caller, [...new Set(input.accessorIds ?? [])], 'accessorIds');
    const autoSnapshot = autoSnapshotRequest(input.autoSnapshot ?? {}, null) ?? undefined;
    if (input.restorePointFrequency !== undefined && input.restorePointEnabled !== true) {
      throw validationError([{ field: 'restorePointFrequency', message: 'applies only with restorePointEnabled: true; set both' }]);
    }
    if (input.restorePointEnabled === true && input.takeInitialSnapshot === false) {
      throw validationError([{ field: 'takeInitialSnapshot', message: 'must not be false with restorePointEnabled: true (the initial snapshot is the restore point); omit it or send true' }]);
    }
    const requestedAt = this.o.machines.now();
    let recorded!: (m: MachineRecord) => void;
    const whenRecorded = new Promise<MachineRecord>((resolve) => (recorded = resolve));
    // Recorded below as one create event: what it calls records nothing more.
    const created = this.o.operations.within(() =>
      this.o.machines.create(
        caller,
        {
          template: input.templateId,
          config: { vcpus: type.vcpus, memory_mb: type.memory_mb, disk_mb: input.diskSize * GIB_MB },
          name: input.name,
          region: input.region,
          timeoutMs: timers.timeoutMs,
          timeoutAction: timers.timeoutAction,
          autoSnapshot,
          takeInitialSnapshot: input.takeInitialSnapshot ?? false,
          restorePointFromInitial: input.restorePointEnabled ?? false,
          startupScriptId: input.startupScriptId,
          networkId: input.networkId,
          networkField: 'networkId',
        },
        undefined,
        { onRecorded: recorded },
      ),
    );
    // Errors before the record exists (capacity, template) are the request's: nothing was created.
    const first = await Promise.race([whenRecorded, created]);
    for (const user of grantees) await this.o.accessors.grant(first.id, user);
    // A machine created stopped has not started: its first start is the first `start`.
    const work =
      input.startOnCreate === false
        ? created.then((m) => this.o.operations.within(() => this.o.machines.pause(caller, m.id)))
        : created.then((m) => this.o.startupScripts.afterStart(caller, m, 'create'));
    const event = await this.o.operations.follow(caller, first.id, 'create', requestedAt, work);
    return { machine: await this.view(first), event };
  }

  /** A machine of the caller's team (destroyed ones too, within retention). */
  async get(caller: Caller, id: string): Promise<PaperspaceMachine> {
    return this.view(await this.o.machines.get(caller, id));
  }

  /** A page of the caller's machines (destroyed ones aside), filtered and ordered. */
  async list(caller: Caller, input: PaperspaceListInput): Promise<{ items: PaperspaceMachine[]; hasMore: boolean; nextPage: string | null }> {
    const scope = JSON.stringify([input.orderBy, input.order, input.name ?? null, input.region ?? null, input.agentType ?? null, input.machineType ?? null]);
    const after = input.after === undefined ? undefined : this.cursors.decode(input.after, caller.team.id, scope);
    // Only this server signs cursors, for this order: a key of the other type is refused, never compared.
    if (after && typeof after[0] !== (input.orderBy === 'dtCreated' ? 'number' : 'string')) throw this.cursors.invalid();
    // One moment's operations: the states the store orders by are the states the page shows.
    const inFlight = this.o.operations.allInFlight();
    const query = await this.pageQuery(caller, input, inFlight);
    if (query === null) return { items: [], hasMore: false, nextPage: null };
    const rows = await this.o.store.pageMachines({ ...query, after: after && { key: after[0], id: after[1] }, limit: input.limit + 1 });
    const page = rows.slice(0, input.limit);
    const hasMore = rows.length > input.limit;
    const last = page[page.length - 1];
    const position = (m: MachineRecord): PagePosition => {
      const key = input.orderBy === 'dtCreated' ? m.createdAt : input.orderBy === 'name' ? (m.name ?? m.id) : paperspaceState(m.status, inFlight.get(m.id));
      return [key, m.id];
    };
    return {
      items: await Promise.all(page.map((m) => this.view(m))),
      hasMore,
      nextPage: hasMore && last ? this.cursors.encode(position(last), caller.team.id, scope) : null,
    };
  }

  /** The store query of a list request, or null when its filters match no machine. */
  private async pageQuery(caller: Caller, input: PaperspaceListInput, inFlight: ReadonlyMap<string, MachineEventName>): Promise<Omit<MachinePageQuery, 'after' | 'limit'> | null> {
    if (input.region !== undefined && !this.o.regions.includes(input.region)) return null;
    const query: Omit<MachinePageQuery, 'after' | 'limit'> = {
      teamId: caller.team.id,
      statuses: LISTED_STATUSES,
      visibleTo: listingNarrowedTo(caller),
      order: this.pageOrder(input.orderBy, inFlight),
      direction: input.order,
    };
    if (input.name !== undefined) query.displayName = input.name;
    // Machines created without a region (natively, or before regions) are in the default one.
    if (input.region !== undefined) query.region = { name: input.region, orDefault: input.region === this.defaultRegion };
    if (input.agentType !== undefined) {
      if (input.agentType !== AGENT_TYPE && input.agentType !== DESKTOP_AGENT_TYPE) return null;
      // The agent type is the template's: each template of the team's machines is looked up as `view` does.
      const desktop: string[] = [];
      for (const t of await this.o.store.machineTemplates(caller.team.id)) if ((await this.agentType(t)) === DESKTOP_AGENT_TYPE) desktop.push(t);
      query.templates = input.agentType === DESKTOP_AGENT_TYPE ? { oneOf: desktop } : { noneOf: desktop };
    }
    if (input.machineType !== undefined) {
      // A size shows as the first type of its vCPUs and memory, else as custom.
      const sizes: MachineSize[] = this.o.machineTypes.map((t) => ({ vcpus: t.vcpus, memory_mb: t.memory_mb }));
      const labelOf = (s: MachineSize): string => machineTypeOf({ ...s, disk_mb: 0 }, this.o.machineTypes);
      query.sizes =
        input.machineType === CUSTOM_MACHINE_TYPE
          ? { noneOf: sizes.filter((s) => labelOf(s) !== CUSTOM_MACHINE_TYPE) }
          : { oneOf: sizes.filter((s) => labelOf(s) === input.machineType) };
    }
    return query;
  }

  /** The store order of `orderBy`: the state is the status refined by the operation in flight. */
  private pageOrder(orderBy: PaperspaceListInput['orderBy'], inFlight: ReadonlyMap<string, MachineEventName>): MachinePageOrder {
    switch (orderBy) {
      case 'dtCreated':
        return { by: 'createdAt' };
      case 'name':
        return { by: 'displayName' };
      case 'state': {
        const ops = [undefined, ...new Set(inFlight.values())];
        const rules = MACHINE_STATUSES.flatMap((status) => ops.map((op) => ({ status, tag: op ?? null, label: paperspaceState(status, op) })));
        return { by: 'label', tags: inFlight, rules };
      }
    }
  }

  private conflict(m: MachineRecord, state: PaperspaceState, operation: string, needs: string): HangarError {
    const is = m.status === 'error' ? `off, in error (GET /v1/machines/${m.id} says why in error_reason)` : m.status === 'destroyed' ? 'deleted' : state;
    return new HangarError('STATE_CONFLICT', `Machine ${m.id} is ${is}; ${operation} needs a machine that is ${needs}.`, { state, status: m.status });
  }

  /**
   * The VNC settings of a ready desktop machine: its private address (the host reaches
   * it), the template's port and the password derived from the server secret.
   */
  async desktop(caller: Caller, id: string): Promise<DesktopSettings> {
    const m = await this.get(caller, id);
    const template = await this.o.templates.ofRecord(m.record);
    if (!template?.desktop) {
      throw new HangarError('NO_DESKTOP', `Machine ${id} runs template ${m.record.template}, which has no desktop; create a machine with templateId "desktop" for VNC.`, { template: m.record.template });
    }
    if (!allows(m.record.status, 'traffic') || m.state !== 'ready' || m.record.privateIp === null) {
      const op = this.o.operations.inFlight(id);
      const how =
        allows(m.record.status, 'resume') && m.state === 'off' ? ` (start it with PATCH /machines/${id}/start)` : op !== undefined ? ` (wait for its ${op} to finish)` : '';
      throw this.conflict(m.record, m.state, 'its desktop', `ready${how}`);
    }
    return { vnc: { hostname: m.record.privateIp, port: template.desktop.vnc_port, password: this.o.secret.vncPassword(m.record.id) } };
  }

  /** Start (resume) a stopped machine: the same processes continue. */
  async start(caller: Caller, id: string): Promise<MachineWithEvent> {
    const m = await this.get(caller, id);
    if (!allows(m.record.status, 'resume') || m.state !== 'off') throw this.conflict(m.record, m.state, 'start', 'off (stopped)');
    // A start counts as a start for the startup script (a native resume does not): see StartupScriptRuns.
    const event = await this.o.operations.run(caller, id, 'start', async () => this.o.startupScripts.afterStart(caller, await this.o.machines.resume(caller, id), 'start'));
    return { machine: await this.get(caller, id), event };
  }

  /** Stop (pause to a memory snapshot) a ready machine. */
  async stop(caller: Caller, id: string): Promise<MachineWithEvent> {
    const m = await this.get(caller, id);
    if (!allows(m.record.status, 'pause') || m.state !== 'ready') throw this.conflict(m.record, m.state, 'stop', 'ready');
    const event = await this.o.operations.run(caller, id, 'stop', () => this.o.machines.pause(caller, id));
    return { machine: await this.get(caller, id), event };
  }

  /** Restart a ready machine's processes from init, its files kept. */
  async restart(caller: Caller, id: string): Promise<MachineWithEvent> {
    const m = await this.get(caller, id);
    if (!allows(m.record.status, 'restart') || m.state !== 'ready') throw this.conflict(m.record, m.state, 'restart', 'ready');
    const event = await this.o.operations.run(caller, id, 'restart', async () => this.o.startupScripts.afterStart(caller, await this.o.machines.restart(caller, id), 'restart'));
    return { machine: await this.get(caller, id), event };
  }

  /** Delete (destroy) a machine. */
  async delete(caller: Caller, id: string): Promise<MachineWithEvent> {
    const m = await this.get(caller, id);
    if (!allows(m.record.status, 'destroy')) throw new HangarError('STATE_CONFLICT', `Machine ${id} is already deleted.`, { status: m.record.status });
    const event = await this.o.operations.run(caller, id, 'delete', () => this.o.machines.destroy(caller, id));
    return { machine: await this.get(caller, id), event };
  }

  /** Rename a machine, change its auto shutdown, or resize it (machineType, a larger diskSize) while it is ready. */
  async update(caller: Caller, id: string, input: PaperspaceUpdateInput): Promise<MachineWithEvent> {
    const current = await this.o.machines.get(caller, id);
    if (!allows(current.status, 'update')) throw new HangarError('STATE_CONFLICT', `Machine ${id} is deleted; it cannot be updated.`, { state: 'off', status: current.status });
    const config: UpdateMachineInput['config'] = {};
    if (input.machineType !== undefined) {
      const type = this.machineType(input.machineType);
      config.vcpus = type.vcpus;
      config.memory_mb = type.memory_mb;
    }
    if (input.diskSize !== undefined) {
      this.checkDiskSize(input.diskSize);
      if (input.diskSize * GIB_MB < current.config.disk_mb) {
        throw new HangarError(
          'UNSUPPORTED_OPERATION',
          `Shrinking the disk is not supported (the machine has ${current.config.disk_mb / GIB_MB} GB); create a new machine with the smaller diskSize and copy the files over.`,
          { field: 'diskSize' },
        );
      }
      config.disk_mb = input.diskSize * GIB_MB;
    }
    // Refused before the event is recorded: refused requests record none.
    const resizes = (['vcpus', 'memory_mb', 'disk_mb'] as const).some((k) => config[k] !== undefined && config[k] !== current.config[k]);
    if (resizes && !allows(current.status, 'resize')) {
      throw this.conflict(current, paperspaceState(current.status, this.o.operations.inFlight(id)), 'a resize', 'ready (start it first, then resize)');
    }
    const change: UpdateMachineInput = { config };
    if (input.name !== undefined) change.name = input.name;
    if (input.autoShutdownEnabled !== undefined || input.autoShutdownTimeout !== undefined) {
      const enabled = input.autoShutdownEnabled ?? autoShutdownOf(current).enabled;
      if (input.autoShutdownTimeout !== undefined && !enabled) {
        throw validationError([{ field: 'autoShutdownTimeout', message: 'applies only with auto shutdown enabled; set autoShutdownEnabled: true too' }]);
      }
      const hours = input.autoShutdownTimeout ?? autoShutdownOf(current).hours ?? undefined;
      Object.assign(change, autoShutdownToTimeout(enabled, hours));
    }
    const autoSnapshot = autoSnapshotRequest(input.autoSnapshot ?? {}, current.autoSnapshot);
    if (autoSnapshot !== undefined) change.autoSnapshot = autoSnapshot;
    const restorePoint = restorePointChange(input, current);
    if (restorePoint !== undefined) {
      // Refused here, before the update event is recorded.
      if (restorePoint !== null) await this.o.machines.checkRestorePoint(caller, id, restorePoint);
      change.restorePoint = restorePoint;
    }
    const { result, event } = await this.o.operations.runNow(caller, id, 'update', () => this.o.machines.update(caller, id, change));
    return { machine: await this.view(result), event };
  }
}

/** The restore point change of an update: undefined (none), null (off), or the restore point to set. */
function restorePointChange(input: PaperspaceUpdateInput, current: MachineRecord): RestorePointRequest | null | undefined {
  const enabled = input.restorePointEnabled ?? (input.restorePointSnapshotId !== undefined || current.restorePoint !== null);
  if (!enabled) {
    const stray = (['restorePointSnapshotId', 'restorePointFrequency'] as const).filter((k) => input[k] !== undefined);
    if (stray.length) throw validationError(stray.map((field) => ({ field, message: 'applies only with restore points enabled; omit it or set restorePointEnabled: true' })));
    return input.restorePointEnabled === false ? null : undefined;
  }
  if (input.restorePointSnapshotId !== undefined) return { snapshotId: input.restorePointSnapshotId };
  return input.restorePointEnabled === true ? {} : undefined;
}
