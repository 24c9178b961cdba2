import { templateTable, type TemplateSamples } from './templates.js';
import { e2bTable, type E2bSamples } from './e2b.js';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renderChart } from './chart.js';
import type { CreateDestroySamples } from './create-destroy.js';
import { PODMAN_RUN_FLAGS, type PodmanResult } from './podman.js';
import type { PodmanCheckpointResult } from './podman-checkpoint.js';
import type { DensityFloorResult, FloorResult } from './runtime-floor.js';
import type { AgentOpsSamples } from './agent-ops.js';
import type { BurstSamples } from './burst.js';
import type { DensityResults } from './density.js';
import type { PodmanExecResult } from './exec-podman.js';
import type { ExecSamples } from './exec.js';
import type { FilesSamples } from './files.js';
import type { VolumeWriteSamples } from './volumes.js';
import type { IngressResults } from './ingress.js';
import { agentOpsRows, execRow, filesRows, ingressRow, volumeRow } from './inside-report.js';
import { agentGoalRows, burstRow, densityFloorRows, densityRows, goalRows, goalsTable, warmPoolRow, wrkRow } from './perf-report.js';
import type { ReadResults, RequestSamples } from './read-latency.js';
import { snapshotRows, snapshotSummaries } from './snapshot-report.js';
import type { HangarSnapshotResults } from './snapshots.js';
import { formatMs, summarize, type Summary } from './stats.js';
import type { WarmPoolSamples } from './warm-pool.js';
import type { WrkResult } from './wrk.js';

/** Facts about the machine the numbers come from. */
export interface HostFacts {
  os: string;
  kernel: string;
  cpus: number;
  cpuModel: string;
  node: string;
  runc: string;
  /** 1-minute load average when the run began: other work on the host skews the numbers. */
  loadAvg1m: number;
}

/** Everything one `npm run bench` measured, raw samples included. */
export interface BenchResults {
  /** YYYY-MM-DD: names the result files. */
  date: string;
  startedAt: string;
  durationMs: number;
  host: HostFacts;
  create: CreateDestroySamples;
  podman: PodmanResult;
  /** The bare OCI runtimes starting the same machine: the floor of a cold create. */
  floor: FloorResult[];
  reads: ReadResults;
  /** Pause/resume, snapshots and forks of Hangar machines. */
  snapshots: HangarSnapshotResults;
  /** podman's checkpoint/restore of the same cases. */
  checkpoint: PodmanCheckpointResult;
  /** Creates served from a full warm pool. */
  warmPool: WarmPoolSamples;
  /** Cold creates sent all at once. */
  burst: BurstSamples;
  /** Idle machines piled up on one server. */
  density: DensityResults;
  /** The same pile-up of bare `runc run -d` containers (the floor of the density row), without and with Hangar's host mounts per machine. */
  densityFloor: DensityFloorResult[];
  /** GET by id under wrk's load. */
  wrk: WrkResult;
  /** `exec true` through the API, and podman exec. */
  exec: ExecSamples;
  podmanExec: PodmanExecResult;
  /** File upload and download throughput. */
  files: FilesSamples;
  /** Write throughput into a volume vs the machine's own disk. */
  volumes: VolumeWriteSamples;
  /** The in-machine agent's small calls. */
  agentOps: AgentOpsSamples;
  /** Requests per second through the ingress proxy and directly. */
  ingress: IngressResults;
  /** Template builds and start_cmd creates (issue 10). */
  templates: TemplateSamples;
  /** The real e2b SDK's time to interactive (issue 13). */
  e2b: E2bSamples;
  /** Host resources left after cleanup (empty when clean). */
  leftovers: string[];
}

/** One line of the comparison table. */
export interface TableRow {
  what: string;
  hangar: string;
  podman: string;
  notes: string;
}

const thousands = (n: number): string => Math.round(n).toLocaleString('en-US');

/** "p50 / p95 ms (min–max; n=…)" of create or destroy samples. */
function startStopCell(s: Summary): string {
  return `${formatMs(s.p50)} / ${formatMs(s.p95)} ms (${formatMs(s.min)}–${formatMs(s.max)}; n=${s.n})`;
}

function readCell(s: Summary): string {
  return `${formatMs(s.p50)} / ${formatMs(s.p95)} / ${formatMs(s.p99)} ms (n=${thousands(s.n)})`;
}

function budgetNote(r: { loop: { truncated: boolean; iterations: number } }): string {
  return r.loop.truncated ? ` Time budget hit after ${r.loop.iterations} iterations.` : '';
}

function readRow(what: string, r: RequestSamples, notes: string): TableRow {
  return { what, hangar: readCell(summarize(r.ms)), podman: '—', notes: `${notes}${budgetNote(r)}` };
}

/** The bare runtime's start of the same machine: what no Hangar create can beat. */
function floorRow(f: FloorResult): TableRow {
  const what = `the floor: bare \`${f.runtime} run -d\`, p50 / p95 (min–max)`;
  if (!f.available) return { what, hangar: `unavailable: ${f.reason}`, podman: '—', notes: `${f.runtime} started alone on Hangar's OCI spec of a base machine.` };
  return {
    what,
    hangar: startStopCell(summarize(f.runMs)),
    podman: '—',
    notes:
      `${f.runtime} ${f.version} alone: \`${f.runtime} run --detach\` of Hangar's own OCI spec of a base machine (namespaces, cgroup limits, seccomp, ` +
      `capabilities, /sbin/init) on the template's root filesystem read-only, in a new empty network namespace; no disk image, overlay, network, store or HTTP. ` +
      `Then \`${f.runtime} delete --force\` (p50 ${formatMs(summarize(f.deleteMs).p50)} ms, untimed here).${budgetNote(f)}`,
  };
}

/** The rows of the comparison table. */
export function tableRows(r: BenchResults): TableRow[] {
  const p = r.podman;
  const unavailable = p.available ? '' : `podman: unavailable (${p.reason})`;
  const rd = r.reads;
  const live = thousands(rd.storeRows + rd.realMachines);
  const kb = (b: number): string => `${(b / 1024).toFixed(1)} KiB`;
  const t = rd.throughput;
  const bad = Object.entries(t.badStatuses).map(([s, n]) => `${n}×${s}`).join(', ');
  return [
    warmPoolRow(r.warmPool),
    {
      what: 'create → running, p50 / p95 (min–max)',
      hangar: startStopCell(summarize(r.create.createMs)),
      podman: p.available ? startStopCell(summarize(p.runMs)) : unavailable,
      notes:
        `Hangar: \`POST /v1/machines {}\` answered 201 \`running\`, one at a time, ${r.create.warmup} untimed warm-ups. ` +
        `podman: \`podman run -d ${PODMAN_RUN_FLAGS.join(' ')} hangar-bench-base /sbin/init\` (same rootfs)` +
        `${p.available ? `, ${p.warmup} untimed warm-ups` : ''}.${budgetNote(r.create)}`,
    },
    {
      what: 'destroy, p50 / p95 (min–max)',
      hangar: startStopCell(summarize(r.create.destroyMs)),
      podman: p.available ? startStopCell(summarize(p.rmMs)) : 'podman: unavailable (see above)',
      notes: 'Hangar: `DELETE /v1/machines/{id}` answered 200 `destroyed`. podman: `podman rm -f -t 0` (SIGKILL at once, as `runc delete --force`).',
    },
    ...r.floor.map(floorRow),
    burstRow(r.burst),
    ...densityRows(r.density),
    ...densityFloorRows(r),
    readRow('`GET /healthz`, p50 / p95 / p99', rd.healthz, 'No auth, no store: the HTTP floor of this client and server.'),
    readRow(
      '`GET /v1/machines/{id}`, p50 / p95 / p99',
      rd.getById,
      `${live} live machines: ${thousands(rd.storeRows)} store rows (records only, no containers) + ${rd.realMachines} real machines; every id read in a fixed stride.`,
    ),
    readRow('`GET /v1/machines?limit=100`, p50 / p95 / p99', rd.listPage, `First page: 100 machines, ${kb(rd.listPage.bytes)}.`),
    readRow('`GET /v1/machines` (legacy bare array), p50 / p95 / p99', rd.listLegacy, `All ${thousands(rd.listLegacy.items ?? 0)} machines, ${kb(rd.listLegacy.bytes)}.`),
    readRow(
      '`GET /v1/machines?limit=100&metadata={"k":"v"}`, p50 / p95 / p99',
      rd.listMetadata,
      `Selective: ${rd.listMetadata.items} of ${live} rows match, so the store reads and parses every row of the team to fill the page.`,
    ),
    {
      what: '`GET /v1/machines/{id}` throughput',
      hangar: `${thousands(t.requestsPerSecond)} req/s (p50 ${formatMs(t.latency.p50)}, p99 ${formatMs(t.latency.p99)} ms)`,
      podman: '—',
      notes:
        `${t.concurrency} keep-alive connections for ${(t.durationMs / 1000).toFixed(1)} s from a worker thread; ` +
        `${thousands(t.ok)} answered 200${bad ? `, ${bad}` : ''}${t.errors ? `, ${t.errors} failed` : ''}.`,
    },
    wrkRow(r.wrk),
    ...snapshotRows(r.snapshots, r.checkpoint),
    execRow(r.exec, r.podmanExec),
    ...filesRows(r.files),
    volumeRow(r.volumes),
    ...agentOpsRows(r.agentOps),
    ingressRow(r.ingress),
  ];
}

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The table as markdown. */
export function markdownTable(rows: readonly TableRow[]): string {
  const lines = ['| what | hangar | podman | notes |', '| --- | --- | --- | --- |'];
  for (const r of rows) lines.push(`| ${cell(r.what)} | ${cell(r.hangar)} | ${cell(r.podman)} | ${cell(r.notes)} |`);
  return lines.join('\n');
}

/** The whole report: host line, table, and how to read it. */
export function renderMarkdown(r: BenchResults): string {
  const h = r.host;
  const p = r.podman;
  const podmanFacts = p.available ? `podman ${p.version}` : 'podman unavailable';
  const criu = r.snapshots.criu ? `, CRIU ${r.snapshots.criu}` : '';
  return [
    `# Hangar benchmark, ${r.date}`,
    '',
    `${h.os}, kernel ${h.kernel}, ${h.cpus} × ${h.cpuModel}; Node ${h.node}, runc ${h.runc}${criu}, ${podmanFacts}. ` +
      `Load average ${h.loadAvg1m.toFixed(2)} at the start; measuring took ${(r.durationMs / 1000).toFixed(0)} s.`,
    '',
    '## Goals: exec, files and starts in milliseconds (issue 11)',
    '',
    goalsTable(agentGoalRows(r)),
    '',
    '## Templates (issue 10)',
    '',
    templateTable(r.templates),
    '## The e2b SDK: time to interactive (issue 13)',
    '',
    e2bTable(r.e2b),
    '',
    '## Goals of the earlier performance work (issue 6)',
    '',
    goalsTable(goalRows(r)),
    '',
    '## All measurements',
    '',
    markdownTable(tableRows(r)),
    '',
    '- Client: `node:http` with a keep-alive agent (lower overhead than `fetch`), one connection for the sequential series, ' +
      'in the same process as the server (`startServer` on 127.0.0.1, port 0). Only loopback traffic.',
    '- A latency is a round trip seen by the client: from sending the request to the last byte of the answer; ' +
      "for podman, from spawning the CLI to its exit (the CLI's own start-up is part of podman's cost).",
    `- The ${thousands(r.reads.storeRows)} machines behind the read rows are **store rows** inserted with ` +
      `\`store.insertMachine\` (status \`running\`), **not live containers**; ${r.reads.realMachines} real machines ran beside them. ` +
      `Inserting the rows took ${formatMs(r.reads.insertMs)} ms. The reads ran on their own data dir, deleted afterwards.`,
    "- Hangar's create also makes a sparse 1 GiB ext4 disk per machine (a clone of a blank formatted once per size, loop-attached and mounted by the disk tool) under an overlay, and writes SQLite; " +
      'podman mounts an overlay from its image store, with no per-machine disk quota.',
    '- Pause in Hangar is a full stop: CRIU dumps and kills the processes, the container is removed and the disk image moved into the snapshot; ' +
      'resume mounts it again and restores. podman keeps the stopped container and its overlay, so its checkpoint holds only the CRIU images. ' +
      'The snapshot rows ran on a third data dir, deleted afterwards.',
    `- Raw samples: \`bench/results/${r.date}.json\`; chart: \`bench/results/${r.date}.svg\`.`,
    `- Cleanup: ${r.leftovers.length ? `LEFT ON THE HOST: ${r.leftovers.join('; ')}` : 'nothing left (mounts, runc state, cgroups and loop devices of every data dir; podman containers, image and checkpoint exports).'}`,
    '',
  ].join('\n');
}

/** Write `<date>.md`, `<date>.json` (raw samples) and `<date>.svg` into `dir`; returns their paths. */
export async function writeResults(dir: string, r: BenchResults, markdown: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const base = join(dir, r.date);
  const summaries = {
    create: summarize(r.create.createMs),
    destroy: summarize(r.create.destroyMs),
    podmanRun: r.podman.available ? summarize(r.podman.runMs) : null,
    podmanRm: r.podman.available ? summarize(r.podman.rmMs) : null,
    healthz: summarize(r.reads.healthz.ms),
    getById: summarize(r.reads.getById.ms),
    listPage: summarize(r.reads.listPage.ms),
    listLegacy: summarize(r.reads.listLegacy.ms),
    listMetadata: summarize(r.reads.listMetadata.ms),
    ...snapshotSummaries(r.snapshots, r.checkpoint),
    warmPoolHit: summarize(r.warmPool.hitMs),
    burstCreate: summarize(r.burst.createMs),
    densityCreate: summarize(r.density.createMs),
    exec: summarize(r.exec.execMs),
    podmanExec: r.podmanExec.available ? summarize(r.podmanExec.execMs) : null,
  };
  await writeFile(`${base}.md`, markdown);
  await writeFile(`${base}.json`, `${JSON.stringify({ ...r, summaries }, null, 1)}\n`);
  await writeFile(`${base}.svg`, renderChart(r));
  return [`${base}.md`, `${base}.json`, `${base}.svg`];
}
