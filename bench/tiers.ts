/**
 * The isolation tiers side by side (issue 14): create-until-running (`POST /v1/machines`
 * answers 201 with the machine running) and `exec true` (`POST …/exec`), on one fresh
 * server, container (runc) and gvisor (runsc) machines alternating so both see the same
 * host load. A small standalone script, not part of `npm run bench`:
 * `node dist/bench/tiers.js [runs]` (20 by default) prints a Markdown table.
 */
import { withInstance, type BenchInstance } from './hangar-instance.js';

const TIERS = ['container', 'gvisor'] as const;
type Tier = (typeof TIERS)[number];

/** The p-th percentile (0..100) of `xs`, nearest rank. */
function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}

/** One create (timed until its 201), then `execs` timed `exec true`, then its destroy. */
async function sample(inst: BenchInstance, tier: Tier, execs: number): Promise<{ createMs: number; execMs: number[] }> {
  const created = await inst.client.expect<{ id: string; status: string }>(201, 'POST', '/v1/machines', { isolation: tier, config: { memory_mb: 128, disk_mb: 64 } }, 120_000);
  if (created.body.status !== 'running') throw new Error(`${tier}: created as ${created.body.status}`);
  const execMs: number[] = [];
  try {
    for (let i = 0; i < execs; i++) {
      const r = await inst.client.expect<{ exit_code: number }>(200, 'POST', `/v1/machines/${created.body.id}/exec`, { cmd: ['true'] });
      if (r.body.exit_code !== 0) throw new Error(`${tier}: exec true exited ${r.body.exit_code}`);
      execMs.push(r.ms);
    }
  } finally {
    await inst.client.expect(200, 'DELETE', `/v1/machines/${created.body.id}`);
  }
  return { createMs: created.ms, execMs };
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 20);
  const left: string[] = [];
  const results = await withInstance('tiers', left, async (inst) => {
    const out: Record<Tier, { create: number[]; exec: number[] }> = { container: { create: [], exec: [] }, gvisor: { create: [], exec: [] } };
    // One unmeasured round first: blank disks, the agent's install and runsc's first start are paid once.
    for (const tier of TIERS) await sample(inst, tier, 1);
    for (let i = 0; i < runs; i++) {
      for (const tier of TIERS) {
        const s = await sample(inst, tier, 1);
        out[tier].create.push(s.createMs);
        out[tier].exec.push(...s.execMs);
      }
    }
    return out;
  });
  if (left.length) throw new Error(`left on the host: ${left.join('; ')}`);
  const row = (what: string, k: 'create' | 'exec'): string =>
    `| ${what} | ${TIERS.map((t) => `${percentile(results[t][k], 50).toFixed(0)} ms (p90 ${percentile(results[t][k], 90).toFixed(0)})`).join(' | ')} |`;
  console.log(`${runs} runs of each, alternating; ${new Date().toISOString()}\n`);
  console.log('| p50 (p90) | container (runc) | gvisor (runsc, ptrace) |');
  console.log('| --- | --- | --- |');
  console.log(row('create until running (`POST /v1/machines` → 201)', 'create'));
  console.log(row('`exec true` (`POST …/exec` → 200)', 'exec'));
}

await main();
