import { boundedLoop, type LoopBounds, type LoopOutcome } from './bounded-loop.js';
import type { BenchInstance } from './hangar-instance.js';
import type { ApiClient } from './http-client.js';
import { measureThroughput, type ThroughputResult } from './load.js';
import { insertStoreRows, MATCH_EVERY, MATCH_FILTER, retireStoreRows } from './store-rows.js';

/** How much of each read to measure. */
export interface ReadPlan {
  storeRows: number;
  realMachines: number;
  requests: { healthz: number; getById: number; listPage: number; listLegacy: number; listMetadata: number };
  /** Time budget of each sequential series. */
  budgetMs: number;
  throughput: { concurrency: number; durationMs: number; maxRequests: number };
}

/** Sequential samples of one kind of request. */
export interface RequestSamples {
  path: string;
  ms: number[];
  /** Size of the first answer. */
  bytes: number;
  /** Machines in the first answer (array or page), or null for a single object. */
  items: number | null;
  loop: LoopOutcome;
}

/** Everything measured against the store with many rows. */
export interface ReadResults {
  storeRows: number;
  realMachines: number;
  insertMs: number;
  healthz: RequestSamples;
  getById: RequestSamples;
  listPage: RequestSamples;
  listLegacy: RequestSamples;
  listMetadata: RequestSamples;
  throughput: ThroughputResult;
}

function countItems(text: string): number | null {
  const body: unknown = JSON.parse(text);
  if (Array.isArray(body)) return body.length;
  const items = (body as { items?: unknown }).items;
  return Array.isArray(items) ? items.length : null;
}

/** GET `pathOf(i)` one at a time; every answer must be 200, the first must hold `expectItems` machines. */
async function sample(client: ApiClient, pathOf: (i: number) => string, expectItems: number | null, bounds: LoopBounds): Promise<RequestSamples> {
  const ms: number[] = [];
  let first = '';
  const loop = await boundedLoop(bounds, async (i) => {
    const path = pathOf(i);
    const res = await client.request('GET', path, undefined, 10_000);
    if (res.status !== 200) throw new Error(`GET ${path}: expected 200, got ${res.status}: ${res.text.slice(0, 300)}`);
    ms.push(res.ms);
    if (i === 0) first = res.text;
  });
  const items = first ? countItems(first) : null;
  if (expectItems !== null && items !== expectItems) throw new Error(`GET ${pathOf(0)}: expected ${expectItems} machines, got ${items}`);
  return { path: pathOf(0), ms, bytes: Buffer.byteLength(first), items, loop };
}

/**
 * Read latencies with `storeRows` machine records in the store (plus a few real
 * machines), then throughput of GET by id under concurrent load.
 */
export async function measureReads(inst: BenchInstance, plan: ReadPlan, signal: AbortSignal): Promise<ReadResults> {
  const { client } = inst;
  const realIds: string[] = [];
  for (let i = 0; i < plan.realMachines; i++) {
    realIds.push((await client.expect<{ id: string }>(201, 'POST', '/v1/machines', {})).body.id);
  }
  const insertStarted = performance.now();
  const rowIds = await insertStoreRows(inst.server, inst.teamId, plan.storeRows);
  const insertMs = performance.now() - insertStarted;
  try {
    const ids = [...rowIds, ...realIds];
    const live = ids.length;
    // A fixed stride through the ids: every id is read, in an order the cache cannot predict.
    const byId = (i: number): string => `/v1/machines/${ids[(i * 7919) % live]}`;
    const metadata = encodeURIComponent(JSON.stringify(MATCH_FILTER));
    const bounds = (count: number): LoopBounds => ({ count, budgetMs: plan.budgetMs, signal });
    const r = plan.requests;
    const healthz = await sample(client, () => '/healthz', null, bounds(r.healthz));
    const getById = await sample(client, byId, null, bounds(r.getById));
    const listPage = await sample(client, () => '/v1/machines?limit=100', 100, bounds(r.listPage));
    const listLegacy = await sample(client, () => '/v1/machines', live, bounds(r.listLegacy));
    const listMetadata = await sample(
      client,
      () => `/v1/machines?limit=100&metadata=${metadata}`,
      Math.ceil(plan.storeRows / MATCH_EVERY),
      bounds(r.listMetadata),
    );
    const paths = Array.from({ length: live }, (_, i) => byId(i));
    const throughput = await measureThroughput({ url: inst.server.url, apiKey: inst.apiKey, paths, ...plan.throughput }, signal);
    return { storeRows: plan.storeRows, realMachines: plan.realMachines, insertMs, healthz, getById, listPage, listLegacy, listMetadata, throughput };
  } finally {
    await retireStoreRows(inst.server, rowIds);
  }
}
