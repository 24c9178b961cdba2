/**
 * The fleet's rows (issue 15): create p50 through two API servers over one PostgreSQL
 * against one server over SQLite, and machines/s for 100 creates at once across three hosts
 * against 100 at once on one host, with podman's `run -d` beside them; creates through two
 * API servers (HANGAR_HOST_CAPACITY=0) that forward to the hosts; and a paused machine's
 * resume on its own host against on another host sharing the snapshots directory. Every
 * server runs in this process on a data dir of its own; PostgreSQL is a throwaway server on
 * a unix socket.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPostgres } from '../src/testing/postgres-server.js';
import { waitFor } from '../src/testing/harness.js';
import { bodyOf, failureOf, machineIdOf } from './answers.js';
import { measureCreateDestroy } from './create-destroy.js';
import { BENCH_ADMIN_KEY, startInstance, stopInstance, withInstance, type BenchInstance } from './hangar-instance.js';
import { ApiClient } from './http-client.js';
import { measurePodman } from './podman.js';
import { formatMs, summarize } from './stats.js';

export interface FleetPlan {
  warmup: number;
  /** Sequential creates timed per configuration. */
  count: number;
  /** Creates sent at once. */
  burst: number;
  budgetMs: number;
}

export const DEFAULT_FLEET_PLAN: FleetPlan = { warmup: 3, count: 30, burst: 100, budgetMs: 120_000 };

interface BurstOutcome {
  ok: number;
  wallMs: number;
  failures: string[];
  /** Machines each host got. */
  perHost: Map<string, number>;
}

/** `n` creates at once, sent round-robin to `clients`; then every created machine is destroyed. */
async function burst(clients: readonly ApiClient[], n: number, hostOf: (id: string) => Promise<string>): Promise<BurstOutcome> {
  const started = performance.now();
  const answers = await Promise.all(Array.from({ length: n }, (_, i) => clients[i % clients.length]!.request('POST', '/v1/machines', {}, 120_000).catch((err: Error) => err)));
  const wallMs = performance.now() - started;
  const ids: string[] = [];
  const failures: string[] = [];
  let ok = 0;
  for (const res of answers) {
    const id = machineIdOf(res);
    if (id) ids.push(id);
    if (!(res instanceof Error) && res.status === 201 && bodyOf(res)?.status === 'running') ok++;
    else failures.push(failureOf(res));
  }
  const perHost = new Map<string, number>();
  for (const id of ids) {
    const h = await hostOf(id);
    perHost.set(h, (perHost.get(h) ?? 0) + 1);
  }
  await Promise.all(ids.map((id, i) => clients[i % clients.length]!.request('DELETE', `/v1/machines/${id}`, undefined, 120_000).catch(() => undefined)));
  return { ok, wallMs, failures, perHost };
}

const rate = (b: BurstOutcome): string => `${((b.ok * 1000) / b.wallMs).toFixed(1)} machines/s (${b.ok} running in ${(b.wallMs / 1000).toFixed(1)} s${b.failures.length ? `; ${b.failures.length} failed: ${b.failures[0]}` : ''})`;

/** Run every fleet row; returns the markdown lines of the table, and what was left on the host. */
export async function measureFleet(plan: FleetPlan, signal: AbortSignal, progress: (m: string) => void): Promise<{ lines: string[]; leftovers: string[] }> {
  const leftovers: string[] = [];
  const lines = ['| what | p50 | p95 | n |', '| --- | --- | --- | --- |'];
  const bounds = { count: plan.count, budgetMs: plan.budgetMs, signal };
  let rootfs = '';
  await withInstance('fleet-sqlite', leftovers, async (inst) => {
    rootfs = join(inst.server.settings.templatesDir, 'base', 'rootfs');
    progress(`one server over SQLite: ${plan.warmup} warm-ups + ${plan.count} creates, then ${plan.burst} at once`);
    const c = summarize((await measureCreateDestroy(inst.client, plan.warmup, bounds)).createMs);
    lines.push(`| create → running, one server over SQLite | ${formatMs(c.p50)} ms | ${formatMs(c.p95)} ms | ${c.n} |`);
    const client = new ApiClient(inst.server.url, inst.apiKey, plan.burst);
    try {
      const b = await burst([client], plan.burst, async () => 'one');
      lines.push(`| ${plan.burst} creates at once, one host over SQLite | ${rate(b)} | | ${plan.burst} |`);
    } finally {
      client.close();
    }
    progress(`podman run -d / rm -f of the same root filesystem: ${plan.warmup} warm-ups + ${plan.count} timed`);
    const p = await measurePodman(rootfs, plan.warmup, bounds);
    if (p.available) {
      const s = summarize(p.runMs);
      lines.push(`| peer: podman run -d ${p.version} | ${formatMs(s.p50)} ms | ${formatMs(s.p95)} ms | ${s.n} |`);
    } else lines.push(`| peer: podman run -d | unavailable: ${p.reason} | | |`);
  });

  const pg = await startPostgres();
  const hosts: BenchInstance[] = [];
  const apis: BenchInstance[] = [];
  const clients: ApiClient[] = [];
  // One snapshots directory for the three hosts: a paused machine can resume on any of them.
  const shared = await mkdtemp(join(tmpdir(), 'hangar-bench-snapshots-'));
  try {
    const url = pg.url(await pg.createDatabase());
    const env = (id: string, extra: Record<string, string> = {}): Record<string, string> => ({
      HANGAR_DATABASE_URL: url,
      HANGAR_HOST_ID: id,
      HANGAR_HEARTBEAT_MS: '250',
      HANGAR_HOST_DOWN_AFTER_MS: '5000',
      HANGAR_SNAPSHOTS_DIR: shared,
      ...extra,
    });
    // One host alone over PostgreSQL first: what the database costs, apart from the fleet.
    hosts.push(await startInstance('fleet-a', env('bench-a')));
    progress(`one server over PostgreSQL: ${plan.warmup} warm-ups + ${plan.count} creates`);
    const alone = summarize((await measureCreateDestroy(hosts[0]!.client, plan.warmup, bounds)).createMs);
    lines.push(`| create → running, one server over PostgreSQL | ${formatMs(alone.p50)} ms | ${formatMs(alone.p95)} ms | ${alone.n} |`);
    for (const name of ['b', 'c']) hosts.push(await startInstance(`fleet-${name}`, env(`bench-${name}`)));
    for (const name of ['p', 'q']) apis.push(await startInstance(`fleet-api-${name}`, env(`bench-api-${name}`, { HANGAR_HOST_CAPACITY: '0' })));
    // Every server sees the other four before anything is timed.
    await waitFor(async () => {
      for (const s of [...hosts, ...apis]) await s.server.hosts.beat();
      return (await hosts[0]!.server.store.listHosts()).filter((h) => h.state === 'up').length === 5;
    }, 10_000);
    const key = hosts[0]!.apiKey;
    const store = hosts[0]!.server.store;
    const hostOf = async (id: string): Promise<string> => (await store.getMachine(id))?.hostId ?? 'none';

    progress(`two API servers (capacity 0) forwarding to three hosts, creates alternating between them: ${plan.warmup} warm-ups + ${plan.count} timed`);
    const viaApi = [new ApiClient(apis[0]!.server.url, key), new ApiClient(apis[1]!.server.url, key)];
    try {
      const createMs: number[] = [];
      const placed = new Map<string, number>();
      for (let i = 0; i < plan.warmup + plan.count; i++) {
        signal.throwIfAborted();
        const created = await viaApi[i % 2]!.expect<{ id: string; status: string }>(201, 'POST', '/v1/machines', {});
        if (created.body.status !== 'running') throw new Error(`create answered ${created.body.status}`);
        const h = await hostOf(created.body.id);
        placed.set(h, (placed.get(h) ?? 0) + 1);
        await viaApi[(i + 1) % 2]!.expect(200, 'DELETE', `/v1/machines/${created.body.id}`);
        if (i >= plan.warmup) createMs.push(created.ms);
      }
      const s = summarize(createMs);
      const spread = [...placed].sort().map(([h, n]) => `${h} ${n}`).join(', ');
      lines.push(`| create → running through two API servers (capacity 0) to three hosts over PostgreSQL (placed: ${spread}) | ${formatMs(s.p50)} ms | ${formatMs(s.p95)} ms | ${s.n} |`);

      progress(`resume of a paused machine on its own host, then on another host sharing the snapshots directory: ${plan.count} each`);
      const resumeMs: Record<'here' | 'moved', number[]> = { here: [], moved: [] };
      for (let i = 0; i < 2 * plan.count; i++) {
        signal.throwIfAborted();
        const moved = i % 2 === 1;
        const created = await viaApi[0]!.expect<{ id: string }>(201, 'POST', '/v1/machines', {});
        const id = created.body.id;
        await viaApi[0]!.expect(200, 'POST', `/v1/machines/${id}/pause`);
        if (moved) {
          // What a drain or a host loss does: the next host takes it, still paused.
          const ids = ['bench-a', 'bench-b', 'bench-c'];
          const from = await hostOf(id);
          const target = ids[(ids.indexOf(from) + 1) % ids.length]!;
          if (!(await store.movePausedMachine(id, from, target, Date.now()))) throw new Error(`could not move ${id} from ${from} to ${target}`);
        }
        const resumed = await viaApi[1]!.expect<{ status: string }>(200, 'POST', `/v1/machines/${id}/resume`);
        if (resumed.body.status !== 'running') throw new Error(`resume answered ${resumed.body.status}`);
        resumeMs[moved ? 'moved' : 'here'].push(resumed.ms);
        await viaApi[1]!.expect(200, 'DELETE', `/v1/machines/${id}`);
      }
      const here = summarize(resumeMs.here);
      const away = summarize(resumeMs.moved);
      lines.push(`| resume of a paused machine on the host that paused it (through an API server) | ${formatMs(here.p50)} ms | ${formatMs(here.p95)} ms | ${here.n} |`);
      lines.push(`| resume of a paused machine on another host, from the shared snapshots directory | ${formatMs(away.p50)} ms | ${formatMs(away.p95)} ms | ${away.n} |`);

      // A warm pool of 2 on each host: a create it can serve, through an API server (placed where a pool
      // machine is idle) and on a host itself; each timed create waits for the pools to be full again first.
      const POOL = 2;
      progress(`a warm pool of ${POOL} per host: ${plan.count} creates through the API servers, ${plan.count} on one host`);
      const direct = new ApiClient(hosts[0]!.server.url, key);
      // Pools are admin-only: changed through an API server with the bootstrap admin key.
      const admin = new ApiClient(apis[0]!.server.url, BENCH_ADMIN_KEY);
      try {
        await admin.expect(200, 'PUT', '/v1/warm-pools/bench-pool', { template: 'base', size: POOL });
        const full = (): Promise<void> => waitFor(async () => (await store.poolMachines('bench-pool')).length === POOL * hosts.length, 60_000, 20).then(() => undefined);
        const fromPool = async (client: ApiClient): Promise<{ ms: number; hit: boolean }> => {
          await full();
          const created = await client.expect<{ id: string; status: string; warm_pool_checkout?: { hit: boolean } }>(201, 'POST', '/v1/machines', {});
          if (created.body.status !== 'running') throw new Error(`create answered ${created.body.status}`);
          await client.expect(200, 'DELETE', `/v1/machines/${created.body.id}`);
          return { ms: created.ms, hit: created.body.warm_pool_checkout?.hit === true };
        };
        for (const [label, pick] of [
          ['through two API servers (capacity 0) to three hosts', (i: number) => viaApi[i % 2]!],
          ['on one host of the three, from its own pool', () => direct],
        ] as const) {
          const ms: number[] = [];
          let hits = 0;
          for (let i = 0; i < plan.warmup + plan.count; i++) {
            signal.throwIfAborted();
            const r = await fromPool(pick(i));
            if (i < plan.warmup) continue;
            ms.push(r.ms);
            if (r.hit) hits++;
          }
          const w = summarize(ms);
          lines.push(`| create → running from a warm pool (${POOL} per host), ${label} (hits: ${hits} of ${w.n}) | ${formatMs(w.p50)} ms | ${formatMs(w.p95)} ms | ${w.n} |`);
        }
        await admin.expect(204, 'DELETE', '/v1/warm-pools/bench-pool');
        await waitFor(async () => (await store.poolMachines('bench-pool')).length === 0, 60_000, 50);
      } finally {
        direct.close();
        admin.close();
      }
    } finally {
      for (const c of viaApi) c.close();
    }
    for (const h of hosts) clients.push(new ApiClient(h.server.url, key, plan.burst));
    progress(`two API servers over PostgreSQL, creates alternating between them: ${plan.warmup} warm-ups + ${plan.count} timed`);
    const two = [new ApiClient(hosts[0]!.server.url, key), new ApiClient(hosts[1]!.server.url, key)];
    try {
      const createMs: number[] = [];
      for (let i = 0; i < plan.warmup + plan.count; i++) {
        signal.throwIfAborted();
        const c = two[i % 2]!;
        const created = await c.expect<{ id: string; status: string }>(201, 'POST', '/v1/machines', {});
        if (created.body.status !== 'running') throw new Error(`create answered ${created.body.status}`);
        await two[(i + 1) % 2]!.expect(200, 'DELETE', `/v1/machines/${created.body.id}`);
        if (i >= plan.warmup) createMs.push(created.ms);
      }
      const s = summarize(createMs);
      lines.push(`| create → running, two API servers over PostgreSQL (destroyed through the other) | ${formatMs(s.p50)} ms | ${formatMs(s.p95)} ms | ${s.n} |`);
    } finally {
      for (const c of two) c.close();
    }
    progress(`${plan.burst} creates at once across three hosts, sent round-robin to the three`);
    const b = await burst(clients, plan.burst, hostOf);
    const spread = [...b.perHost].sort().map(([h, n]) => `${h} ${n}`).join(', ');
    lines.push(`| ${plan.burst} creates at once, three hosts over PostgreSQL (${spread}) | ${rate(b)} | | ${plan.burst} |`);
    const one = await burst([clients[0]!], plan.burst, hostOf);
    const spreadOne = [...one.perHost].sort().map(([h, n]) => `${h} ${n}`).join(', ');
    lines.push(`| ${plan.burst} creates at once through one of the three (placed: ${spreadOne}) | ${rate(one)} | | ${plan.burst} |`);
  } finally {
    for (const c of clients) c.close();
    for (const h of [...apis, ...hosts.reverse()]) leftovers.push(...(await stopInstance(h).catch((err: Error) => [`${h.label}: cleanup failed: ${err.message}`])));
    await pg.stop();
    await rm(shared, { recursive: true, force: true });
  }
  return { lines, leftovers };
}
