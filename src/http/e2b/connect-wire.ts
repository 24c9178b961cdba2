/**
 * The Connect protocol (connectrpc.com/docs/protocol) as envd speaks it to the E2B SDK,
 * JSON codec only (the SDK sends JSON): unary calls are a JSON body in, a JSON body out;
 * server-streaming calls take one enveloped message and answer enveloped messages, then
 * an end-of-stream envelope that carries the error, if any.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { HangarError } from '../../domain/errors.js';

/** A Connect error code (the protocol's names). */
export type ConnectCode =
  | 'canceled'
  | 'unknown'
  | 'invalid_argument'
  | 'deadline_exceeded'
  | 'not_found'
  | 'already_exists'
  | 'permission_denied'
  | 'resource_exhausted'
  | 'failed_precondition'
  | 'aborted'
  | 'unimplemented'
  | 'internal'
  | 'unavailable'
  | 'unauthenticated';

/** The HTTP status of a unary error answer, per code (the protocol's table). */
const HTTP_STATUS: Record<ConnectCode, number> = {
  canceled: 499,
  unknown: 500,
  invalid_argument: 400,
  deadline_exceeded: 504,
  not_found: 404,
  already_exists: 409,
  permission_denied: 403,
  resource_exhausted: 429,
  failed_precondition: 400,
  aborted: 409,
  unimplemented: 501,
  internal: 500,
  unavailable: 503,
  unauthenticated: 401,
};

/** An error an envd handler throws to answer with a given Connect code. */
export class ConnectError extends Error {
  constructor(
    readonly code: ConnectCode,
    message: string,
  ) {
    super(message);
  }
}

/** The HTTP status that stands for a Connect code (envd's plain HTTP routes answer with it too). */
export function httpStatusOf(code: ConnectCode): number {
  return HTTP_STATUS[code];
}

/** Envelope flag of the end-of-stream message. */
const END_STREAM = 0x02;
/** Largest request message taken (envd's requests are small: commands, paths, stdin chunks). */
const MAX_REQUEST_BYTES = 16 * 1024 * 1024;

/** The Connect code for a thrown error: catalogue errors by their meaning, anything else internal. */
export function connectCodeOf(err: unknown): { code: ConnectCode; message: string } {
  if (err instanceof ConnectError) return { code: err.code, message: err.message };
  if (!(err instanceof HangarError)) return { code: 'internal', message: 'An unexpected error occurred; it has been logged.' };
  const code: ConnectCode = (() => {
    switch (err.code) {
      case 'PATH_NOT_FOUND':
      case 'NOT_FOUND':
        return 'not_found';
      case 'PATH_EXISTS':
        return 'already_exists';
      case 'UNAUTHORIZED':
        return 'unauthenticated';
      case 'FORBIDDEN':
      case 'PATH_PERMISSION_DENIED':
        return 'permission_denied';
      case 'CAPACITY_EXCEEDED':
      case 'DISK_FULL':
        return 'resource_exhausted';
      case 'STATE_CONFLICT':
      case 'NOT_READY':
        return 'unavailable';
      case 'IS_A_DIRECTORY':
      case 'NOT_A_DIRECTORY':
      case 'NOT_A_REGULAR_FILE':
      case 'COMMAND_NOT_STARTED':
      case 'FILE_OPERATION_FAILED':
        return 'failed_precondition';
      default:
        return err.status < 500 ? 'invalid_argument' : 'internal';
    }
  })();
  return { code, message: err.message };
}

/** Read a request body whole, refusing more than MAX_REQUEST_BYTES. */
export async function readBody(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > MAX_REQUEST_BYTES) throw new ConnectError('resource_exhausted', `The request is larger than ${MAX_REQUEST_BYTES} bytes.`);
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

function parseJson(bytes: Buffer): Record<string, unknown> {
  if (bytes.length === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new ConnectError('invalid_argument', 'The request message is not valid JSON; send it with the Connect JSON codec.');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConnectError('invalid_argument', 'The request message must be a JSON object.');
  return value as Record<string, unknown>;
}

/** The message of a unary request (`application/json`). */
export function unaryMessage(contentType: string | undefined, body: Buffer): Record<string, unknown> {
  if (!/^application\/json\b/i.test(contentType ?? '')) {
    throw new ConnectError('unimplemented', `Content-Type ${contentType ?? '(none)'} is not served; use the Connect JSON codec (application/json).`);
  }
  return parseJson(body);
}

/** The one message of a server-streaming request (`application/connect+json`, one envelope). */
export function streamRequestMessage(contentType: string | undefined, body: Buffer): Record<string, unknown> {
  if (!/^application\/connect\+json\b/i.test(contentType ?? '')) {
    throw new ConnectError('unimplemented', `Content-Type ${contentType ?? '(none)'} is not served; use the Connect JSON codec (application/connect+json).`);
  }
  if (body.length < 5) throw new ConnectError('invalid_argument', 'The request has no enveloped message.');
  const length = body.readUInt32BE(1);
  if (body.length < 5 + length) throw new ConnectError('invalid_argument', 'The enveloped request message is cut short.');
  return parseJson(body.subarray(5, 5 + length));
}

/** Answer a unary call. */
export function sendUnary(res: ServerResponse, message: unknown): void {
  const body = JSON.stringify(message);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Answer a unary call with an error. */
export function sendUnaryError(res: ServerResponse, err: unknown): void {
  const { code, message } = connectCodeOf(err);
  const body = JSON.stringify({ code, message });
  res.writeHead(HTTP_STATUS[code], { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function envelope(flags: number, message: unknown): Buffer {
  const data = Buffer.from(JSON.stringify(message), 'utf8');
  const head = Buffer.alloc(5);
  head.writeUInt8(flags, 0);
  head.writeUInt32BE(data.length, 1);
  return Buffer.concat([head, data]);
}

/** The response side of a server-streaming call: messages, then exactly one end. */
export class ConnectStream {
  private ended = false;
  /** Aborts when the client goes away or the stream ended. */
  readonly closed = new AbortController();

  constructor(private readonly res: ServerResponse) {
    res.writeHead(200, { 'content-type': 'application/connect+json' });
    // Headers go out at once: the SDK waits for them before it reads the first message.
    res.flushHeaders();
    // The response's 'close' comes when the client goes away (or after the end): either way nothing more is sent.
    res.on('close', () => this.closed.abort());
  }

  /** Send one message; resolves when the socket took it (a slow client slows the sender). */
  send(message: unknown): Promise<void> {
    if (this.ended || this.res.destroyed) return Promise.resolve();
    if (this.res.write(envelope(0, message))) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.res.off('drain', done);
        this.res.off('close', done);
        resolve();
      };
      this.res.on('drain', done);
      this.res.on('close', done);
    });
  }

  /** End the stream, with an error when given. */
  end(err?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    if (!this.res.destroyed) this.res.end(envelope(END_STREAM, err === undefined ? {} : { error: connectCodeOf(err) }));
    this.closed.abort();
  }
}

/** Keepalive period the SDK asks for (`Keepalive-Ping-Interval`, seconds), else 50 s. */
export function keepaliveMs(req: IncomingMessage): number {
  const s = Number(req.headers['keepalive-ping-interval']);
  return Number.isFinite(s) && s >= 1 && s <= 3600 ? s * 1000 : 50_000;
}
