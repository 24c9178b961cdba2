/** `npm run chaos`: the long chaos run; HANGAR_CHAOS_OPERATIONS (default 1000), HANGAR_CHAOS_SEED. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runChaos } from './chaos-runner.js';

const dataDir = await mkdtemp(join(tmpdir(), 'hangar-chaos-'));
const seed = Number(process.env.HANGAR_CHAOS_SEED ?? Date.now() % 1_000_000);
const operations = Number(process.env.HANGAR_CHAOS_OPERATIONS ?? 1000);
const report = await runChaos({
  dataDir, operations, killEvery: 10, seed,
  distDir: join(dirname(fileURLToPath(import.meta.url)), '../../..'),
  log: (l) => process.stdout.write(`${l}\n`),
});
await rm(dataDir, { recursive: true, force: true });
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
process.exitCode = report.violations.length || report.leftovers.length || report.answered.failed ? 1 : 0;
