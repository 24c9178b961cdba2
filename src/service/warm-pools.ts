import { HangarError } from '../domain/errors.js';
import { DEFAULT_CONFIG, type MachineConfig } from '../domain/machine.js';
import type { WarmPool } from '../domain/warm-pool.js';
import type { Store } from '../store/store.js';
import type { TemplateCatalog } from '../templates/templates.js';
import type { MachineService, ServiceLogger } from './machine-service.js';

/** A pool as the API shows it: its settings, counters, and its idle machines. */
export interface WarmPoolState extends WarmPool {
  /** Ids of idle machines ready to be checked out. */
  ready: string[];
}

/** Options of the warm-pool service. */
export interface WarmPoolServiceOptions {
  store: Store;
  machines: MachineService;
  templates: TemplateCatalog;
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
  private readonly now: () => number;

  constructor(private readonly o: WarmPoolServiceOptions) {
    this.now = o.now ?? Date.now;
  }

  /** Create or change a pool; the refill starts at once. */
  async put(name: string, input: { template: string; config?: Partial<MachineConfig>; size: number }): Promise<WarmPoolState> {
    if (!(await this.o.templates.get(input.template))) {
      const known = (await this.o.templates.list()).map((t) => t.name);
      throw new HangarError('UNKNOWN_TEMPLATE', `Template "${input.template}" does not exist. Available: ${known.join(', ') || 'none'}.`, {
        template: input.template,
        available: known,
      });
    }
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
    await this.o.machines.trimPool(name, changed ? 0 : pool.size);
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
    await this.o.machines.trimPool(name, 0);
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

  private async refill(): Promise<void> {
    const limit = this.o.concurrency ?? 2;
    const retryMs = this.o.retryMs ?? 5_000;
    for (const pool of await this.o.store.listWarmPools()) {
      const failed = this.failedAt.get(pool.name);
      if (failed !== undefined && this.now() - failed < retryMs) continue;
      const ready = (await this.o.store.poolMachines(pool.name)).length;
      let missing = pool.size - ready - (this.inflight.get(pool.name) ?? 0);
      while (missing > 0 && this.totalInflight() < limit && !this.stopped) {
        missing--;
        this.inflight.set(pool.name, (this.inflight.get(pool.name) ?? 0) + 1);
        void this.startOne(pool);
      }
    }
  }

  private totalInflight(): number {
    let n = 0;
    for (const v of this.inflight.values()) n += v;
    return n;
  }

  private async startOne(pool: WarmPool): Promise<void> {
    try {
      await this.o.machines.startPoolMachine(pool);
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
      if (!(await this.o.store.getWarmPool(pool.name))) await this.o.machines.trimPool(pool.name, 0);
      this.schedule();
    }
  }
}
