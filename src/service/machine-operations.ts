import { AsyncLocalStorage } from 'node:async_hooks';
import { HangarError } from '../domain/errors.js';
import { newMachineEventId, type MachineEventName, type MachineEventRecord } from '../domain/machine-event.js';
import type { Caller } from '../domain/team.js';
import type { Store } from '../store/store.js';
import { callerReaches, listingNarrowedTo } from './access.js';
import { CursorCodec, pageCursorFormat } from './cursor-codec.js';
import type { ServerSecret } from './secrets.js';
import type { OperationRecorder, ServiceLogger } from './machine-core.js';

/** Dependencies of the operations runner. */
export interface MachineOperationsOptions {
  store: Store;
  secret: ServerSecret;
  log: ServiceLogger;
  /** @default Date.now */
  now?: () => number;
  /** This host: start-up settles only its machines' events (another host's may be running). @default every event */
  hostId?: string;
}

/** A page of events request, validated at the edge. */
export interface ListEventsInput {
  machineId?: string;
  order: 'asc' | 'desc';
  limit: number;
  after?: string;
}

/** One page of events. */
export interface EventPage {
  items: MachineEventRecord[];
  hasMore: boolean;
  nextPage: string | null;
}

/** Said of every event a stopped server left unfinished. */
export const INTERRUPTED_EVENT_ERROR = 'the server stopped before this operation finished';

/**
 * Machine operations as events (`new` → `in progress` → `done` | `error`). The
 * Paperspace-style surface runs its operations here in the background (awaited by
 * `drain` when the server closes), one per machine at a time; as the machine service's
 * recorder it also records operations from elsewhere (native API, timers) as they run.
 */
export class MachineOperations implements OperationRecorder {
  /** Set while work of an operation recorded here runs: the service's own record is then skipped. */
  private readonly recording = new AsyncLocalStorage<true>();
  private readonly inflight = new Map<string, MachineEventName>();
  private readonly running = new Set<Promise<void>>();
  private readonly cursors: CursorCodec;
  private readonly now: () => number;
  private closed = false;

  constructor(private readonly o: MachineOperationsOptions) {
    this.cursors = new CursorCodec(o.secret, pageCursorFormat('machine-events'));
    this.now = o.now ?? Date.now;
  }

  /** The operation in flight on a machine, if any. */
  inFlight(machineId: string): MachineEventName | undefined {
    return this.inflight.get(machineId);
  }

  /** Every operation in flight, by machine id: a copy, so it stays one moment's view. */
  allInFlight(): Map<string, MachineEventName> {
    return new Map(this.inflight);
  }

  /**
   * Take the machine for `name`, or throw STATE_CONFLICT (another operation) or NOT_READY
   * (closing; unless the work has already begun and only needs recording).
   */
  private claim(machineId: string, name: MachineEventName, begun = false): void {
    if (this.closed && !begun) throw new HangarError('NOT_READY', 'The server is shutting down; retry against the next one.');
    const current = this.inflight.get(machineId);
    if (current !== undefined) {
      throw new HangarError('STATE_CONFLICT', `Machine ${machineId} is busy with a ${current} operation; poll its event and retry when it is done.`, {
        operation: current,
      });
    }
    this.inflight.set(machineId, name);
  }

  private async finish(e: MachineEventRecord, err: unknown): Promise<void> {
    e.finishedAt = this.now();
    if (err === undefined) {
      e.state = 'done';
    } else {
      e.state = 'error';
      e.error = err instanceof Error ? err.message : String(err);
    }
    await this.o.store.updateMachineEvent(e).catch((storeErr) => this.o.log.error({ event: e.id, err: storeErr }, 'could not record the end of an event'));
  }

  private track(p: Promise<void>): void {
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
  }

  /**
   * Record an event for `name` on the machine and run `work` in the background.
   * Returns the event as first recorded (`new`).
   */
  async run(caller: Caller, machineId: string, name: MachineEventName, work: () => Promise<unknown>): Promise<MachineEventRecord> {
    this.claim(machineId, name);
    const e: MachineEventRecord = {
      id: newMachineEventId(),
      teamId: caller.team.id,
      machineId,
      name,
      state: 'new',
      error: null,
      createdAt: this.now(),
      startedAt: null,
      finishedAt: null,
      startupScript: null,
    };
    try {
      await this.o.store.insertMachineEvent(e);
    } catch (err) {
      this.inflight.delete(machineId);
      throw err;
    }
    const recorded = { ...e };
    this.track(
      (async () => {
        let failure: unknown = undefined;
        try {
          e.state = 'in progress';
          e.startedAt = this.now();
          await this.o.store.updateMachineEvent(e);
          await this.within(work);
        } catch (err) {
          failure = err ?? new Error('failed');
        } finally {
          this.inflight.delete(machineId);
        }
        await this.finish(e, failure);
      })(),
    );
    return recorded;
  }

  /**
   * Record an event for work that already started (a create, whose machine id exists
   * only once its record does) and follow `done` in the background.
   */
  async follow(caller: Caller, machineId: string, name: MachineEventName, createdAt: number, done: Promise<unknown>): Promise<MachineEventRecord> {
    // The work runs whatever happens here: it is recorded and awaited by drain even while closing.
    this.claim(machineId, name, true);
    const e: MachineEventRecord = {
      id: newMachineEventId(),
      teamId: caller.team.id,
      machineId,
      name,
      state: 'in progress',
      error: null,
      createdAt,
      startedAt: this.now(),
      finishedAt: null,
      startupScript: null,
    };
    const settled = done.then(
      () => undefined,
      (err: unknown) => err ?? new Error('failed'),
    );
    try {
      await this.o.store.insertMachineEvent(e);
    } catch (err) {
      this.track(settled.then(() => void this.inflight.delete(machineId)));
      throw err;
    }
    const recorded = { ...e };
    this.track(
      settled.then(async (failure) => {
        this.inflight.delete(machineId);
        await this.finish(e, failure);
      }),
    );
    return recorded;
  }

  /** Run `work` now, while the caller waits, recorded as an event that is done (or error) when it returns. */
  async runNow<T>(caller: Caller, machineId: string, name: MachineEventName, work: () => Promise<T>): Promise<{ result: T; event: MachineEventRecord }> {
    this.claim(machineId, name);
    const at = this.now();
    const e: MachineEventRecord = { id: newMachineEventId(), teamId: caller.team.id, machineId, name, state: 'in progress', error: null, createdAt: at, startedAt: at, finishedAt: null, startupScript: null };
    try {
      await this.o.store.insertMachineEvent(e);
      let result: T;
      try {
        result = await this.within(work);
      } catch (err) {
        await this.finish(e, err ?? new Error('failed'));
        throw err;
      }
      await this.finish(e, undefined);
      return { result, event: e };
    } finally {
      this.inflight.delete(machineId);
    }
  }

  /** Run `fn` as part of an operation recorded here: what it calls on the machine service records nothing more. */
  within<T>(fn: () => Promise<T>): Promise<T> {
    return this.recording.run(true, fn);
  }

  /** Record an operation the machine service runs (native API, timers) while it runs, unless it is part of one recorded here. */
  async record<T>(teamId: string, machineId: string, name: MachineEventName, work: () => Promise<T>): Promise<T> {
    if (this.recording.getStore() === true) return work();
    const at = this.now();
    const e: MachineEventRecord = { id: newMachineEventId(), teamId, machineId, name, state: 'in progress', error: null, createdAt: at, startedAt: at, finishedAt: null, startupScript: null };
    const stored = await this.o.store.insertMachineEvent(e).then(
      () => true,
      (err: unknown) => {
        // The operation matters more than its event: it runs anyway.
        this.o.log.error({ machine: machineId, err }, 'could not record a machine event');
        return false;
      },
    );
    let result: T;
    try {
      result = await work();
    } catch (err) {
      if (stored) await this.finish(e, err ?? new Error('failed'));
      throw err;
    }
    if (stored) await this.finish(e, undefined);
    return result;
  }

  /** One of the caller's events, or NOT_FOUND. */
  async get(caller: Caller, id: string): Promise<MachineEventRecord> {
    const e = await this.o.store.getMachineEvent(id);
    const m = e && e.teamId === caller.team.id ? await this.o.store.getMachine(e.machineId) : null;
    // A member sees the events of the machines it reaches; admins also those of purged machines.
    const reached = e !== null && e.teamId === caller.team.id && (m ? await callerReaches(this.o.store, caller, m) : listingNarrowedTo(caller) === undefined);
    if (!e || !reached) throw new HangarError('NOT_FOUND', `Machine event ${id} does not exist for this team.`);
    return e;
  }

  /** A page of the caller's events by creation time. */
  async list(caller: Caller, input: ListEventsInput): Promise<EventPage> {
    const scope = JSON.stringify([input.machineId ?? null, input.order]);
    const after = input.after === undefined ? undefined : this.cursors.decode(input.after, caller.team.id, scope);
    const rows = await this.o.store.listMachineEvents({
      teamId: caller.team.id,
      machineId: input.machineId,
      order: input.order,
      after: after && { createdAt: Number(after[0]), id: after[1] },
      limit: input.limit + 1,
      visibleTo: listingNarrowedTo(caller),
    });
    const items = rows.slice(0, input.limit);
    const last = items[items.length - 1];
    const hasMore = rows.length > input.limit;
    return { items, hasMore, nextPage: hasMore && last ? this.cursors.encode([last.createdAt, last.id], caller.team.id, scope) : null };
  }

  /** Mark events a previous run of the server left unfinished as errors (at start-up). */
  recover(): Promise<number> {
    const { hostId } = this.o;
    return this.o.store.failUnfinishedMachineEvents(INTERRUPTED_EVENT_ERROR, this.now(), hostId === undefined ? undefined : { hostId, unhosted: true });
  }

  /** Refuse new operations and wait for those in flight (server shutdown). */
  async drain(): Promise<void> {
    this.closed = true;
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }
}
