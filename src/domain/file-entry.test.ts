/** Paths, modes and types of files inside machines. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileTypeOfMode, formatMode, isSameOrInside, normaliseFilePath } from './file-entry.js';

describe('normaliseFilePath', () => {
  it('applies . and .. to the text, never above /', () => {
    const cases: Array<[string, string | null]> = [
      ['/', '/'],
      ['/a/./b/../c/', '/a/c'],
      ['/../../etc/passwd', '/etc/passwd'],
      ['/a/../../../..', '/'],
      ['//a//b', '/a/b'],
      ['/...', '/...'],
      ['/a b/ü', '/a b/ü'],
      ['relative', null],
      ['', null],
      ['./a', null],
      ['/a\0b', null],
      [`/${'a'.repeat(4096)}`, null],
    ];
    for (const [input, want] of cases) assert.equal(normaliseFilePath(input), want, JSON.stringify(input));
  });
});

describe('fileTypeOfMode and formatMode', () => {
  it('decode the type bits and print the permission bits as 4 octal digits', () => {
    assert.equal(fileTypeOfMode(0o100644), 'file');
    assert.equal(fileTypeOfMode(0o040755), 'directory');
    assert.equal(fileTypeOfMode(0o120777), 'symlink');
    assert.equal(fileTypeOfMode(0o010644), 'fifo');
    assert.equal(fileTypeOfMode(0o140755), 'socket');
    assert.equal(fileTypeOfMode(0o020666), 'char_device');
    assert.equal(fileTypeOfMode(0o060660), 'block_device');
    assert.equal(fileTypeOfMode(0o644), null);
    assert.equal(formatMode(0o100644), '0644');
    assert.equal(formatMode(0o041777), '1777');
    assert.equal(formatMode(0o104755), '4755');
    assert.equal(formatMode(0o100000), '0000');
  });
});

describe('isSameOrInside', () => {
  it('compares whole components', () => {
    assert.equal(isSameOrInside('/a', '/a'), true);
    assert.equal(isSameOrInside('/a/b', '/a'), true);
    assert.equal(isSameOrInside('/ab', '/a'), false);
    assert.equal(isSameOrInside('/x', '/'), true);
    assert.equal(isSameOrInside('/', '/a'), false);
  });
});
