import { HangarError, machineNotFound } from '../domain/errors.js';
import { deadlineOf } from '../domain/lifecycle.js';
import { MachineMovedError, type HostState } from '../domain/host.js';
import type { MachineEventName } from '../domain/machine-event.js';
import type { MachineRecord } from '../domain/machine.js';
import { formatCidr, IpAllocator, type Cidr } from '../domain/network.js';
import { transition } from '../domain/transitions.js';
import type { Caller } from '../domain/team.js';
import type { MachineSpec, Runtime, SnapshotRuntime, VolumeMountSpec, VolumeRuntime } from '../runtime/runtime.js';
import { RuntimeError } from '../runtime/runtime.js';
import type { Store } from '../store/store.js';
import { desktopEnv } from '../templates/desktop.js';
import type { Template } from '../templates/templates.js';
import { callerReaches } from './access.js';
import { MachineLocks } from './keyed-lock.js';
import type { ServerSecret } from './secrets.js';
import type { TemplateResolver } from './template-service.js';
import { NO_TIMER, type OperationTimer } from './metrics.js';
import { QuotaService } from './quotas.js';

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

/** What every machine operation shares: the store, the runtime, and the host's policy. */
export interface MachineCoreOptions {
  store: Store;
  runtime: Runtime & SnapshotRuntime & VolumeRuntime;
  templates: TemplateResolver;
  secret: ServerSecret;
  log: ServiceLogger;
  /** Machines holding resources on this host at most. */
  maxMachines: number;
  /** The machines' private subnet; each machine holds one address of it while it holds resources. */
  subnet: Cidr;
  /** Injectable clock for tests. @default Date.now */
  now?: () => number;
  /** Times operations for the metrics. @default none */
  timer?: OperationTimer;
  /** Records every create, start, stop, restart, update and delete as an event. @default none */
  recorder?: OperationRecorder;
  /**
   * This host's id among the hosts sharing the store: new machines are its, and an operation
   * on another host's machine is refused (MACHINE_ON_OTHER_HOST). @default none: one host, every machine is its own
   */
  hostId?: string;
  /** The state of another host (for the refusal's message); the server's host registry. */
  hostState?: (hostId: string) => Promise<HostState | null>;
}

/** The message of a runtime failure that is safe to show a client. */
export const reasonOf = (err: unknown): string => (err instanceof RuntimeError ? err.message : 'the runtime failed unexpectedly');

/**
 * The state and primitives every machine operation shares (one per server): per-machine
 * locks, which machines hold host resources (capacity and private addresses), saving a
 * record with its deadline, and the runtime spec of a machine. The operation modules
 * (create, pause/resume, update, snapshots, warm pools, recovery) are built on it and
 * never on each other's internals.
 */
export class MachineCore {
  readonly locks = new MachineLocks();
  /** Machines holding resources on this server, for the capacity check. */
  private readonly holding = new Set<string>();
  private readonly ips: IpAllocator;
  readonly now: () => number;
  /** The teams' quotas and what is reserved against them. */
  readonly quotas: QuotaService;

  constructor(readonly o: MachineCoreOptions) {
    this.ips = new IpAllocator(o.subnet);
    this.quotas = new QuotaService(o.store);
    this.now = o.now ?? Date.now;
  }

  get store(): Store {
    return this.o.store;
  }

  get runtime(): Runtime & SnapshotRuntime & VolumeRuntime {
    return this.o.runtime;
  }

  get log(): ServiceLogger {
    return this.o.log;
  }

  /** Store the record with its next deadline (the scheduler's index). */
  async save(m: MachineRecord): Promise<MachineRecord> {
    m.deadlineAt = deadlineOf(m);
    try {
      await this.o.store.updateMachine(m);
    } catch (err) {
      // Another host took it (this one was marked down or drained while working on it): its record there stands.
      throw err instanceof MachineMovedError ? movedAway(m, err) : err;
    }
    return m;
  }

  /** Run `work` timed as `operation` for the metrics. */
  timed<T>(operation: string, work: () => Promise<T>): Promise<T> {
    return (this.o.timer ?? NO_TIMER).time(operation, work);
  }

  /** Run an accepted operation, recorded as an event when a recorder is configured. */
  recorded<T>(m: MachineRecord, name: MachineEventName, work: () => Promise<T>): Promise<T> {
    return this.o.recorder ? this.o.recorder.record(m.teamId, m.id, name, work) : work();
  }

  /** The template a team gets by name (null: server-wide ones only), or 422 UNKNOWN_TEMPLATE listing the ones it has. */
  async template(teamId: string | null, name: string): Promise<Template> {
    const template = await this.o.templates.resolve(teamId, name);
    if (template) return template;
    const known = await this.o.templates.names(teamId);
    throw new HangarError('UNKNOWN_TEMPLATE', `Template "${name}" does not exist. Available: ${known.join(', ') || 'none'}.`, {
      template: name,
      available: known,
    });
  }

  /** The template version a machine (or snapshot) runs on; RUNTIME_FAILED when it is gone from this server. */
  async templateOf(r: { id: string; template: string; templateBuild: string | null }): Promise<Template> {
    const template = await this.o.templates.ofRecord(r);
    if (template) return template;
    throw new HangarError('RUNTIME_FAILED', `Template "${r.template}"${r.templateBuild ? ` (build ${r.templateBuild})` : ''} of ${r.id} is no longer on this server.`);
  }

  /** 429 when this server already runs as many machines as it may; `hint` ends the message. */
  ensureCapacity(hint = '; destroy one or try later.'): void {
    if (this.holding.size >= this.o.maxMachines) {
      throw new HangarError('CAPACITY_EXCEEDED', `This server runs at most ${this.o.maxMachines} machines${hint}`);
    }
  }

  /** The machine holds host resources now (counts against capacity). */
  hold(id: string): void {
    this.holding.add(id);
  }

  /** The machine's processes are gone (paused): it no longer counts against capacity, and keeps its address. */
  unhold(id: string): void {
    this.holding.delete(id);
  }

  /** The machine no longer holds host resources: capacity and its address are free again. */
  letGo(m: MachineRecord): void {
    this.holding.delete(m.id);
    this.releaseIp(m);
  }

  /** A free private address for a machine, or 429 when the subnet is full. */
  allocateIp(machineId: string): string {
    const ip = this.ips.allocate(machineId);
    if (ip === null) {
      throw new HangarError('CAPACITY_EXCEEDED', `The machine subnet ${formatCidr(this.o.subnet)} has no free address; destroy a machine or set a larger HANGAR_SUBNET.`);
    }
    return ip;
  }

  /** Free an address held by something that is not a machine record (a template build machine). */
  releaseAddress(ip: string, holder: string): void {
    this.ips.release(ip, holder);
  }

  /** Free the machine's address (only if it still holds it). */
  releaseIp(m: MachineRecord): void {
    if (m.privateIp !== null) this.ips.release(m.privateIp, m.id);
  }

  /** Forget every address and reserve these (start-up, from the store). */
  reserveIps(live: Iterable<{ id: string; ip: string }>): void {
    this.ips.clear();
    for (const { id, ip } of live) this.ips.reserve(ip, id);
  }

  /** The runtime's view of a machine: its template, env, cwd, resources and network. */
  spec(m: MachineRecord, template: Template): MachineSpec {
    if (m.privateIp === null) throw new Error(`machine ${m.id} has no private address`);
    return {
      id: m.id,
      hostname: m.id,
      templateLayers: template.layers,
      init: template.init,
      // The desktop's variables come last: a machine's own env cannot replace its VNC password.
      env: { ...template.env, ...m.env, ...(template.desktop ? desktopEnv(template.desktop, this.o.secret.vncPassword(m.id)) : {}), HOSTNAME: m.id },
      cwd: m.cwd ?? template.cwd,
      config: m.config,
      network: { ip: m.privateIp, outbound: m.outbound, networkId: m.networkId },
      volumes: this.volumeSpecs(m),
      isolation: m.isolation,
    };
  }

  /** How the runtime mounts the machine's volumes. */
  volumeSpecs(m: MachineRecord): VolumeMountSpec[] {
    return m.volumes.map((v) => ({ id: v.volumeId, image: this.o.runtime.volumeImage(v.volumeId), mountPath: v.mountPath, readOnly: v.readOnly }));
  }

  /** A machine the caller reaches (its team's; for a member, one it created or is an accessor of), or NOT_FOUND. */
  async get(caller: Caller, id: string): Promise<MachineRecord> {
    const m = await this.o.store.getMachine(id);
    if (!m || !(await callerReaches(this.o.store, caller, m))) throw machineNotFound(id);
    return m;
  }

  /** This host's id, or null when the server is the only host. */
  get hostId(): string | null {
    return this.o.hostId ?? null;
  }

  /** True when the machine is this host's to run (or no host holds it). */
  isHere(m: MachineRecord): boolean {
    return this.o.hostId === undefined || m.hostId === null || m.hostId === this.o.hostId;
  }

  /**
   * 409 MACHINE_ON_OTHER_HOST unless the machine is this host's. `destroyWhenDown`: a machine
   * whose host is down may be destroyed here (its record is settled; its host's files stay with that host).
   */
  async assertHere(m: MachineRecord, options: { destroyWhenDown?: boolean } = {}): Promise<void> {
    if (this.isHere(m)) return;
    const state = (await this.o.hostState?.(m.hostId!)) ?? null;
    if (options.destroyWhenDown && state === 'down') return;
    const why =
      state === 'down'
        ? 'which is down; its running machines are in error, and it can only be deleted'
        : state === 'stopped'
          ? 'which is stopped; its machines come back when it starts again'
          : 'which did not take this request';
    throw new HangarError('MACHINE_ON_OTHER_HOST', `Machine ${m.id} runs on host ${m.hostId}, ${why}.`, { machine_id: m.id, host_id: m.hostId, host_state: state });
  }

  /**
   * Run `fn` on the caller's machine under its lock, with the freshest record; the machine
   * must be this host's (`here`: see assertHere).
   */
  async locked<T>(caller: Caller, id: string, operation: string, fn: (m: MachineRecord) => Promise<T>, here: { destroyWhenDown?: boolean } = {}): Promise<T> {
    const first = await this.get(caller, id);
    await this.assertHere(first, here);
    return this.locks.with(id, operation, async () => fn((await this.o.store.getMachine(id))!));
  }

  /**
   * After an operation failed once the machine's processes were gone: stop what is left,
   * free its resources and put it in `error` with the reason (its writable layer stays).
   */
  async failStopped(m: MachineRecord, reason: string): Promise<void> {
    await this.o.runtime.stop(m.id).catch((err: unknown) => this.o.log.warn({ machine: m.id, err }, 'cleanup after a failed operation failed'));
    this.letGo(m);
    transition(m, 'failed');
    m.errorReason = reason;
    await this.save(m);
  }

  /** Destroy a machine (lock held): processes, mounts, cgroups, files and its pause snapshot all go. */
  async destroyLocked(m: MachineRecord): Promise<MachineRecord> {
    // Moved to another host since it was read (this host stalled past the down bound, or drained): its
    // snapshot in the shared directory is the new host's now, so nothing is removed here.
    const stored = await this.o.store.getMachine(m.id);
    if (stored && stored.hostId !== m.hostId) throw movedAway(m, new MachineMovedError(m.id, stored.hostId));
    // A machine of a down host (see assertHere): its container and files went with that host; only the records settle here.
    const here = this.isHere(m);
    try {
      if (here) await this.o.runtime.destroy(m.id);
      // Its pause snapshot (and one a failed pause left behind) is part of the machine; manual ones outlive it.
      for (const snap of await this.o.store.listSnapshots(m.teamId, m.id)) {
        if (snap.kind !== 'pause') continue;
        if (here) await this.o.runtime.deleteSnapshot(snap.id);
        await this.o.store.deleteSnapshot(snap.id);
      }
    } catch (err) {
      const reason = `destroy failed: ${err instanceof Error ? err.message : String(err)}`;
      this.o.log.error({ machine: m.id, err }, 'machine destroy failed');
      transition(m, 'failed');
      m.errorReason = reason;
      await this.save(m);
      throw new HangarError('RUNTIME_FAILED', `Machine ${m.id} could not be destroyed (${reason}); it is now in error. Retry the delete.`, { machine_id: m.id });
    }
    this.letGo(m);
    transition(m, 'destroyed');
    m.destroyedAt = this.now();
    m.snapshotId = null;
    m.errorReason = null;
    return this.save(m);
  }
}

/** 409 for work on a machine that moved to another host while this one worked on it. */
function movedAway(m: MachineRecord, err: MachineMovedError): HangarError {
  return new HangarError('MACHINE_ON_OTHER_HOST', `Machine ${m.id} moved to host ${err.hostId ?? '(none)'} while host ${m.hostId ?? '(none)'} worked on it; nothing was changed here. Retry: the request goes to its host.`, {
    machine_id: m.id,
    host_id: err.hostId,
  });
}

