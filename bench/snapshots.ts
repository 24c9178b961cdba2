import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_CONFIG } from '../src/domain/machine.js';
import { run } from '../src/runtime/runc/command.js';
import { snapshotPaths } from '../src/runtime/runc/snapshot-files.js';
import { execIn } from '../src/testing/harness.js';
import { boundedLoop, type LoopBounds, type LoopOutcome } from './bounded-loop.js';
import { criuLogTimes } from './criu-log.js';
import type { BenchInstance } from './hangar-instance.js';
import { checkHolder, holderState, memoryUsageBytes, startHolder, type Exec, type HolderState } from './held-process.js';

/** How much of pause/resume, snapshot and fork to measure. */
export interface SnapshotPlan {
  /** Untimed cycles first, then timed ones, per machine. */
  pauseResume: { warmup: number; count: number; budgetMs: number };
  /** Memory the second machine's holder process keeps touched. */
  heldMiB: number;
  /** config.memory_mb of that machine. */
  heldMemoryMb: number;
  snapshotFork: { warmup: number; count: number; budgetMs: number };
}

/** Pause + resume cycles of one machine, with what was checked and measured while it was paused. */
export interface PauseResumeSamples {
  heldMiB: number;
  memoryMb: number;
  pauseMs: number[];
  resumeMs: number[];
  /** size_bytes of GET /v1/snapshots/{id} while paused. */
  apiSizeBytes: number[];
  /** `du -sk` of <dataDir>/snapshots/<id> while paused. */
  duKiB: number[];
  /** CRIU's own time, from dump.log / restore.log. */
  criuDumpMs: number[];
  criuFreezeMs: number[];
  criuRestoreMs: number[];
  /** Hangar's own share of each round trip: pause/resume time minus CRIU's (container removal, mounts, files, SQLite, HTTP). */
  pauseRestMs: number[];
  resumeRestMs: number[];
  /** The holder process before the first pause and after the last resume. */
  holder: HolderState;
  holderAfter: HolderState;
  /** The machine's memory cgroup usage before the first pause and after the last resume. */
  cgroupBytesBefore: number;
  cgroupBytesAfter: number;
  warmup: number;
  loop: LoopOutcome;
}

/** Live snapshots of the idle machine, each forked once. */
export interface SnapshotForkSamples {
  snapshotMs: number[];
  forkMs: number[];
  sizeBytes: number[];
  warmup: number;
  loop: LoopOutcome;
}

/** Everything measured about Hangar's snapshots. */
export interface HangarSnapshotResults {
  criu: string | null;
  idle: PauseResumeSamples;
  held: PauseResumeSamples;
  snapshotFork: SnapshotForkSamples;
}

interface MachineBody {
  id: string;
  status: string;
  snapshot_id?: string;
}

interface SnapshotBody {
  id: string;
  size_bytes: number;
  memory: boolean;
}

const SLOW_MS = 180_000;

function execOf(inst: BenchInstance, id: string): Exec {
  return async (argv) => {
    const r = await execIn(inst.server, id, argv);
    if (r.code !== 0) throw new Error(`runc exec ${argv.join(' ').slice(0, 80)} in ${id} exited ${r.code}: ${r.out.trim()}`);
    return r.out;
  };
}

async function duKiB(path: string): Promise<number> {
  return Number((await run('du', ['-sk', path])).split('\t')[0]);
}

/** Create a machine, run `fn` on it, destroy it (the instance's destroyAll is the backstop). */
async function withMachine<T>(inst: BenchInstance, body: unknown, fn: (id: string) => Promise<T>): Promise<T> {
  const created = await inst.client.expect<MachineBody>(201, 'POST', '/v1/machines', body);
  if (created.body.status !== 'running') throw new Error(`create answered status ${created.body.status}, not running`);
  try {
    return await fn(created.body.id);
  } finally {
    await inst.client.expect(200, 'DELETE', `/v1/machines/${created.body.id}`).catch(() => undefined);
  }
}

/** One pause and resume; the holder must be the same process afterwards. */
async function pauseResumeOnce(inst: BenchInstance, id: string, holder: HolderState, mib: number, when: string) {
  const { client, server } = inst;
  const paused = await client.expect<MachineBody>(200, 'POST', `/v1/machines/${id}/pause`, undefined, SLOW_MS);
  const snapId = paused.body.snapshot_id;
  if (paused.body.status !== 'paused' || !snapId) throw new Error(`pause answered status ${paused.body.status}, snapshot ${snapId}`);
  // Untimed, while paused: the snapshot as the API and the disk see it, and CRIU's log (deleted by resume).
  const snap = await client.expect<SnapshotBody>(200, 'GET', `/v1/snapshots/${snapId}`);
  if (!snap.body.memory) throw new Error(`pause of ${id} kept no memory: resume would restart init`);
  const dir = snapshotPaths(server.settings.snapshotsDir, snapId).dir;
  const du = await duKiB(dir);
  const dump = criuLogTimes(await readFile(join(dir, 'work', 'dump.log'), 'utf8').catch(() => ''));
  const resumed = await client.expect<MachineBody>(200, 'POST', `/v1/machines/${id}/resume`, undefined, SLOW_MS);
  if (resumed.body.status !== 'running') throw new Error(`resume answered status ${resumed.body.status}, not running`);
  const restore = criuLogTimes(await readFile(join(server.settings.machinesDir, id, 'restore-work', 'restore.log'), 'utf8').catch(() => ''));
  checkHolder(holder, await holderState(execOf(inst, id), holder.pid), mib, when);
  return { pauseMs: paused.ms, resumeMs: resumed.ms, apiSize: snap.body.size_bytes, du, dump, restore };
}

/** Start a holder of `mib` MiB in the machine, then pause and resume it `warmup` + `bounds.count` times. */
async function measurePauseResume(inst: BenchInstance, id: string, mib: number, memoryMb: number, warmup: number, bounds: LoopBounds): Promise<PauseResumeSamples> {
  const exec = execOf(inst, id);
  const cgroup = `/${inst.server.settings.instancePrefix}/${id}`;
  const holder = await startHolder(exec, mib);
  const cgroupBytesBefore = await memoryUsageBytes(cgroup);
  for (let i = 0; i < warmup; i++) await pauseResumeOnce(inst, id, holder, mib, `after warm-up resume ${i + 1}`);
  const s: Omit<PauseResumeSamples, 'holderAfter' | 'cgroupBytesAfter' | 'loop'> = {
    heldMiB: mib, memoryMb, pauseMs: [], resumeMs: [], apiSizeBytes: [], duKiB: [], criuDumpMs: [], criuFreezeMs: [], criuRestoreMs: [],
    pauseRestMs: [], resumeRestMs: [], holder, cgroupBytesBefore, warmup,
  };
  const loop = await boundedLoop(bounds, async (i) => {
    const c = await pauseResumeOnce(inst, id, holder, mib, `after resume ${i + 1}`);
    s.pauseMs.push(c.pauseMs);
    s.resumeMs.push(c.resumeMs);
    s.apiSizeBytes.push(c.apiSize);
    s.duKiB.push(c.du);
    if (c.dump) {
      s.criuDumpMs.push(c.dump.totalMs);
      s.pauseRestMs.push(c.pauseMs - c.dump.totalMs);
      if (c.dump.freezeMs !== null) s.criuFreezeMs.push(c.dump.freezeMs);
    }
    if (c.restore) {
      s.criuRestoreMs.push(c.restore.totalMs);
      s.resumeRestMs.push(c.resumeMs - c.restore.totalMs);
    }
  });
  const holderAfter = (await holderState(exec, holder.pid))!;
  return { ...s, holderAfter, cgroupBytesAfter: await memoryUsageBytes(cgroup), loop };
}

/** Snapshot the running machine live, fork it, check the fork's holder, then delete fork and snapshot. */
async function snapshotForkOnce(inst: BenchInstance, id: string, holder: HolderState) {
  const { client } = inst;
  const snap = await client.expect<SnapshotBody>(201, 'POST', `/v1/machines/${id}/snapshots`, undefined, SLOW_MS);
  try {
    if (!snap.body.memory) throw new Error(`snapshot of ${id} kept no memory`);
    const fork = await client.expect<MachineBody>(201, 'POST', '/v1/machines', { snapshot_id: snap.body.id }, SLOW_MS);
    try {
      if (fork.body.status !== 'running') throw new Error(`fork answered status ${fork.body.status}, not running`);
      checkHolder(holder, await holderState(execOf(inst, fork.body.id), holder.pid), 0, `in fork ${fork.body.id}`);
    } finally {
      await client.expect(200, 'DELETE', `/v1/machines/${fork.body.id}`);
    }
    return { snapshotMs: snap.ms, forkMs: fork.ms, sizeBytes: snap.body.size_bytes };
  } finally {
    await client.expect(204, 'DELETE', `/v1/snapshots/${snap.body.id}`);
  }
}

async function measureSnapshotFork(inst: BenchInstance, id: string, holder: HolderState, warmup: number, bounds: LoopBounds): Promise<SnapshotForkSamples> {
  for (let i = 0; i < warmup; i++) await snapshotForkOnce(inst, id, holder);
  const s: Omit<SnapshotForkSamples, 'loop'> = { snapshotMs: [], forkMs: [], sizeBytes: [], warmup };
  const loop = await boundedLoop(bounds, async () => {
    const c = await snapshotForkOnce(inst, id, holder);
    s.snapshotMs.push(c.snapshotMs);
    s.forkMs.push(c.forkMs);
    s.sizeBytes.push(c.sizeBytes);
  });
  checkHolder(holder, await holderState(execOf(inst, id), holder.pid), 0, 'in the source after its snapshots');
  return { ...s, loop };
}

/**
 * Pause/resume cycles of an idle base machine and of one holding `heldMiB` of touched
 * memory, then live snapshots and forks of the idle one; every resume and fork is
 * checked to continue the same holder process.
 */
export async function measureHangarSnapshots(inst: BenchInstance, plan: SnapshotPlan, signal: AbortSignal): Promise<HangarSnapshotResults> {
  const info = await inst.client.expect<{ snapshots: { memory: boolean; criu: string | null; reason: string | null } }>(200, 'GET', '/v1/info');
  if (!info.body.snapshots.memory) throw new Error(`memory snapshots are unavailable on this host: ${info.body.snapshots.reason}`);
  const pr = plan.pauseResume;
  const { idle, snapshotFork } = await withMachine(inst, {}, async (id) => {
    const idle = await measurePauseResume(inst, id, 0, DEFAULT_CONFIG.memory_mb, pr.warmup, { ...pr, signal });
    const snapshotFork = await measureSnapshotFork(inst, id, idle.holder, plan.snapshotFork.warmup, { ...plan.snapshotFork, signal });
    return { idle, snapshotFork };
  });
  const held = await withMachine(inst, { config: { memory_mb: plan.heldMemoryMb } }, (id) =>
    measurePauseResume(inst, id, plan.heldMiB, plan.heldMemoryMb, pr.warmup, { ...pr, signal }),
  );
  return { criu: info.body.snapshots.criu, idle, held, snapshotFork };
}
