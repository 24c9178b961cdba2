import { DEFAULT_CONFIG, type MachineConfig } from '../src/domain/machine.js';
import { boundedLoop, type LoopBounds, type LoopOutcome } from './bounded-loop.js';
import { BENCH_ADMIN_KEY, type BenchInstance } from './hangar-instance.js';
import { ApiClient } from './http-client.js';

/** How the warm-pool hits are measured. */
export interface WarmPoolPlan {
  /** Idle machines the pool keeps; at least warm-ups + count, so no hit has to wait for a refill. */
  size: number;
  warmup: number;
  count: number;
  budgetMs: number;
  /** Longest wait for the pool to fill after the PUT. */
  fillTimeoutMs: number;
}

/** Creates served from a full warm pool, back to back. */
export interface WarmPoolSamples {
  pool: string;
  size: number;
  config: MachineConfig;
  /** From the PUT until GET showed `ready` == size. */
  fillMs: number;
  /** Round trips of creates answered 201 running with `warm_pool_checkout.hit` true. */
  hitMs: number[];
  /** Creates that matched but were not served from the pool: "<ms> ms, warm_pool_checkout …". */
  misses: string[];
  /** The pool's own counters (GET) after the timed creates. */
  poolHits: number;
  poolMisses: number;
  /** Idle machines ready when the timed creates ended (the refill runs meanwhile). */
  readyAfter: number;
  /** Destroying the checked-out machines, one at a time. */
  destroyWallMs: number;
  /** DELETE of the pool (destroys its idle machines). */
  deleteMs: number;
  warmup: number;
  loop: LoopOutcome;
}

interface PoolBody {
  ready: number;
  hits: number;
  misses: number;
  last_error: string | null;
}

interface CreatedBody {
  id: string;
  status: string;
  warm_pool_checkout?: { hit: boolean; id: string };
}

const POOL = 'bench';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll the pool until `size` machines are ready; throws with its last_error after `timeoutMs`. */
async function waitReady(admin: ApiClient, size: number, timeoutMs: number, signal: AbortSignal): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last: PoolBody | undefined;
  while (performance.now() < deadline) {
    signal.throwIfAborted();
    last = (await admin.expect<PoolBody>(200, 'GET', `/v1/warm-pools/${POOL}`)).body;
    if (last.ready >= size) return;
    await sleep(25);
  }
  throw new Error(`warm pool ${POOL}: ${last?.ready ?? 0} of ${size} ready after ${timeoutMs} ms (last_error: ${last?.last_error ?? 'none'})`);
}

/** Destroy the checked-out machines, then delete the pool; both timed. */
async function cleanUp(client: ApiClient, admin: ApiClient, taken: readonly string[], putDone: boolean): Promise<{ destroyWallMs: number; deleteMs: number }> {
  try {
    const d = performance.now();
    for (const id of taken) await client.expect(200, 'DELETE', `/v1/machines/${id}`).catch(() => undefined);
    const destroyWallMs = performance.now() - d;
    const del = performance.now();
    if (putDone) await admin.expect(204, 'DELETE', `/v1/warm-pools/${POOL}`).catch(() => undefined);
    return { destroyWallMs, deleteMs: performance.now() - del };
  } finally {
    admin.close();
  }
}

/**
 * PUT a pool of `plan.size` base machines with the default config written out, wait
 * until it is full, then time creates with that template and config back to back
 * (no pacing: the pool is larger than warm-ups + count). Every answer must be 201
 * running; one not served from the pool is a miss. Checked-out machines are destroyed
 * and the pool deleted afterwards.
 */
export async function measureWarmPool(inst: BenchInstance, plan: WarmPoolPlan, signal: AbortSignal): Promise<WarmPoolSamples> {
  const config: MachineConfig = { ...DEFAULT_CONFIG };
  const admin = new ApiClient(inst.server.url, BENCH_ADMIN_KEY);
  const taken: string[] = [];
  const hitMs: number[] = [];
  const misses: string[] = [];
  const create = async (): Promise<{ ms: number; hit: boolean }> => {
    const res = await inst.client.expect<CreatedBody>(201, 'POST', '/v1/machines', { template: 'base', config });
    taken.push(res.body.id);
    if (res.body.status !== 'running') throw new Error(`create answered status ${res.body.status}, not running`);
    const wp = res.body.warm_pool_checkout;
    const hit = wp?.hit === true && wp.id === POOL;
    if (!hit) misses.push(`${res.ms.toFixed(1)} ms, warm_pool_checkout ${JSON.stringify(wp ?? null)}`);
    return { ms: res.ms, hit };
  };
  let measured: Omit<WarmPoolSamples, 'destroyWallMs' | 'deleteMs'>;
  let cleanup: { destroyWallMs: number; deleteMs: number };
  let putDone = false;
  try {
    const started = performance.now();
    await admin.expect(200, 'PUT', `/v1/warm-pools/${POOL}`, { template: 'base', config, size: plan.size });
    putDone = true;
    await waitReady(admin, plan.size, plan.fillTimeoutMs, signal);
    const fillMs = performance.now() - started;
    for (let i = 0; i < plan.warmup; i++) await create();
    misses.length = 0; // only the timed creates count
    const bounds: LoopBounds = { count: plan.count, budgetMs: plan.budgetMs, signal };
    const loop = await boundedLoop(bounds, async () => {
      const c = await create();
      if (c.hit) hitMs.push(c.ms);
    });
    const after = (await admin.expect<PoolBody>(200, 'GET', `/v1/warm-pools/${POOL}`)).body;
    measured = {
      pool: POOL, size: plan.size, config, fillMs, hitMs, misses, poolHits: after.hits, poolMisses: after.misses,
      readyAfter: after.ready, warmup: plan.warmup, loop,
    };
  } finally {
    // Runs on failure too; the instance's destroyAll is the backstop.
    cleanup = await cleanUp(inst.client, admin, taken, putDone);
  }
  return { ...measured, ...cleanup };
}
