import type { FastifyError, FastifyInstance } from 'fastify';
import { HangarError } from '../domain/errors.js';
import { takesStreamBody } from './route.js';

/** The JSON body of an error answer: `{code, message, details?}`. */
export function errorBody(err: HangarError): Record<string, unknown> {
  return err.details === undefined ? { code: err.code, message: err.message } : { code: err.code, message: err.message, details: err.details };
}

/** How a surface writes the body of a catalogue error (the status is always the catalogue's). */
export type ErrorBodyRenderer = (err: HangarError) => Record<string, unknown>;

/** The error that stands for anything the catalogue does not describe: the log has the details, the client no stack trace. */
export function internalError(): HangarError {
  return new HangarError('INTERNAL', 'An unexpected error occurred; it has been logged.');
}

/** What the client gets for a thrown error, and what the log says about it. */
export interface ErrorReply {
  status: number;
  body: Record<string, unknown>;
  /** The message of the error log line (every 5xx is logged, with the error); null: nothing to log. */
  logMessage: string | null;
  /** Headers the answer carries (Retry-After of RATE_LIMITED). */
  headers: Record<string, string>;
}

/**
 * Map a thrown error to its answer: catalogue errors as they are, Fastify's own mapped onto
 * the catalogue, anything else INTERNAL. `streamBody`: the route takes any media type.
 */
export function errorReply(err: unknown, streamBody: boolean, render: ErrorBodyRenderer = errorBody): ErrorReply {
  const known = err instanceof HangarError ? err : fromFastifyError(err as FastifyError, streamBody);
  const e = known ?? internalError();
  const logMessage = known === null ? 'unhandled error' : known.status >= 500 ? known.message : null;
  const retry = e.code === 'RATE_LIMITED' ? e.details?.retry_after_s : undefined;
  return { status: e.status, body: render(e), logMessage, headers: typeof retry === 'number' ? { 'retry-after': String(retry) } : {} };
}

type ErrorHandler = Parameters<FastifyInstance['setErrorHandler']>[0];

/** A Fastify error handler answering with `errorReply`; a surface passes its own `render` when its seed's body differs. */
export function errorHandler(render: ErrorBodyRenderer = errorBody): ErrorHandler {
  return (err: unknown, request, reply) => {
    const answer = errorReply(err, takesStreamBody(request), render);
    if (answer.logMessage !== null) request.log.error({ err }, answer.logMessage);
    return reply.code(answer.status).headers(answer.headers).send(answer.body);
  };
}

/** Map Fastify's own errors (body parsing, limits) onto the catalogue; `streamBody`: the route takes any media type. */
export function fromFastifyError(err: FastifyError, streamBody = false): HangarError | null {
  if (streamBody && err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return new HangarError('UNSUPPORTED_MEDIA_TYPE', 'The Content-Type header is malformed; send the bytes with a valid one such as application/octet-stream.');
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new HangarError('BODY_TOO_LARGE', 'The request body is too large; send at most 1 MiB of JSON.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new HangarError('UNSUPPORTED_MEDIA_TYPE', 'Send the body as JSON with "Content-Type: application/json".');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new HangarError('INVALID_JSON', 'The body is empty but Content-Type says JSON; send a JSON object such as {}.');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new HangarError('VALIDATION_FAILED', 'Content-Length does not match the body sent.');
  }
  if (err.statusCode === 400 && /prototype property/i.test(err.message)) {
    return new HangarError('INVALID_JSON', 'JSON keys "__proto__" and "constructor" are not accepted; rename them.');
  }
  if (err.statusCode === 400 && (err instanceof SyntaxError || /JSON/i.test(err.message))) {
    return new HangarError('INVALID_JSON', 'The body is not valid JSON; check quotes, commas and brackets.');
  }
  return null;
}
