/**
 * A terminal in a machine over the `/v1/machines/{id}/pty` WebSocket, as one duplex
 * object: `readable` (the terminal's output), `writable` / `write` (keystrokes), `resize`,
 * and `exited` (the command's exit code). Uses `globalThis.WebSocket` where there is one
 * (browsers, Node 22+) and loads the `ws` package only where there is not (Node 20).
 */
import { apiErrorFrom, HangarConnectionError, HangarTimeoutError } from './errors.js';
import type { CallOptions } from './transport.js';

/** What to run in the terminal and its first window size. */
export interface PtyOptions extends CallOptions {
  /** A shell string run with `/bin/sh -c`. @default a login shell, `/bin/sh -l` */
  cmd?: string;
  /** @default the user's home */
  cwd?: string;
  /** @default root */
  user?: string;
  /** @default 80 */
  cols?: number;
  /** @default 24 */
  rows?: number;
  /** Leave the command running when the socket closes. @default false */
  keep?: boolean;
}

/** The part of the WHATWG WebSocket interface used here (the `ws` package has it too). */
interface SocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

type SocketConstructor = new (url: string, options?: unknown) => SocketLike;
const OPEN = 1;

/** Open the socket; reject with the server's typed error when the upgrade is refused. */
async function connect(url: string, apiKey: string, opts: CallOptions, defaultTimeoutMs: number): Promise<SocketLike> {
  const native = (globalThis as { WebSocket?: SocketConstructor }).WebSocket;
  let ws: SocketLike;
  let refused: Promise<Error> | null = null;
  if (native) {
    // Browsers cannot send an Authorization header on a WebSocket: the key goes in the query.
    ws = new native(`${url}&access_token=${encodeURIComponent(apiKey)}`);
  } else {
    // A computed specifier keeps bundlers for browsers from pulling `ws` in.
    const name = 'ws';
    const mod = (await import(name)) as { WebSocket: SocketConstructor };
    ws = new mod.WebSocket(url, { headers: { authorization: `Bearer ${apiKey}` } });
    refused = new Promise((resolve) => {
      (ws as unknown as { once(e: string, f: (req: unknown, res: AsyncIterable<Uint8Array> & { statusCode: number }) => void): void }).once(
        'unexpected-response',
        (_req, res) => {
          void (async () => {
            // Only web types here: the console bundles this file for browsers.
            const decoder = new TextDecoder();
            let text = '';
            for await (const c of res) text += decoder.decode(c, { stream: true });
            resolve(apiErrorFrom(res.statusCode, text + decoder.decode()));
            ws.close();
          })();
        },
      );
    });
  }
  ws.binaryType = 'arraybuffer';
  const timeoutMs = opts.timeoutMs ?? defaultTimeoutMs;
  return new Promise<SocketLike>((resolve, reject) => {
    const fail = (err: unknown): void => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      ws.onopen = ws.onclose = null;
      // `ws` reports closing a socket that is still connecting as an error: keep a listener.
      ws.onerror = () => undefined;
      try {
        ws.close();
      } catch {
        // closing a socket that never opened may throw; it is gone either way
      }
      reject(err);
    };
    const onAbort = (): void => fail(opts.signal!.reason);
    const timer = setTimeout(() => fail(new HangarTimeoutError(`the terminal WebSocket did not open within ${timeoutMs} ms`)), timeoutMs);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.signal?.aborted) onAbort();
    if (refused) void refused.then(fail);
    ws.onopen = () => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      ws.onopen = ws.onerror = ws.onclose = null;
      resolve(ws);
    };
    ws.onerror = ws.onclose = () => {
      // With `ws`, a refused upgrade also ends here, after its typed error (queued first) has won.
      setTimeout(() => fail(new HangarConnectionError('the terminal WebSocket did not open (is the machine running?)')), 0);
    };
  });
}

/** An open terminal: a duplex of bytes with a window size. */
export class PtySession implements AsyncIterable<Uint8Array> {
  /** The terminal's output; it ends when the command exits or the socket closes. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Keystrokes (bytes or text); closing it leaves the terminal open (use `close`). */
  readonly writable: WritableStream<Uint8Array | string>;
  /** The command's exit code once it has exited (null when the socket closed without one). */
  readonly exited: Promise<{ exitCode: number | null }>;

  constructor(private readonly ws: SocketLike) {
    let exitCode: number | null = null;
    let resolveExit!: (v: { exitCode: number | null }) => void;
    this.exited = new Promise((r) => (resolveExit = r));
    this.readable = new ReadableStream<Uint8Array>({
      start: (controller) => {
        ws.onmessage = ({ data }) => {
          if (typeof data !== 'string') {
            controller.enqueue(new Uint8Array(data as ArrayBuffer));
            return;
          }
          const msg = JSON.parse(data) as { type?: string; exit_code?: number | null };
          if (msg.type === 'exit') exitCode = msg.exit_code ?? null;
        };
        ws.onclose = () => {
          try {
            controller.close();
          } catch {
            // already closed or cancelled by the reader
          }
          resolveExit({ exitCode });
        };
        ws.onerror = () => undefined;
      },
      cancel: () => this.close(),
    });
    this.writable = new WritableStream<Uint8Array | string>({ write: (chunk) => this.write(chunk) });
  }

  /** Type into the terminal. */
  write(data: Uint8Array | string): void {
    if (this.ws.readyState !== OPEN) return;
    this.ws.send(typeof data === 'string' ? new TextEncoder().encode(data) : data);
  }

  /** Set the window size (what `stty size` and full-screen programs inside see). */
  resize(cols: number, rows: number): void {
    if (this.ws.readyState === OPEN) this.ws.send(JSON.stringify({ type: 'resize', cols, rows }));
  }

  /** Close the socket; the command ends too unless the terminal was opened with `keep`. */
  close(): void {
    if (this.ws.readyState <= OPEN) this.ws.close(1000);
  }

  /** The output, chunk by chunk. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    const reader = this.readable.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        yield value;
      }
    } finally {
      reader.releaseLock();
    }
  }
}

/** Open a terminal on `wsUrl` (a ws:// or wss:// URL with its query). */
export async function openPtySession(wsUrl: string, apiKey: string, opts: CallOptions, defaultTimeoutMs: number): Promise<PtySession> {
  return new PtySession(await connect(wsUrl, apiKey, opts, defaultTimeoutMs));
}
