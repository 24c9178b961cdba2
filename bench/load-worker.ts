/** Worker thread of measureThroughput (load.ts): runs the load and posts a LoadReport. */
import { parentPort, workerData } from 'node:worker_threads';
import { ApiClient } from './http-client.js';
import type { LoadOptions, LoadReport } from './load.js';

const o = workerData as LoadOptions;
const client = new ApiClient(o.url, o.apiKey, o.concurrency);
const report: LoadReport = { ok: 0, badStatuses: {}, errors: 0, elapsedMs: 0, latencyMs: [] };
const started = performance.now();
const end = started + o.durationMs;
let sent = 0;

async function lane(): Promise<void> {
  while (performance.now() < end && sent < o.maxRequests) {
    const path = o.paths[sent++ % o.paths.length]!;
    try {
      const res = await client.request('GET', path, undefined, 10_000);
      report.latencyMs.push(res.ms);
      if (res.status === 200) report.ok++;
      else report.badStatuses[res.status] = (report.badStatuses[res.status] ?? 0) + 1;
    } catch {
      report.errors++;
    }
  }
}

await Promise.all(Array.from({ length: o.concurrency }, lane));
report.elapsedMs = performance.now() - started;
client.close();
parentPort!.postMessage(report);
