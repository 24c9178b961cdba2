/**
 * List cursors (native next_token, Paperspace-style after/nextPage): round trip, tokens in
 * the format already handed out, and every kind of foreign or edited token refused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HangarError } from '../domain/errors.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import type { ListCursor } from '../store/store.js';
import { CursorCodec, NEXT_TOKEN_FORMAT, pageCursorFormat, type PagePosition } from './cursor-codec.js';
import { ServerSecret } from './secrets.js';

const SCOPE = JSON.stringify([['paused', 'running'], null, null]);
const POS = { createdAt: 1_700_000_000_123, id: 'mch_abcdefghij012345' };

function assertInvalid(fn: () => unknown, check?: (err: HangarError) => void): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof HangarError, `expected HangarError, got ${String(err)}`);
    assert.equal(err.code, 'INVALID_NEXT_TOKEN');
    assert.equal(err.status, 400);
    check?.(err);
    return true;
  });
}

/** Flip one character of `s` at `i` to another base64url character. */
function flip(s: string, i: number): string {
  const c = s[i] === 'A' ? 'B' : 'A';
  return s.slice(0, i) + c + s.slice(i + 1);
}

describe('CursorCodec: next_token of the native machine list', () => {
  let store: SqliteStore;
  let other: SqliteStore;
  let secret: ServerSecret;
  let codec: CursorCodec<ListCursor>;

  before(async () => {
    store = new SqliteStore({ path: ':memory:' });
    other = new SqliteStore({ path: ':memory:' });
    secret = await ServerSecret.load(store);
    codec = new CursorCodec(secret, NEXT_TOKEN_FORMAT);
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
    const again = new CursorCodec(await ServerSecret.load(store), NEXT_TOKEN_FORMAT);
    assert.deepEqual(again.decode(codec.encode(POS, 'team_a', SCOPE), 'team_a', SCOPE), POS);
  });

  it('refuses a token of another team, with the next_token message and no field', () => {
    const token = codec.encode(POS, 'team_a', SCOPE);
    assertInvalid(
      () => codec.decode(token, 'team_b', SCOPE),
      (err) => {
        assert.match(err.message, /^next_token is not valid for this request/);
        assert.equal(err.details, undefined);
      },
    );
  });

  it('a token in the format handed out before (body = base64url of [createdAt, id], signed for "cursor") decodes', () => {
    const body = Buffer.from(JSON.stringify([POS.createdAt, POS.id])).toString('base64url');
    const old = `${body}.${secret.sign('cursor', `team_a\0${SCOPE}\0${body}`)}`;
    assert.equal(codec.encode(POS, 'team_a', SCOPE), old, 'the same token is still handed out');
    assert.deepEqual(codec.decode(old, 'team_a', SCOPE), POS);
  });

  it('refuses a token of another scope (filters changed)', () => {
    const token = codec.encode(POS, 'team_a', SCOPE);
    assertInvalid(() => codec.decode(token, 'team_a', JSON.stringify([['running'], null, null])));
    assertInvalid(() => codec.decode(token, 'team_a', JSON.stringify([['paused', 'running'], 'base', null])));
  });

  it('refuses a token signed by another server (another secret)', async () => {
    const foreign = new CursorCodec(await ServerSecret.load(other), NEXT_TOKEN_FORMAT);
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

describe('CursorCodec: Paperspace-style after/nextPage', () => {
  let store: SqliteStore;
  let secret: ServerSecret;
  let machines: CursorCodec;
  let events: CursorCodec;

  before(async () => {
    store = new SqliteStore({ path: ':memory:' });
    secret = await ServerSecret.load(store);
    machines = new CursorCodec(secret, pageCursorFormat('paperspace-machines'));
    events = new CursorCodec(secret, pageCursorFormat('machine-events'));
  });
  after(async () => {
    await store.close();
  });

  it('round-trips string and number keys, unusual characters included', () => {
    for (const pos of [['ready', 'mch_a'], [1_700_000_000_123, 'mch_b'], ['', 'mch_c'], ['é 日本 🙂 "q"', 'mch_d'], [0, '']] as PagePosition[]) {
      assert.deepEqual(machines.decode(machines.encode(pos, 'team_a', SCOPE), 'team_a', SCOPE), pos);
    }
  });

  it('a token in the format handed out before (body = base64url of [key, id], signed for the listing) decodes', () => {
    const pos: PagePosition = ['alpha', 'mch_x'];
    const body = Buffer.from(JSON.stringify(pos)).toString('base64url');
    const old = `${body}.${secret.sign('paperspace-machines', `team_a\0${SCOPE}\0${body}`)}`;
    assert.equal(machines.encode(pos, 'team_a', SCOPE), old, 'the same token is still handed out');
    assert.deepEqual(machines.decode(old, 'team_a', SCOPE), pos);
  });

  it('refuses a cursor of another listing, naming the parameter it came in', () => {
    const token = events.encode([5, 'mev_x'], 'team_a', SCOPE);
    assertInvalid(
      () => machines.decode(token, 'team_a', SCOPE),
      (err) => {
        assert.match(err.message, /^after is not valid for this request/);
        assert.deepEqual(err.details, { field: 'after' });
      },
    );
    assertInvalid(
      () => machines.decode(token, 'team_a', SCOPE, 'cursor'),
      (err) => assert.deepEqual(err.details, { field: 'cursor' }),
    );
    assert.deepEqual(machines.invalid().details, { field: 'after' });
  });

  it('next_token and after never accept each other\'s tokens', () => {
    const nextTokens = new CursorCodec(secret, NEXT_TOKEN_FORMAT);
    const next = nextTokens.encode(POS, 'team_a', SCOPE);
    assertInvalid(() => machines.decode(next, 'team_a', SCOPE));
    assertInvalid(() => nextTokens.decode(machines.encode([POS.createdAt, POS.id], 'team_a', SCOPE), 'team_a', SCOPE));
  });

  it('refuses another team, another scope, an edited body, garbage and over-long tokens (1024 characters)', () => {
    const token = machines.encode(['ready', 'mch_a'], 'team_a', SCOPE);
    assertInvalid(() => machines.decode(token, 'team_b', SCOPE));
    assertInvalid(() => machines.decode(token, 'team_a', `${SCOPE} `));
    assertInvalid(() => machines.decode(flip(token, 0), 'team_a', SCOPE));
    for (const garbage of ['', '.', 'x', 'a.b', '🙂.🙂']) assertInvalid(() => machines.decode(garbage, 'team_a', SCOPE));
    const long: PagePosition = ['n'.repeat(600), 'mch_a'];
    assert.deepEqual(machines.decode(machines.encode(long, 'team_a', SCOPE), 'team_a', SCOPE), long, 'a long name still fits');
    assertInvalid(() => machines.decode(`${'A'.repeat(1025)}${token}`, 'team_a', SCOPE));
  });

  it('refuses a correctly signed body that is not a [key, id] pair', () => {
    const sign = (payload: string): string => {
      const body = Buffer.from(payload).toString('base64url');
      return `${body}.${secret.sign('paperspace-machines', `team_a\0${SCOPE}\0${body}`)}`;
    };
    for (const payload of ['["a","b","c"]', '[null,"x"]', '[true,"x"]', '["a",1]', '{"0":"a","1":"b"}', '"a"', 'nope']) {
      assertInvalid(() => machines.decode(sign(payload), 'team_a', SCOPE));
    }
    assert.deepEqual(machines.decode(sign('["a","b"]'), 'team_a', SCOPE), ['a', 'b']);
  });
});
