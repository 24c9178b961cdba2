/**
 * Part of `npm run bench`, or alone: `node dist/bench/e2b.js` (after `npm run build`, as root): "time to interactive" as an
 * E2B user sees it, measured with the real `e2b` SDK against one real Hangar server on
 * loopback: `Sandbox.create('base')` and the first `commands.run`, cold and from a warm
 * pool, plus the next `commands.run`. Every warm sample is checked to be a pool hit (the
 * native API's `warm_pool_checkout.hit`). Prints a markdown table of medians and ranges.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Sandbox } from 'e2b';
import { TestServer, waitFor } from '../src/testing/harness.js';

/** The installed SDK's version, for the table's title. */
const SDK_VERSION = (createRequire(import.meta.url)('e2b/package.json') as { version: string }).version;
const ROUNDS = Number(process.env.E2B_BENCH_ROUNDS ?? 10);
const POOL_SIZE = 3;

type Row = 'create' | 'first commands.run' | 'create + first run (time to interactive)' | 'next commands.run';
const rows: Row[] = ['create', 'first commands.run', 'create + first run (time to interactive)', 'next commands.run'];

function summary(values: number[]): string {
  const s = [...values].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return `${q(0.5).toFixed(1)} | ${q(0.9).toFixed(1)} | ${s[0]!.toFixed(1)} | ${s[s.length - 1]!.toFixed(1)}`;
}

/** Samples of one run, by mode ('cold', 'warm pool') and step, in ms. */
export interface E2bSamples {
  sdkVersion: string;
  rounds: number;
  samples: Record<string, Record<Row, number[]>>;
}

/** Create, first and next `commands.run` with the real SDK, `rounds` times cold and `rounds` times from a warm pool. */
export async function measureE2b(rounds: number, signal?: AbortSignal): Promise<E2bSamples> {
  const t = await TestServer.start();
  try {
    const { key } = await t.newTeamKey('e2b-bench');
    const opts = { apiKey: key, apiUrl: t.url, sandboxUrl: t.url, requestTimeoutMs: 120_000 };
    const samples: E2bSamples['samples'] = {};
    const add = (mode: string, row: Row, ms: number): void => {
      const byRow = (samples[mode] ??= Object.fromEntries(rows.map((r) => [r, [] as number[]])) as Record<Row, number[]>);
      byRow[row].push(ms);
    };
    const round = async (mode: 'cold' | 'warm pool'): Promise<void> => {
      signal?.throwIfAborted();
      const t0 = performance.now();
      const sbx = await Sandbox.create('base', opts);
      const t1 = performance.now();
      const r = await sbx.commands.run('echo ready');
      const t2 = performance.now();
      if (r.stdout !== 'ready\n') throw new Error(`unexpected output ${JSON.stringify(r.stdout)}`);
      await sbx.commands.run('true');
      const t3 = performance.now();
      if (mode === 'warm pool') {
        const m = await t.request('GET', `/v1/machines/${sbx.sandboxId}`, { key });
        if (m.body.warm_pool_checkout?.hit !== true) throw new Error(`not a pool hit: ${m.text}`);
      }
      add(mode, 'create', t1 - t0);
      add(mode, 'first commands.run', t2 - t1);
      add(mode, 'create + first run (time to interactive)', t2 - t0);
      add(mode, 'next commands.run', t3 - t2);
      await sbx.kill();
    };

    // One untimed round first: the SDK's connection pools and the server's caches warm up.
    await Sandbox.create('base', opts).then((s) => s.kill());
    for (let i = 0; i < rounds; i++) await round('cold');

    const put = await t.request('PUT', '/v1/warm-pools/e2b', { body: { template: 'base', size: POOL_SIZE } });
    if (put.status !== 200 && put.status !== 201) throw new Error(`warm pool: HTTP ${put.status} ${put.text}`);
    const ready = async (): Promise<void> => {
      await waitFor(async () => ((await t.request('GET', '/v1/warm-pools/e2b')).body.ready >= POOL_SIZE ? true : null), 120_000, 50);
    };
    for (let i = 0; i < rounds; i++) {
      // A full pool before each sample: every timed create is a hit, none waits for a refill.
      await ready();
      await round('warm pool');
    }
    await t.request('DELETE', '/v1/warm-pools/e2b');

    return { sdkVersion: SDK_VERSION, rounds, samples };
  } finally {
    await t.dispose();
  }
}

/** The markdown table of one run: median, p90, min and max per mode and step. */
export function e2bTable(r: E2bSamples): string {
  const lines = [
    `e2b SDK ${r.sdkVersion} against Hangar on loopback, template base, ${r.rounds} rounds each (ms)`,
    '',
    '| mode | step | median | p90 | min | max |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const mode of ['cold', 'warm pool']) {
    for (const row of rows) lines.push(`| ${mode} | ${row} | ${summary(r.samples[mode]?.[row] ?? [Number.NaN])} |`);
  }
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  measureE2b(ROUNDS).then(
    (r) => console.log(e2bTable(r)),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
