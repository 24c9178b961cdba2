/**
 * Prometheus metrics (`GET /metrics`, admin key): machines by state and template, the
 * latency of operations (create, fork, pause, resume, snapshot, delete, exec, template
 * builds) with their failures by error code, warm pools, snapshot bytes, and HTTP
 * requests by route and status. Gauges are read from the store when scraped, so they
 * agree with the API; histograms and counters live in this process.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { HangarError } from '../domain/errors.js';
import type { Store } from '../store/store.js';

/** Times operations; the machine service calls it around each one. */
export interface OperationTimer {
  time<T>(operation: string, work: () => Promise<T>): Promise<T>;
}

/** Times nothing (servers without metrics, tests of parts). */
export const NO_TIMER: OperationTimer = { time: (_operation, work) => work() };

/** Seconds: from a millisecond exec to a template build of minutes. */
const OPERATION_BUCKETS = [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800];
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30];

export class Metrics implements OperationTimer {
  readonly registry = new Registry();
  private readonly operations: Histogram<'operation' | 'outcome'>;
  private readonly failures: Counter<'operation' | 'code'>;
  private readonly http: Histogram<'method' | 'route' | 'status'>;

  constructor(store: Store) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'hangar_process_' });
    this.operations = new Histogram({
      name: 'hangar_operation_duration_seconds',
      help: 'Duration of machine operations, by operation and outcome (ok or error).',
      labelNames: ['operation', 'outcome'],
      buckets: OPERATION_BUCKETS,
      registers,
    });
    this.failures = new Counter({
      name: 'hangar_operation_failures_total',
      help: 'Failed operations by error code (RUNTIME_FAILED, SNAPSHOT_FAILED and RESTORE_FAILED are runtime and CRIU failures; 4xx codes are refusals).',
      labelNames: ['operation', 'code'],
      registers,
    });
    this.http = new Histogram({
      name: 'hangar_http_request_duration_seconds',
      help: 'HTTP requests by method, route pattern and status.',
      labelNames: ['method', 'route', 'status'],
      buckets: HTTP_BUCKETS,
      registers,
    });
    new Gauge({
      name: 'hangar_machines',
      help: 'Machines not purged, by state and template.',
      labelNames: ['state', 'template'],
      registers,
      async collect() {
        this.reset();
        for (const c of await store.machineCounts()) this.set({ state: c.status, template: c.template }, c.count);
      },
    });
    new Gauge({
      name: 'hangar_snapshot_bytes',
      help: 'Bytes on disk of every snapshot (memory images and sparse disk layers).',
      registers,
      async collect() {
        this.set((await store.snapshotTotals()).bytes);
      },
    });
    new Gauge({
      name: 'hangar_snapshots',
      help: 'Snapshots kept.',
      registers,
      async collect() {
        this.set((await store.snapshotTotals()).count);
      },
    });
    const pools = async () => Promise.all((await store.listWarmPools()).map(async (p) => ({ p, ready: (await store.poolMachines(p.name)).length })));
    new Gauge({
      name: 'hangar_warm_pool_ready',
      help: 'Idle machines ready in each warm pool.',
      labelNames: ['pool', 'template'],
      registers,
      async collect() {
        this.reset();
        for (const { p, ready } of await pools()) this.set({ pool: p.name, template: p.template }, ready);
      },
    });
    new Gauge({
      name: 'hangar_warm_pool_checkouts',
      help: 'Creates a warm pool served (hit) or could not serve (miss), since the pool was made.',
      labelNames: ['pool', 'result'],
      registers,
      async collect() {
        this.reset();
        for (const p of await store.listWarmPools()) {
          this.set({ pool: p.name, result: 'hit' }, p.hits);
          this.set({ pool: p.name, result: 'miss' }, p.misses);
        }
      },
    });
  }

  async time<T>(operation: string, work: () => Promise<T>): Promise<T> {
    const end = this.operations.startTimer({ operation });
    try {
      const value = await work();
      end({ outcome: 'ok' });
      return value;
    } catch (err) {
      end({ outcome: 'error' });
      const code = err instanceof HangarError ? err.code : typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : 'INTERNAL';
      this.failures.inc({ operation, code });
      throw err;
    }
  }

  /** One HTTP request answered; `route` is the matched pattern (`unmatched` for none), never the raw path. */
  observeHttp(method: string, route: string, status: number, seconds: number): void {
    this.http.observe({ method, route, status: String(status) }, seconds);
  }

  /** The text exposition format. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
