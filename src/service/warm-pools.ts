import { HangarError } from '../domain/errors.js';
import { newMachineId } from '../domain/ids.js';
import { DEFAULT_CONFIG, DEFAULT_TIMEOUT_MS, newMachineRecord, type MachineConfig, type MachineRecord } from '../domain/machine.js';
import type { MachineStartupScript } from '../domain/startup-script.js';
import type { Caller } from '../domain/team.js';
import { allows, transition } from '../domain/transitions.js';
import { POOL_TEAM_ID, poolMatches, type WarmPool } from '../domain/warm-pool.js';
import type { Store } from '../store/store.js';
import type { MachineCore, ServiceLogger } from './machine-core.js';
import { autoSnapshotSettings, type CreateMachineInput } from './machine-inputs.js';

/** A pool as the API shows it: its settings, counters, and its idle machines. */
export interface WarmPoolState extends WarmPool {
  /** Ids of idle machines ready to be checked out. */
  ready: string[];
}

/** Options of the warm-pool service. */
export interface WarmPoolServiceOptions {
  core: MachineCore;
  store: Store;
  log: ServiceLogger;
  /** Pool machines started at once across all pools. @default 2 */
  concurrency?: number;
  /** After a failed start, wait this long before that pool tries again. @default 5000 */
  retryMs?: number;
  now?: () => number;
}

/**
 * Warm pools: settings in the store, idle machines started ahead of time in the
 * background with bounded concurrency, refilled after each checkout and at start.
 */
export class WarmPoolService {
  private readonly inflight = new Map<string, number>();
  private readonly failedAt = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private pass: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  /** Refill passes so far (the scan for machines of deleted pools runs on every 10th). */
  private passes = 0;
  private readonly now: () => number;

  constructor(private readonly o: WarmPoolServiceOptions) {
    this.now = o.now ?? Date.now;
  }

  /** Create or change a pool; the refill starts at once. */
  async put(name: string, input: { template: string; config?: Partial<MachineConfig>; size: number }): Promise<WarmPoolState> {
    await this.o.core.template(null, input.template);
    const prior = await this.o.store.getWarmPool(name);
    const now = this.now();
    const config = { ...DEFAULT_CONFIG, ...input.config };
    const pool: WarmPool = {
      name,
      template: input.template,
      config,
      size: input.size,
      hits: prior?.hits ?? 0,
      misses: prior?.misses ?? 0,
      lastError: null,
      createdAt: prior?.createdAt ?? now,
      updatedAt: now,
    };
    await this.o.store.putWarmPool(pool);
    this.failedAt.delete(name);
    const changed = prior && (prior.template !== pool.template || JSON.stringify(prior.config) !== JSON.stringify(config));
    // Machines of the old shape no longer match any create: replace them all.
    await this.trimPool(name, changed ? 0 : pool.size);
    this.schedule();
    return this.get(name);
  }

  /** One pool with its ready machines, or NOT_FOUND. */
  async get(name: string): Promise<WarmPoolState> {
    const pool = await this.o.store.getWarmPool(name);
    if (!pool) throw new HangarError('NOT_FOUND', `Warm pool ${name} does not exist.`);
    return { ...pool, ready: (await this.o.store.poolMachines(name)).map((m) => m.id) };
  }

  /** Every pool. */
  async list(): Promise<WarmPoolState[]> {
    const out: WarmPoolState[] = [];
    for (const p of await this.o.store.listWarmPools()) out.push({ ...p, ready: (await this.o.store.poolMachines(p.name)).map((m) => m.id) });
    return out;
  }

  /** Delete a pool and destroy its idle machines (checked-out ones are the users' now). */
  async delete(name: string): Promise<void> {
    await this.get(name);
    await this.o.store.deleteWarmPool(name);
    await this.trimPool(name, 0);
  }

  /** Start refilling in the background, and keep retrying failed pools. */
  start(): void {
    this.stopped = false;
    this.schedule();
    this.timer = setInterval(() => this.schedule(), 1_000);
    this.timer.unref();
  }

  /** Stop refilling and wait for starts in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    while (this.pass) await this.pass;
  }

  /** Ask for a refill pass (coalesced: at most one runs, one more follows if asked meanwhile). */
  schedule(): void {
    if (this.stopped) return;
    if (this.pass) {
      this.again = true;
      return;
    }
    this.pass = this.refill()
      .catch((err) => this.o.log.error({ err }, 'warm pool refill failed'))
      .finally(() => {
        this.pass = null;
        if (this.again) {
          this.again = false;
          this.schedule();
        }
      });
  }

  /**
   * Each host keeps its own pool machines, and a change made through another server trims only
   * that server's: so each pass also trims this host's idle machines of a pool that shrank or
   * changed shape, and every 10th pass those of a pool that is gone (a scan of its running machines).
   */
  private async refill(): Promise<void> {
    const limit = this.o.concurrency ?? 2;
    const retryMs = this.o.retryMs ?? 5_000;
    const host = this.o.core.hostId ?? undefined;
    const pools = await this.o.store.listWarmPools();
    if (this.passes++ % 10 === 0) await this.trimDeletedPools(pools);
    for (const pool of pools) {
      const mine = await this.o.store.poolMachines(pool.name, host);
      const keep = mine.some((m) => !poolMatches(pool, m.template, m.config)) ? 0 : pool.size;
      const ready = mine.length > keep ? mine.length - (await this.trimPool(pool.name, keep)) : mine.length;
      const failed = this.failedAt.get(pool.name);
      if (failed !== undefined && this.now() - failed < retryMs) continue;
      let missing = pool.size - ready - (this.inflight.get(pool.name) ?? 0);
      while (missing > 0 && this.totalInflight() < limit && !this.stopped) {
        missing--;
        this.inflight.set(pool.name, (this.inflight.get(pool.name) ?? 0) + 1);
        void this.startOne(pool);
      }
    }
  }

  /** This host's idle machines of pools that no longer exist (deleted through another server) go. */
  private async trimDeletedPools(pools: readonly WarmPool[]): Promise<void> {
    const names = new Set(pools.map((p) => p.name));
    const orphaned = new Set<string>();
    for (const m of await this.o.store.machinesInStatus(['running'], this.o.core.hostId ?? undefined)) {
      if (m.teamId === POOL_TEAM_ID && m.pool !== null && !names.has(m.pool)) orphaned.add(m.pool);
    }
    for (const name of orphaned) await this.trimPool(name, 0);
  }

  private totalInflight(): number {
    let n = 0;
    for (const v of this.inflight.values()) n += v;
    return n;
  }

  private async startOne(pool: WarmPool): Promise<void> {
    try {
      await this.startPoolMachine(pool);
      this.failedAt.delete(pool.name);
      await this.o.store.setWarmPoolError(pool.name, null);
    } catch (err) {
      this.failedAt.set(pool.name, this.now());
      const message = err instanceof Error ? err.message : String(err);
      this.o.log.warn({ pool: pool.name, err }, 'warm pool machine failed to start');
      await this.o.store.setWarmPoolError(pool.name, message);
    } finally {
      this.inflight.set(pool.name, (this.inflight.get(pool.name) ?? 1) - 1);
      // A pool deleted meanwhile: its new machine has nowhere to go.
      if (!(await this.o.store.getWarmPool(pool.name))) await this.trimPool(pool.name, 0);
      this.schedule();
    }
  }

  /** The pool a create of this template and config can be served from, if any. */
  async matching(template: string, config: MachineConfig): Promise<WarmPool | undefined> {
    return (await this.o.store.listWarmPools()).find((p) => poolMatches(p, template, config));
  }

  /**
   * Hand a ready machine of `pool` to the caller: claimed atomically in the store, then
   * given the request's metadata, env, cwd, timers and startup script copy as if it had just started, and
   * `finish`ed under its lock as part of the create. Null (a miss) when none is ready;
   * either way the pool refills.
   */
  async checkout(
    caller: Caller,
    pool: WarmPool,
    input: CreateMachineInput,
    startupScript: MachineStartupScript | null,
    finish: (m: MachineRecord) => Promise<MachineRecord>,
  ): Promise<MachineRecord | null> {
    const { core } = this.o;
    const claimed = await this.o.store.claimPoolMachine(pool.name, caller.team.id, core.hostId ?? undefined);
    await this.o.store.countPoolCheckout(pool.name, claimed !== null);
    this.schedule();
    if (!claimed) return null;
    return core.locks.with(claimed.id, 'checkout', () =>
      core.recorded(claimed, 'create', async () => {
        const now = core.now();
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
          region: input.region ?? null,
          warmPoolCheckout: { hit: true, id: pool.name },
          autoSnapshot: autoSnapshotSettings(input.autoSnapshot, now),
          restorePoint: null,
          startupScript,
        } satisfies Partial<MachineRecord>);
        if (input.cwd !== undefined) await core.runtime.ensureDir(claimed.id, input.cwd);
        await core.save(claimed);
        return finish(claimed);
      }),
    );
  }

  /** Start one idle machine for a pool (a refill). */
  private async startPoolMachine(pool: WarmPool): Promise<MachineRecord> {
    const { core } = this.o;
    const template = await core.template(null, pool.template);
    core.ensureCapacity('.');
    const id = newMachineId();
    const m = newMachineRecord({ id, teamId: POOL_TEAM_ID, template: pool.template, templateBuild: template.buildId, createdAt: core.now(), config: pool.config, pool: pool.name, privateIp: core.allocateIp(id), hostId: core.hostId });
    core.hold(m.id);
    return core.locks.with(m.id, 'create', async () => {
      await this.o.store.insertMachine(m);
      try {
        await core.runtime.start({ ...core.spec(m, template), background: true });
      } catch (err) {
        core.letGo(m);
        // A pool machine nobody saw: record it as gone rather than leave an error behind.
        transition(m, 'destroyed');
        Object.assign(m, { destroyedAt: core.now(), pool: null, errorReason: null });
        await core.save(m);
        throw err;
      }
      transition(m, 'started');
      m.startedAt = core.now();
      return core.save(m);
    });
  }

  /** Destroy idle machines of a pool, oldest first, keeping `keep` of them. */
  private async trimPool(name: string, keep: number): Promise<number> {
    const { core } = this.o;
    const idle = await this.o.store.poolMachines(name, core.hostId ?? undefined);
    let destroyed = 0;
    for (const m of idle.slice(0, Math.max(0, idle.length - keep))) {
      const ok = await core.locks
        .with(m.id, 'destroy', async () => {
          const fresh = await this.o.store.getMachine(m.id);
          // Checked out (or gone) meanwhile: no longer the pool's to trim.
          if (fresh?.pool !== name || !allows(fresh.status, 'checkout')) return false;
          await core.destroyLocked(fresh);
          return true;
        })
        // Busy (being checked out) or a failed destroy (logged, the machine is in error): the next trim tries again.
        .catch(() => false);
      if (ok) destroyed++;
    }
    return destroyed;
  }
}
