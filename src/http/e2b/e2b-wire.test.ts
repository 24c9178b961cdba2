/** The E2B surface's parsers without a server: Connect envelopes, multipart bodies, list queries and create bodies. */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { HangarError } from '../../domain/errors.js';
import { ConnectError, connectCodeOf, streamRequestMessage, unaryMessage } from './connect-wire.js';
import { createInput, parseMetadataQuery } from './control-routes.js';
import { resolvePath } from './envd-filesystem.js';
import { parseMultipart } from './multipart.js';
import { NewSandboxBody } from './schemas.js';

function envelope(json: string): Buffer {
  const data = Buffer.from(json);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(data.length, 1);
  return Buffer.concat([head, data]);
}

describe('Connect wire', () => {
  it('reads unary and enveloped messages, and refuses other codecs', () => {
    assert.deepEqual(unaryMessage('application/json', Buffer.from('{"path":"/x"}')), { path: '/x' });
    assert.deepEqual(streamRequestMessage('application/connect+json', envelope('{"a":1}')), { a: 1 });
    assert.throws(() => unaryMessage('application/proto', Buffer.alloc(0)), (e: unknown) => e instanceof ConnectError && e.code === 'unimplemented');
    assert.throws(() => streamRequestMessage('application/connect+json', envelope('{"a":1}').subarray(0, 7)), (e: unknown) => e instanceof ConnectError && e.code === 'invalid_argument');
    assert.throws(() => unaryMessage('application/json', Buffer.from('[1]')), (e: unknown) => e instanceof ConnectError && e.code === 'invalid_argument');
  });

  it('maps catalogue errors onto Connect codes', () => {
    assert.equal(connectCodeOf(new HangarError('PATH_NOT_FOUND', 'no')).code, 'not_found');
    assert.equal(connectCodeOf(new HangarError('PATH_EXISTS', 'there')).code, 'already_exists');
    assert.equal(connectCodeOf(new HangarError('STATE_CONFLICT', 'paused')).code, 'unavailable');
    assert.equal(connectCodeOf(new Error('secret detail')).message.includes('secret'), false);
  });
});

describe('multipart uploads', () => {
  it('splits parts with their file names, bytes kept exact', async () => {
    const b = 'XyZ';
    const body = Buffer.concat([
      Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="file"; filename="/a/%22q%22.txt"\r\nContent-Type: application/octet-stream\r\n\r\n`),
      Buffer.from([0, 13, 10, 255]),
      Buffer.from(`\r\n--${b}\r\nContent-Disposition: form-data; name="file"; filename="rel.txt"\r\n\r\nhello\r\n--${b}--\r\n`),
    ]);
    const parts = await parseMultipart(Readable.from([body]), b, 1024);
    assert.deepEqual(parts.map((p) => p.filename), ['/a/"q".txt', 'rel.txt']);
    assert.deepEqual([...parts[0]!.data], [0, 13, 10, 255]);
    assert.equal(parts[1]!.data.toString(), 'hello');
    await assert.rejects(parseMultipart(Readable.from([body]), b, 10), (e: unknown) => e instanceof ConnectError && e.code === 'resource_exhausted');
    await assert.rejects(parseMultipart(Readable.from([Buffer.from('no boundary here')]), b, 1024), ConnectError);
  });
});

describe('control API inputs', () => {
  it('reads the SDK\'s metadata query, encoded twice', () => {
    const sdk = new URLSearchParams({ [encodeURIComponent('a b')]: encodeURIComponent('x&y=z'), k: 'v' }).toString();
    assert.deepEqual(parseMetadataQuery(sdk), { 'a b': 'x&y=z', k: 'v' });
    assert.equal(parseMetadataQuery(undefined), undefined);
    // Found by the fuzzer (seed 42): a bare % was a 500.
    assert.throws(() => parseMetadataQuery('%?@'), (e: unknown) => e instanceof HangarError && e.code === 'VALIDATION_FAILED');
  });

  it('maps a create body onto a machine, refusing what Hangar cannot honour', () => {
    const input = createInput(NewSandboxBody.parse({ templateID: 'base', timeout: 30, envVars: { A: '1' }, autoPause: true, autoResume: { enabled: true }, allow_internet_access: false }));
    assert.equal(input.template, 'base');
    assert.equal(input.timeoutMs, 30_000);
    assert.equal(input.timeoutAction, 'hibernate');
    assert.equal(input.autoResume, true);
    assert.deepEqual(input.outbound, { mode: 'deny' });
    assert.equal(createInput(NewSandboxBody.parse({ templateID: 'snap_abc' })).snapshotId, 'snap_abc');
    assert.throws(() => createInput(NewSandboxBody.parse({ templateID: 'base', volumeMounts: [{ name: 'v', path: '/d' }] })), /volumeMounts/);
    assert.throws(() => createInput(NewSandboxBody.parse({ templateID: 'base', autoPause: true, autoPauseMemory: false })), /keepMemory/);
  });

  it('resolves envd paths against the user\'s home', () => {
    assert.equal(resolvePath('x/../y.txt', undefined), '/root/y.txt');
    assert.equal(resolvePath('y', 'user'), '/home/user/y');
    assert.equal(resolvePath('/a//b/', 'user'), '/a/b');
    assert.throws(() => resolvePath('/a\0b', undefined), ConnectError);
  });
});
