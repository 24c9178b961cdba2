/**
 * The client's HTTP layer: authenticated `fetch` with timeouts, `AbortSignal`, retries of
 * idempotent calls with backoff, typed errors, and server-sent event streams that resume
 * from their last event id after a lost connection.
 */
import { apiErrorFrom, HangarConnectionError, HangarTimeoutError } from './errors.js';

/** How the client reaches its server. */
export interface HangarClientOptions {
  /** e.g. http://127.0.0.1:8080 */
  baseUrl: string;
  apiKey: string;
  /** Per call, unless a call gives its own. @default 60000 */
  timeoutMs?: number;
  /** Retries of idempotent calls (and reconnections of resumable streams) after a connection failure or a 503. @default 3 */
  retries?: number;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** Options every call takes. */
export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** Options of `raw`. */
export type RawOptions = { body?: BodyInit; json?: unknown; headers?: Record<string, string>; retry?: boolean } & CallOptions;

/** One server-sent event. */
export interface ServerEvent {
  event: string;
  data: string;
  id?: string;
}

/** Streams (exec output, follows, watches, build logs) may stay open this long by default. */
export const STREAM_TIMEOUT_MS = 24 * 3_600_000;

const IDEMPOTENT = new Set(['GET', 'PUT', 'DELETE', 'HEAD']);

/** Wait, unless the signal aborts first. */
export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(signal.reason);
      },
      { once: true },
    );
  });

/** 32 hex characters from the platform's CSPRNG (an Idempotency-Key). */
export function randomKey(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Parse a text/event-stream body into events as they arrive; stopping early cancels the body. */
export async function* serverEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<ServerEvent> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let buffer = '';
  let finished = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        finished = true;
        break;
      }
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
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
    // A consumer that stops early must close the connection, or the server keeps streaming.
    if (!finished) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}

/** The authenticated HTTP layer every call of `HangarClient` goes through. */
export class HangarTransport {
  protected readonly fetch: typeof fetch;
  protected readonly base: string;

  constructor(protected readonly o: HangarClientOptions) {
    this.fetch = o.fetch ?? globalThis.fetch.bind(globalThis);
    this.base = o.baseUrl.replace(/\/+$/, '');
  }

  /**
   * Send one request. Idempotent methods (and creates, which carry an Idempotency-Key)
   * are retried with backoff on connection failures and 503; every call has a timeout
   * and honours `signal`.
   */
  async raw(method: string, path: string, init: RawOptions = {}): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.o.apiKey}`, ...init.headers };
    let body = init.body;
    if (init.json !== undefined) {
      body = JSON.stringify(init.json);
      headers['content-type'] = 'application/json';
    }
    // A stream body can be read once: it is sent half-duplex (what fetch asks for) and never retried.
    const streaming = typeof ReadableStream !== 'undefined' && body instanceof ReadableStream;
    const retries = !streaming && (init.retry ?? IDEMPOTENT.has(method)) ? (this.o.retries ?? 3) : 0;
    const timeoutMs = init.timeoutMs ?? this.o.timeoutMs ?? 60_000;
    for (let attempt = 0; ; attempt++) {
      const timeout = AbortSignal.timeout(timeoutMs);
      const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
      let res: Response;
      try {
        res = await this.fetch(`${this.base}${path}`, { method, headers, body: body ?? null, signal, ...(streaming ? { duplex: 'half' } : {}) } as RequestInit);
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
      if (!res.ok) throw apiErrorFrom(res.status, await res.text(), res.statusText);
      return res;
    }
  }

  /** `raw`, then the body as JSON (undefined when empty). */
  protected async json<T>(method: string, path: string, init: RawOptions = {}): Promise<T> {
    const res = await this.raw(method, path, init);
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /**
   * A server-sent event stream. With `resume`, a connection lost mid-stream is opened again
   * (with backoff, up to `retries` times in a row) from the last event id it saw: `path`
   * gets that id so it can drop a starting offset the header would otherwise lose to.
   */
  protected async *events(path: (lastId: string | undefined) => string, opts: CallOptions & { resume?: boolean; lastEventId?: string } = {}): AsyncGenerator<ServerEvent> {
    let lastId = opts.lastEventId;
    const timeoutMs = opts.timeoutMs ?? STREAM_TIMEOUT_MS;
    for (let failures = 0; ; ) {
      const headers: Record<string, string> = { accept: 'text/event-stream' };
      if (lastId !== undefined) headers['last-event-id'] = lastId;
      const p = path(lastId);
      const res = await this.raw('GET', p, { ...opts, headers, timeoutMs });
      if (!res.body) return;
      try {
        for await (const e of serverEvents(res.body)) {
          failures = 0;
          if (e.id !== undefined) lastId = e.id;
          yield e;
        }
        return;
      } catch (err) {
        if (opts.signal?.aborted) throw opts.signal.reason;
        if ((err as Error).name === 'TimeoutError') throw new HangarTimeoutError(`GET ${p} streamed longer than ${timeoutMs} ms`);
        if (!opts.resume || failures >= (this.o.retries ?? 3)) throw new HangarConnectionError(`GET ${p}: the stream broke: ${(err as Error).message}`);
        await sleep(100 * 2 ** failures++, opts.signal);
      }
    }
  }
}
