/** next_token: round trip, and every kind of foreign or edited token refused. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HangarError } from '../domain/errors.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import { CursorCodec } from './list-cursor.js';
import { ServerSecret } from './secrets.js';

const SCOPE = JSON.stringify([['paused', 'running'], null, null]);
const POS = { createdAt: 1_700_000_000_123, id: 'mch_abcdefghij012345' };

function assertInvalid(fn: () => unknown): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof HangarError, `expected HangarError, got ${String(err)}`);
    assert.equal(err.code, 'INVALID_NEXT_TOKEN');
    assert.equal(err.status, 400);
    return true;
  });
}

/** Flip one character of `s` at `i` to another base64url character. */
function flip(s: string, i: number): string {
  const c = s[i] === 'A' ? 'B' : 'A';
  return s.slice(0, i) + c + s.slice(i + 1);
}

describe('CursorCodec', () => {
  let store: SqliteStore;
  let other: SqliteStore;
  let secret: ServerSecret;
  let codec: CursorCodec;

  before(async () => {
    store = new SqliteStore({ path: ':memory:' });
    other = new SqliteStore({ path: ':memory:' });
    secret = await ServerSecret.load(store);
    codec = new CursorCodec(secret);
  });
  after(async () => {
    await store.close();
    await other.close();
  });

  it('round-trips a position for the same team and scope', () => {
    const token = codec.encode(POS, 'team_a', SCOPE);
    assert.deepEqual(codec.decode(token, 'team_a', SCOPE), POS);
  });

  it('round-trips ids with unusual characters and a zero timestamp', () => {
    const pos = { createdAt: 0, id: 'mch_"quoted".\u00e9' };
    assert.deepEqual(codec.decode(codec.encode(pos, 'team_a', SCOPE), 'team_a', SCOPE), pos);
  });

  it('the token is opaque: URL-safe, no raw id or team in it', () => {
    const token = codec.encode(POS, 'team_a', SCOPE);
    assert.match(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    assert.ok(!token.includes('team_a'));
  });

  it('a secret loaded again from the same store decodes the same token', async () => {
    const again = new CursorCodec(await ServerSecret.load(store));
    assert.deepEqual(again.decode(codec.encode(POS, 'team_a', SCOPE), 'team_a', SCOPE), POS);
  });

  it('refuses a token of another team', () => {
    const token = codec.encode(POS, 'team_a', SCOPE);
    assertInvalid(() => codec.decode(token, 'team_b', SCOPE));
  });

  it('refuses a token of another scope (filters changed)', () => {
    const token = codec.encode(POS, 'team_a', SCOPE);
    assertInvalid(() => codec.decode(token, 'team_a', JSON.stringify([['running'], null, null])));
    assertInvalid(() => codec.decode(token, 'team_a', JSON.stringify([['paused', 'running'], 'base', null])));
  });

  it('refuses a token signed by another server (another secret)', async () => {
    const foreign = new CursorCodec(await ServerSecret.load(other));
    assertInvalid(() => codec.decode(foreign.encode(POS, 'team_a', SCOPE), 'team_a', SCOPE));
  });

  it('refuses a tampered body, even one that is a valid position', () => {
    const token = codec.encode(POS, 'team_a', SCOPE);
    const [, mac] = token.split('.');
    const forged = Buffer.from(JSON.stringify([POS.createdAt + 1, POS.id])).toString('base64url');
    assertInvalid(() => codec.decode(`${forged}.${mac}`, 'team_a', SCOPE));
    assertInvalid(() => codec.decode(flip(token, 0), 'team_a', SCOPE));
  });

  it('refuses a tampered signature', () => {
    const token = codec.encode(POS, 'team_a', SCOPE);
    assertInvalid(() => codec.decode(flip(token, token.length - 1), 'team_a', SCOPE));
    assertInvalid(() => codec.decode(token.slice(0, -1), 'team_a', SCOPE));
    assertInvalid(() => codec.decode(`${token}A`, 'team_a', SCOPE));
    assertInvalid(() => codec.decode(`${token}.x`, 'team_a', SCOPE));
  });

  it('refuses a token without its signature, or without its body', () => {
    const token = codec.encode(POS, 'team_a', SCOPE);
    const [body, mac] = token.split('.');
    assertInvalid(() => codec.decode(body!, 'team_a', SCOPE));
    assertInvalid(() => codec.decode(`${body}.`, 'team_a', SCOPE));
    assertInvalid(() => codec.decode(`.${mac}`, 'team_a', SCOPE));
  });

  it('refuses garbage and the empty string', () => {
    for (const garbage of ['', '.', '..', 'x', 'not a token', 'a.b', '%%%.%%%', '\0.\0', 'null', '[1,"x"]', '🙂.🙂']) {
      assertInvalid(() => codec.decode(garbage, 'team_a', SCOPE));
    }
  });

  it('refuses an over-long token', () => {
    const token = codec.encode(POS, 'team_a', SCOPE);
    assertInvalid(() => codec.decode(`${'A'.repeat(600)}${token}`, 'team_a', SCOPE));
    assertInvalid(() => codec.decode('A'.repeat(100_000), 'team_a', SCOPE));
  });

  it('refuses a correctly signed body that is not a position (defence in depth)', () => {
    // Signed with the server's own secret in the codec's format: only the shape check stands in the way.
    const sign = (body: string): string => `${body}.${secret.sign('cursor', `team_a\0${SCOPE}\0${body}`)}`;
    for (const payload of ['{"createdAt":1,"id":"x"}', '["1","x"]', '[1,2]', '[1]', 'not json', '']) {
      const body = Buffer.from(payload).toString('base64url');
      if (body === '') continue; // an empty body is refused before the signature check (covered above)
      assertInvalid(() => codec.decode(sign(body), 'team_a', SCOPE));
    }
    // The same helper accepts a real position, so the refusals above are about the shape.
    const good = Buffer.from(JSON.stringify([5, 'mch_x'])).toString('base64url');
    assert.deepEqual(codec.decode(sign(good), 'team_a', SCOPE), { createdAt: 5, id: 'mch_x' });
  });
});
