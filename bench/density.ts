import { failureOf, machineIdOf } from './answers.js';
import { boundedPool, type LoopOutcome } from './bounded-loop.js';
import { withInstance, type BenchInstance } from './hangar-instance.js';
import { cgroupMemorySum, describeResources, instanceResources, memAvailableKiB, type InstanceResources } from './host-resources.js';
import { ApiClient } from './http-client.js';

/** How many idle machines to pile up on one server, and how. */
export interface DensityPlan {
  target: number;
  /** config of every machine (small, to keep the host safe). */
  config: { memory_mb: number; disk_mb: number };
  /** Creates in flight at once. */
  concurrency: number;
  /** The first and the last `edge` creates are compared. */
  edge: number;
  /** No create starts after this long (from the start of the density run). */
  budgetMs: number;
  /** Destroys in flight at once. */
  destroyConcurrency: number;
  /** Wait after the last create before reading memory. */
  settleMs: number;
  /** HANGAR_MAX_MACHINES of the density server. */
  maxMachines: number;
}

/** Creates up to `target` idle machines, what they cost the host, and their removal. */
export interface DensityResults {
  plan: DensityPlan;
  /** Machines running at the peak. */
  reached: number;
  /** Round trips of the successful creates, in the order they started. */
  createMs: number[];
  createLoop: LoopOutcome;
  /** Why creating stopped short of the target (the exact error, or the time budget); null when reached. */
  stoppedBy: string | null;
  memAvailableBeforeKiB: number;
  memAvailableAfterKiB: number;
  /** Sum of the machines' memory cgroups' usage at the peak. */
  cgroupBytes: number;
  cgroupsRead: number;
  /** RSS of this process (server and client together) before the first create and at the peak. */
  rssBeforeBytes: number;
  rssAfterBytes: number;
  atPeak: InstanceResources;
  destroyMs: number[];
  destroyWallMs: number;
  destroyFailures: string[];
  /** What the server still held after every destroy answered (nothing when clean). */
  afterDestroy: InstanceResources;
  left: string[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Destroys run to the end even after SIGINT: the machines must go. */
const NEVER = new AbortController().signal;

/** Nonzero counts of `r`, as leftovers. */
function leftOf(r: InstanceResources): string[] {
  const out: string[] = [];
  if (r.mounts) out.push(`${r.mounts} mounts`);
  if (r.loops) out.push(`${r.loops} loop devices`);
  if (r.containers) out.push(`${r.containers} runc containers`);
  for (const [ctl, n] of Object.entries(r.cgroups)) out.push(`${n} cgroups in ${ctl}`);
  return out;
}

/** Destroy `ids` with bounded concurrency; times each and the whole. */
async function destroyAll(client: ApiClient, ids: readonly string[], concurrency: number) {
  const destroyMs: number[] = [];
  const destroyFailures: string[] = [];
  const started = performance.now();
  await boundedPool({ count: ids.length, budgetMs: 600_000, signal: NEVER }, concurrency, async (i) => {
    const res = await client.request('DELETE', `/v1/machines/${ids[i]}`, undefined, 60_000).catch((err: Error) => err);
    if (!(res instanceof Error) && res.status === 200) destroyMs.push(res.ms);
    else destroyFailures.push(`${ids[i]}: ${failureOf(res)}`);
  });
  return { destroyMs, destroyWallMs: performance.now() - started, destroyFailures };
}

async function pileUp(inst: BenchInstance, plan: DensityPlan, started: number, signal: AbortSignal): Promise<DensityResults> {
  const client = new ApiClient(inst.server.url, inst.apiKey, Math.max(plan.concurrency, plan.destroyConcurrency));
  const settings = inst.server.settings;
  const ids: string[] = [];
  const samples: Array<{ i: number; ms: number }> = [];
  let stoppedBy: string | null = null;
  const body = { config: plan.config, timeout_ms: 3_600_000 };
  try {
    const memAvailableBeforeKiB = await memAvailableKiB();
    const rssBeforeBytes = process.memoryUsage().rss;
    const budgetMs = Math.max(0, plan.budgetMs - (performance.now() - started));
    const createLoop = await boundedPool({ count: plan.target, budgetMs, signal }, plan.concurrency, async (i) => {
      const res = await client.request('POST', '/v1/machines', body, 60_000).catch((err: Error) => err);
      const id = machineIdOf(res);
      if (id) ids.push(id);
      if (!(res instanceof Error) && res.status === 201) {
        samples.push({ i, ms: res.ms });
        return true;
      }
      stoppedBy ??= `create ${i + 1} (${ids.length} created): ${failureOf(res)}`;
      return false;
    });
    if (stoppedBy === null && createLoop.truncated) stoppedBy = `time budget of ${plan.budgetMs / 1000} s spent after ${samples.length} creates`;
    await sleep(plan.settleMs);
    const memAvailableAfterKiB = await memAvailableKiB();
    const cgroup = await cgroupMemorySum(settings.instancePrefix, ids);
    const rssAfterBytes = process.memoryUsage().rss;
    const atPeak = await instanceResources(settings);
    const peak = {
      reached: samples.length, createMs: samples.sort((a, b) => a.i - b.i).map((s) => s.ms), createLoop, stoppedBy,
      memAvailableBeforeKiB, memAvailableAfterKiB, cgroupBytes: cgroup.bytes, cgroupsRead: cgroup.read, rssBeforeBytes, rssAfterBytes, atPeak,
    };
    const destroyed = await destroyAll(client, ids.splice(0), plan.destroyConcurrency);
    const afterDestroy = await instanceResources(settings);
    return { plan, ...peak, ...destroyed, afterDestroy, left: leftOf(afterDestroy) };
  } finally {
    // Only after a failure half-way; the instance's destroyAll is the backstop.
    if (ids.length) await destroyAll(client, ids, plan.destroyConcurrency);
    client.close();
  }
}

/**
 * On a server of its own (HANGAR_MAX_MACHINES = plan.maxMachines), create idle machines
 * up to `plan.target` or until a create fails or the time budget is spent; read host
 * memory, the machines' memory cgroups and this process's RSS at the peak; then destroy
 * them all and count what the server still holds.
 */
export async function measureDensity(plan: DensityPlan, found: string[], signal: AbortSignal, progress: (msg: string) => void): Promise<DensityResults> {
  const started = performance.now();
  const r = await withInstance('density', found, (inst) => pileUp(inst, plan, started, signal), { HANGAR_MAX_MACHINES: String(plan.maxMachines) });
  progress(`density: ${r.reached} machines${r.stoppedBy ? ` (stopped: ${r.stoppedBy})` : ''}; at the peak ${describeResources(r.atPeak)}`);
  return r;
}
