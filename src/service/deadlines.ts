import { nextDue, type DueAction } from '../domain/lifecycle.js';
import type { MachineRecord } from '../domain/machine.js';
import { allows } from '../domain/transitions.js';
import type { ActivityTracker } from './activity.js';
import type { MachineCore } from './machine-core.js';
import type { MachineSnapshots } from './machine-snapshots.js';
import type { PauseResume } from './pause-resume.js';

const IDEMPOTENCY_TTL_MS = 24 * 3_600_000;
/** Machines acted on per sweep at most; the rest wait for the next one. */
const DUE_PER_SWEEP = 50;

/** What the lifecycle sweep does: timeouts, inactivity, auto delete, automatic snapshots, purges. */
export class Deadlines {
  private lastKeyPurge = 0;

  constructor(
    private readonly core: MachineCore,
    private readonly pauses: PauseResume,
    private readonly snapshots: MachineSnapshots,
    private readonly activity: ActivityTracker,
    /** Destroyed records stay this long. */
    private readonly retentionMs: number,
  ) {}

  /**
   * Apply every lifecycle deadline that has passed, and purge destroyed records past
   * retention. Called by the scheduler; safe to call at any time.
   */
  async runDue(): Promise<void> {
    const { core } = this;
    const now = core.now();
    for (const listed of await core.store.dueMachines(now, DUE_PER_SWEEP, core.hostId ?? undefined)) {
      // Re-read: acting on the machines before this one took time, and it may have changed meanwhile.
      const m = await core.store.getMachine(listed.id);
      // Activity not yet stored still counts: it is at most a second old.
      const due = m && nextDue(this.activity.withPending(m));
      if (!m || !due || due.at > now || core.locks.isBusy(m.id)) continue;
      await core.locks
        .with(m.id, `${due.kind} deadline`, () => this.apply(m, due))
        .catch((err: unknown) => core.log.error({ machine: m.id, err }, 'lifecycle action failed'));
    }
    await core.store.purgeDestroyed(now - this.retentionMs);
    if (now - this.lastKeyPurge >= 60_000) {
      this.lastKeyPurge = now;
      await core.store.purgeIdempotency(now - IDEMPOTENCY_TTL_MS);
    }
  }

  private async apply(m: MachineRecord, due: DueAction): Promise<void> {
    const { core } = this;
    core.log.info({ machine: m.id, kind: due.kind, action: due.action }, 'lifecycle deadline reached');
    switch (due.action) {
      case 'snapshot': {
        const started = performance.now();
        await core.recorded(m, 'snapshot', () => this.snapshots.autoLocked(m));
        core.log.info({ machine: m.id, ms: Math.round(performance.now() - started) }, 'automatic snapshot taken');
        return;
      }
      case 'destroy':
        await core.recorded(m, 'delete', () => core.destroyLocked(m));
        return;
      case 'hibernate':
        await core.recorded(m, 'stop', async () => {
          try {
            await this.pauses.pauseLocked(m);
          } catch (err) {
            // Nobody waits on a timer to retry by hand: keep the disk, drop the memory.
            const fresh = await core.store.getMachine(m.id);
            if (!fresh || !allows(fresh.status, 'pause')) throw err;
            core.log.warn({ machine: m.id, err }, 'hibernate with memory failed; pausing with the filesystem only');
            await this.pauses.pauseLocked(fresh, { memory: false });
          }
        });
        return;
    }
  }
}
