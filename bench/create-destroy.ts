import type { ApiClient } from './http-client.js';
import { boundedLoop, type LoopBounds, type LoopOutcome } from './bounded-loop.js';

/** Round-trip times of sequential creates and destroys through the API. */
export interface CreateDestroySamples {
  createMs: number[];
  destroyMs: number[];
  /** Untimed create/destroy pairs run first. */
  warmup: number;
  loop: LoopOutcome;
}

interface MachineBody {
  id: string;
  status: string;
}

async function createAndDestroy(client: ApiClient): Promise<{ createMs: number; destroyMs: number }> {
  const created = await client.expect<MachineBody>(201, 'POST', '/v1/machines', {});
  if (created.body.status !== 'running') throw new Error(`create answered status ${created.body.status}, not running`);
  const destroyed = await client.expect<MachineBody>(200, 'DELETE', `/v1/machines/${created.body.id}`);
  if (destroyed.body.status !== 'destroyed') throw new Error(`destroy answered status ${destroyed.body.status}, not destroyed`);
  return { createMs: created.ms, destroyMs: destroyed.ms };
}

/**
 * Create a machine from the base template (`POST /v1/machines {}`, answered once it
 * runs), then destroy it; one machine at a time, `bounds.count` times.
 */
export async function measureCreateDestroy(client: ApiClient, warmup: number, bounds: LoopBounds): Promise<CreateDestroySamples> {
  for (let i = 0; i < warmup; i++) await createAndDestroy(client);
  const createMs: number[] = [];
  const destroyMs: number[] = [];
  const loop = await boundedLoop(bounds, async () => {
    const t = await createAndDestroy(client);
    createMs.push(t.createMs);
    destroyMs.push(t.destroyMs);
  });
  return { createMs, destroyMs, warmup, loop };
}
