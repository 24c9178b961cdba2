/**
 * The Hangar SDK: one client over the native API, for Node 20+ and browsers (only
 * `fetch`, `AbortSignal` and web streams). Types come from `schema.ts`, generated from
 * docs/openapi.json by openapi-typescript (`npm run sdk:types`; CI fails when it drifts).
 */
import type { components } from './schema.js';

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
export type WarmPool = components['schemas']['WarmPool'];
export type ErrorBody = components['schemas']['Error'];

/** An answer of the server that is not a success: its stable `code`, HTTP status and sentence. */
export class HangarApiError extends Error {
  override name = 'HangarApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> | undefined,
  ) {
    super(message);
  }
}

/** The server could not be reached (after the retries an idempotent call gets). */
export class HangarConnectionError extends Error {
  override name = 'HangarConnectionError';
}

/** The call took longer than its timeout. */
export class HangarTimeoutError extends Error {
  override name = 'HangarTimeoutError';
}

export interface HangarClientOptions {
  /** e.g. http://127.0.0.1:8080 */
  baseUrl: string;
  apiKey: string;
  /** Per call, unless a call gives its own. @default 60000 */
  timeoutMs?: number;
  /** Retries of idempotent calls after a connection failure or a 503. @default 3 */
  retries?: number;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** Options every call takes. */
export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** One event of a streamed exec. */
export type ExecEvent = { type: 'stdout' | 'stderr'; data: string } | { type: 'exit'; exitCode: number; durationMs: number; timedOut: boolean };

const IDEMPOTENT = new Set(['GET', 'PUT', 'DELETE', 'HEAD']);
const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(signal.reason);
    }, { once: true });
  });

function randomKey(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Parse a text/event-stream body into `{event, data}` records as they arrive. */
async function* serverEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<{ event: string; data: string; id?: string }> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = 'message';
        let id: string | undefined;
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue;
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const value2 = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'event') event = value2;
          else if (field === 'data') data.push(value2);
          else if (field === 'id') id = value2;
        }
        if (data.length) yield { event, data: data.join('\n'), ...(id !== undefined ? { id } : {}) };
      }
    }
  } finally {
    reader.releaseLock();
  }
}

export class HangarClient {
  private readonly fetch: typeof fetch;
  private readonly base: string;

  constructor(private readonly o: HangarClientOptions) {
    this.fetch = o.fetch ?? globalThis.fetch.bind(globalThis);
    this.base = o.baseUrl.replace(/\/+$/, '');
  }

  /**
   * Send one request. Idempotent methods (and creates, which carry an Idempotency-Key)
   * are retried with backoff on connection failures and 503; every call has a timeout
   * and honours `signal`.
   */
  async raw(method: string, path: string, init: { body?: BodyInit; json?: unknown; headers?: Record<string, string>; retry?: boolean } & CallOptions = {}): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.o.apiKey}`, ...init.headers };
    let body = init.body;
    if (init.json !== undefined) {
      body = JSON.stringify(init.json);
      headers['content-type'] = 'application/json';
    }
    const retries = (init.retry ?? IDEMPOTENT.has(method)) ? (this.o.retries ?? 3) : 0;
    const timeoutMs = init.timeoutMs ?? this.o.timeoutMs ?? 60_000;
    for (let attempt = 0; ; attempt++) {
      const timeout = AbortSignal.timeout(timeoutMs);
      const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
      let res: Response;
      try {
        res = await this.fetch(`${this.base}${path}`, { method, headers, body: body ?? null, signal });
      } catch (err) {
        if (init.signal?.aborted) throw init.signal.reason;
        if (timeout.aborted) throw new HangarTimeoutError(`${method} ${path} took longer than ${timeoutMs} ms`);
        if (attempt >= retries) throw new HangarConnectionError(`${method} ${path}: ${(err as Error).message}`);
        await sleep(100 * 2 ** attempt, init.signal);
        continue;
      }
      if (res.status === 503 && attempt < retries) {
        await res.body?.cancel();
        await sleep(100 * 2 ** attempt, init.signal);
        continue;
      }
      if (!res.ok) {
        const text = await res.text();
        let parsed: Partial<ErrorBody> = {};
        try {
          parsed = JSON.parse(text) as ErrorBody;
        } catch {
          parsed = {};
        }
        throw new HangarApiError(res.status, parsed.code ?? `HTTP_${res.status}`, parsed.message ?? (text || res.statusText), parsed.details as Record<string, unknown> | undefined);
      }
      return res;
    }
  }

  private async json<T>(method: string, path: string, init: Parameters<HangarClient['raw']>[2] = {}): Promise<T> {
    const res = await this.raw(method, path, init);
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

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

  /** Write a file (made with its parents; replaced when it exists). */
  async writeFile(id: string, path: string, data: Uint8Array | string | Blob, opts: CallOptions = {}): Promise<FileEntry> {
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

  /** Extract a tar into a directory of the machine. */
  async uploadArchive(id: string, path: string, tar: Uint8Array | Blob, opts: CallOptions = {}): Promise<void> {
    await this.raw('PUT', this.filePath(id, 'files/archive', path), { ...opts, body: tar as unknown as BodyInit, headers: { 'content-type': 'application/x-tar' } });
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

  listWarmPools(opts: CallOptions = {}): Promise<{ items: WarmPool[] }> {
    return this.json('GET', '/v1/warm-pools', opts);
  }
}
