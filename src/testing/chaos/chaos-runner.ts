/**
 * The chaos run (issue 14): a real server process (`node dist/src/main.js`) takes random
 * lifecycle operations (create, pause, resume, snapshot, fork, resize, restart, delete)
 * while it is killed with SIGKILL at random moments, restarted on the same data dir and
 * reconciled. After each restart every machine must be in a state its operation could
 * leave it in (before, after, or `error` with a reason), every paused machine must still
 * have its snapshot, and nothing on the host may be without an owner. At the end every
 * machine is destroyed, the server stopped, the instance torn down, and the host checked
 * clean. Only loopback traffic.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { loadSettings } from '../../settings.js';
import { leftovers } from '../host-leftovers.js';

/** What a chaos run did and found. */
export interface ChaosReport {
  seed: number;
  operations: number;
  /** Operations answered 2xx / 4xx / 5xx / cut by a kill (no answer). */
  answered: { ok: number; refused: number; failed: number; cut: number };
  kills: number;
  /** Machines seen in each status after the restarts (summed over checks). */
  statuses: Record<string, number>;
  /** Broken promises: each a sentence. Empty on success. */
  violations: string[];
  /** Host resources left after the final teardown. */
  leftovers: string[];
  ms: number;
}

export interface ChaosOptions {
  dataDir: string;
  operations: number;
  /** Kill the server after about this many operations on average. */
  killEvery: number;
  seed: number;
  /** Dist directory holding src/main.js. */
  distDir: string;
  log?: (line: string) => void;
}

export const ADMIN_KEY = 'hangar-chaos-admin-key-0123456789';

/** A small seeded generator (mulberry32), so a run can be replayed from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A Hangar server as its own process (`node dist/src/main.js`), to kill or stop with a signal. */
export class ServerProcess {
  child: ChildProcess | null = null;
  url = '';
  /** Everything it printed (stdout and stderr). */
  output = '';

  constructor(private readonly o: { dataDir: string; distDir: string; env?: Record<string, string> }) {}

  async start(): Promise<void> {
    const env = {
      ...process.env,
      HANGAR_DATA_DIR: this.o.dataDir,
      HANGAR_LISTEN: '127.0.0.1:0',
      HANGAR_BOOTSTRAP_KEY: ADMIN_KEY,
      HANGAR_LOG_LEVEL: 'silent',
      ...this.o.env,
    };
    const child = spawn(process.execPath, [join(this.o.distDir, 'src/main.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.output = '';
    child.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
    const deadline = Date.now() + 120_000;
    while (!/listening on (http:\/\/\S+)/.test(this.output)) {
      if (child.exitCode !== null) throw new Error(`the server exited at start: ${this.output}`);
      if (Date.now() > deadline) throw new Error(`the server did not start: ${this.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    this.url = /listening on (http:\/\/\S+)/.exec(this.output)![1]!;
  }

  async kill(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null) return;
    c.kill('SIGKILL');
    await once(c, 'exit');
  }

  /** SIGTERM, and its exit code once it has exited. */
  async stop(): Promise<number | null> {
    const c = this.child;
    if (!c || c.exitCode !== null) return c?.exitCode ?? null;
    c.kill('SIGTERM');
    const [code] = (await once(c, 'exit')) as [number | null];
    return code;
  }
}

type Json = Record<string, any>;

/** Run the chaos; never throws for a violation (they are in the report). */
export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const started = Date.now();
  const random = rng(o.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const log = o.log ?? (() => undefined);
  const server = new ServerProcess(o);
  const report: ChaosReport = { seed: o.seed, operations: 0, answered: { ok: 0, refused: 0, failed: 0, cut: 0 }, kills: 0, statuses: {}, violations: [], leftovers: [], ms: 0 };
  const call = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: Json } | null> => {
    try {
      const res = await fetch(`${server.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN_KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(120_000),
      });
      const text = await res.text();
      return { status: res.status, body: text ? (JSON.parse(text) as Json) : {} };
    } catch {
      return null;
    }
  };
  const machines = async (): Promise<Json[]> => ((await call('GET', '/v1/machines'))?.body as unknown as Json[]) ?? [];
  const snapshots = async (): Promise<Json[]> => ((await call('GET', '/v1/snapshots'))?.body.items as Json[]) ?? [];

  /** The promises that must hold after every restart. */
  const check = async (when: string): Promise<void> => {
    const settings = loadSettings({ HANGAR_DATA_DIR: o.dataDir });
    const all = await machines();
    const live = all.filter((m) => m.status !== 'destroyed');
    for (const m of live) {
      report.statuses[m.status] = (report.statuses[m.status] ?? 0) + 1;
      if (m.status === 'creating') report.violations.push(`${when}: ${m.id} is still creating after the restart's reconciliation`);
      if (m.status === 'error' && !(typeof m.error_reason === 'string' && m.error_reason.length > 0)) report.violations.push(`${when}: ${m.id} is in error without a reason`);
      if (m.status === 'paused') {
        if (!m.snapshot_id) report.violations.push(`${when}: paused ${m.id} has no snapshot_id`);
        else if (!(await stat(join(settings.snapshotsDir, m.snapshot_id, 'disk.img')).catch(() => null))) report.violations.push(`${when}: paused ${m.id} lost its snapshot's disk image (${m.snapshot_id})`);
      }
    }
    // Nothing on the host without an owner: machine dirs, containers, mounts and snapshot files of unknown ids.
    const known = new Set(live.map((m) => m.id));
    for (const dir of await readdir(settings.machinesDir).catch(() => [] as string[])) {
      if (!known.has(dir)) report.violations.push(`${when}: machine directory ${dir} has no live machine`);
    }
    const runcRoot = `/run/${settings.instancePrefix}`;
    for (const id of await readdir(runcRoot).catch(() => [] as string[])) {
      if (!known.has(id) && id.startsWith('mch_')) report.violations.push(`${when}: runc container ${id} has no live machine`);
    }
    const snapIds = new Set((await snapshots()).map((s) => s.id as string));
    for (const m of live) if (m.snapshot_id) snapIds.add(m.snapshot_id as string);
    for (const id of await readdir(settings.snapshotsDir).catch(() => [] as string[])) {
      if (id.startsWith('snap_') && !snapIds.has(id)) report.violations.push(`${when}: snapshot files ${id} belong to no snapshot`);
    }
    const mounts = (await import('node:fs/promises')).readFile('/proc/self/mounts', 'utf8');
    for (const line of (await mounts).split('\n')) {
      const target = line.split(' ')[1] ?? '';
      const id = /\/machines\/(mch_[a-z0-9]+)\//.exec(target)?.[1];
      if (target.startsWith(o.dataDir) && id && !known.has(id)) report.violations.push(`${when}: mount ${target} has no live machine`);
    }
  };

  await server.start();
  let untilKill = 1 + Math.floor(random() * o.killEvery * 2);
  for (let i = 0; i < o.operations; i++) {
    const all = (await machines()).filter((m) => m.status !== 'destroyed');
    const running = all.filter((m) => m.status === 'running');
    const paused = all.filter((m) => m.status === 'paused');
    const snaps = await snapshots();
    const choices: Array<[string, () => Promise<{ status: number; body: Json } | null>]> = [];
    if (all.length < 6) choices.push(['create', () => call('POST', '/v1/machines', { config: { memory_mb: 64, disk_mb: 64 } })]);
    if (running.length) {
      const m = pick(running);
      choices.push(['pause', () => call('POST', `/v1/machines/${m.id}/pause`)]);
      choices.push(['snapshot', () => call('POST', `/v1/machines/${m.id}/snapshots`)]);
      choices.push(['resize', () => call('PATCH', `/v1/machines/${m.id}`, { config: { memory_mb: 64 + 16 * Math.floor(random() * 4) } })]);
      choices.push(['restart', () => call('PATCH', `/paperspace/v1/machines/${m.id}/restart`)]);
      choices.push(['exec', () => call('POST', `/v1/machines/${m.id}/exec`, { cmd: ['sh', '-c', 'echo $RANDOM > /root/chaos'] })]);
    }
    if (paused.length) choices.push(['resume', () => call('POST', `/v1/machines/${pick(paused).id}/resume`)]);
    if (snaps.length && all.length < 6) choices.push(['fork', () => call('POST', '/v1/machines', { snapshot_id: pick(snaps).id })]);
    if (all.length) choices.push(['delete', () => call('DELETE', `/v1/machines/${pick(all).id}`)]);
    if (!choices.length) continue;
    const [name, op] = pick(choices);
    report.operations++;
    untilKill--;
    let answer: { status: number; body: Json } | null;
    if (untilKill <= 0) {
      // Kill in the middle of this operation, after a random part of a second.
      const pending = op();
      await new Promise((r) => setTimeout(r, Math.floor(random() * 400)));
      await server.kill();
      report.kills++;
      answer = await pending;
      log(`op ${i} ${name}: killed mid-operation (answer ${answer?.status ?? 'none'})`);
      await server.start();
      await check(`after kill ${report.kills} (during ${name})`);
      untilKill = 1 + Math.floor(random() * o.killEvery * 2);
    } else answer = await op();
    if (answer === null) report.answered.cut++;
    else if (answer.status < 400) report.answered.ok++;
    else if (answer.status < 500) report.answered.refused++;
    else {
      report.answered.failed++;
      // A 5xx must leave the machine as it was, or in error with the reason: checked at the next check.
      log(`op ${i} ${name}: ${answer.status} ${JSON.stringify(answer.body).slice(0, 200)}`);
    }
  }
  await server.kill();
  report.kills++;
  await server.start();
  await check('after the last kill');
  for (const m of (await machines()).filter((x) => x.status !== 'destroyed')) {
    const r = await call('DELETE', `/v1/machines/${m.id}`);
    if (!r || r.status >= 400) report.violations.push(`final delete of ${m.id} (${m.status}): ${r?.status} ${JSON.stringify(r?.body).slice(0, 200)}`);
  }
  for (const s of await snapshots()) await call('DELETE', `/v1/snapshots/${s.id}`);
  await server.stop();
  // SIGTERM runs the server's close, which removes the instance's bridge and chains once it has no machines.
  const settings = loadSettings({ HANGAR_DATA_DIR: o.dataDir });
  report.leftovers = await leftovers(o.dataDir, settings.instancePrefix);
  report.ms = Date.now() - started;
  return report;
}
