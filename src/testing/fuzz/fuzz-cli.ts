/**
 * `npm run fuzz`: the long form of the OpenAPI fuzzer against a fresh real server.
 * HANGAR_FUZZ_REQUESTS (@default 10000) and HANGAR_FUZZ_SEED (@default: the clock) choose
 * the run; it prints the table and every failure, and exits 1 on any.
 */
import { TestServer } from '../harness.js';
import { formatReport, runFuzz } from './fuzz-runner.js';

const seed = Number(process.env.HANGAR_FUZZ_SEED ?? Date.now() % 2 ** 31);
const requests = Number(process.env.HANGAR_FUZZ_REQUESTS ?? 10_000);
console.log(`fuzz: ${requests} requests, seed ${seed} (replay: HANGAR_FUZZ_SEED=${seed})`);
const t = await TestServer.start();
const started = Date.now();
let failed = true;
try {
  const report = await runFuzz(t, { requests, seed });
  console.log(formatReport(report));
  console.log(`took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  for (const f of report.failures) console.log(JSON.stringify(f));
  failed = report.failures.length > 0;
} finally {
  await t.dispose();
}
process.exit(failed ? 1 : 0);
