import type { BenchInstance } from './hangar-instance.js';
import { bodyOf, failureOf, machineIdOf } from './answers.js';
import { ApiClient } from './http-client.js';

/** Many cold creates sent at once, then as many destroys at once. */
export interface BurstSamples {
  count: number;
  /** Round trips of the creates answered 201 running. */
  createMs: number[];
  /** From sending the first create to the last answer. */
  wallMs: number;
  /** Creates not answered 201 running: "<status> <code>: <message>". */
  failures: string[];
  destroyMs: number[];
  destroyWallMs: number;
  destroyFailures: string[];
}

const TIMEOUT_MS = 120_000;

/** Send `requests` all at once over their own connections; resolves when every one has answered or failed. */
async function allAtOnce(client: ApiClient, requests: ReadonlyArray<{ method: string; path: string; body?: unknown }>) {
  const started = performance.now();
  const answers = await Promise.all(requests.map((r) => client.request(r.method, r.path, r.body, TIMEOUT_MS).catch((err: Error) => err)));
  return { answers, wallMs: performance.now() - started };
}

/**
 * `count` concurrent `POST /v1/machines {}` (cold: no pool matches), each timed; every
 * one must answer 201 running, failures are collected with their error codes. Then
 * every created machine is destroyed, also all at once (the instance's destroyAll is
 * the backstop for any the burst left, e.g. machines in error).
 */
export async function measureBurst(inst: BenchInstance, count: number, signal: AbortSignal): Promise<BurstSamples> {
  signal.throwIfAborted();
  const client = new ApiClient(inst.server.url, inst.apiKey, count);
  const ids: string[] = [];
  try {
    const creates = await allAtOnce(client, Array.from({ length: count }, () => ({ method: 'POST', path: '/v1/machines', body: {} })));
    const createMs: number[] = [];
    const failures: string[] = [];
    for (const res of creates.answers) {
      const id = machineIdOf(res);
      if (id) ids.push(id);
      if (!(res instanceof Error) && res.status === 201 && bodyOf(res)?.status === 'running') createMs.push(res.ms);
      else failures.push(failureOf(res));
    }
    const destroys = await allAtOnce(client, ids.map((id) => ({ method: 'DELETE', path: `/v1/machines/${id}` })));
    ids.length = 0;
    const destroyMs: number[] = [];
    const destroyFailures: string[] = [];
    for (const res of destroys.answers) {
      if (!(res instanceof Error) && res.status === 200) destroyMs.push(res.ms);
      else destroyFailures.push(failureOf(res));
    }
    return { count, createMs, wallMs: creates.wallMs, failures, destroyMs, destroyWallMs: destroys.wallMs, destroyFailures };
  } finally {
    // Only when the burst threw half-way: destroy what it created before going on.
    for (const id of ids) await inst.client.expect(200, 'DELETE', `/v1/machines/${id}`).catch(() => undefined);
    client.close();
  }
}
