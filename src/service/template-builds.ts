/**
 * Template builds. A build makes the layers of a new template version, in order:
 *  1. its source: a Debian tree (mmdebstrap), an unpacked image (skopeo, umoci), or the
 *     layers of another template (a directory template is copied in as a layer once);
 *  2. its steps, in one build machine (a real machine of the runtime, with outbound
 *     network) started on those layers; what the steps changed becomes one new layer;
 *  3. with `start_cmd`, a machine of the finished template runs the command until
 *     `ready_cmd` succeeds, and a live snapshot of it is kept: creates fork from it.
 * The version becomes current only when everything succeeded. A failure ends the build
 * as `error` with the failing step; its machines are destroyed, its staging removed, and
 * the name keeps its previous version.
 */
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { HangarError } from '../domain/errors.js';
import { newMachineId, newSnapshotId } from '../domain/ids.js';
import { DEFAULT_CONFIG, type MachineConfig } from '../domain/machine.js';
import { newBuildId, type BuildStep, type BuiltTemplate, type TemplateBuildRecord, type TemplateBuildSpec } from '../domain/template.js';
import type { Caller } from '../domain/team.js';
import { AGENT_BINARY_IN_MACHINE } from '../runtime/agent/protocol.js';
import type { ExecIo, MachineSpec } from '../runtime/runtime.js';
import type { LayerStore } from '../templates/layers.js';
import { treeBytes } from '../templates/layers.js';
import { debianTree, imageTree, SourceError } from '../templates/sources.js';
import type { Template } from '../templates/templates.js';
import type { BuildLogs } from './build-log.js';
import type { MachineCore } from './machine-core.js';
import type { TemplateService } from './template-service.js';
import type { UploadStore } from './uploads.js';

/** Machines of built templates start this as pid 1: it reaps orphans and waits (the agent's own init). */
export const BUILT_TEMPLATE_INIT = [AGENT_BINARY_IN_MACHINE, 'init'];
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** The build machine: large enough for apt, pip and npm. */
const BUILD_MACHINE: MachineConfig = { vcpus: 2, memory_mb: 2048, disk_mb: 8192 };
/** Where a start command's output goes inside the machine (it outlives the build's connection). */
const START_LOG = '/var/log/hangar-start.log';

/** What a build request carries once its fields are checked. */
export interface BuildRequest extends TemplateBuildSpec {
  name: string;
  /** Admins only: a template every team sees. */
  serverWide: boolean;
}

/** A build step failed: the step's name and what happened, for the record. */
class StepError extends Error {
  constructor(
    readonly step: string,
    message: string,
  ) {
    super(message);
  }
}

export interface TemplateBuilderOptions {
  core: MachineCore;
  templates: TemplateService;
  layers: LayerStore;
  logs: BuildLogs;
  uploads: UploadStore;
  /** Builds running at once; later ones wait their turn. @default 1 */
  concurrency?: number;
}

export class TemplateBuilder {
  private running = 0;
  private readonly queue: (() => void)[] = [];
  private readonly inflight = new Set<Promise<void>>();
  /** Layers a running build has stored but not yet recorded: the collector leaves them. */
  readonly pinned = new Set<string>();
  private readonly aborts = new Set<AbortController>();
  private closing = false;
  private readonly signals = new Map<string, AbortSignal>();

  constructor(private readonly o: TemplateBuilderOptions) {}

  /** Check a build request, record it as the next version (`building`) and start it; returns the record. */
  async start(caller: Caller, req: BuildRequest): Promise<TemplateBuildRecord> {
    const { core, templates } = this.o;
    if (req.serverWide && !caller.team.isAdmin) throw new HangarError('FORBIDDEN', 'Only an admin API key may build a server-wide template; omit server_wide.');
    if (await templates.isDirectoryName(req.name)) {
      throw new HangarError('TEMPLATE_NAME_TAKEN', `"${req.name}" is a server template; give your template another name.`, { name: req.name });
    }
    const teamId = req.serverWide ? null : caller.team.id;
    if (teamId !== null && (await core.store.currentTemplate(null, req.name))) {
      throw new HangarError('TEMPLATE_NAME_TAKEN', `"${req.name}" is a server-wide template; give your template another name.`, { name: req.name });
    }
    const source = req.source;
    if ('template' in source && !(await templates.resolve(teamId, source.template))) {
      throw new HangarError('UNKNOWN_TEMPLATE', `source.template "${source.template}" does not exist; list templates with GET /v1/templates.`, { template: source.template });
    }
    if ('image' in source) {
      if (source.image.path !== undefined && !caller.team.isAdmin) {
        throw new HangarError('FORBIDDEN', 'Only an admin API key may name an image by a server path; upload it with POST /v1/uploads and give source.image.upload_id.');
      }
      if (source.image.upload_id !== undefined) await this.o.uploads.get(caller.team.id, source.image.upload_id);
    }
    for (const step of req.steps) if ('copy' in step) await this.o.uploads.get(caller.team.id, step.copy.upload_id);
    if (req.startCmd !== null && !(await core.runtime.snapshotSupport()).memory) {
      throw new HangarError('UNSUPPORTED_OPERATION', 'start_cmd needs memory snapshots (CRIU), which this server does not have; omit start_cmd.');
    }
    const spec: TemplateBuildSpec = {
      source: req.source, steps: req.steps, description: req.description, startCmd: req.startCmd, readyCmd: req.readyCmd,
      readyTimeoutMs: req.readyTimeoutMs, timeoutMs: req.timeoutMs,
    };
    const b: TemplateBuildRecord = {
      id: newBuildId(), teamId, name: req.name, version: 0, status: 'building', spec, result: null, error: null,
      createdAt: core.now(), finishedAt: null, deletedAt: null, hostId: core.hostId,
    };
    // A new name of the team counts against its templates quota; a new version of one it has does not.
    const isNew = teamId !== null && !(await core.store.latestTemplateBuild(teamId, req.name));
    const release = await core.quotas.reserve(caller.team.id, { templates: isNew ? 1 : 0 });
    try {
      b.version = await core.store.insertTemplateBuild(b);
    } finally {
      release();
    }
    this.o.logs.open(b.id);
    const timedRun = async (): Promise<void> => {
      await this.run(b, caller.team.id);
      // Only for the metrics: a failed build is an error outcome (the record holds why).
      if (b.status === 'error') throw Object.assign(new Error(b.error?.message ?? 'build failed'), { code: 'BUILD_FAILED' });
    };
    const job = this.whenFree(() => core.timed('template_build', timedRun).catch(() => undefined)).finally(() => this.inflight.delete(job));
    this.inflight.add(job);
    return b;
  }

  /** Stop every build (server shutdown): each ends as error, its machines removed. */
  async close(): Promise<void> {
    this.closing = true;
    for (const a of this.aborts) a.abort();
    for (const wake of this.queue.splice(0)) wake();
    while (this.inflight.size) await Promise.allSettled([...this.inflight]);
  }

  /** Builds a stopped server left `building` end as error (at start-up, before anything builds). */
  async recover(): Promise<number> {
    let n = 0;
    const host = this.o.core.hostId;
    for (const b of await this.o.core.store.allTemplateBuilds()) {
      // Another host's build may be running: only this host's (or one from before hosts) ended with the server.
      if (b.status !== 'building' || (host !== null && b.hostId !== null && b.hostId !== host)) continue;
      b.status = 'error';
      b.error = { step: 'build', message: 'the server stopped during the build; build again' };
      b.finishedAt = this.o.core.now();
      await this.o.core.store.updateTemplateBuild(b);
      n++;
    }
    return n;
  }

  private async whenFree(fn: () => Promise<void>): Promise<void> {
    const limit = this.o.concurrency ?? 1;
    if (this.running >= limit) await new Promise<void>((r) => this.queue.push(r));
    this.running++;
    try {
      await fn();
    } finally {
      this.running--;
      this.queue.shift()?.();
    }
  }

  private log(b: TemplateBuildRecord, line: string): void {
    this.o.logs.write(b.id, line);
  }

  /** Run a recorded build to its end; it never throws (the outcome is on the record). */
  private async run(b: TemplateBuildRecord, uploaderTeam: string): Promise<void> {
    const { core } = this.o;
    const abort = new AbortController();
    this.aborts.add(abort);
    const timer = setTimeout(() => abort.abort(), b.spec.timeoutMs);
    this.signals.set(b.id, abort.signal);
    const deadline = core.now() + b.spec.timeoutMs;
    const mine: string[] = [];
    try {
      if (this.closing) throw new StepError('build', 'the server shut down before the build began');
      this.log(b, `build ${b.id}: template ${b.name} version ${b.version}`);
      const base = await this.source(b, uploaderTeam, abort.signal, mine);
      const built = await this.steps(b, base, uploaderTeam, deadline, mine);
      built.sizeBytes = 0;
      for (const d of built.layers) if (mine.includes(d)) built.sizeBytes += await treeBytes(this.o.layers.path(d));
      if (b.spec.startCmd !== null) await this.startSnapshot(b, built, deadline);
      if (abort.signal.aborted) throw new StepError('timeout', `the build took longer than timeout_ms (${b.spec.timeoutMs} ms)`);
      b.status = 'ready';
      b.result = built;
      b.finishedAt = core.now();
      await core.store.updateTemplateBuild(b);
      this.log(b, `ready: ${built.layers.length} layer(s), ${built.sizeBytes} bytes of its own${built.startSnapshotId ? `, service snapshot ${built.startSnapshotId}` : ''}`);
    } catch (err) {
      const step = err instanceof StepError ? err.step : 'build';
      let message = err instanceof Error ? err.message : String(err);
      if (this.closing) message = `the server shut down during the build: ${message}`;
      else if (abort.signal.aborted && !(err instanceof StepError && err.step === 'timeout')) message = `the build took longer than timeout_ms (${b.spec.timeoutMs} ms): ${message}`;
      core.log.warn({ build: b.id, template: b.name, step, err: message }, 'template build failed');
      this.log(b, `error in ${step}: ${message}`);
      b.status = 'error';
      b.error = { step, message };
      b.finishedAt = core.now();
      await core.store.updateTemplateBuild(b).catch((e: unknown) => core.log.error({ build: b.id, err: e }, 'could not record a failed build'));
    } finally {
      clearTimeout(timer);
      this.aborts.delete(abort);
      this.signals.delete(b.id);
      for (const d of mine) this.pinned.delete(d);
      this.o.logs.close(b.id);
      await this.o.templates.collect(this.pinned).catch((e: unknown) => core.log.warn({ err: e }, 'template layer collection failed'));
    }
  }

  /** Store a staged tree as a layer, pinned until the build is recorded. */
  private async commit(staged: string, mine: string[]): Promise<string> {
    const digest = await this.o.layers.commit(staged);
    this.pinned.add(digest);
    mine.push(digest);
    return digest;
  }

  /** Step 1: the source's layers and the defaults it brings. */
  private async source(b: TemplateBuildRecord, teamId: string, signal: AbortSignal, mine: string[]): Promise<BuiltTemplate> {
    const src = b.spec.source;
    const empty: BuiltTemplate = { layers: [], init: BUILT_TEMPLATE_INIT, env: { PATH: DEFAULT_PATH, HOME: '/root', TERM: 'xterm' }, cwd: '/root', user: 'root', sizeBytes: 0, startSnapshotId: null, startPid: null };
    try {
      if ('template' in src) {
        const parent = await this.o.templates.resolve(b.teamId ?? teamId, src.template);
        if (!parent) throw new Error(`template "${src.template}" no longer exists`);
        this.log(b, `source: template ${parent.name} version ${parent.version}`);
        let layers: string[];
        if (parent.buildId !== null) layers = (await this.o.core.store.getTemplateBuild(parent.buildId))!.result!.layers;
        else {
          // A directory template can be rebuilt in place: its tree is copied in as a layer of this version's own.
          const digest = await this.o.layers.importTree(parent.rootfs);
          this.pinned.add(digest);
          mine.push(digest);
          layers = [digest];
        }
        return { ...empty, layers, init: parent.init, env: { ...parent.env }, cwd: parent.cwd, user: parent.user, ...(parent.desktop ? { desktop: parent.desktop } : {}) };
      }
      const staging = await this.o.layers.staging();
      try {
        const tree = join(staging, 'rootfs');
        if ('debian' in src) {
          this.log(b, `source: debian ${src.debian.suite}`);
          await debianTree(tree, src.debian.suite, src.debian.packages, (l) => this.log(b, l), signal);
          return { ...empty, layers: [await this.commit(tree, mine)] };
        }
        const path = src.image.upload_id !== undefined ? (await this.o.uploads.get(teamId, src.image.upload_id)).path : src.image.path!;
        this.log(b, `source: image ${src.image.upload_id ?? path}`);
        const config = await imageTree(path, tree, staging, (l) => this.log(b, l), signal);
        const layer = await this.commit(tree, mine);
        return { ...empty, layers: [layer], env: { ...empty.env, ...config.env }, cwd: config.cwd ?? '/', user: config.user ?? 'root' };
      } finally {
        await rm(staging, { recursive: true, force: true });
      }
    } catch (err) {
      if (err instanceof StepError) throw err;
      throw new StepError('source', err instanceof SourceError || err instanceof Error ? err.message : String(err));
    }
  }

  /** Step 2: the steps in one build machine; what they changed is one more layer on top. */
  private async steps(b: TemplateBuildRecord, base: BuiltTemplate, teamId: string, deadline: number, mine: string[]): Promise<BuiltTemplate> {
    const t: BuiltTemplate = { ...base, env: { ...base.env }, layers: [...base.layers] };
    const needsMachine = b.spec.steps.some((s) => 'run' in s || 'copy' in s || 'workdir' in s);
    if (!needsMachine) {
      for (const s of b.spec.steps) this.applyMeta(t, s);
      return t;
    }
    const m = await this.machine(b, t, BUILT_TEMPLATE_INIT, BUILD_MACHINE, 'build machine');
    try {
      for (const [i, s] of b.spec.steps.entries()) {
        const name = `step ${i + 1} (${Object.keys(s)[0]})`;
        this.log(b, `${name}: ${describe(s)}`);
        if ('run' in s) await this.exec(b, m.id, ['/bin/sh', '-c', s.run], t, deadline, name);
        else if ('workdir' in s) {
          await this.exec(b, m.id, ['mkdir', '-p', s.workdir], { ...t, user: 'root' }, deadline, name);
          t.cwd = s.workdir;
        } else if ('copy' in s) {
          const upload = await this.o.uploads.get(teamId, s.copy.upload_id);
          await this.exec(b, m.id, ['mkdir', '-p', s.copy.dest], { ...t, user: 'root' }, deadline, name);
          await this.exec(b, m.id, ['tar', '-x', '-f', '-', '-C', s.copy.dest], { ...t, user: 'root' }, deadline, name, createReadStream(upload.path));
        } else this.applyMeta(t, s);
      }
      await this.o.core.runtime.stop(m.id);
      const staging = await this.o.layers.staging();
      try {
        await this.o.core.runtime.exportLayer(m.id, join(staging, 'layer'));
        t.layers.unshift(await this.commit(join(staging, 'layer'), mine));
      } finally {
        await rm(staging, { recursive: true, force: true });
      }
      return t;
    } finally {
      await m.release();
    }
  }

  private applyMeta(t: BuiltTemplate, s: BuildStep): void {
    if ('env' in s) Object.assign(t.env, s.env);
    else if ('user' in s) t.user = s.user;
    else if ('workdir' in s) t.cwd = s.workdir;
  }

  /** Start a machine of the layers so far (not a recorded machine: recovery removes it after a crash). */
  private async machine(b: TemplateBuildRecord, t: BuiltTemplate, init: string[], config: MachineConfig, what: string): Promise<{ id: string; release: () => Promise<void> }> {
    const { core } = this.o;
    core.ensureCapacity('; a template build needs a machine: destroy one or build later.');
    const id = newMachineId();
    const ip = core.allocateIp(id);
    core.hold(id);
    const release = async (): Promise<void> => {
      await core.runtime.destroy(id).catch((e: unknown) => core.log.warn({ build: b.id, machine: id, err: e }, 'could not remove a build machine'));
      core.unhold(id);
      core.releaseAddress(ip, id);
    };
    const spec: MachineSpec = {
      id, hostname: id, templateLayers: t.layers.map((d) => this.o.layers.path(d)), init, env: { ...t.env, HOSTNAME: id }, cwd: '/',
      config, network: { ip, outbound: { mode: 'allow' } },
    };
    try {
      await core.runtime.start(spec);
    } catch (err) {
      await release();
      throw new StepError(what, `the ${what} did not start: ${err instanceof Error ? err.message : String(err)}`);
    }
    this.log(b, `${what} ${id} started`);
    return { id, release };
  }

  /** Run one command of a step, its output to the log; a non-zero exit fails the step. */
  private async exec(b: TemplateBuildRecord, id: string, argv: string[], t: BuiltTemplate, deadline: number, step: string, stdin?: Readable): Promise<string> {
    const { uid, gid } = await this.user(id, t.user, step);
    let out = '';
    let partial = '';
    const line = (c: Buffer): void => {
      const text = partial + c.toString('utf8');
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) this.log(b, l.replace(/\r/g, ''));
      if (out.length < 4096) out += c.toString('utf8');
    };
    const io: ExecIo = { stdout: line, stderr: line };
    const timeoutMs = Math.max(1, deadline - this.o.core.now());
    const r = await this.o.core.runtime
      .exec(id, { argv, cwd: t.cwd.startsWith('/') ? t.cwd : '/', env: t.env, uid, gid, timeoutMs, signal: this.signals.get(b.id), ...(stdin ? { stdin } : {}) }, io)
      .catch((err: unknown) => {
        throw new StepError(step, err instanceof Error ? err.message : String(err));
      });
    if (partial) this.log(b, partial);
    if (r.timedOut || r.aborted) throw new StepError(step, this.closing ? 'stopped: the server shut down' : 'the build ran out of time (timeout_ms)');
    if (r.exitCode !== 0) throw new StepError(step, `${argv.join(' ').slice(0, 200)} exited with ${r.exitCode}`);
    return out;
  }

  /** A build user as uid and gid (a name is looked up inside the build machine). */
  private async user(id: string, user: string, step: string): Promise<{ uid: number; gid: number }> {
    if (user === 'root') return { uid: 0, gid: 0 };
    const numeric = /^(\d+)(?::(\d+))?$/.exec(user);
    if (numeric) return { uid: Number(numeric[1]), gid: Number(numeric[2] ?? 0) };
    const ask = async (flag: string): Promise<number> => {
      let out = '';
      const r = await this.o.core.runtime.exec(id, { argv: ['id', flag, user], cwd: '/', env: {}, uid: 0, gid: 0, timeoutMs: 10_000 }, { stdout: (c) => void (out += c.toString()), stderr: () => undefined });
      if (r.exitCode !== 0 || !/^\d+\s*$/.test(out)) throw new StepError(step, `user "${user}" does not exist in the template (add it in a run step first)`);
      return Number(out);
    };
    return { uid: await ask('-u'), gid: await ask('-g') };
  }

  /** Step 3: start the service, wait until it is ready, keep a live snapshot of it. */
  private async startSnapshot(b: TemplateBuildRecord, t: BuiltTemplate, deadline: number): Promise<void> {
    const { core } = this.o;
    const m = await this.machine(b, t, t.init, DEFAULT_CONFIG, 'service machine');
    try {
      this.log(b, `start: ${b.spec.startCmd!}`);
      // Detached from the build's connection, its output in a file: the snapshot must not hold a pipe to this server.
      const launch = `mkdir -p /var/log; cd "$1" 2>/dev/null || cd /; /bin/sh -c "$2" </dev/null >>${START_LOG} 2>&1 & echo $!`;
      const pidText = await this.exec(b, m.id, ['/bin/sh', '-c', launch, 'sh', t.cwd, b.spec.startCmd!], t, deadline, 'start');
      t.startPid = Number(pidText.trim()) || null;
      const readyBy = Math.min(deadline, core.now() + b.spec.readyTimeoutMs);
      if (b.spec.readyCmd !== null) {
        let tries = 0;
        for (;;) {
          tries++;
          const r = await core.runtime.exec(m.id, { argv: ['/bin/sh', '-c', b.spec.readyCmd], cwd: '/', env: t.env, uid: 0, gid: 0, timeoutMs: Math.max(1, readyBy - core.now()) }, { stdout: () => undefined, stderr: () => undefined });
          if (r.exitCode === 0) break;
          if (core.now() >= readyBy) throw new StepError('ready', `ready_cmd did not succeed within ${b.spec.readyTimeoutMs} ms (${tries} tries, last exit ${r.exitCode}); see ${START_LOG} in a machine of the previous step`);
          await new Promise((r2) => setTimeout(r2, 100));
        }
        this.log(b, `ready after ${tries} tries`);
      }
      const snapshotId = newSnapshotId();
      const snap = await core.runtime.snapshot(m.id, snapshotId).catch((err: unknown) => {
        throw new StepError('snapshot', err instanceof Error ? err.message : String(err));
      });
      if (!snap.memory) {
        await core.runtime.deleteSnapshot(snapshotId);
        throw new StepError('snapshot', 'the snapshot holds no memory (CRIU failed), so creates could not resume the service');
      }
      t.startSnapshotId = snapshotId;
      this.log(b, `service snapshot ${snapshotId} (${snap.sizeBytes} bytes), start command pid ${t.startPid ?? 'unknown'}`);
    } finally {
      await m.release();
    }
  }
}

function describe(s: BuildStep): string {
  if ('run' in s) return s.run.length > 200 ? `${s.run.slice(0, 200)}…` : s.run;
  if ('copy' in s) return `${s.copy.upload_id} → ${s.copy.dest}`;
  if ('env' in s) return Object.keys(s.env).join(' ');
  if ('workdir' in s) return s.workdir;
  return s.user;
}
