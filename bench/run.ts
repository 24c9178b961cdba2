/**
 * `npm run bench` (after `npm run build`): Hangar measured against podman on this
 * host in one run. `npm run bench -- --only agent` measures only the in-machine agent's
 * rows (exec `true`, the first streamed byte, 4 KiB and 1 MiB files) and prints them,
 * writing no results: a quick before/after for work on that path. Starts real Hangar servers in-process on fresh data dirs and talks
 * to them over loopback HTTP; prints a markdown table and writes bench/results/<date>.{md,json,svg}.
 * Needs root, runc, CRIU 4 and busybox-static; podman is optional (scripts/bench-setup.sh installs it).
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../src/runtime/runc/command.js';
import { DEFAULT_AGENT_OPS_PLAN, measureAgentOps, type AgentOpsSamples } from './agent-ops.js';
import { measureBurst, type BurstSamples } from './burst.js';
import { DEFAULT_FLEET_PLAN, measureFleet } from './fleet.js';
import { measureCreateDestroy, type CreateDestroySamples } from './create-destroy.js';
import { measureDensity, type DensityPlan, type DensityResults } from './density.js';
import { measurePodmanExec, type PodmanExecResult } from './exec-podman.js';
import { measureExec, type ExecSamples } from './exec.js';
import { DEFAULT_FILES_PLAN, measureFiles, type FilesSamples } from './files.js';
import { withInstance } from './hangar-instance.js';
import { measureIngress, type IngressResults } from './ingress.js';
import { cleanupPodman, measurePodman, podmanLeftovers, type PodmanResult } from './podman.js';
import { measureDensityFloor, measureRuntimeFloor, type DensityFloorResult, type FloorResult } from './runtime-floor.js';
import { checkpointLeftovers, measurePodmanCheckpoint, type PodmanCheckpointResult } from './podman-checkpoint.js';
import { measureReads, type ReadPlan, type ReadResults } from './read-latency.js';
import { renderMarkdown, writeResults, type BenchResults, type HostFacts } from './report.js';
import { formatMs, summarize } from './stats.js';
import { measureHangarSnapshots, type HangarSnapshotResults, type SnapshotPlan } from './snapshots.js';
import { DEFAULT_TEMPLATE_PLAN, measureTemplates, type TemplateSamples } from './templates.js';
import { measureE2b, type E2bSamples } from './e2b.js';
import { DEFAULT_VOLUMES_PLAN, measureVolumes, type VolumeWriteSamples } from './volumes.js';
import { measureWarmPool, type WarmPoolPlan, type WarmPoolSamples } from './warm-pool.js';
import { measureWrk, type WrkResult } from './wrk.js';

const PLAN = {
  create: { warmup: 3, count: 60, budgetMs: 240_000 },
  podman: { warmup: 2, count: 25, budgetMs: 120_000 },
  reads: {
    storeRows: 1_000,
    realMachines: 3,
    requests: { healthz: 500, getById: 2_000, listPage: 300, listLegacy: 50, listMetadata: 300 },
    budgetMs: 60_000,
    throughput: { concurrency: 32, durationMs: 5_000, maxRequests: 500_000 },
  } satisfies ReadPlan,
  snapshots: {
    pauseResume: { warmup: 2, count: 20, budgetMs: 180_000 },
    heldMiB: 256,
    heldMemoryMb: 512,
    snapshotFork: { warmup: 1, count: 10, budgetMs: 120_000 },
  } satisfies SnapshotPlan,
  checkpoint: { warmup: 1, count: 10, budgetMs: 120_000, heldMiB: 256 },
  warmPool: { size: 60, warmup: 5, count: 50, budgetMs: 60_000, fillTimeoutMs: 120_000 } satisfies WarmPoolPlan,
  burst: 100,
  /** Rounds of the e2b SDK's create + first command, cold and from a warm pool (issue 13). */
  e2bRounds: 10,
  exec: { warmup: 5, count: 100, budgetMs: 60_000 },
  podmanExec: { warmup: 3, count: 30, budgetMs: 60_000 },
  wrk: { threads: 1, connections: 32, durationS: 5 },
  density: {
    target: 1_000,
    config: { memory_mb: 64, disk_mb: 64 },
    concurrency: 2,
    edge: 50,
    budgetMs: 900_000,
    destroyConcurrency: 4,
    settleMs: 2_000,
    maxMachines: 1_100,
  } satisfies DensityPlan,
};

const RESULTS_DIR = fileURLToPath(new URL('../../bench/results/', import.meta.url));

/** Progress goes to stderr; stdout carries only the report. */
const progress = (msg: string): void => void process.stderr.write(`bench: ${msg}\n`);

async function hostFacts(): Promise<HostFacts> {
  const osRelease = await readFile('/etc/os-release', 'utf8').catch(() => '');
  const runcOut = await run('runc', ['--version']).catch(() => '');
  return {
    os: /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(osRelease)?.[1] ?? os.type(),
    kernel: os.release(),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown CPU',
    node: process.version,
    runc: /runc version (\S+)/.exec(runcOut)?.[1] ?? 'unknown',
    loadAvg1m: os.loadavg()[0] ?? 0,
  };
}

/** The subsets `--only` runs. */
const SUBSETS = ['agent', 'fleet'] as const;
type Subset = (typeof SUBSETS)[number];

/** `--only NAME` from the command line; null for the whole run. */
function subsetOf(argv: readonly string[]): Subset | null {
  if (argv.includes('--help')) {
    process.stdout.write(`usage: npm run bench [-- --only ${SUBSETS.join('|')}]\n  --only agent  exec true, the first streamed byte, 4 KiB write+read pairs and 1 MiB files only; prints, writes no results\n  --only fleet  create p50 and ${DEFAULT_FLEET_PLAN.burst} creates at once: one server over SQLite, two and three over PostgreSQL, through two API servers, a paused machine's resume on its host and on another, and warm-pool creates through the API servers and on a host; podman beside; prints, writes no results\n`);
    process.exit(0);
  }
  const at = argv.indexOf('--only');
  if (at < 0) return null;
  const name = argv[at + 1];
  if (!(SUBSETS as readonly string[]).includes(name ?? '')) throw new Error(`--only takes one of ${SUBSETS.join(', ')}, not ${name ?? 'nothing'}`);
  return name as Subset;
}

/** The fleet's rows alone (issue 15), printed as a small table. */
async function measureFleetRows(signal: AbortSignal): Promise<number> {
  const host = await hostFacts();
  let found: string[] = [];
  try {
    const { lines, leftovers } = await measureFleet(DEFAULT_FLEET_PLAN, signal, progress);
    found = leftovers;
    process.stdout.write(`load average ${host.loadAvg1m.toFixed(2)} at the start, ${os.loadavg()[0]!.toFixed(2)} at the end\n\n${lines.join('\n')}\n`);
  } finally {
    await cleanupPodman().catch(() => undefined);
    found.push(...(await podmanLeftovers().catch((err: Error) => [`podman check failed: ${err.message}`])));
  }
  if (found.length) progress(`LEFT ON THE HOST: ${found.join('; ')}`);
  return found.length ? 1 : 0;
}

/** The in-machine agent's rows alone (issue 11), printed as a small table. */
async function measureAgentRows(signal: AbortSignal): Promise<number> {
  const leftovers: string[] = [];
  const host = await hostFacts();
  const lines: string[] = [];
  await withInstance('agent', leftovers, async (inst) => {
    progress(`exec true: ${PLAN.exec.warmup} warm-ups + ${PLAN.exec.count} timed`);
    const exec = summarize((await measureExec(inst, PLAN.exec.warmup, { ...PLAN.exec, signal })).execMs);
    progress('agent: first streamed byte, 4 KiB write+read pairs (no listing)');
    const ops = await measureAgentOps(inst, { ...DEFAULT_AGENT_OPS_PLAN, list: 0 }, signal);
    const first = summarize(ops.firstByteMs);
    const pair = summarize(ops.smallPairMs);
    progress('files: 1 MiB uploads and downloads');
    const files = await measureFiles(inst, signal, { ...DEFAULT_FILES_PLAN, cases: DEFAULT_FILES_PLAN.cases.filter((c) => c.mib === 1) });
    const mib = files.cases[0]!;
    const median = (xs: readonly number[]): string => summarize(xs).p50.toFixed(1);
    lines.push(
      `load average ${host.loadAvg1m.toFixed(2)} at the start, ${os.loadavg()[0]!.toFixed(2)} at the end`,
      '',
      '| what | p50 | p95 | n |',
      '| --- | --- | --- | --- |',
      `| exec \`true\`, HTTP round trip | ${formatMs(exec.p50)} ms | ${formatMs(exec.p95)} ms | ${exec.n} |`,
      `| exec streaming, first stdout byte of \`echo hi\` | ${formatMs(first.p50)} ms | ${formatMs(first.p95)} ms | ${first.n} |`,
      `| file 4 KiB write then read, pair | ${formatMs(pair.p50)} ms (${((2 * 1000) / pair.p50).toFixed(0)} ops/s) | ${formatMs(pair.p95)} ms | ${pair.n} |`,
      `| file 1 MiB upload / download, median | ${median(mib.uploadMBps)} / ${median(mib.downloadMBps)} MB/s | | ${mib.uploadMBps.length} |`,
      `| floor: bare node:http, 1 MiB up / down, median | ${median(files.floor[0]!.uploadMBps)} / ${median(files.floor[0]!.downloadMBps)} MB/s | | ${files.floor[0]!.uploadMBps.length} |`,
    );
  });
  process.stdout.write(`${lines.join('\n')}\n`);
  if (leftovers.length) progress(`LEFT ON THE HOST: ${leftovers.join('; ')}`);
  return leftovers.length ? 1 : 0;
}

async function main(): Promise<number> {
  const subset = subsetOf(process.argv.slice(2));
  const controller = new AbortController();
  const { signal } = controller;
  // Kept for the whole run: a second signal during cleanup must not kill the process half-way.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      progress(controller.signal.aborted ? `${sig}: already stopping, cleanup in progress` : `${sig}: stopping; cleaning up first`);
      controller.abort(new Error(`interrupted by ${sig}`));
    });
  }
  if (subset === 'agent') return measureAgentRows(signal);
  if (subset === 'fleet') return measureFleetRows(signal);
  const started = performance.now();
  const startedAt = new Date();
  const host = await hostFacts();
  const leftovers: string[] = [];
  let create: CreateDestroySamples | undefined;
  let podman: PodmanResult | undefined;
  let floor: FloorResult[] | undefined;
  let reads: ReadResults | undefined;
  let snapshots: HangarSnapshotResults | undefined;
  let checkpoint: PodmanCheckpointResult | undefined;
  let warmPool: WarmPoolSamples | undefined;
  let burst: BurstSamples | undefined;
  let density: DensityResults | undefined;
  let densityFloor: DensityFloorResult[] | undefined;
  let wrk: WrkResult | undefined;
  let exec: ExecSamples | undefined;
  let podmanExec: PodmanExecResult | undefined;
  let files: FilesSamples | undefined;
  let volumes: VolumeWriteSamples | undefined;
  let agentOps: AgentOpsSamples | undefined;
  let ingress: IngressResults | undefined;
  let templates: TemplateSamples | undefined;
  let e2b: E2bSamples | undefined;
  let failure: unknown = null;
  try {
    await withInstance('create', leftovers, async (inst) => {
      progress(`create → running, then destroy: ${PLAN.create.warmup} warm-ups + ${PLAN.create.count} timed (${inst.server.url})`);
      create = await measureCreateDestroy(inst.client, PLAN.create.warmup, { ...PLAN.create, signal });
      // The peer starts the very same root filesystem: the base template this server built.
      const rootfs = join(inst.server.settings.templatesDir, 'base', 'rootfs');
      progress(`podman run -d / rm -f: ${PLAN.podman.warmup} warm-ups + ${PLAN.podman.count} timed`);
      podman = await measurePodman(rootfs, PLAN.podman.warmup, { ...PLAN.podman, signal });
      if (!podman.available) progress(`podman: unavailable (${podman.reason})`);
      progress(`the floor: bare runc run -d (and crun) of the same machine, ${PLAN.podman.warmup} warm-ups + ${PLAN.podman.count} timed, then ${PLAN.burst} at once`);
      floor = await measureRuntimeFloor(rootfs, PLAN.podman.warmup, { ...PLAN.podman, signal }, PLAN.burst);
      for (const f of floor) if (!f.available) progress(`${f.runtime}: unavailable (${f.reason})`);
      progress(`exec true: ${PLAN.exec.warmup} warm-ups + ${PLAN.exec.count} timed; then podman exec`);
      exec = await measureExec(inst, PLAN.exec.warmup, { ...PLAN.exec, signal });
      podmanExec = await measurePodmanExec(rootfs, PLAN.podmanExec.warmup, { ...PLAN.podmanExec, signal });
      if (!podmanExec.available) progress(`podman exec: unavailable (${podmanExec.reason})`);
      progress('files: 1 MiB and 100 MiB uploads and downloads');
      files = await measureFiles(inst, signal);
      progress(`volumes: ${DEFAULT_VOLUMES_PLAN.mib} MiB written with fsync to a volume and to the machine's own disk, ${DEFAULT_VOLUMES_PLAN.count} times each`);
      volumes = await measureVolumes(inst, signal);
      progress('agent: first streamed byte, 4 KiB write+read pairs, a 1,000-entry listing');
      agentOps = await measureAgentOps(inst, DEFAULT_AGENT_OPS_PLAN, signal);
      progress(`ingress: wrk through the proxy and directly, ${PLAN.wrk.durationS} s each`);
      ingress = await measureIngress(inst, PLAN.wrk, signal);
    });
    await withInstance('reads', leftovers, async (inst) => {
      progress(`reads with ${PLAN.reads.storeRows} store rows + ${PLAN.reads.realMachines} real machines, then ${PLAN.reads.throughput.durationMs / 1000} s of load`);
      reads = await measureReads(inst, PLAN.reads, signal);
      const w = PLAN.wrk;
      progress(`wrk: GET /v1/machines/{id}, ${w.connections} connections for ${w.durationS} s`);
      const someId = (await inst.client.expect<{ items: Array<{ id: string }> }>(200, 'GET', '/v1/machines?limit=1')).body.items[0]?.id;
      if (!someId) throw new Error('the reads instance has no machine to GET');
      wrk = await measureWrk(inst.server.url, { Authorization: `Bearer ${inst.apiKey}` }, `/v1/machines/${someId}`, w, signal);
      if (!wrk.available) progress(`wrk: unavailable (${wrk.reason})`);
    });
    await withInstance('warm', leftovers, async (inst) => {
      const wp = PLAN.warmPool;
      progress(`warm pool of ${wp.size}: fill, then ${wp.warmup} warm-ups + ${wp.count} timed hits (${inst.server.url})`);
      warmPool = await measureWarmPool(inst, wp, signal);
      progress(`${PLAN.burst} cold creates at once, then ${PLAN.burst} destroys at once`);
      burst = await measureBurst(inst, PLAN.burst, signal);
    });
    progress(`density: up to ${PLAN.density.target} idle machines, ${PLAN.density.concurrency} creates in flight`);
    density = await measureDensity(PLAN.density, leftovers, signal, progress);
    // A server of its own for the base template's root filesystem: the create instance's is gone with its data dir.
    await withInstance('floor', leftovers, async (inst) => {
      const rootfs = join(inst.server.settings.templatesDir, 'base', 'rootfs');
      densityFloor = [];
      for (const mounts of [0, 3]) {
        progress(`the density floor: ${PLAN.density.target} bare runc run -d kept running, ${PLAN.density.concurrency} in flight, ${mounts} host mounts each`);
        const f = await measureDensityFloor('runc', rootfs, PLAN.density.target, PLAN.density.concurrency, signal, mounts);
        if (!f.available) progress(`density floor: unavailable (${f.reason})`);
        densityFloor.push(f);
      }
    });
    await withInstance('snapshots', leftovers, async (inst) => {
      const pr = PLAN.snapshots.pauseResume;
      progress(
        `pause + resume: ${pr.warmup} warm-ups + ${pr.count} timed, idle and holding ${PLAN.snapshots.heldMiB} MiB; ` +
          `then ${PLAN.snapshots.snapshotFork.count} live snapshots + forks (${inst.server.url})`,
      );
      snapshots = await measureHangarSnapshots(inst, PLAN.snapshots, signal);
      const rootfs = join(inst.server.settings.templatesDir, 'base', 'rootfs');
      progress(`podman container checkpoint / restore: ${PLAN.checkpoint.warmup} warm-up + ${PLAN.checkpoint.count} timed, idle and holding ${PLAN.checkpoint.heldMiB} MiB`);
      checkpoint = await measurePodmanCheckpoint(rootfs, PLAN.checkpoint, signal);
      for (const [name, c] of Object.entries({ idle: checkpoint.idle, held: checkpoint.held })) {
        if (!c.available) progress(`podman checkpoint (${name}): unavailable (${c.reason})`);
      }
    });
    await withInstance('templates', leftovers, async (inst) => {
      progress('templates: builds (Debian + hello, OCI archives, a layer over base); start_cmd creates vs cold create + start vs podman');
      templates = await measureTemplates(inst, DEFAULT_TEMPLATE_PLAN, signal);
    });
    progress(`e2b SDK: Sandbox.create + first commands.run, ${PLAN.e2bRounds} rounds cold and ${PLAN.e2bRounds} from a warm pool`);
    e2b = await measureE2b(PLAN.e2bRounds, signal);
  } catch (err) {
    failure = err;
  } finally {
    await cleanupPodman().catch(() => undefined);
    leftovers.push(...(await podmanLeftovers().catch((err: Error) => [`podman check failed: ${err.message}`])));
    leftovers.push(...(await checkpointLeftovers()));
  }

  if (leftovers.length) progress(`LEFT ON THE HOST: ${leftovers.join('; ')}`);
  if (failure !== null || !create || !podman || !floor || !reads || !snapshots || !checkpoint || !warmPool || !burst || !density || !densityFloor || !wrk || !exec || !podmanExec || !files || !volumes || !agentOps || !ingress || !templates || !e2b) {
    progress(`FAILED: ${failure instanceof Error ? (failure.stack ?? failure.message) : String(failure)}`);
    return 1;
  }
  const results: BenchResults = {
    date: startedAt.toISOString().slice(0, 10),
    startedAt: startedAt.toISOString(),
    durationMs: performance.now() - started,
    host,
    create,
    podman,
    floor,
    reads,
    snapshots,
    checkpoint,
    warmPool,
    burst,
    density,
    densityFloor,
    wrk,
    exec,
    podmanExec,
    files,
    volumes,
    agentOps,
    ingress,
    templates,
    e2b,
    leftovers,
  };
  const markdown = renderMarkdown(results);
  process.stdout.write(markdown);
  const written = await writeResults(RESULTS_DIR, results, markdown);
  progress(`wrote ${written.join(', ')}`);
  return leftovers.length ? 1 : 0;
}

process.exitCode = await main();
