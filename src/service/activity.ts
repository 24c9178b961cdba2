import type { MachineRecord } from '../domain/machine.js';
import { allows } from '../domain/transitions.js';
import type { MachineCore } from './machine-core.js';

/** A machine's activity reaches the store at most this often; in between it is held in memory. */
const ACTIVITY_FLUSH_MS = 1_000;
/** A flush that finds the machine busy with another operation tries again after this long. */
const ACTIVITY_RETRY_MS = 250;

/**
 * Activity on machines (execs, file calls, terminal input, ingress traffic): it sets
 * `last_active_at` and so moves the inactivity deadline. Held in memory and stored at
 * most once a second per machine, so a busy machine costs one write a second.
 */
export class ActivityTracker {
  /** Latest activity per machine not yet in the store. */
  private readonly pending = new Map<string, number>();
  /** Per machine: the pending flush, or the quiet second after one. */
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private stopped = false;
  /** Activity writes in progress, awaited at shutdown. */
  private readonly writes = new Set<Promise<void>>();

  constructor(private readonly core: MachineCore) {}

  /** Record activity on a machine now. */
  touch(id: string): void {
    if (this.stopped) return;
    this.pending.set(id, this.core.now());
    if (!this.timers.has(id)) this.scheduleFlush(id, 0);
  }

  private scheduleFlush(id: string, delayMs: number): void {
    const timer = setTimeout(() => void this.flush(id), delayMs);
    timer.unref();
    this.timers.set(id, timer);
  }

  /** Store a machine's pending activity, then keep quiet for a second (touches meanwhile wait for the next flush). */
  private async flush(id: string): Promise<void> {
    const at = this.pending.get(id);
    if (at === undefined || this.stopped) {
      this.timers.delete(id);
      return;
    }
    if (this.core.locks.isBusy(id)) {
      this.scheduleFlush(id, ACTIVITY_RETRY_MS);
      return;
    }
    this.pending.delete(id);
    const write = this.store(id, at).catch((err: unknown) => this.core.log.error({ machine: id, err }, 'could not record activity'));
    this.writes.add(write);
    await write;
    this.writes.delete(write);
    if (!this.stopped) this.scheduleFlush(id, ACTIVITY_FLUSH_MS);
  }

  /**
   * Write one activity time, under the machine's lock so no operation changes the record
   * between the read and the write (held only for one read and one write, so operations
   * practically never find it taken). Only a running machine's record is changed: a
   * pause or destroy that finished meanwhile wins.
   */
  private async store(id: string, at: number): Promise<void> {
    await this.core.locks.with(id, 'activity record', async () => {
      const m = await this.core.store.getMachine(id);
      if (!m || !allows(m.status, 'record_activity') || (m.lastActiveAt ?? -Infinity) >= at) return;
      m.lastActiveAt = at;
      await this.core.save(m);
    });
  }

  /** Store all pending activity now and ignore later touches (server shutdown). Busy machines are skipped. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    await Promise.all(this.writes);
    for (const [id, at] of this.pending) {
      if (this.core.locks.isBusy(id)) continue;
      await this.store(id, at).catch((err: unknown) => this.core.log.error({ machine: id, err }, 'could not record activity'));
    }
    this.pending.clear();
  }

  /** The record as it will be once its pending activity is stored. */
  withPending(m: MachineRecord): MachineRecord {
    const at = this.pending.get(m.id);
    return at === undefined || (m.lastActiveAt ?? -Infinity) >= at ? m : { ...m, lastActiveAt: at };
  }
}
