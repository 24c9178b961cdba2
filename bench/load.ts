import { Worker } from 'node:worker_threads';
import { summarize, type Summary } from './stats.js';

/** A closed-loop load: `concurrency` connections, each sending its next request on the previous answer. */
export interface LoadOptions {
  url: string;
  apiKey: string;
  /** GET paths, taken in turn. */
  paths: string[];
  concurrency: number;
  durationMs: number;
  /** Requests at most, whatever the duration. */
  maxRequests: number;
}

/** What the load worker sends back. */
export interface LoadReport {
  ok: number;
  /** Answers other than 200, by status. */
  badStatuses: Record<string, number>;
  /** Requests that failed without an answer. */
  errors: number;
  elapsedMs: number;
  latencyMs: number[];
}

/** Throughput and latency under load. */
export interface ThroughputResult {
  concurrency: number;
  durationMs: number;
  requestsPerSecond: number;
  ok: number;
  badStatuses: Record<string, number>;
  errors: number;
  latency: Summary;
}

/**
 * Run the load from a worker thread, so the client's work does not share the
 * in-process server's event loop.
 */
export function measureThroughput(o: LoadOptions, signal: AbortSignal): Promise<ThroughputResult> {
  signal.throwIfAborted();
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./load-worker.js', import.meta.url), { workerData: o });
    let settled = false;
    const finish = (err: Error | null, report?: LoadReport): void => {
      if (settled) return;
      settled = true;
      clearTimeout(guard);
      signal.removeEventListener('abort', onAbort);
      if (err || !report) {
        void worker.terminate();
        reject(err ?? new Error('load worker exited without a report'));
        return;
      }
      resolve({
        concurrency: o.concurrency,
        durationMs: report.elapsedMs,
        requestsPerSecond: (report.ok / report.elapsedMs) * 1000,
        ok: report.ok,
        badStatuses: report.badStatuses,
        errors: report.errors,
        latency: summarize(report.latencyMs),
      });
    };
    const onAbort = (): void => finish(new Error('interrupted'));
    const guard = setTimeout(() => finish(new Error(`load worker still running after ${o.durationMs + 30_000} ms`)), o.durationMs + 30_000);
    signal.addEventListener('abort', onAbort, { once: true });
    worker.once('message', (report: LoadReport) => finish(null, report));
    worker.once('error', (err) => finish(err));
    worker.once('exit', () => finish(new Error('load worker exited without a report')));
  });
}
