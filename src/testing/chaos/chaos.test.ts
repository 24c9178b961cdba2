/**
 * The chaos run's CI form (docs/security.md): 40 lifecycle operations on a real server
 * process killed with SIGKILL about every 8, restarted and reconciled each time. The long
 * form is `npm run chaos` (HANGAR_CHAOS_OPERATIONS, HANGAR_CHAOS_SEED).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runChaos } from './chaos-runner.js';

const DIST = join(dirname(fileURLToPath(import.meta.url)), '../../..');

it('SIGKILL at random points of lifecycle operations: every machine before, after or in error with a reason, no snapshot lost, nothing without an owner, a clean host at the end', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'hangar-chaos-'));
  const seed = process.env.CI === 'true' ? 20261205 : Number(process.env.HANGAR_CHAOS_SEED ?? Date.now() % 1_000_000);
  try {
    const report = await runChaos({ dataDir, operations: 40, killEvery: 8, seed, distDir: DIST });
    console.log(`chaos: seed ${report.seed}, ${report.operations} operations (${JSON.stringify(report.answered)}), ${report.kills} kills, statuses ${JSON.stringify(report.statuses)}, ${report.ms} ms`);
    assert.deepEqual(report.violations, [], `seed ${seed}`);
    assert.deepEqual(report.leftovers, [], `seed ${seed}`);
    assert.ok(report.kills >= 3, `kills: ${report.kills}`);
    assert.equal(report.answered.failed, 0, `seed ${seed}: operations answered 5xx`);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});
