/**
 * The chaos run (issue 14): a real server process (`node dist/src/main.js`) takes random
 * lifecycle operations (create, create from a built template, pause, resume, Paperspace-style
 * stop and start, snapshot, fork, resize, restart, exec, delete; creates take a warm pool's
 * machines, which it refills in the background) while it is killed with SIGKILL at random moments, restarted on the same data dir and
 * reconciled. After each restart every machine must be in a state its operation could
 * leave it in (before, after, or `error` with a reason), every paused machine must still
 * have its snapshot, and nothing on the host may be without an owner. At the end every
 * machine, the pool and the template are deleted, the server stopped, the instance torn
 * down, and the host checked clean. Only loopback traffic.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
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
/** The config of every create, and of the warm pool's machines. */
const SMALL = { memory_mb: 64, disk_mb: 64 };
const POOL = 'chaos';
const TEMPLATE = 'chaos-t';

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

  /**
   * `runAs`: a uid (and gid) the server runs as, with no capabilities at all (`setpriv`); the data dir must be its.
   * `enter`: a command prefix the server runs under (`nsenter --net=…`: a host in a network namespace of its own).
   * `role`: the server's role argument (`agent`, `api`: role.ts); none: serve.
   */
  constructor(private readonly o: { dataDir: string; distDir: string; env?: Record<string, string>; runAs?: number; enter?: string[]; role?: string }) {}

  async start(): Promise<void> {
    const env = {
      ...process.env,
      HANGAR_DATA_DIR: this.o.dataDir,
      HANGAR_LISTEN: '127.0.0.1:0',
      HANGAR_BOOTSTRAP_KEY: ADMIN_KEY,
      HANGAR_LOG_LEVEL: 'silent',
      ...this.o.env,
    };
    const main = [process.execPath, join(this.o.distDir, 'src/main.js'), ...(this.o.role ? [this.o.role] : [])];
    const id = this.o.runAs === undefined ? null : String(this.o.runAs);
    const argv = [...(this.o.enter ?? []), ...(id === null ? main : ['setpriv', '--reuid', id, '--regid', id, '--clear-groups', '--bounding-set', '-all', '--inh-caps', '-all', '--no-new-privs', ...main])];
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
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
    // Exited, or killed by a signal already: there is no exit to wait for.
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    c.kill('SIGKILL');
    await once(c, 'exit');
  }

  /** SIGTERM, and its exit code once it has exited. */
  async stop(): Promise<number | null> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return c?.exitCode ?? null;
    c.kill('SIGTERM');
    const [code] = (await once(c, 'exit')) as [number | null];
    return code;
  }
}

type Json = Record<string, any>;

/** Every machine the server's database has that is not destroyed, of any team (the warm pool's too). */
function liveMachineIds(databasePath: string): Set<string> {
  const db = new Database(databasePath, { readonly: true, fileMustExist: true });
  try {
    return new Set((db.prepare("SELECT id FROM machines WHERE status != 'destroyed'").all() as { id: string }[]).map((r) => r.id));
  } finally {
    db.close();
  }
}

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
    // The host is read first and the owners after: a machine's record is written before anything of it is
    // made on the host and kept until all of it is gone, so whatever was seen must have a record by then. The
    // records are read from the database itself: the warm pool's machines, refilling in the background, are
    // no team's to list.
    const dirs = await readdir(settings.machinesDir).catch(() => [] as string[]);
    const runcRoot = `/run/${settings.instancePrefix}`;
    const containers = (await readdir(runcRoot).catch(() => [] as string[])).filter((id) => id.startsWith('mch_'));
    const mountTable = await readFile('/proc/self/mounts', 'utf8');
    const known = liveMachineIds(settings.databasePath);
    for (const dir of dirs) {
      if (!known.has(dir)) report.violations.push(`${when}: machine directory ${dir} has no live machine`);
    }
    for (const id of containers) {
      if (!known.has(id)) report.violations.push(`${when}: runc container ${id} has no live machine`);
    }
    const snapIds = new Set((await snapshots()).map((s) => s.id as string));
    for (const m of live) if (m.snapshot_id) snapIds.add(m.snapshot_id as string);
    for (const id of await readdir(settings.snapshotsDir).catch(() => [] as string[])) {
      if (id.startsWith('snap_') && !snapIds.has(id)) report.violations.push(`${when}: snapshot files ${id} belong to no snapshot`);
    }
    for (const line of mountTable.split('\n')) {
      const target = line.split(' ')[1] ?? '';
      const id = /\/machines\/(mch_[a-z0-9]+)\//.exec(target)?.[1];
      if (target.startsWith(o.dataDir) && id && !known.has(id)) report.violations.push(`${when}: mount ${target} has no live machine`);
    }
  };

  await server.start();
  // A warm pool whose config is the creates' (so creates take its machines and it refills in the background,
  // under the kills too), and a template built from base that some creates use.
  const pool = await call('PUT', `/v1/warm-pools/${POOL}`, { template: 'base', config: SMALL, size: 2 });
  if (!pool || pool.status >= 300) throw new Error(`chaos: could not make the warm pool: ${pool?.status} ${JSON.stringify(pool?.body)}`);
  const build = await call('POST', '/v1/templates', { name: TEMPLATE, source: { template: 'base' }, steps: [{ run: 'echo chaos > /etc/chaos-template' }] });
  if (!build || build.status !== 202) throw new Error(`chaos: could not build the template: ${build?.status} ${JSON.stringify(build?.body)}`);
  for (let i = 0; ; i++) {
    const b = await call('GET', `/v1/templates/${TEMPLATE}/builds/${build.body.id}`);
    if (b?.body.status === 'ready') break;
    if (b?.body.status === 'error' || i > 600) throw new Error(`chaos: the template build did not finish: ${JSON.stringify(b?.body)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  let untilKill = 1 + Math.floor(random() * o.killEvery * 2);
  for (let i = 0; i < o.operations; i++) {
    const all = (await machines()).filter((m) => m.status !== 'destroyed');
    const running = all.filter((m) => m.status === 'running');
    const paused = all.filter((m) => m.status === 'paused');
    const snaps = await snapshots();
    const choices: Array<[string, () => Promise<{ status: number; body: Json } | null>]> = [];
    if (all.length < 6) {
      choices.push(['create', () => call('POST', '/v1/machines', { config: SMALL })]);
      choices.push(['create from template', () => call('POST', '/v1/machines', { template: TEMPLATE, config: SMALL })]);
    }
    if (running.length) {
      const m = pick(running);
      choices.push(['pause', () => call('POST', `/v1/machines/${m.id}/pause`)]);
      choices.push(['snapshot', () => call('POST', `/v1/machines/${m.id}/snapshots`)]);
      choices.push(['resize', () => call('PATCH', `/v1/machines/${m.id}`, { config: { memory_mb: 64 + 16 * Math.floor(random() * 4) } })]);
      choices.push(['restart', () => call('PATCH', `/paperspace/v1/machines/${m.id}/restart`)]);
      choices.push(['stop', () => call('PATCH', `/paperspace/v1/machines/${m.id}/stop`)]);
      choices.push(['exec', () => call('POST', `/v1/machines/${m.id}/exec`, { cmd: ['sh', '-c', 'echo $RANDOM > /root/chaos'] })]);
    }
    if (paused.length) {
      choices.push(['resume', () => call('POST', `/v1/machines/${pick(paused).id}/resume`)]);
      choices.push(['start', () => call('PATCH', `/paperspace/v1/machines/${pick(paused).id}/start`)]);
    }
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
  const poolGone = await call('DELETE', `/v1/warm-pools/${POOL}`);
  if (!poolGone || poolGone.status >= 300) report.violations.push(`final delete of the warm pool: ${poolGone?.status} ${JSON.stringify(poolGone?.body).slice(0, 200)}`);
  const templateGone = await call('DELETE', `/v1/templates/${TEMPLATE}`);
  if (!templateGone || templateGone.status >= 300) report.violations.push(`final delete of the template: ${templateGone?.status} ${JSON.stringify(templateGone?.body).slice(0, 200)}`);
  await server.stop();
  // SIGTERM runs the server's close, which removes the instance's bridge and chains once it has no machines.
  const settings = loadSettings({ HANGAR_DATA_DIR: o.dataDir });
  report.leftovers = await leftovers(o.dataDir, settings.instancePrefix);
  report.ms = Date.now() - started;
  return report;
}
