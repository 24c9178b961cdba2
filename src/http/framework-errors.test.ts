/**
 * What fails before a route runs (found by the OpenAPI fuzzer): each answer is a catalogue
 * body with the catalogue's status, not Fastify's or Node's own shape.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ERROR_CATALOGUE } from '../domain/errors.js';
import { TestServer } from '../testing/harness.js';

/** Send raw bytes and read the whole answer (the server closes the connection). */
function rawExchange(url: string, bytes: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(bytes));
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (answer += d));
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
  });
}

/** Status line and JSON body of a raw HTTP answer. */
function parseRaw(answer: string): { status: number; body: { code: string; message: string } } {
  const [head = '', body = ''] = answer.split('\r\n\r\n');
  return { status: Number(head.split(' ')[1]), body: JSON.parse(body) as { code: string; message: string } };
}

describe('errors before routing', () => {
  let t: TestServer;
  before(async () => {
    t = await TestServer.start();
  });
  after(async () => {
    await t.dispose();
  });

  it('a path segment over 256 characters is a VALIDATION_FAILED 400, not a 414', async () => {
    const r = await t.request('GET', `/v1/machines/${'x'.repeat(5000)}`);
    assert.equal(r.status, 400);
    assert.equal(r.body.code, 'VALIDATION_FAILED');
    assert.match(r.body.message, /256 characters/);
  });

  it('a malformed percent-escape in the path is a VALIDATION_FAILED 400', async () => {
    const r = await t.request('POST', '/v1/admin/teams/%zz/keys', { body: { name: 'k' } });
    assert.equal(r.status, 400);
    assert.equal(r.body.code, 'VALIDATION_FAILED');
    assert.match(r.body.message, /percent-encoding/);
  });

  it('headers over 16 KiB are a HEADERS_TOO_LARGE 431 with a catalogue body', async () => {
    const r = await t.request('GET', `/v1/machines?template=${'x'.repeat(200_000)}`);
    assert.equal(r.status, 431);
    assert.equal(r.body.code, 'HEADERS_TOO_LARGE');
    assert.equal(ERROR_CATALOGUE.HEADERS_TOO_LARGE.status, 431);
    assert.match(r.body.message, /16 KiB/);
  });

  it('an unparsable request is a MALFORMED_REQUEST 400, and the server still answers afterwards', async () => {
    const { status, body } = parseRaw(await rawExchange(t.url, 'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n'));
    assert.equal(status, 400);
    assert.equal(body.code, 'MALFORMED_REQUEST');
    assert.ok(body.message.length > 0);
    assert.equal((await t.request('GET', '/healthz', { key: null })).status, 200);
  });
});
