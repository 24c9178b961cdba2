/** VNC Authentication's DES answer, checked against OpenSSL's own single DES (legacy provider). */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { vncAuthResponse } from './rfb-client.js';

/** Single DES-ECB by the openssl command, with the key given as hex. */
function opensslDes(keyHex: string, data: Buffer): Buffer {
  return execFileSync('openssl', ['enc', '-des-ecb', '-nopad', '-K', keyHex, '-provider', 'legacy', '-provider', 'default'], { input: data });
}

describe('vncAuthResponse', () => {
  it('is single DES keyed by the password with each byte bit-reversed, zero-padded to 8', () => {
    const challenge = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    // "pass" = 70 61 73 73; bit-reversed: 0e 86 ce ce, then zeros.
    assert.deepEqual(vncAuthResponse('pass', challenge), opensslDes('0e86cece00000000', challenge));
    // Only the first 8 characters count.
    assert.deepEqual(vncAuthResponse('abcdefghXYZ', challenge), vncAuthResponse('abcdefgh', challenge));
    assert.notDeepEqual(vncAuthResponse('abcdefgh', challenge), vncAuthResponse('abcdefgi', challenge));
  });
});
