/** The one error renderer of every surface's error handler: statuses, bodies and what gets logged. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errorCodes } from 'fastify';
import { HangarError } from '../domain/errors.js';
import { errorReply } from './error-mapping.js';

describe('errorReply', () => {
  it('a catalogue error keeps its status and code; details only when it has them', () => {
    assert.deepEqual(errorReply(new HangarError('NOT_FOUND', 'No machine x.'), false), {
      status: 404,
      body: { code: 'NOT_FOUND', message: 'No machine x.' },
      logMessage: null,
      headers: {},
    });
    const withDetails = errorReply(new HangarError('VALIDATION_FAILED', 'Invalid.', { fields: [] }), false);
    assert.deepEqual(withDetails.body, { code: 'VALIDATION_FAILED', message: 'Invalid.', details: { fields: [] } });
  });

  it('a catalogue 5xx is logged with its own message', () => {
    const r = errorReply(new HangarError('RUNTIME_FAILED', 'runc failed.'), false);
    assert.equal(r.status, 500);
    assert.equal(r.logMessage, 'runc failed.');
  });

  it('anything else is INTERNAL, logged, and tells the client nothing of it', () => {
    const r = errorReply(new Error('secret path /var/lib/x'), false);
    assert.deepEqual(r, {
      status: 500,
      body: { code: 'INTERNAL', message: 'An unexpected error occurred; it has been logged.' },
      logMessage: 'unhandled error',
      headers: {},
    });
  });

  it("Fastify's own errors are mapped onto the catalogue; a stream-body route's media type error says so", () => {
    const tooLarge = new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE();
    assert.equal(errorReply(tooLarge, false).body.code, 'BODY_TOO_LARGE');
    const media = new errorCodes.FST_ERR_CTP_INVALID_MEDIA_TYPE('x/y');
    assert.match(String(errorReply(media, false).body.message), /application\/json/);
    assert.match(String(errorReply(media, true).body.message), /malformed/);
  });

  it("uses the surface's renderer for the body, never for the status", () => {
    const r = errorReply(new HangarError('NOT_FOUND', 'No machine x.'), false, (e) => ({ error: e.code }));
    assert.deepEqual([r.status, r.body], [404, { error: 'NOT_FOUND' }]);
  });
});
