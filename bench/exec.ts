import { boundedLoop, type LoopBounds, type LoopOutcome } from './bounded-loop.js';
import { inClientWorker, type ClientTarget } from './client-worker.js';
import type { BenchInstance } from './hangar-instance.js';
import { ApiClient } from './http-client.js';

/** Round trips of `POST /v1/machines/{id}/exec {"cmd": ["true"]}` into one running machine. */
export interface ExecSamples {
  execMs: number[];
  warmup: number;
  loop: LoopOutcome;
}

interface ExecBody {
  exit_code: number;
}

/**
 * In one fresh machine, run `true` through the exec API one call at a time, from a client
 * in a worker thread (client-worker.ts); every answer must be 200 with exit code 0. The
 * machine is destroyed afterwards.
 */
export async function measureExec(inst: BenchInstance, warmup: number, bounds: LoopBounds): Promise<ExecSamples> {
  const machine = await inst.client.expect<{ id: string }>(201, 'POST', '/v1/machines', {});
  const target = { url: inst.server.url, apiKey: inst.apiKey, machineId: machine.body.id };
  try {
    return await inClientWorker('exec', target, { warmup, count: bounds.count, budgetMs: bounds.budgetMs }, bounds.signal);
  } finally {
    await inst.client.expect(200, 'DELETE', `/v1/machines/${target.machineId}`).catch(() => undefined);
  }
}

/** The loop of `measureExec`, as the client worker runs it. */
export async function execLoop(target: ClientTarget, warmup: number, bounds: LoopBounds): Promise<ExecSamples> {
  const client = new ApiClient(target.url, target.apiKey);
  try {
    const once = async (): Promise<number> => {
      const res = await client.expect<ExecBody>(200, 'POST', `/v1/machines/${target.machineId}/exec`, { cmd: ['true'] });
      if (res.body.exit_code !== 0) throw new Error(`exec true answered exit code ${res.body.exit_code}`);
      return res.ms;
    };
    for (let i = 0; i < warmup; i++) await once();
    const execMs: number[] = [];
    const loop = await boundedLoop(bounds, async () => {
      execMs.push(await once());
    });
    return { execMs, warmup, loop };
  } finally {
    client.close();
  }
}
