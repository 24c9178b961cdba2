import type { CheckpointCase } from './podman-checkpoint.js';
import type { BenchResults } from './report.js';
import { densityEdges } from './perf-report.js';
import { formatMs, summarize } from './stats.js';

/** One bar; a null value is drawn as "unavailable". */
interface Bar {
  series: string;
  value: number | null;
}

/** Bars that share one label (e.g. Hangar and podman for "create p50"). */
interface Group {
  label: string;
  bars: Bar[];
}

interface Panel {
  title: string;
  colors: Record<string, string>;
  groups: Group[];
}

const WIDTH = 880;
const LABEL_W = 270;
const PLOT_W = 470;
const BAR_H = 16;
const BAR_GAP = 3;
const GROUP_GAP = 12;
const FONT = 'font-family="system-ui, sans-serif"';

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A round tick step (1, 2 or 5 × 10^k) giving about five ticks up to `max`. */
function tickStep(max: number): number {
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
}

function renderPanel(p: Panel, y0: number): { svg: string; height: number } {
  const out: string[] = [];
  out.push(`<text x="16" y="${y0 + 18}" font-size="15" font-weight="bold" ${FONT}>${esc(p.title)}</text>`);
  let lx = LABEL_W;
  for (const [series, color] of Object.entries(p.colors)) {
    out.push(`<rect x="${lx}" y="${y0 + 26}" width="12" height="12" fill="${color}"/>`);
    out.push(`<text x="${lx + 16}" y="${y0 + 36}" font-size="12" ${FONT}>${esc(series)}</text>`);
    lx += 24 + series.length * 7;
  }
  const top = y0 + 50;
  const values = p.groups.flatMap((g) => g.bars.map((b) => b.value ?? 0));
  const step = tickStep(Math.max(...values, 1e-3));
  const axisMax = Math.ceil(Math.max(...values, 1e-3) / step) * step;
  const x = (v: number): number => LABEL_W + (v / axisMax) * PLOT_W;

  const bars: string[] = [];
  let y = top;
  for (const g of p.groups) {
    const h = g.bars.length * (BAR_H + BAR_GAP) - BAR_GAP;
    bars.push(`<text x="${LABEL_W - 10}" y="${y + h / 2 + 4}" font-size="12" text-anchor="end" ${FONT}>${esc(g.label)}</text>`);
    for (const b of g.bars) {
      if (b.value === null || !Number.isFinite(b.value)) {
        bars.push(`<text x="${LABEL_W + 4}" y="${y + BAR_H - 4}" font-size="11" font-style="italic" fill="#888" ${FONT}>${esc(b.series)}: unavailable</text>`);
      } else {
        const w = Math.max(1, x(b.value) - LABEL_W);
        bars.push(`<rect x="${LABEL_W}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${p.colors[b.series] ?? '#999'}"><title>${esc(`${b.series}: ${formatMs(b.value)} ms`)}</title></rect>`);
        bars.push(`<text x="${(LABEL_W + w + 5).toFixed(1)}" y="${y + BAR_H - 4}" font-size="11" ${FONT}>${formatMs(b.value)} ms</text>`);
      }
      y += BAR_H + BAR_GAP;
    }
    y += GROUP_GAP - BAR_GAP;
  }
  const bottom = y - GROUP_GAP + 6;
  for (let v = 0; v <= axisMax + step / 2; v += step) {
    out.push(`<line x1="${x(v).toFixed(1)}" y1="${top - 4}" x2="${x(v).toFixed(1)}" y2="${bottom}" stroke="#e5e7eb"/>`);
    out.push(`<text x="${x(v).toFixed(1)}" y="${bottom + 14}" font-size="10" text-anchor="middle" fill="#555" ${FONT}>${Number(v.toPrecision(6))}</text>`);
  }
  out.push(...bars);
  out.push(`<text x="${LABEL_W + PLOT_W / 2}" y="${bottom + 28}" font-size="11" text-anchor="middle" fill="#555" ${FONT}>milliseconds (lower is better)</text>`);
  return { svg: out.join('\n'), height: bottom + 40 - y0 };
}

/** Hangar's pause/resume against podman's checkpoint/restore, p50 and p95, idle and holding memory. */
function pauseResumePanel(r: BenchResults): Panel {
  const { idle, held } = r.snapshots;
  const podman = (c: CheckpointCase, pick: 'checkpointMs' | 'restoreMs') => (c.available ? summarize(c[pick]) : null);
  const groups: Group[] = [];
  for (const [name, h, c] of [['idle', idle, r.checkpoint.idle], [`${held.heldMiB} MiB held`, held, r.checkpoint.held]] as const) {
    const steps = [['pause', summarize(h.pauseMs), podman(c, 'checkpointMs')], ['resume', summarize(h.resumeMs), podman(c, 'restoreMs')]] as const;
    for (const [step, hs, ps] of steps) {
      for (const q of ['p50', 'p95'] as const) {
        groups.push({ label: `${step}, ${name}, ${q}`, bars: [{ series: 'Hangar', value: hs[q] }, { series: 'podman', value: ps?.[q] ?? null }] });
      }
    }
  }
  return {
    title: 'Pause and resume with CRIU: Hangar API vs podman checkpoint / restore',
    colors: { Hangar: '#2563eb', podman: '#f97316' },
    groups,
  };
}

/** A bar chart of Hangar against podman (create, destroy, pause, resume) and Hangar's read latencies, as SVG. */
export function renderChart(r: BenchResults): string {
  const create = summarize(r.create.createMs);
  const destroy = summarize(r.create.destroyMs);
  const run = r.podman.available ? summarize(r.podman.runMs) : null;
  const rm = r.podman.available ? summarize(r.podman.rmMs) : null;
  const warm = summarize(r.warmPool.hitMs);
  const burst = summarize(r.burst.createMs);
  const { first, last } = densityEdges(r.density);
  const lifecycle: Panel = {
    title: 'Start and stop one machine: Hangar API vs podman CLI, same rootfs',
    colors: { Hangar: '#2563eb', podman: '#f97316' },
    groups: [
      { label: 'create, warm-pool hit, p50', bars: [{ series: 'Hangar', value: warm.p50 }] },
      { label: 'create → running, p50', bars: [{ series: 'Hangar', value: create.p50 }, { series: 'podman', value: run?.p50 ?? null }] },
      { label: 'create → running, p95', bars: [{ series: 'Hangar', value: create.p95 }, { series: 'podman', value: run?.p95 ?? null }] },
      { label: 'destroy, p50', bars: [{ series: 'Hangar', value: destroy.p50 }, { series: 'podman', value: rm?.p50 ?? null }] },
      { label: 'destroy, p95', bars: [{ series: 'Hangar', value: destroy.p95 }, { series: 'podman', value: rm?.p95 ?? null }] },
    ],
  };
  const load: Panel = {
    title: 'Creates under load: many at once, and with many machines already running',
    colors: { Hangar: '#2563eb' },
    groups: [
      { label: `density: first ${first.n} creates, p50`, bars: [{ series: 'Hangar', value: first.p50 }] },
      { label: `density: last ${last.n} (to ${r.density.reached}), p50`, bars: [{ series: 'Hangar', value: last.p50 }] },
      { label: `${r.burst.count} creates at once, p50`, bars: [{ series: 'Hangar', value: burst.p50 }] },
      { label: `${r.burst.count} creates at once, p95`, bars: [{ series: 'Hangar', value: burst.p95 }] },
    ],
  };
  const rd = r.reads;
  const pct = (label: string, ms: number[]): Group => {
    const s = summarize(ms);
    return { label, bars: [{ series: 'p50', value: s.p50 }, { series: 'p95', value: s.p95 }, { series: 'p99', value: s.p99 }] };
  };
  const reads: Panel = {
    title: `Hangar reads with ${(rd.storeRows + rd.realMachines).toLocaleString('en-US')} machines stored (${rd.storeRows.toLocaleString('en-US')} are store rows, not containers)`,
    colors: { p50: '#93c5fd', p95: '#3b82f6', p99: '#1e3a8a' },
    groups: [
      pct('GET /v1/machines/{id}', rd.getById.ms),
      pct('GET /v1/machines?limit=100', rd.listPage.ms),
      pct(`GET /v1/machines (all ${(rd.listLegacy.items ?? 0).toLocaleString("en-US")})`, rd.listLegacy.ms),
      pct('GET ?limit=100&metadata={"k":"v"}', rd.listMetadata.ms),
    ],
  };
  const header = 70;
  const a = renderPanel(lifecycle, header);
  const l = renderPanel(load, header + a.height + 10);
  const c = renderPanel(pauseResumePanel(r), header + a.height + 10 + l.height + 10);
  const b = renderPanel(reads, header + a.height + 10 + l.height + 10 + c.height + 10);
  const t = rd.throughput;
  const footY = header + a.height + 10 + l.height + 10 + c.height + 10 + b.height + 8;
  const height = footY + 16;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="16" y="28" font-size="18" font-weight="bold" ${FONT}>Hangar benchmark, ${esc(r.date)}</text>`,
    `<text x="16" y="50" font-size="12" fill="#444" ${FONT}>${esc(`${r.host.cpus} × ${r.host.cpuModel}, kernel ${r.host.kernel}, Node ${r.host.node}, runc ${r.host.runc}${r.snapshots.criu ? `, CRIU ${r.snapshots.criu}` : ''}${r.podman.available ? `, podman ${r.podman.version}` : ''}`)}</text>`,
    a.svg,
    l.svg,
    c.svg,
    b.svg,
    `<text x="16" y="${footY}" font-size="12" fill="#444" ${FONT}>${esc(`GET /v1/machines/{id} throughput: ${Math.round(t.requestsPerSecond).toLocaleString('en-US')} req/s with ${t.concurrency} keep-alive connections (p99 ${formatMs(t.latency.p99)} ms)${r.wrk.available ? `; wrk: ${Math.round(r.wrk.requestsPerSecond).toLocaleString('en-US')} req/s` : ''}`)}</text>`,
    '</svg>',
    '',
  ].join('\n');
}
