/** Exact JSON equality and the list `metadata` filter. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isJsonObject, jsonEqual, metadataMatches } from './metadata.js';

describe('jsonEqual', () => {
  it('ignores object key order, at every depth', () => {
    assert.equal(jsonEqual({ a: 1, b: 2 }, { b: 2, a: 1 }), true);
    assert.equal(jsonEqual({ o: { x: 1, y: [1, { p: 1, q: 2 }] } }, { o: { y: [1, { q: 2, p: 1 }], x: 1 } }), true);
  });

  it('compares arrays in order', () => {
    assert.equal(jsonEqual([1, 2, 3], [1, 2, 3]), true);
    assert.equal(jsonEqual([1, 2, 3], [3, 2, 1]), false);
    assert.equal(jsonEqual([1, 2], [1, 2, 3]), false);
    assert.equal(jsonEqual([1, 2, 3], [1, 2]), false);
    assert.equal(jsonEqual([], []), true);
  });

  it('tells numbers from strings and booleans', () => {
    assert.equal(jsonEqual(1, '1'), false);
    assert.equal(jsonEqual('1', 1), false);
    assert.equal(jsonEqual(1, true), false);
    assert.equal(jsonEqual(0, false), false);
    assert.equal(jsonEqual('', 0), false);
    assert.equal(jsonEqual(1.5, 1.5), true);
  });

  it('treats null as its own value', () => {
    assert.equal(jsonEqual(null, null), true);
    assert.equal(jsonEqual(null, {}), false);
    assert.equal(jsonEqual({}, null), false);
    assert.equal(jsonEqual(null, 0), false);
    assert.equal(jsonEqual(null, 'null'), false);
    assert.equal(jsonEqual({ a: null }, { a: null }), true);
    assert.equal(jsonEqual({ a: null }, {}), false);
  });

  it('tells objects from arrays, both ways', () => {
    assert.equal(jsonEqual({ 0: 'a' }, ['a']), false);
    assert.equal(jsonEqual(['a'], { 0: 'a' }), false);
    assert.equal(jsonEqual({}, []), false);
    assert.equal(jsonEqual([], {}), false);
  });

  it('requires the same key set (extra or missing keys differ)', () => {
    assert.equal(jsonEqual({ a: 1 }, { a: 1, b: 2 }), false);
    assert.equal(jsonEqual({ a: 1, b: 2 }, { a: 1 }), false);
    assert.equal(jsonEqual({ a: 1, b: 2 }, { a: 1, c: 2 }), false);
    assert.equal(jsonEqual({ a: { b: 1 } }, { a: { b: 2 } }), false);
  });
});

describe('isJsonObject', () => {
  it('accepts plain objects only', () => {
    assert.equal(isJsonObject({}), true);
    assert.equal(isJsonObject([]), false);
    assert.equal(isJsonObject(null), false);
    assert.equal(isJsonObject('x'), false);
    assert.equal(isJsonObject(1), false);
  });
});

describe('metadataMatches', () => {
  const md = { env: 'prod', owner: { name: 'a', team: 'x' }, tags: ['a', 'b'], n: 1, nothing: null };

  it('the empty filter matches everything, including empty metadata', () => {
    assert.equal(metadataMatches(md, {}), true);
    assert.equal(metadataMatches({}, {}), true);
  });

  it('matches when every filter pair equals the metadata value; extra metadata keys are fine', () => {
    assert.equal(metadataMatches(md, { env: 'prod' }), true);
    assert.equal(metadataMatches(md, { env: 'prod', n: 1 }), true);
    assert.equal(metadataMatches(md, { owner: { team: 'x', name: 'a' } }), true);
    assert.equal(metadataMatches(md, { tags: ['a', 'b'] }), true);
    assert.equal(metadataMatches(md, { nothing: null }), true);
  });

  it('fails when any one pair differs', () => {
    assert.equal(metadataMatches(md, { env: 'prod', n: 2 }), false);
    assert.equal(metadataMatches(md, { env: 'dev' }), false);
    assert.equal(metadataMatches(md, { n: '1' }), false);
    assert.equal(metadataMatches(md, { tags: ['b', 'a'] }), false);
  });

  it('compares nested values exactly, not as a subset', () => {
    assert.equal(metadataMatches(md, { owner: { name: 'a' } }), false);
    assert.equal(metadataMatches(md, { owner: { name: 'a', team: 'x', extra: 1 } }), false);
  });

  it('a missing key fails, even when the filter asks for null', () => {
    assert.equal(metadataMatches(md, { missing: 'x' }), false);
    assert.equal(metadataMatches(md, { missing: null }), false);
    assert.equal(metadataMatches({}, { env: 'prod' }), false);
  });

  it('does not match inherited properties', () => {
    assert.equal(metadataMatches({}, { toString: Object.prototype.toString }), false);
    assert.equal(metadataMatches({ a: 1 }, JSON.parse('{"constructor": {}}')), false);
  });
});
