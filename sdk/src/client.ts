/**
 * The Hangar SDK: one client over the native API, for Node 20+ and browsers (only
 * `fetch`, `AbortSignal` and web streams). Types come from `schema.ts`, generated from
 * docs/openapi.json by openapi-typescript (`npm run sdk:types`; CI fails when it drifts).
 */
import { HangarApiError } from './errors.js';
import { PtySession, openPtySession, type PtyOptions } from './pty.js';
import type { components, operations } from './schema.js';
import { HangarTransport, randomKey, serverEvents, sleep, type CallOptions } from './transport.js';

export { HangarApiError, HangarConnectionError, HangarTimeoutError } from './errors.js';
export { PtySession, type PtyOptions } from './pty.js';
export type { CallOptions, HangarClientOptions, ServerEvent } from './transport.js';

export type Machine = components['schemas']['Machine'];
export type CreateMachineRequest = components['schemas']['CreateMachineRequest'];
export type UpdateMachineRequest = components['schemas']['UpdateMachineRequest'];
export type ExecRequest = components['schemas']['ExecRequest'];
export type ExecResult = components['schemas']['ExecResult'];
export type FileEntry = components['schemas']['FileEntry'];
export type FileList = components['schemas']['FileList'];
export type Snapshot = components['schemas']['Snapshot'];
export type Template = components['schemas']['Template'];
export type TemplateBuild = components['schemas']['TemplateBuild'];
/** The document marks fields with server defaults as required; only name and source are. */
export type BuildTemplateRequest = Pick<components['schemas']['BuildTemplateRequest'], 'name' | 'source'> & Partial<components['schemas']['BuildTemplateRequest']>;
export type Volume = components['schemas']['Volume'];
export type CreateVolumeRequest = components['schemas']['CreateVolumeRequest'];
export type StartupScript = components['schemas']['StartupScript'];
/** Body of `createStartupScript`: run_once defaults to false. */
export type CreateStartupScriptRequest = components['schemas']['CreateStartupScriptRequest'];
export type PrivateNetwork = components['schemas']['PrivateNetwork'];
export type CreateNetworkRequest = components['schemas']['CreateNetworkRequest'];
export type WarmPool = components['schemas']['WarmPool'];
export type Host = components['schemas']['Host'];
export type ErrorBody = components['schemas']['Error'];
export type Process = components['schemas']['Process'];
export type ProcessOutput = components['schemas']['ProcessOutput'];
export type StartProcessRequest = components['schemas']['StartProcessRequest'];
/** Body of `putWarmPool`. */
export type PutWarmPoolRequest = NonNullable<operations['putWarmPool']['requestBody']>['content']['application/json'];

/** One event of a streamed exec. */
export type ExecEvent = { type: 'stdout' | 'stderr'; data: string } | { type: 'exit'; exitCode: number; durationMs: number; timedOut: boolean };

/** One event of a followed process: its output (offset: bytes so far, after this chunk), a gap of dropped output, then its exit. */
export type ProcessEvent = { type: 'stdout' | 'stderr'; data: string; offset: number } | { type: 'gap'; missedBytes: number } | { type: 'exit'; process: Process };

/** One change in a watched directory; `end` when the directory goes or the machine stops. */
export type FileWatchEvent = { type: 'create' | 'write' | 'remove' | 'rename' | 'overflow'; path: string } | { type: 'end'; reason: string };

/** One line of a template build's log (n: its line number), then the build's end. */
export type BuildLogEvent = { type: 'log'; line: string; n: number } | { type: 'end'; status: TemplateBuild['status']; error: TemplateBuild['error'] };

/** The client of Hangar's native API: every call takes `{signal, timeoutMs}`. */
export class HangarClient extends HangarTransport {
  // ---- machines ----

  /** Create a machine and wait until it runs (the server answers once it does). The Idempotency-Key is set for you. */
  createMachine(req: CreateMachineRequest = {}, opts: CallOptions & { idempotencyKey?: string } = {}): Promise<Machine> {
    return this.json('POST', '/v1/machines', { ...opts, json: req, retry: true, headers: { 'idempotency-key': opts.idempotencyKey ?? randomKey() } });
  }

  getMachine(id: string, opts: CallOptions = {}): Promise<Machine> {
    return this.json('GET', `/v1/machines/${encodeURIComponent(id)}`, opts);
  }

  /** Every machine matching the filters, page after page. */
  async *listMachines(q: { state?: string[]; template?: string; metadata?: Record<string, unknown>; pageSize?: number } = {}, opts: CallOptions = {}): AsyncGenerator<Machine> {
    let token: string | null = null;
    do {
      const params = new URLSearchParams({ limit: String(q.pageSize ?? 100) });
      if (q.state?.length) params.set('state', q.state.join(','));
      if (q.template) params.set('template', q.template);
      if (q.metadata) params.set('metadata', JSON.stringify(q.metadata));
      if (token) params.set('next_token', token);
      const page: { items: Machine[]; next_token: string | null } = await this.json('GET', `/v1/machines?${params}`, opts);
      yield* page.items;
      token = page.next_token;
    } while (token);
  }

  updateMachine(id: string, req: UpdateMachineRequest, opts: CallOptions = {}): Promise<Machine> {
    return this.json('PATCH', `/v1/machines/${encodeURIComponent(id)}`, { ...opts, json: req });
  }

  setTimeout(id: string, timeoutMs: number, opts: CallOptions = {}): Promise<Machine> {
    return this.json('POST', `/v1/machines/${encodeURIComponent(id)}/timeout`, { ...opts, json: { timeout_ms: timeoutMs } });
  }

  deleteMachine(id: string, opts: CallOptions = {}): Promise<Machine> {
    return this.json('DELETE', `/v1/machines/${encodeURIComponent(id)}`, opts);
  }

  pause(id: string, opts: CallOptions = {}): Promise<Machine> {
    return this.json('POST', `/v1/machines/${encodeURIComponent(id)}/pause`, opts);
  }

  resume(id: string, opts: CallOptions = {}): Promise<Machine> {
    return this.json('POST', `/v1/machines/${encodeURIComponent(id)}/resume`, opts);
  }

  snapshot(id: string, opts: CallOptions = {}): Promise<Snapshot> {
    return this.json('POST', `/v1/machines/${encodeURIComponent(id)}/snapshots`, opts);
  }

  /** A new machine from a snapshot: its processes restored, its own id and network. */
  fork(snapshotId: string, req: Omit<CreateMachineRequest, 'snapshot_id'> = {}, opts: CallOptions = {}): Promise<Machine> {
    return this.createMachine({ ...req, snapshot_id: snapshotId }, opts);
  }

  listSnapshots(machineId?: string, opts: CallOptions = {}): Promise<{ items: Snapshot[] }> {
    return this.json('GET', `/v1/snapshots${machineId ? `?machine_id=${encodeURIComponent(machineId)}` : ''}`, opts);
  }

  deleteSnapshot(id: string, opts: CallOptions = {}): Promise<void> {
    return this.json('DELETE', `/v1/snapshots/${encodeURIComponent(id)}`, opts);
  }

  /** The URL of a machine's port through the server's ingress (send the machine's traffic token unless it is public). */
  ingressUrl(id: string, port: number, path = '/'): string {
    return `${this.base}/v1/machines/${encodeURIComponent(id)}/ports/${port}${path.startsWith('/') ? path : `/${path}`}`;
  }

  // ---- exec ----

  /** Run a command and wait for it: exit code and (capped) output. */
  exec(id: string, req: ExecRequest, opts: CallOptions = {}): Promise<ExecResult> {
    return this.json('POST', `/v1/machines/${encodeURIComponent(id)}/exec`, { ...opts, json: req });
  }

  /** Run a command, its output as it comes: stdout and stderr events, then one exit event. */
  async *execStream(id: string, req: ExecRequest, opts: CallOptions = {}): AsyncGenerator<ExecEvent> {
    const res = await this.raw('POST', `/v1/machines/${encodeURIComponent(id)}/exec/stream`, { ...opts, json: req, timeoutMs: opts.timeoutMs ?? 24 * 3_600_000 });
    if (!res.body) return;
    for await (const e of serverEvents(res.body)) {
      const data = JSON.parse(e.data) as unknown;
      if (e.event === 'stdout' || e.event === 'stderr') yield { type: e.event, data: data as string };
      else if (e.event === 'exit') {
        const x = data as { exit_code: number; duration_ms: number; timed_out: boolean };
        yield { type: 'exit', exitCode: x.exit_code, durationMs: x.duration_ms, timedOut: x.timed_out };
      } else if (e.event === 'error') {
        const x = data as { code?: string; message?: string };
        throw new HangarApiError(500, x.code ?? 'INTERNAL', x.message ?? 'the command failed', undefined);
      }
    }
  }

  // ---- processes ----

  private processPath(id: string, pid?: number, rest = ''): string {
    return `/v1/machines/${encodeURIComponent(id)}/processes${pid === undefined ? '' : `/${pid}`}${rest}`;
  }

  /** Start a background process; answers at once with its pid. */
  startProcess(id: string, req: StartProcessRequest, opts: CallOptions = {}): Promise<Process> {
    return this.json('POST', this.processPath(id), { ...opts, json: req });
  }

  /** Running processes and the last exited ones, oldest first. */
  listProcesses(id: string, opts: CallOptions = {}): Promise<{ items: Process[] }> {
    return this.json('GET', this.processPath(id), opts);
  }

  /** One process as it is now. */
  getProcess(id: string, pid: number, opts: CallOptions = {}): Promise<Process> {
    return this.json('GET', this.processPath(id, pid), opts);
  }

  /** Wait until the process exits (asking again while the server's wait runs out); `timeoutMs` bounds the whole wait. */
  async waitProcess(id: string, pid: number, opts: CallOptions = {}): Promise<Process> {
    const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
    for (;;) {
      const waitMs = Math.max(0, Math.min(60_000, deadline - Date.now()));
      const p: Process = await this.json('GET', this.processPath(id, pid, `?wait=true&timeout_ms=${waitMs}`), { ...opts, timeoutMs: waitMs + 30_000 });
      if (p.status === 'exited' || Date.now() >= deadline) return p;
    }
  }

  /** The output kept from `offset` on (pass `next_offset` to read on). */
  processOutput(id: string, pid: number, offset = 0, opts: CallOptions = {}): Promise<ProcessOutput> {
    return this.json('GET', this.processPath(id, pid, `/output?offset=${offset}`), opts);
  }

  /** The output as it comes, from `offset`, then the exit; resumes from where it was after a lost connection. */
  async *followProcess(id: string, pid: number, opts: CallOptions & { offset?: number } = {}): AsyncGenerator<ProcessEvent> {
    const path = (lastId: string | undefined): string => this.processPath(id, pid, `/output?follow=true${lastId === undefined ? `&offset=${opts.offset ?? 0}` : ''}`);
    for await (const e of this.events(path, { ...opts, resume: true })) {
      const data = JSON.parse(e.data) as unknown;
      if (e.event === 'stdout' || e.event === 'stderr') yield { type: e.event, data: data as string, offset: Number(e.id) };
      else if (e.event === 'gap') yield { type: 'gap', missedBytes: (data as { missed_bytes: number }).missed_bytes };
      else if (e.event === 'exit') yield { type: 'exit', process: data as Process };
    }
  }

  /** Write to the process's stdin (text or bytes); `close` closes it after. */
  writeStdin(id: string, pid: number, data: string | Uint8Array, opts: CallOptions & { close?: boolean } = {}): Promise<Process> {
    const path = this.processPath(id, pid, `/stdin${opts.close ? '?close=true' : ''}`);
    if (typeof data === 'string') return this.json('POST', path, { ...opts, json: { data, close: opts.close ?? false } });
    return this.json('POST', path, { ...opts, body: data as unknown as BodyInit, headers: { 'content-type': 'application/octet-stream' } });
  }

  /** Close the process's stdin: it reads end-of-file. */
  closeStdin(id: string, pid: number, opts: CallOptions = {}): Promise<Process> {
    return this.json('POST', this.processPath(id, pid, '/stdin'), { ...opts, json: { close: true } });
  }

  /** Send a signal (`TERM`, `SIGKILL`, `INT`…) to the process's group. */
  signalProcess(id: string, pid: number, signal: string, opts: CallOptions = {}): Promise<Process> {
    return this.json('POST', this.processPath(id, pid, '/signal'), { ...opts, json: { signal } });
  }

  // ---- terminals ----

  /** Open a terminal (a login shell unless `cmd`): a duplex of bytes with `resize` and `exited`. */
  openPty(id: string, opts: PtyOptions = {}): Promise<PtySession> {
    const q = new URLSearchParams({ cols: String(opts.cols ?? 80), rows: String(opts.rows ?? 24) });
    if (opts.cmd !== undefined) q.set('cmd', opts.cmd);
    if (opts.cwd !== undefined) q.set('cwd', opts.cwd);
    if (opts.user !== undefined) q.set('user', opts.user);
    if (opts.keep) q.set('keep', 'true');
    const url = `${this.base.replace(/^http/, 'ws')}/v1/machines/${encodeURIComponent(id)}/pty?${q}`;
    return openPtySession(url, this.o.apiKey, opts, this.o.timeoutMs ?? 60_000);
  }

  // ---- files ----

  private filePath(id: string, route: string, path: string): string {
    return `/v1/machines/${encodeURIComponent(id)}/${route}?path=${encodeURIComponent(path)}`;
  }

  /** A file's bytes. */
  async readFile(id: string, path: string, opts: CallOptions = {}): Promise<Uint8Array> {
    return new Uint8Array(await (await this.raw('GET', this.filePath(id, 'files', path), opts)).arrayBuffer());
  }

  /** A file as a stream (large files). */
  async readFileStream(id: string, path: string, opts: CallOptions = {}): Promise<ReadableStream<Uint8Array>> {
    const res = await this.raw('GET', this.filePath(id, 'files', path), opts);
    if (!res.body) throw new HangarApiError(500, 'INTERNAL', 'the server sent no body', undefined);
    return res.body;
  }

  /** Write a file (made with its parents; replaced when it exists); a stream is sent as it is read, never retried. */
  async writeFile(id: string, path: string, data: Uint8Array | string | Blob | ReadableStream<Uint8Array>, opts: CallOptions = {}): Promise<FileEntry> {
    // Bytes are a valid fetch body everywhere; Node 20's type declarations lag behind.
    const body = (typeof data === 'string' ? new TextEncoder().encode(data) : data) as unknown as BodyInit;
    return (await this.raw('PUT', this.filePath(id, 'files', path), { ...opts, body, headers: { 'content-type': 'application/octet-stream' } }).then((r) => r.json())) as FileEntry;
  }

  listFiles(id: string, path: string, opts: CallOptions = {}): Promise<FileList> {
    return this.json('GET', this.filePath(id, 'files/list', path), opts);
  }

  stat(id: string, path: string, opts: CallOptions = {}): Promise<FileEntry> {
    return this.json('GET', this.filePath(id, 'files/stat', path), opts);
  }

  mkdir(id: string, path: string, opts: CallOptions = {}): Promise<FileEntry> {
    return this.json('POST', `/v1/machines/${encodeURIComponent(id)}/files/mkdir`, { ...opts, json: { path } });
  }

  move(id: string, from: string, to: string, opts: CallOptions = {}): Promise<FileEntry> {
    return this.json('POST', `/v1/machines/${encodeURIComponent(id)}/files/move`, { ...opts, json: { from, to } });
  }

  remove(id: string, path: string, opts: CallOptions = {}): Promise<void> {
    return this.json('DELETE', this.filePath(id, 'files', path), opts);
  }

  /** A directory as a tar stream. */
  async downloadArchive(id: string, path: string, opts: CallOptions = {}): Promise<ReadableStream<Uint8Array>> {
    const res = await this.raw('GET', this.filePath(id, 'files/archive', path), opts);
    if (!res.body) throw new HangarApiError(500, 'INTERNAL', 'the server sent no body', undefined);
    return res.body;
  }

  /** Extract a tar (bytes, Blob, or a stream sent as it is read) into a directory of the machine. */
  async uploadArchive(id: string, path: string, tar: Uint8Array | Blob | ReadableStream<Uint8Array>, opts: CallOptions = {}): Promise<void> {
    await this.raw('PUT', this.filePath(id, 'files/archive', path), { ...opts, body: tar as unknown as BodyInit, headers: { 'content-type': 'application/x-tar' } });
  }

  /** Changes in a directory as they happen (inotify in the machine), until `end` or until you stop iterating. */
  async *watchFiles(id: string, path: string, opts: CallOptions & { recursive?: boolean } = {}): AsyncGenerator<FileWatchEvent> {
    const url = `${this.filePath(id, 'files/watch', path)}&recursive=${opts.recursive ? 'true' : 'false'}`;
    for await (const e of this.events(() => url, opts)) {
      const data = JSON.parse(e.data) as { path?: string; reason?: string };
      if (e.event === 'end') {
        yield { type: 'end', reason: data.reason ?? 'unknown' };
        return;
      }
      yield { type: e.event as 'create', path: data.path ?? '' };
    }
  }

  // ---- templates, volumes, pools ----

  async *listTemplates(opts: CallOptions = {}): AsyncGenerator<Template> {
    let token: string | null = null;
    do {
      const page: { items: Template[]; next_token: string | null } = await this.json('GET', `/v1/templates${token ? `?next_token=${encodeURIComponent(token)}` : ''}`, opts);
      yield* page.items;
      token = page.next_token;
    } while (token);
  }

  getTemplate(name: string, opts: CallOptions = {}): Promise<Template> {
    return this.json('GET', `/v1/templates/${encodeURIComponent(name)}`, opts);
  }

  /** Start a build; with `wait`, poll until it ends and return the finished build. */
  async buildTemplate(req: BuildTemplateRequest, opts: CallOptions & { wait?: boolean; pollMs?: number } = {}): Promise<TemplateBuild> {
    let b: TemplateBuild = await this.json('POST', '/v1/templates', { ...opts, json: req });
    while (opts.wait && b.status === 'building') {
      await sleep(opts.pollMs ?? 250, opts.signal);
      b = await this.json('GET', `/v1/templates/${encodeURIComponent(req.name)}/builds/${b.id}`, opts);
    }
    return b;
  }

  /** A build's log line by line as it is written, then its end; resumes after a lost connection. */
  async *templateBuildLogs(name: string, buildId: string, opts: CallOptions & { after?: number } = {}): AsyncGenerator<BuildLogEvent> {
    const base = `/v1/templates/${encodeURIComponent(name)}/builds/${encodeURIComponent(buildId)}/logs`;
    const path = (lastId: string | undefined): string => (lastId === undefined && opts.after !== undefined ? `${base}?after=${opts.after}` : base);
    for await (const e of this.events(path, { ...opts, resume: true })) {
      const data = JSON.parse(e.data) as { line?: string; status?: TemplateBuild['status']; error?: TemplateBuild['error'] };
      if (e.event === 'log') yield { type: 'log', line: data.line ?? '', n: Number(e.id) };
      else if (e.event === 'end') {
        yield { type: 'end', status: data.status ?? 'error', error: data.error ?? null };
        return;
      }
    }
  }

  deleteTemplate(name: string, opts: CallOptions = {}): Promise<void> {
    return this.json('DELETE', `/v1/templates/${encodeURIComponent(name)}`, opts);
  }

  createVolume(req: CreateVolumeRequest, opts: CallOptions = {}): Promise<Volume> {
    return this.json('POST', '/v1/volumes', { ...opts, json: req });
  }

  listVolumes(opts: CallOptions = {}): Promise<{ items: Volume[] }> {
    return this.json('GET', '/v1/volumes', opts);
  }

  deleteVolume(id: string, opts: CallOptions = {}): Promise<void> {
    return this.json('DELETE', `/v1/volumes/${encodeURIComponent(id)}`, opts);
  }

  /** Keep a startup script for the team; name it with `startup_script_id` on `createMachine`. */
  createStartupScript(req: CreateStartupScriptRequest, opts: CallOptions = {}): Promise<StartupScript> {
    return this.json('POST', '/v1/startup-scripts', { ...opts, json: req });
  }

  listStartupScripts(opts: CallOptions = {}): Promise<{ items: StartupScript[] }> {
    return this.json('GET', '/v1/startup-scripts', opts);
  }

  getStartupScript(id: string, opts: CallOptions = {}): Promise<StartupScript> {
    return this.json('GET', `/v1/startup-scripts/${encodeURIComponent(id)}`, opts);
  }

  /** Machines created with it keep their copy. */
  deleteStartupScript(id: string, opts: CallOptions = {}): Promise<void> {
    return this.json('DELETE', `/v1/startup-scripts/${encodeURIComponent(id)}`, opts);
  }

  /** Private networks: machines created with the same `network_id` reach each other. */
  createNetwork(req: CreateNetworkRequest, opts: CallOptions = {}): Promise<PrivateNetwork> {
    return this.json('POST', '/v1/networks', { ...opts, json: req });
  }

  listNetworks(opts: CallOptions = {}): Promise<{ items: PrivateNetwork[] }> {
    return this.json('GET', '/v1/networks', opts);
  }

  getNetwork(id: string, opts: CallOptions = {}): Promise<PrivateNetwork> {
    return this.json('GET', `/v1/networks/${encodeURIComponent(id)}`, opts);
  }

  /** Refused (409 NETWORK_IN_USE) while live machines are on it. */
  deleteNetwork(id: string, opts: CallOptions = {}): Promise<void> {
    return this.json('DELETE', `/v1/networks/${encodeURIComponent(id)}`, opts);
  }

  /** Warm pools (admin keys only). */
  listWarmPools(opts: CallOptions = {}): Promise<{ items: WarmPool[] }> {
    return this.json('GET', '/v1/warm-pools', opts);
  }

  /** Create or change a warm pool (admin): `size` idle machines of `template` and `config`, kept ready. */
  putWarmPool(name: string, req: PutWarmPoolRequest, opts: CallOptions = {}): Promise<WarmPool> {
    return this.json('PUT', `/v1/warm-pools/${encodeURIComponent(name)}`, { ...opts, json: req });
  }

  /** Delete a warm pool and destroy its idle machines (admin). */
  deleteWarmPool(name: string, opts: CallOptions = {}): Promise<void> {
    return this.json('DELETE', `/v1/warm-pools/${encodeURIComponent(name)}`, opts);
  }

  // ---- hosts (admin) ----

  /** The hosts sharing the server's database: up, draining, stopped or down, with their capacity and machines. */
  listHosts(opts: CallOptions = {}): Promise<{ items: Host[] }> {
    return this.json('GET', '/v1/admin/hosts', opts);
  }

  /** Start (`true`) or end draining a host: it keeps its machines and gets no new ones. */
  drainHost(id: string, draining = true, opts: CallOptions = {}): Promise<Host> {
    return this.json(draining ? 'POST' : 'DELETE', `/v1/admin/hosts/${encodeURIComponent(id)}/drain`, opts);
  }
}
