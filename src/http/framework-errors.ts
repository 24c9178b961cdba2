/**
 * Answers for what fails before a route runs: a URL the router cannot take (bad percent
 * encoding, a path segment past maxParamLength) and an HTTP request Node cannot parse
 * (headers past its limit, a malformed request line). Fastify's defaults answer these with
 * a body of its own shape; here they get the catalogue's, as every other 4xx does.
 */
import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { HangarError, type ErrorCode } from '../domain/errors.js';
import { errorBody, internalError } from './error-mapping.js';

/** The longest path segment the router takes; longer ones are a 400 (ids are at most 128 characters). */
export const MAX_PATH_SEGMENT = 256;

/** The catalogue error for a router failure (Fastify's `frameworkErrors`). */
export function routerError(err: FastifyError): HangarError {
  switch (err.code) {
    case 'FST_ERR_BAD_URL':
      return new HangarError('VALIDATION_FAILED', 'The URL path has a malformed percent-encoding (a % must be followed by two hex digits); encode each path segment.');
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new HangarError('VALIDATION_FAILED', `A path segment is longer than ${MAX_PATH_SEGMENT} characters; ids and names are far shorter, check the URL.`);
    default:
      return internalError();
  }
}

/** Fastify's `frameworkErrors` option: router failures answered from the catalogue. */
export function frameworkErrors(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const e = routerError(err);
  if (e.status >= 500) request.log.error({ err }, 'router error');
  void reply.code(e.status).send(errorBody(e));
}

/** The catalogue error for a request Node's HTTP parser refused (`clientError`), by its error code. */
export function clientError(code: string | undefined): HangarError {
  const [name, message]: [ErrorCode, string] =
    code === 'HPE_HEADER_OVERFLOW'
      ? ['HEADERS_TOO_LARGE', 'The request line and headers exceed 16 KiB; shorten the URL (query values belong in a JSON body where the route takes one) or the headers.']
      : code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? ['REQUEST_TIMEOUT', 'The request was not received in time; send it again.']
        : ['MALFORMED_REQUEST', 'The HTTP request could not be parsed; check the request line, the headers and the body framing.'];
  return new HangarError(name, message);
}

/** Fastify's `clientErrorHandler` option: answer an unparsable request with a catalogue body, then close. */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  // A reset connection has nobody left to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const e = clientError(err.code);
  const body = JSON.stringify(errorBody(e));
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${e.status} ${statusText(e.status)}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy(err);
}

function statusText(status: number): string {
  return status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request';
}
