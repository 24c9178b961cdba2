import { boundedLoop, type LoopBounds, type LoopOutcome } from './bounded-loop.js';
import type { BenchInstance } from './hangar-instance.js';

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
 * In one fresh machine, run `true` through the exec API one call at a time; every
 * answer must be 200 with exit code 0. The machine is destroyed afterwards.
 */
export async function measureExec(inst: BenchInstance, warmup: number, bounds: LoopBounds): Promise<ExecSamples> {
  const machine = await inst.client.expect<{ id: string }>(201, 'POST', '/v1/machines', {});
  const id = machine.body.id;
  try {
    const once = async (): Promise<number> => {
      const res = await inst.client.expect<ExecBody>(200, 'POST', `/v1/machines/${id}/exec`, { cmd: ['true'] });
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
    await inst.client.expect(200, 'DELETE', `/v1/machines/${id}`).catch(() => undefined);
  }
}
