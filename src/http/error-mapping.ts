import type { FastifyError } from 'fastify';
import { HangarError } from '../domain/errors.js';

/** The JSON body of an error answer: `{code, message, details?}`. */
export function errorBody(err: HangarError): Record<string, unknown> {
  return err.details === undefined ? { code: err.code, message: err.message } : { code: err.code, message: err.message, details: err.details };
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
