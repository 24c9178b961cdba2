/** CappedBuffer: what is kept, when it says truncated, and how a cut character reads. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CappedBuffer } from './capped-buffer.js';

describe('CappedBuffer', () => {
  it('keeps everything under the limit, in order, and is not truncated', () => {
    const b = new CappedBuffer(10);
    b.push(Buffer.from('abc'));
    b.push(Buffer.from(''));
    b.push(Buffer.from('defg'));
    assert.equal(b.bytes().toString(), 'abcdefg');
    assert.equal(b.text(), 'abcdefg');
    assert.equal(b.truncated, false);
  });

  it('exactly the limit is not truncated; one byte more is', () => {
    const b = new CappedBuffer(4);
    b.push(Buffer.from('ab'));
    b.push(Buffer.from('cd'));
    assert.equal(b.truncated, false);
    b.push(Buffer.from('e'));
    assert.equal(b.truncated, true);
    assert.equal(b.bytes().toString(), 'abcd');
  });

  it('keeps the head of a chunk that crosses the limit and drops everything after', () => {
    const b = new CappedBuffer(5);
    b.push(Buffer.from('abc'));
    b.push(Buffer.from('defgh'));
    b.push(Buffer.from('ijk'));
    assert.equal(b.bytes().toString(), 'abcde');
    assert.equal(b.truncated, true);
  });

  it('a zero limit keeps nothing and notes any byte', () => {
    const b = new CappedBuffer(0);
    b.push(Buffer.alloc(0));
    assert.equal(b.truncated, false);
    b.push(Buffer.from('x'));
    assert.deepEqual(b.bytes(), Buffer.alloc(0));
    assert.equal(b.truncated, true);
  });

  it('a multi-byte character cut at the limit is dropped from the text, kept in the bytes', () => {
    const b = new CappedBuffer(4);
    b.push(Buffer.from('ab€')); // € is 3 bytes: only its first fits
    assert.equal(b.truncated, true);
    assert.equal(b.text(), 'ab');
    assert.equal(b.bytes().length, 4);
  });

  it('a character split across chunks under the limit reads whole; an incomplete tail of a whole stream is replaced', () => {
    const euro = Buffer.from('€');
    const b = new CappedBuffer(100);
    b.push(euro.subarray(0, 1));
    b.push(euro.subarray(1));
    assert.equal(b.text(), '€');
    const tail = new CappedBuffer(100);
    tail.push(Buffer.from([0x61, 0xe2, 0x82]));
    assert.equal(tail.text(), 'a\ufffd', 'the stream really ended there: its broken tail shows');
  });
});
