/** The rows of warm pools, bursts, density and wrk, and the table of issue 6's performance goals. */
import type { BurstSamples } from './burst.js';
import type { DensityResults } from './density.js';
import { describeResources } from './host-resources.js';
import type { BenchResults, TableRow } from './report.js';
import { formatMs, summarize, type Summary } from './stats.js';
import type { DensityFloorResult } from './runtime-floor.js';
import type { WarmPoolSamples } from './warm-pool.js';
import type { WrkResult } from './wrk.js';

const MiB = 1024 * 1024;
const thousands = (n: number): string => Math.round(n).toLocaleString('en-US');
const latency = (s: Summary): string => `${formatMs(s.p50)} / ${formatMs(s.p95)} ms (${formatMs(s.min)}–${formatMs(s.max)}; n=${s.n})`;

/** The first and the last `edge` creates of a density run. */
export function densityEdges(d: DensityResults): { first: Summary; last: Summary } {
  const n = Math.min(d.plan.edge, Math.floor(d.createMs.length / 2));
  return { first: summarize(d.createMs.slice(0, n)), last: summarize(d.createMs.slice(d.createMs.length - n)) };
}

/** Memory the machines took from the host at the peak, per machine (MemAvailable before − after). */
export function densityHostBytesPerMachine(d: DensityResults): number {
  return d.reached ? ((d.memAvailableBeforeKiB - d.memAvailableAfterKiB) * 1024) / d.reached : Number.NaN;
}

export function warmPoolRow(w: WarmPoolSamples): TableRow {
  return {
    what: 'create, warm-pool hit, p50 / p95 (min–max)',
    hangar: latency(summarize(w.hitMs)),
    podman: '—',
    notes:
      `\`POST /v1/machines {template: "base", config}\` matching pool \`${w.pool}\` (size ${w.size}, filled in ${formatMs(w.fillMs)} ms), ` +
      `answered 201 \`running\` with \`warm_pool_checkout {hit: true}\`; back to back, ${w.warmup} untimed warm-ups. ` +
      `${w.misses.length ? `${w.misses.length} not served from the pool: ${w.misses.slice(0, 3).join('; ')}. ` : 'No misses. '}` +
      `Pool counters after: ${w.poolHits} hits, ${w.poolMisses} misses, ${w.readyAfter} ready (the refill ran meanwhile). ` +
      `The checkout claims an idle machine in one SQLite transaction and applies team, metadata, timers and hostname; no container is started.`,
  };
}

export function burstRow(b: BurstSamples): TableRow {
  const s = summarize(b.createMs);
  return {
    what: `${b.count} creates at once, p50 / p95 (min–max)`,
    hangar: latency(s),
    podman: '—',
    notes:
      `${b.count} concurrent cold \`POST /v1/machines {}\` over ${b.count} connections: ${b.createMs.length} answered 201 \`running\`` +
      `${b.failures.length ? `, ${b.failures.length} failed (${[...new Set(b.failures)].slice(0, 3).join('; ')})` : ''}; ` +
      `all answered within ${formatMs(b.wallMs)} ms (${((b.createMs.length / b.wallMs) * 1000).toFixed(0)} machines/s). ` +
      `Then ${b.count} concurrent destroys: p50 ${formatMs(summarize(b.destroyMs).p50)} ms, all within ${formatMs(b.destroyWallMs)} ms` +
      `${b.destroyFailures.length ? `, ${b.destroyFailures.length} failed` : ''}.`,
  };
}

export function densityRows(d: DensityResults): TableRow[] {
  const { first, last } = densityEdges(d);
  const hostPer = densityHostBytesPerMachine(d);
  const cgroupPer = d.cgroupsRead ? d.cgroupBytes / d.cgroupsRead : Number.NaN;
  const serverPer = d.reached ? (d.rssAfterBytes - d.rssBeforeBytes) / d.reached : Number.NaN;
  return [
    {
      what: `density: ${thousands(d.plan.target)} idle \`base\` machines`,
      hangar: `${thousands(d.reached)} running; ${(hostPer / MiB).toFixed(2)} MiB of host memory per machine`,
      podman: '—',
      notes:
        `Config ${JSON.stringify(d.plan.config)}, ${d.plan.concurrency} creates in flight. ` +
        `${d.stoppedBy ? `Stopped short: ${d.stoppedBy}. ` : ''}` +
        `Per machine: MemAvailable fell by ${(hostPer / MiB).toFixed(2)} MiB (all kernel and user memory: page cache, ext4 and overlay mounts, loop devices, cgroups, init); ` +
        `its memory cgroup charged ${(cgroupPer / MiB).toFixed(2)} MiB (mean of ${thousands(d.cgroupsRead)}); ` +
        `the server process grew ${(serverPer / 1024).toFixed(0)} KiB. At the peak: ${describeResources(d.atPeak)}. ` +
        `Destroying all ${thousands(d.destroyMs.length)} took ${(d.destroyWallMs / 1000).toFixed(1)} s (p50 ${formatMs(summarize(d.destroyMs).p50)} ms, ${d.plan.destroyConcurrency} in flight)` +
        `${d.destroyFailures.length ? `, ${d.destroyFailures.length} failed` : ''}; ${d.left.length ? `left: ${d.left.join(', ')}` : 'nothing left'}.`,
    },
    {
      what: `density: create, first vs last ${first.n}, p50 / p95`,
      hangar: `${formatMs(first.p50)} / ${formatMs(first.p95)} → ${formatMs(last.p50)} / ${formatMs(last.p95)} ms (×${(last.p50 / first.p50).toFixed(2)} at p50)`,
      podman: '—',
      notes: `Round trips of the first ${first.n} creates (0 → ${first.n} machines) and of the last ${last.n} (up to ${thousands(d.reached)}), ${d.plan.concurrency} in flight.`,
    },
  ];
}

export function wrkRow(w: WrkResult): TableRow {
  if (!w.available) return { what: '`GET /v1/machines/{id}` throughput (wrk)', hangar: `unavailable: ${w.reason}`, podman: '—', notes: '' };
  return {
    what: '`GET /v1/machines/{id}` throughput (wrk)',
    hangar: `${thousands(w.requestsPerSecond)} req/s (p50 ${formatMs(w.p50Ms)}, p99 ${formatMs(w.p99Ms)} ms)`,
    podman: '—',
    notes:
      `wrk ${w.version} in its own process: ${w.plan.threads} thread, ${w.plan.connections} connections, ${w.plan.durationS} s, ` +
      `${thousands(w.requests)} requests${w.non2xx ? `, ${w.non2xx} not 2xx` : ''}${w.socketErrors ? `, socket errors: ${w.socketErrors}` : ''}; ` +
      `the same 1,003-machine store as the read rows.`,
  };
}

/** One line of the goals table. */
export interface GoalRow {
  what: string;
  goal: string;
  measured: string;
  met: boolean | null;
}

/** Issue 6's goals against this run's numbers; `met` is null when there was nothing to compare. */
export function goalRows(r: BenchResults): GoalRow[] {
  const warm = summarize(r.warmPool.hitMs);
  const cold = summarize(r.create.createMs);
  const podman = r.podman.available ? summarize(r.podman.runMs) : null;
  const speedup = podman ? podman.p50 / cold.p50 : Number.NaN;
  const burst = summarize(r.burst.createMs);
  const wrk = r.wrk.available ? r.wrk.requestsPerSecond : null;
  const list = summarize(r.reads.listPage.ms);
  const { first, last } = densityEdges(r.density);
  return [
    { what: 'create, warm-pool hit, round trip', goal: 'p50 ≤ 5 ms', measured: `p50 ${formatMs(warm.p50)} ms`, met: warm.n ? warm.p50 <= 5 : null },
    {
      what: 'create, cold, round trip until `running`',
      goal: 'p50 ≤ 80 ms and ≥ 5× faster than `podman run -d`',
      measured: `p50 ${formatMs(cold.p50)} ms; podman ${podman ? `${formatMs(podman.p50)} ms → ${speedup.toFixed(1)}×` : 'unavailable'}`,
      met: podman ? cold.p50 <= 80 && speedup >= 5 : null,
    },
    {
      what: `${r.burst.count} creates at once`,
      goal: 'all succeed; p95 reported',
      measured: `${r.burst.createMs.length} of ${r.burst.count} succeeded; p95 ${formatMs(burst.p95)} ms`,
      met: r.burst.createMs.length === r.burst.count,
    },
    {
      what: '`GET /v1/machines/{id}`',
      goal: '≥ 5,000 requests/s',
      measured: `${wrk === null ? 'wrk unavailable' : `${thousands(wrk)} req/s (wrk)`}; ${thousands(r.reads.throughput.requestsPerSecond)} req/s (Node worker)`,
      met: (wrk ?? r.reads.throughput.requestsPerSecond) >= 5_000,
    },
    { what: 'list, 1,000 machines in store, `limit=100`', goal: 'p99 ≤ 20 ms', measured: `p99 ${formatMs(list.p99)} ms`, met: list.p99 <= 20 },
    {
      what: `density: ${thousands(r.density.plan.target)} idle \`base\` machines`,
      goal: `all running; memory per machine reported; create p50 at the end ≤ 2× at the start`,
      measured:
        `${thousands(r.density.reached)} running; ${(densityHostBytesPerMachine(r.density) / MiB).toFixed(2)} MiB each; ` +
        `p50 ${formatMs(first.p50)} → ${formatMs(last.p50)} ms (×${(last.p50 / first.p50).toFixed(2)})`,
      met: r.density.reached >= r.density.plan.target && last.p50 <= 2 * first.p50,
    },
  ];
}

/** "; floor: bare runc run -d 41 ms (podman ÷ 3.0); crun: unavailable (…)": the most any runtime here allows. */
function floorNote(r: BenchResults, podmanP50: number | undefined): string {
  return r.floor
    .map((f) => {
      if (!f.available) return `; ${f.runtime}: unavailable (${f.reason})`;
      const p50 = summarize(f.runMs).p50;
      return `; floor: bare ${f.runtime} run -d ${formatMs(p50)} ms${podmanP50 === undefined ? '' : ` (podman ÷ ${(podmanP50 / p50).toFixed(1)})`}`;
    })
    .join('');
}

/** First and last p50 of a density floor run, compared as the density row compares Hangar's creates. */
function floorEdges(r: BenchResults, f: Extract<DensityFloorResult, { available: true }>): { first: number; last: number } {
  const n = Math.min(r.density.plan.edge, Math.floor(f.runMs.length / 2));
  return { first: summarize(f.runMs.slice(0, n)).p50, last: summarize(f.runMs.slice(f.runMs.length - n)).p50 };
}

const mountsLabel = (f: DensityFloorResult): string => (f.hostMountsEach ? ` with ${f.hostMountsEach} host mounts each` : '');

/** The density floors as the goal row shows them: bare runc's first and last starts of the same pile-up. */
function densityFloorNote(r: BenchResults): string {
  return r.densityFloor
    .map((f) => {
      if (!f.available) return `; floor${mountsLabel(f)}: unavailable (${f.reason})`;
      const { first, last } = floorEdges(r, f);
      return `; floor: ${thousands(f.count)} bare ${f.runtime} run -d${mountsLabel(f)}, ${formatMs(first)} → ${formatMs(last)} ms (×${(last / first).toFixed(2)})`;
    })
    .join('');
}

/** The density floors' own rows: bare runc's starts at the beginning and the end of the same pile-up. */
export function densityFloorRows(r: BenchResults): TableRow[] {
  return r.densityFloor.map((f) => {
    const what = `density floor: ${thousands(r.density.plan.target)} bare \`runc run -d\` kept running${mountsLabel(f)}, first vs last p50`;
    if (!f.available) return { what, hangar: 'unavailable', podman: '—', notes: f.reason };
    const { first, last } = floorEdges(r, f);
    return {
      what,
      hangar: `${formatMs(first)} → ${formatMs(last)} ms (×${(last / first).toFixed(2)}), ${thousands(f.count)} started in ${(f.wallMs / 1000).toFixed(0)} s`,
      podman: '—',
      notes:
        `The base template's root filesystem read-only, Hangar's OCI spec, a new empty network namespace each, ${f.concurrency} starts in flight; ` +
        (f.hostMountsEach
          ? `before each start, ${f.hostMountsEach} small tmpfs mounted on the host (a Hangar machine leaves its disk image, overlay and network namespace mounted there). `
          : 'no disk image, overlay, network, store or HTTP. ') +
        'What the kernel and runc alone do as containers pile up.',
    };
  });
}

/** Issue 11's goals (exec, files and starts in milliseconds) against this run's numbers. */
export function agentGoalRows(r: BenchResults): GoalRow[] {
  const exec = summarize(r.exec.execMs);
  const podmanExec = r.podmanExec.available ? summarize(r.podmanExec.execMs) : null;
  const execRatio = podmanExec ? podmanExec.p50 / exec.p50 : Number.NaN;
  const first = summarize(r.agentOps.firstByteMs);
  const pair = summarize(r.agentOps.smallPairMs);
  const opsPerS = pair.n ? (2 * 1000) / pair.p50 : Number.NaN;
  const list = summarize(r.agentOps.listMs);
  const median = (xs: readonly number[]): number => summarize(xs).p50;
  const files = r.files.cases.map((c) => ({ mib: c.mib, up: median(c.uploadMBps), down: median(c.downloadMBps) }));
  const filesFloor = r.files.floor.map((c) => `${c.mib} MiB ${median(c.uploadMBps).toFixed(0)} / ${median(c.downloadMBps).toFixed(0)} MB/s`).join(', ');
  const cold = summarize(r.create.createMs);
  const podman = r.podman.available ? summarize(r.podman.runMs) : null;
  const coldRatio = podman ? podman.p50 / cold.p50 : Number.NaN;
  const rate = (r.burst.createMs.length / r.burst.wallMs) * 1000;
  const { first: d0, last: d1 } = densityEdges(r.density);
  const held = summarize(r.snapshots.held.pauseMs).p50 + summarize(r.snapshots.held.resumeMs).p50;
  return [
    {
      what: 'exec `true`, HTTP round trip, p50',
      goal: '≤ 5 ms, and ≥ 30× faster than `podman exec`',
      measured: `${formatMs(exec.p50)} ms; podman exec ${podmanExec ? `${formatMs(podmanExec.p50)} ms → ${execRatio.toFixed(0)}×` : 'unavailable'}`,
      met: podmanExec ? exec.p50 <= 5 && execRatio >= 30 : null,
    },
    { what: 'exec streaming: first stdout byte of `echo hi`', goal: '≤ 5 ms', measured: `p50 ${formatMs(first.p50)} ms`, met: first.n ? first.p50 <= 5 : null },
    { what: 'file 4 KiB write then read, one connection', goal: '≥ 500 ops/s', measured: `${opsPerS.toFixed(0)} ops/s (${(opsPerS / 2).toFixed(0)} pairs/s)`, met: pair.n ? opsPerS >= 500 : null },
    {
      what: `file ${files.map((f) => `${f.mib} MiB`).join(' / ')}, up and down`,
      goal: '≥ 300 MB/s both',
      measured: `${files.map((f) => `${f.up.toFixed(0)} / ${f.down.toFixed(0)} MB/s`).join('; ')}${filesFloor ? `; floor: bare node:http on loopback, same client, ${filesFloor}` : ''}`,
      met: files.every((f) => f.up >= 300 && f.down >= 300),
    },
    { what: `list a directory of ${r.agentOps.listEntries.toLocaleString('en-US')} entries`, goal: '≤ 20 ms', measured: `p50 ${formatMs(list.p50)} ms`, met: list.n ? list.p50 <= 20 : null },
    {
      what: 'cold create until `running`, p50',
      goal: '≥ 4× faster than `podman run -d`',
      measured: `${formatMs(cold.p50)} ms; podman ${podman ? `${formatMs(podman.p50)} ms → ${coldRatio.toFixed(1)}×` : 'unavailable'}${floorNote(r, podman?.p50)}`,
      met: podman ? coldRatio >= 4 : null,
    },
    {
      what: `${r.burst.count} creates at once`,
      goal: '≥ 30 machines/s, all succeed',
      measured: `${r.burst.createMs.length} of ${r.burst.count}; ${rate.toFixed(1)} machines/s${r.floor
        .map((f) => (f.available ? `; floor: ${f.burst.count} bare ${f.runtime} run -d at once, ${((f.burst.count / f.burst.wallMs) * 1000).toFixed(1)}/s` : ''))
        .join('')}`,
      met: r.burst.createMs.length === r.burst.count && rate >= 30,
    },
    {
      what: `create p50 at ${thousands(r.density.reached)} machines vs at 0`,
      goal: '≤ ×1.15',
      measured: `${formatMs(d0.p50)} → ${formatMs(d1.p50)} ms (×${(d1.p50 / d0.p50).toFixed(2)})${densityFloorNote(r)}`,
      met: d1.p50 <= 1.15 * d0.p50,
    },
    { what: `pause + resume, ${r.snapshots.held.heldMiB} MiB held`, goal: '≤ 1 s together', measured: `${formatMs(held)} ms (p50 + p50)`, met: held <= 1000 },
  ];
}

export function goalsTable(rows: readonly GoalRow[]): string {
  const lines = ['| what | goal | measured | met |', '| --- | --- | --- | --- |'];
  for (const g of rows) lines.push(`| ${g.what} | ${g.goal} | ${g.measured} | ${g.met === null ? 'not measured' : g.met ? 'yes' : '**no**'} |`);
  return lines.join('\n');
}
