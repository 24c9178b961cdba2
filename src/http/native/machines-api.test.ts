/**
 * The native API's contract (seeds 000, 001, 003 and docs/native-api.md) against a real
 * server with real machines: every field of the machine object, every list parameter,
 * the sandbox view, destroy, timeout refresh, idempotency, auth, and the system routes.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { MACHINE_STATUSES } from '../../domain/machine.js';
import { TestServer, type TestResponse } from '../../testing/harness.js';
import { MachinePageSchema, MachineSchema, MASKABLE_FIELDS, SandboxPageSchema, SandboxSchema } from './schemas.js';

type Machine = Record<string, any>;

const ALL_STATES = MACHINE_STATUSES.join(',');
const SANDBOX_ABSENT = ['remaining_ms', 'last_active_at', 'inactivity_timeout_ms', 'auto_delete_after_ms', 'ephemeral', 'private_ip', 'network', 'public', 'isolation'];
const FullMachine = MachineSchema.strict();
const FullSandbox = SandboxSchema.strict();
const MaskedMachine = MachineSchema.partial().strict();

const isIso = (v: unknown): boolean => typeof v === 'string' && !Number.isNaN(Date.parse(v)) && new Date(v).toISOString() === v;
const q = (v: unknown): string => encodeURIComponent(typeof v === 'string' ? v : JSON.stringify(v));
const ids = (items: Machine[]): string[] => items.map((m) => m.id as string);
const sorted = (a: string[]): string[] => [...a].sort();

/** Newest first: created_at desc, then id desc. */
function assertNewestFirst(items: Machine[]): void {
  for (let i = 1; i < items.length; i++) {
    const a = items[i - 1]!;
    const b = items[i]!;
    const ta = Date.parse(a.created_at);
    const tb = Date.parse(b.created_at);
    assert.ok(ta > tb || (ta === tb && a.id > b.id), `newest first: ${a.id} (${a.created_at}) before ${b.id} (${b.created_at})`);
  }
}

/** Fields and keys an error answer must have. */
function assertError(r: TestResponse, status: number, code: string): void {
  assert.equal(r.status, status, r.text);
  assert.equal(r.body?.code, code, r.text);
  assert.equal(typeof r.body.message, 'string');
  assert.ok(r.body.message.length > 10, r.text);
}

describe('native machines API: the contract', () => {
  let t: TestServer;
  let keyA: string;
  let keyB: string;
  let snapshotsAvailable = false;
  /** Team A's machines: defaults, every option, one to destroy. */
  let plain: Machine;
  let custom: Machine;
  const customMetadata = { zeta: 1, alpha: { y: [1, { b: 2, a: 1 }], x: null, nested: { deep: [true, 'x'] } }, mid: 'text', empty: {} };

  const as = (key: string) => ({
    get: (path: string) => t.request('GET', path, { key }),
    post: (path: string, body?: unknown, headers?: Record<string, string>) => t.request('POST', path, { key, body, headers }),
    del: (path: string) => t.request('DELETE', path, { key }),
  });

  async function create(key: string, body?: Record<string, unknown>, headers?: Record<string, string>): Promise<Machine> {
    const r = await as(key).post('/v1/machines', body, headers);
    assert.equal(r.status, 201, r.text);
    return r.body;
  }

  async function listAll(key: string, query: string): Promise<Machine[]> {
    const r = await as(key).get(`/v1/machines?${query}`);
    assert.equal(r.status, 200, r.text);
    MachinePageSchema.parse(r.body);
    return r.body.items;
  }

  before(async () => {
    t = await TestServer.start();
    keyA = (await t.newTeamKey('contract-a')).key;
    keyB = (await t.newTeamKey('contract-b')).key;
    const info = await as(keyA).get('/v1/info');
    snapshotsAvailable = info.body?.snapshots?.available === true;
  });
  after(async () => {
    await t.dispose();
  });

  describe('create', () => {
    it('without a body: 201, running, with every default of the contract', async () => {
      const before = Date.now();
      const r = await as(keyA).post('/v1/machines');
      const afterCall = Date.now();
      assert.equal(r.status, 201, r.text);
      const m = r.body as Machine;
      plain = m;
      FullMachine.parse(m);
      assert.match(m.id, /^mch_[a-z0-9]+$/);
      assert.equal(m.status, 'running');
      assert.deepEqual(m.config, { vcpus: 1, memory_mb: 512, disk_mb: 1024 });
      assert.equal(m.template, 'base');
      assert.deepEqual(m.metadata, {});
      for (const f of ['created_at', 'started_at', 'timeout_at', 'expires_at']) assert.ok(isIso(m[f]), `${f} is an ISO timestamp: ${m[f]}`);
      assert.ok(Date.parse(m.created_at) >= before - 1 && Date.parse(m.created_at) <= afterCall + 1, 'created_at is now');
      assert.ok(Date.parse(m.started_at) >= Date.parse(m.created_at), 'started after created');
      assert.equal(m.timeout_ms, 300_000);
      assert.equal(Date.parse(m.timeout_at) - Date.parse(m.started_at), 300_000, 'timeout_at = started_at + timeout_ms');
      assert.equal(m.expires_at, m.timeout_at);
      assert.ok(m.remaining_ms <= m.timeout_ms && m.remaining_ms > m.timeout_ms - 5_000, `remaining_ms ${m.remaining_ms}`);
      assert.equal(m.timeout_action, 'destroy');
      assert.equal(m.inactivity_timeout_ms, null);
      assert.equal(m.auto_delete_after_ms, null);
      assert.equal(m.ephemeral, false);
      for (const absent of ['cwd', 'last_active_at', 'snapshot_id', 'warm_pool_checkout', 'error_reason']) {
        assert.ok(!(absent in m), `${absent} is absent`);
      }
      assert.equal(typeof m.traffic_access_token, 'string');
      assert.ok(m.traffic_access_token.length >= 20, 'the traffic token is a real secret');
    });

    it('with every option: each one echoed, cwd normalised, metadata verbatim', async () => {
      const m = await create(keyA, {
        template: 'base',
        config: { vcpus: 2, memory_mb: 256, disk_mb: 128 },
        metadata: customMetadata,
        timeout_ms: 120_000,
        timeout_action: 'destroy',
        inactivity_timeout_ms: 600_000,
        auto_delete_after_ms: 5_000,
        ephemeral: true,
        cwd: '/work/../tmp/x/',
        env: { GREETING: 'hello' },
      });
      custom = m;
      FullMachine.parse(m);
      assert.equal(m.status, 'running');
      assert.deepEqual(m.config, { vcpus: 2, memory_mb: 256, disk_mb: 128 });
      assert.equal(m.template, 'base');
      assert.equal(JSON.stringify(m.metadata), JSON.stringify(customMetadata), 'metadata verbatim, key order included');
      assert.equal(m.timeout_ms, 120_000);
      assert.equal(Date.parse(m.timeout_at) - Date.parse(m.started_at), 120_000);
      assert.equal(m.expires_at, m.timeout_at);
      assert.ok(m.remaining_ms <= 120_000 && m.remaining_ms > 115_000, `remaining_ms ${m.remaining_ms}`);
      assert.equal(m.timeout_action, 'destroy');
      assert.equal(m.inactivity_timeout_ms, 600_000);
      assert.equal(m.auto_delete_after_ms, 5_000);
      assert.equal(m.ephemeral, true);
      assert.equal(m.cwd, '/tmp/x');
      assert.ok(!('env' in m), 'env is not part of the machine object');
      assert.ok(!('last_active_at' in m) && !('snapshot_id' in m) && !('warm_pool_checkout' in m));
      assert.notEqual(m.traffic_access_token, plain.traffic_access_token, 'each machine has its own token');
    });

    it('a partial config takes the defaults for the rest', async () => {
      const m = await create(keyA, { config: { memory_mb: 64 }, metadata: { role: 'partial' } });
      assert.deepEqual(m.config, { vcpus: 1, memory_mb: 64, disk_mb: 1024 });
      const d = await as(keyA).del(`/v1/machines/${m.id}`);
      assert.equal(d.status, 200, d.text);
    });

    it('hibernate and inactivity without ephemeral follow snapshot support', async () => {
      const r = await as(keyA).post('/v1/machines', { timeout_action: 'hibernate', inactivity_timeout_ms: 600_000, metadata: { role: 'hibernate' } });
      if (!snapshotsAvailable) {
        assertError(r, 422, 'UNSUPPORTED_OPERATION');
        return;
      }
      assert.equal(r.status, 201, r.text);
      FullMachine.parse(r.body);
      assert.equal(r.body.timeout_action, 'hibernate');
      assert.equal(r.body.inactivity_timeout_ms, 600_000);
      assert.equal(r.body.ephemeral, false);
      assert.equal(r.body.auto_delete_after_ms, null);
      assert.equal((await as(keyA).del(`/v1/machines/${r.body.id}`)).status, 200);
    });

    it(
      'metadata with integer-like keys keeps its key order',
      { todo: 'bug: metadata is not stored verbatim: JSON.parse (Fastify body parser) puts integer-like keys first, and sqlite-store.ts:56 stores JSON.stringify of that object' },
      async () => {
        const raw = '{"metadata":{"b":1,"10":2,"a":{"2":"x","1":"y"}}}';
        const r = await t.request('POST', '/v1/machines', { key: keyA, rawBody: raw, headers: { 'content-type': 'application/json' } });
        assert.equal(r.status, 201, r.text);
        await as(keyA).del(`/v1/machines/${r.body.id}`);
        assert.equal(JSON.stringify(r.body.metadata), '{"b":1,"10":2,"a":{"2":"x","1":"y"}}');
      },
    );
  });

  describe('get', () => {
    it('returns the same machine, without the traffic token', async () => {
      for (const m of [plain, custom]) {
        const r = await as(keyA).get(`/v1/machines/${m.id}`);
        assert.equal(r.status, 200, r.text);
        FullMachine.parse(r.body);
        assert.ok(!('traffic_access_token' in r.body), 'the token is a secret: only create returns it unasked');
        const { remaining_ms: rem, ...rest } = r.body;
        const { remaining_ms: _r, traffic_access_token: _t, ...created } = m;
        assert.deepEqual(rest, created);
        assert.equal(JSON.stringify(rest.metadata), JSON.stringify(created.metadata), 'key order survives storage');
        assert.ok(rem <= m.remaining_ms && rem > m.timeout_ms - 10_000, 'remaining_ms is computed at response time');
      }
    });

    it('fields: exactly the fields asked for; traffic_access_token only when named, equal to the create value', async () => {
      const r = await as(keyA).get(`/v1/machines/${custom.id}?fields=id,status,config,cwd,traffic_access_token`);
      assert.equal(r.status, 200, r.text);
      MaskedMachine.parse(r.body);
      assert.deepEqual(Object.keys(r.body).sort(), ['config', 'cwd', 'id', 'status', 'traffic_access_token']);
      assert.equal(r.body.traffic_access_token, custom.traffic_access_token);
      assert.equal(r.body.cwd, '/tmp/x');

      const noToken = await as(keyA).get(`/v1/machines/${custom.id}?fields=id,timeout_at,expires_at`);
      assert.deepEqual(Object.keys(noToken.body).sort(), ['expires_at', 'id', 'timeout_at']);
      assert.equal(noToken.body.expires_at, noToken.body.timeout_at);

      const all = await as(keyA).get(`/v1/machines/${custom.id}?fields=${MASKABLE_FIELDS.join(',')}`);
      assert.equal(all.status, 200, all.text);
      // snapshot_id is present only while paused, so it stays out of a running machine even when asked for.
      assert.deepEqual(sorted(Object.keys(all.body)), sorted(MASKABLE_FIELDS.filter((f) => f !== 'snapshot_id')));
    });

    it('an unknown id is 404 NOT_FOUND', async () => {
      assertError(await as(keyA).get('/v1/machines/mch_doesnotexist0000'), 404, 'NOT_FOUND');
    });
  });

  describe('list', () => {
    it('no parameters: the legacy bare array, newest first, full objects without tokens', async () => {
      const r = await as(keyA).get('/v1/machines');
      assert.equal(r.status, 200, r.text);
      assert.ok(Array.isArray(r.body), 'a bare array');
      for (const m of r.body) {
        FullMachine.parse(m);
        assert.ok(!('traffic_access_token' in m));
      }
      assert.deepEqual(sorted(ids(r.body)), sorted([plain.id, custom.id]));
      assertNewestFirst(r.body);
      assert.equal(r.body[0].id, custom.id);
    });

    it('any of state, limit, next_token, template, metadata, fields: a page {items, next_token}', async () => {
      const first = await as(keyA).get('/v1/machines?limit=1');
      assert.equal(typeof first.body.next_token, 'string');
      for (const query of [
        'state=running',
        'limit=100',
        `next_token=${q(first.body.next_token)}`,
        'template=base',
        `metadata=${q({})}`,
        'fields=id',
      ]) {
        const r = await as(keyA).get(`/v1/machines?${query}`);
        assert.equal(r.status, 200, `${query}: ${r.text}`);
        assert.ok(!Array.isArray(r.body), `${query}: not a bare array`);
        assert.deepEqual(Object.keys(r.body).sort(), ['items', 'next_token'], query);
        MachinePageSchema.parse(r.body);
        assert.ok(r.body.items.length >= 1, query);
      }
      // next_token alone continues the default listing after its first page.
      const rest = await as(keyA).get(`/v1/machines?next_token=${q(first.body.next_token)}`);
      assert.deepEqual(ids(rest.body.items), [plain.id]);
      assert.equal(rest.body.next_token, null);
    });

    it('state: comma-separated; destroyed left out by default and shown with state=destroyed', async () => {
      const victim = await create(keyA, { metadata: { role: 'victim' } });
      const d = await as(keyA).del(`/v1/machines/${victim.id}`);
      assert.equal(d.status, 200, d.text);

      assert.ok(!ids((await as(keyA).get('/v1/machines')).body).includes(victim.id), 'bare list leaves destroyed out');
      assert.ok(!ids(await listAll(keyA, 'limit=100')).includes(victim.id), 'page leaves destroyed out');
      assert.deepEqual(ids(await listAll(keyA, 'state=destroyed')).filter((id) => id === victim.id), [victim.id]);
      for (const m of await listAll(keyA, 'state=destroyed')) assert.equal(m.status, 'destroyed');
      const both = await listAll(keyA, `state=${q('running,destroyed')}`);
      assert.ok([plain.id, custom.id, victim.id].every((id) => ids(both).includes(id)));
      assert.ok(both.every((m) => m.status === 'running' || m.status === 'destroyed'));
      assertNewestFirst(both);
      assert.deepEqual(ids(await listAll(keyA, 'state=running, destroyed')).sort(), ids(both).sort(), 'blanks around commas are ignored');
      assert.deepEqual(ids(await listAll(keyA, 'state=paused')), []);
    });

    it('template: exact match', async () => {
      const base = await listAll(keyA, 'template=base');
      assert.deepEqual(sorted(ids(base)), sorted([plain.id, custom.id]));
      assert.deepEqual(await listAll(keyA, 'template=nope'), []);
      assert.deepEqual(await listAll(keyA, 'template=bas'), [], 'no prefix match');
      assert.deepEqual(await listAll(keyA, 'template=BASE'), [], 'no case folding');
    });

    it('metadata: every pair must equal (JSON equality, nested key order free)', async () => {
      const match = async (filter: unknown) => ids(await listAll(keyA, `metadata=${q(filter)}`));
      assert.deepEqual(await match({ zeta: 1 }), [custom.id]);
      assert.deepEqual(await match({ mid: 'text', zeta: 1 }), [custom.id]);
      assert.deepEqual(await match({ alpha: { nested: { deep: [true, 'x'] }, x: null, y: [1, { a: 1, b: 2 }] } }), [custom.id], 'key order does not matter');
      assert.deepEqual(await match({ empty: {} }), [custom.id]);
      assert.deepEqual(await match({ zeta: '1' }), [], 'a string is not a number');
      assert.deepEqual(await match({ zeta: 1, mid: 'other' }), [], 'every pair must match');
      assert.deepEqual(await match({ alpha: { x: null, y: [{ a: 1, b: 2 }, 1], nested: { deep: [true, 'x'] } } }), [], 'array order matters');
      assert.deepEqual(await match({ alpha: { x: null } }), [], 'a nested object must equal, not contain');
      assert.deepEqual(await match({ missing: null }), [], 'a missing key is not null');
      assert.deepEqual(sorted(await match({})), sorted([plain.id, custom.id]), 'the empty filter matches all');
    });

    it('fields: each item has exactly the fields asked for; the token only when named', async () => {
      const items = await listAll(keyA, 'fields=id,status,config');
      assert.equal(items.length, 2);
      for (const m of items) {
        MaskedMachine.parse(m);
        assert.deepEqual(Object.keys(m).sort(), ['config', 'id', 'status']);
      }
      const withToken = await listAll(keyA, 'fields=id,traffic_access_token');
      const byId = new Map(withToken.map((m) => [m.id, m]));
      assert.equal(byId.get(custom.id)?.traffic_access_token, custom.traffic_access_token);
      assert.equal(byId.get(plain.id)?.traffic_access_token, plain.traffic_access_token);
      for (const m of withToken) assert.deepEqual(Object.keys(m).sort(), ['id', 'traffic_access_token']);
      const full = await listAll(keyA, 'limit=100');
      for (const m of full) {
        FullMachine.parse(m);
        assert.ok(!('traffic_access_token' in m), 'no token without fields');
      }
    });
  });

  describe('keyset pagination (its own team, five machines)', () => {
    let keyP: string;
    let machines: Machine[] = [];

    before(async () => {
      keyP = (await t.newTeamKey('pages')).key;
      for (let i = 0; i < 5; i++) machines.push(await create(keyP, { metadata: { page: i } }));
    });

    async function walk(limit: number, between?: (pageNo: number, seen: string[]) => Promise<void>, extra = ''): Promise<{ pages: string[][]; tokens: Array<string | null> }> {
      const pages: string[][] = [];
      const tokens: Array<string | null> = [];
      let token: string | null = null;
      for (let n = 0; n < 20; n++) {
        const r = await t.request('GET', `/v1/machines?limit=${limit}${extra}${token ? `&next_token=${q(token)}` : ''}`, { key: keyP });
        assert.equal(r.status, 200, r.text);
        MachinePageSchema.parse(r.body);
        pages.push(ids(r.body.items));
        tokens.push(r.body.next_token);
        token = r.body.next_token;
        if (token === null) break;
        await between?.(n, pages.flat());
      }
      return { pages, tokens };
    }

    it('limit=2 across 5 machines visits each exactly once, newest first; next_token null on the last page', async () => {
      const { pages, tokens } = await walk(2);
      assert.deepEqual(pages.map((p) => p.length), [2, 2, 1]);
      assert.deepEqual(tokens.map((x) => x === null), [false, false, true]);
      const seen = pages.flat();
      assert.deepEqual(seen, ids(machines).reverse(), 'each exactly once, newest first');
      const bare = (await t.request('GET', '/v1/machines', { key: keyP })).body as Machine[];
      assert.deepEqual(ids(bare), seen, 'same order as the bare list');
    });

    it('a page that ends exactly at the last machine has next_token null', async () => {
      const exact = await walk(5);
      assert.deepEqual(exact.pages.map((p) => p.length), [5]);
      assert.deepEqual(exact.tokens, [null]);
      const oneShort = await walk(4);
      assert.deepEqual(oneShort.pages.map((p) => p.length), [4, 1]);
    });

    it('the cursor keeps the filter it was issued for (fields may change, the scope may not)', async () => {
      const { pages } = await walk(2, undefined, `&metadata=${q({})}&state=running&fields=id`);
      assert.deepEqual(pages.flat(), ids(machines).reverse());
    });

    it('creating and destroying machines between pages neither repeats nor skips those that existed throughout', async () => {
      const newest = ids(machines).reverse(); // [m4, m3, m2, m1, m0]
      const created: string[] = [];
      const destroyed: string[] = [];
      const { pages } = await walk(2, async (n, seen) => {
        if (n !== 0) return;
        // After the first page: one new machine (sorts before the cursor), one seen machine and one unseen machine destroyed.
        created.push((await create(keyP, { metadata: { page: 'late' } })).id);
        const seenVictim = seen[1]!;
        const unseenVictim = newest[3]!;
        for (const id of [seenVictim, unseenVictim]) {
          assert.equal((await t.request('DELETE', `/v1/machines/${id}`, { key: keyP })).status, 200);
          destroyed.push(id);
        }
      });
      const seen = pages.flat();
      assert.equal(new Set(seen).size, seen.length, `no machine repeated: ${seen.join(', ')}`);
      const throughout = newest.filter((id) => !destroyed.includes(id));
      for (const id of throughout) assert.ok(seen.includes(id), `${id} existed throughout and was not skipped`);
      assert.ok(!seen.includes(destroyed[1]!), 'a machine destroyed before its page is not listed as live');
      const live = await listAll(keyP, 'limit=100');
      assert.deepEqual(sorted(ids(live)), sorted([...throughout, ...created]));
      const gone = await listAll(keyP, 'state=destroyed');
      assert.deepEqual(sorted(ids(gone)), sorted(destroyed));
      assert.deepEqual(sorted(ids(await listAll(keyP, 'state=running,destroyed'))), sorted([...newest, ...created]));
    });
  });

  describe('sandboxes: the legacy view of the same machines', () => {
    it('GET /v1/sandboxes: same ids and order, only the sandbox field set', async () => {
      const machinesList = (await as(keyA).get('/v1/machines')).body as Machine[];
      const r = await as(keyA).get('/v1/sandboxes');
      assert.equal(r.status, 200, r.text);
      assert.ok(Array.isArray(r.body));
      assert.deepEqual(ids(r.body), ids(machinesList));
      for (const s of r.body) {
        FullSandbox.parse(s);
        for (const f of SANDBOX_ABSENT) assert.ok(!(f in s), `${f} is not a sandbox field`);
        assert.ok(!('traffic_access_token' in s));
      }
    });

    it('GET /v1/sandboxes/{id}: the machine without the machine-only fields', async () => {
      const r = await as(keyA).get(`/v1/sandboxes/${custom.id}`);
      assert.equal(r.status, 200, r.text);
      FullSandbox.parse(r.body);
      const m = (await as(keyA).get(`/v1/machines/${custom.id}`)).body as Machine;
      const expected = Object.fromEntries(Object.entries(m).filter(([k]) => !SANDBOX_ABSENT.includes(k)));
      assert.deepEqual(r.body, expected);
      assert.equal(r.body.cwd, '/tmp/x');
      assertError(await as(keyA).get('/v1/sandboxes/mch_doesnotexist0000'), 404, 'NOT_FOUND');
    });

    it('sandboxes take the same list parameters and field mask', async () => {
      const page = await as(keyA).get('/v1/sandboxes?limit=1');
      assert.equal(page.status, 200, page.text);
      SandboxPageSchema.parse(page.body);
      assert.equal(page.body.items.length, 1);
      assert.equal(typeof page.body.next_token, 'string');
      for (const s of page.body.items) for (const f of SANDBOX_ABSENT) assert.ok(!(f in s));
      const next = await as(keyA).get(`/v1/sandboxes?limit=1&next_token=${q(page.body.next_token)}`);
      assert.deepEqual([...ids(page.body.items), ...ids(next.body.items)], ids((await as(keyA).get('/v1/machines')).body));
      const masked = await as(keyA).get(`/v1/sandboxes/${custom.id}?fields=id,traffic_access_token`);
      assert.deepEqual(masked.body, { id: custom.id, traffic_access_token: custom.traffic_access_token });
      const filtered = await as(keyA).get(`/v1/sandboxes?metadata=${q({ zeta: 1 })}&fields=id,metadata`);
      assert.deepEqual(filtered.body.items, [{ id: custom.id, metadata: customMetadata }]);
    });
  });

  describe('timeout refresh', () => {
    it('moves timeout_at to now + timeout_ms and stores timeout_ms', async () => {
      const before = Date.now();
      const r = await as(keyA).post(`/v1/machines/${plain.id}/timeout`, { timeout_ms: 900_000 });
      const afterCall = Date.now();
      assert.equal(r.status, 200, r.text);
      FullMachine.parse(r.body);
      assert.equal(r.body.timeout_ms, 900_000);
      const at = Date.parse(r.body.timeout_at);
      assert.ok(at >= before + 900_000 - 1 && at <= afterCall + 900_000 + 1, `timeout_at ${r.body.timeout_at} is now + 900000`);
      assert.equal(r.body.expires_at, r.body.timeout_at);
      assert.ok(r.body.remaining_ms <= 900_000 && r.body.remaining_ms > 895_000);
      assert.equal(r.body.status, 'running');
      assert.ok(!('traffic_access_token' in r.body));
      const g = await as(keyA).get(`/v1/machines/${plain.id}`);
      assert.equal(g.body.timeout_at, r.body.timeout_at, 'stored');
      assert.equal(g.body.timeout_ms, 900_000);
      assert.equal(g.body.started_at, plain.started_at, 'started_at unchanged');
    });

    it('can shorten the deadline too', async () => {
      const r = await as(keyA).post(`/v1/machines/${plain.id}/timeout`, { timeout_ms: 600_000 });
      assert.equal(r.status, 200, r.text);
      assert.ok(r.body.remaining_ms <= 600_000 && r.body.remaining_ms > 595_000);
    });
  });

  describe('idempotency', () => {
    it('same key and body twice: the same machine, only one created', async () => {
      const body = { metadata: { idem: 'sequential' }, timeout_ms: 200_000 };
      const a = await create(keyA, body, { 'idempotency-key': 'idem-seq' });
      const b = await create(keyA, body, { 'idempotency-key': 'idem-seq' });
      assert.equal(b.id, a.id);
      assert.equal(b.traffic_access_token, a.traffic_access_token);
      assert.equal(b.created_at, a.created_at);
      assert.deepEqual(ids(await listAll(keyA, `state=${ALL_STATES}&metadata=${q({ idem: 'sequential' })}`)), [a.id]);
    });

    it('same key and body concurrently: one machine for all', async () => {
      const body = { metadata: { idem: 'parallel' } };
      const answers = await Promise.all([1, 2, 3, 4].map(() => as(keyA).post('/v1/machines', body, { 'idempotency-key': 'idem-par' })));
      for (const r of answers) assert.equal(r.status, 201, r.text);
      assert.equal(new Set(answers.map((r) => r.body.id)).size, 1, `one id: ${answers.map((r) => r.body.id).join(', ')}`);
      for (const r of answers) assert.equal(r.body.status, 'running');
      assert.deepEqual(ids(await listAll(keyA, `state=${ALL_STATES}&metadata=${q({ idem: 'parallel' })}`)), [answers[0]!.body.id]);
    });

    it('same key with another body: 409 IDEMPOTENCY_KEY_REUSED, nothing created', async () => {
      const r = await as(keyA).post('/v1/machines', { metadata: { idem: 'other' } }, { 'idempotency-key': 'idem-seq' });
      assertError(r, 409, 'IDEMPOTENCY_KEY_REUSED');
      assert.deepEqual(await listAll(keyA, `state=${ALL_STATES}&metadata=${q({ idem: 'other' })}`), []);
    });

    it('another team may use the same key independently', async () => {
      const body = { metadata: { idem: 'sequential' }, timeout_ms: 200_000 };
      const mine = await listAll(keyA, `metadata=${q({ idem: 'sequential' })}`);
      const theirs = await create(keyB, body, { 'idempotency-key': 'idem-seq' });
      assert.notEqual(theirs.id, mine[0]!.id);
      assert.deepEqual(ids(await listAll(keyB, `state=${ALL_STATES}&metadata=${q({ idem: 'sequential' })}`)), [theirs.id]);
      const other = await as(keyB).post('/v1/machines', { metadata: { idem: 'b-other' } }, { 'idempotency-key': 'idem-par' });
      assert.equal(other.status, 201, 'team A\'s key idem-par means nothing to team B');
    });
  });

  describe('auth and team isolation', () => {
    it('no header, a malformed header or an unknown key: 401 UNAUTHORIZED', async () => {
      assertError(await t.request('GET', '/v1/machines', { key: null }), 401, 'UNAUTHORIZED');
      for (const authorization of ['Basic dXNlcjpwYXNz', 'Bearer', 'Bearer ', 'Bearer a b', keyA, `Token ${keyA}`]) {
        const r = await t.request('GET', '/v1/machines', { key: null, headers: { authorization } });
        assertError(r, 401, 'UNAUTHORIZED');
      }
      assertError(await t.request('GET', '/v1/machines', { key: 'hgr_notakeythisserverissued' }), 401, 'UNAUTHORIZED');
      assertError(await t.request('POST', '/v1/machines', { key: null, body: {} }), 401, 'UNAUTHORIZED');
      assertError(await t.request('GET', '/v1/info', { key: null }), 401, 'UNAUTHORIZED');
      const lower = await t.request('GET', '/v1/machines', { key: null, headers: { authorization: `bearer ${keyA}` } });
      assert.equal(lower.status, 200, 'the scheme is case-insensitive');
    });

    it("a machine of team A is 404 NOT_FOUND for team B, exactly like a missing one, and stays untouched", async () => {
      const b = as(keyB);
      const missing = 'mch_doesnotexist0000';
      const probes: Array<[string, (id: string) => Promise<TestResponse>]> = [
        ['get', (id) => b.get(`/v1/machines/${id}`)],
        ['get with fields', (id) => b.get(`/v1/machines/${id}?fields=id,traffic_access_token`)],
        ['sandbox get', (id) => b.get(`/v1/sandboxes/${id}`)],
        ['delete', (id) => b.del(`/v1/machines/${id}`)],
        ['timeout', (id) => b.post(`/v1/machines/${id}/timeout`, { timeout_ms: 5_000 })],
      ];
      for (const [name, probe] of probes) {
        const theirs = await probe(custom.id);
        const none = await probe(missing);
        assertError(theirs, 404, 'NOT_FOUND');
        assertError(none, 404, 'NOT_FOUND');
        assert.equal(theirs.body.message.replace(custom.id, 'ID'), none.body.message.replace(missing, 'ID'), `${name}: no difference to probe`);
      }
      const bare = (await b.get('/v1/machines')).body as Machine[];
      assert.ok(!ids(bare).includes(custom.id) && !ids(bare).includes(plain.id));
      assert.ok(!ids((await b.get('/v1/sandboxes')).body).includes(custom.id));
      const all = await listAll(keyB, `state=${ALL_STATES}`);
      assert.ok(!ids(all).includes(custom.id) && !ids(all).includes(plain.id));
      assert.deepEqual(await listAll(keyB, `metadata=${q({ zeta: 1 })}`), []);
      const still = await as(keyA).get(`/v1/machines/${custom.id}`);
      assert.equal(still.body.status, 'running');
      assert.equal(still.body.timeout_at, custom.timeout_at, 'team B did not move the deadline');
    });

    it('a non-admin key on /v1/admin/*: 403 FORBIDDEN', async () => {
      const b = as(keyB);
      assertError(await b.get('/v1/admin/teams'), 403, 'FORBIDDEN');
      assertError(await b.post('/v1/admin/teams', { name: 'mine' }), 403, 'FORBIDDEN');
      assertError(await b.get('/v1/admin/teams/team_admin/keys'), 403, 'FORBIDDEN');
      assertError(await b.post('/v1/admin/teams/team_admin/keys', {}), 403, 'FORBIDDEN');
      assertError(await b.del('/v1/admin/keys/key_whatever'), 403, 'FORBIDDEN');
      assertError(await t.request('GET', '/v1/admin/teams', { key: null }), 401, 'UNAUTHORIZED');
    });

    it('admin: create a team and a key, list keys without secrets, revoke (then 401)', async () => {
      const team = await t.request('POST', '/v1/admin/teams', { body: { name: 'ops' } });
      assert.equal(team.status, 201, team.text);
      assert.match(team.body.id, /^team_[a-z0-9]+$/);
      assert.equal(team.body.name, 'ops');
      assert.equal(team.body.is_admin, false);
      assert.ok(isIso(team.body.created_at));
      const teams = await t.request('GET', '/v1/admin/teams');
      assert.ok((teams.body.items as Machine[]).some((x) => x.id === team.body.id));

      const key = await t.request('POST', `/v1/admin/teams/${team.body.id}/keys`, { body: { name: 'ci' } });
      assert.equal(key.status, 201, key.text);
      assert.equal(typeof key.body.key, 'string');
      assert.equal(key.body.team_id, team.body.id);
      assert.equal(key.body.name, 'ci');
      assert.equal(key.body.revoked_at, null);
      const secret = key.body.key as string;
      const works = await t.request('GET', '/v1/machines', { key: secret });
      assert.equal(works.status, 200, works.text);
      assert.deepEqual(works.body, [], 'a new team sees no machines');

      const listed = await t.request('GET', `/v1/admin/teams/${team.body.id}/keys`);
      assert.equal(listed.status, 200, listed.text);
      assert.deepEqual(ids(listed.body.items), [key.body.id]);
      for (const k of listed.body.items) {
        assert.ok(!('key' in k) && !('hash' in k), 'no secret or hash in the listing');
        assert.ok(!JSON.stringify(k).includes(secret));
      }
      assert.ok(!listed.text.includes(secret));

      const revoked = await t.request('DELETE', `/v1/admin/keys/${key.body.id}`);
      assert.equal(revoked.status, 204, revoked.text);
      assertError(await t.request('GET', '/v1/machines', { key: secret }), 401, 'UNAUTHORIZED');
      const after = await t.request('GET', `/v1/admin/teams/${team.body.id}/keys`);
      assert.ok(isIso(after.body.items[0].revoked_at), 'revoked_at is set');
      assertError(await t.request('DELETE', `/v1/admin/keys/${key.body.id}`), 404, 'NOT_FOUND');
      assertError(await t.request('POST', '/v1/admin/teams/team_nope/keys', { body: {} }), 404, 'NOT_FOUND');
    });
  });

  describe('destroy', () => {
    it('DELETE returns the machine destroyed; a second DELETE is 409; GET still shows it (retention)', async () => {
      const r = await as(keyA).del(`/v1/machines/${custom.id}`);
      assert.equal(r.status, 200, r.text);
      FullMachine.parse(r.body);
      assert.equal(r.body.id, custom.id);
      assert.equal(r.body.status, 'destroyed');
      assert.ok(!('traffic_access_token' in r.body));
      assert.equal(JSON.stringify(r.body.metadata), JSON.stringify(customMetadata));
      assert.equal(await t.server.runtime.inspect(custom.id), null, 'the container is gone');

      assertError(await as(keyA).del(`/v1/machines/${custom.id}`), 409, 'STATE_CONFLICT');
      const g = await as(keyA).get(`/v1/machines/${custom.id}`);
      assert.equal(g.status, 200, g.text);
      FullMachine.parse(g.body);
      assert.equal(g.body.status, 'destroyed');
      assert.equal(g.body.created_at, custom.created_at);
      const s = await as(keyA).get(`/v1/sandboxes/${custom.id}`);
      assert.equal(s.body.status, 'destroyed');
      assert.ok(!ids((await as(keyA).get('/v1/machines')).body).includes(custom.id));
      assert.ok(ids(await listAll(keyA, 'state=destroyed')).includes(custom.id));
    });

    it('a timeout refresh of a destroyed machine is 409 STATE_CONFLICT and changes nothing', async () => {
      const before = (await as(keyA).get(`/v1/machines/${custom.id}`)).body;
      assertError(await as(keyA).post(`/v1/machines/${custom.id}/timeout`, { timeout_ms: 60_000 }), 409, 'STATE_CONFLICT');
      const afterRefresh = (await as(keyA).get(`/v1/machines/${custom.id}`)).body;
      assert.equal(afterRefresh.timeout_at, before.timeout_at);
      assert.equal(afterRefresh.timeout_ms, before.timeout_ms);
    });

    it(
      'a destroyed machine has no time left',
      async () => {
        const g = await as(keyA).get(`/v1/machines/${custom.id}`);
        assert.equal(g.body.remaining_ms, 0);
      },
    );
  });

  describe('system routes', () => {
    it('GET /healthz: 200 without auth', async () => {
      const r = await t.request('GET', '/healthz', { key: null });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body, { status: 'ok' });
    });

    it('GET /openapi.json: OpenAPI 3.1 listing every route, the same as the committed docs/openapi.json', async () => {
      const r = await t.request('GET', '/openapi.json', { key: null });
      assert.equal(r.status, 200, r.text.slice(0, 200));
      assert.match(r.body.openapi, /^3\.1\./);
      const paths = r.body.paths as Record<string, Record<string, unknown>>;
      for (const route of t.server.routes) {
        const path = route.url.replace(/:([A-Za-z_]+)/g, '{$1}');
        assert.ok(paths[path], `${path} is documented`);
        assert.ok(paths[path]![route.method.toLowerCase()], `${route.method} ${path} is documented`);
      }
      for (const p of ['/v1/machines', '/v1/machines/{id}', '/v1/machines/{id}/timeout', '/v1/sandboxes', '/v1/sandboxes/{id}', '/healthz', '/openapi.json', '/v1/info']) {
        assert.ok(paths[p], `${p} is documented`);
      }
      const list = (paths['/v1/machines'] as Record<string, any>).get;
      const params = (list.parameters as Array<{ name: string }>).map((p) => p.name);
      for (const name of ['state', 'limit', 'next_token', 'template', 'metadata', 'fields']) assert.ok(params.includes(name), `list documents ${name}`);
      const committed = JSON.parse(await readFile(fileURLToPath(new URL('../../../../docs/openapi.json', import.meta.url)), 'utf8'));
      assert.deepEqual(r.body, committed, 'the served document is the committed one');
    });

    it('the committed docs/openapi.json passes `openapi-cli --check`', async () => {
      const cli = fileURLToPath(new URL('../openapi-cli.js', import.meta.url));
      const { stdout } = await promisify(execFile)(process.execPath, [cli, '--check'], { timeout: 30_000 });
      assert.match(stdout, /matches the code/);
    });

    it('GET /v1/info: runtime runc; snapshot support stated', async () => {
      const r = await as(keyA).get('/v1/info');
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.runtime.name, 'runc');
      assert.equal(typeof r.body.runtime.version, 'string');
      assert.equal(typeof r.body.snapshots.available, 'boolean');
      assert.ok((r.body.templates as Array<{ name: string }>).some((x) => x.name === 'base'));
      assert.equal(r.body.limits.body_bytes, 1024 * 1024);
    });
  });

  // Last: it purges every destroyed record of this server, as the scheduler does once retention has passed.
  describe('idempotency after retention', () => {
    it(
      'a retry whose first machine was purged does not fail or leave a half-created machine',
      async () => {
        const body = { metadata: { idem: 'purged' } };
        const first = await create(keyA, body, { 'idempotency-key': 'idem-purged' });
        assert.equal((await as(keyA).del(`/v1/machines/${first.id}`)).status, 200);
        assert.ok((await t.server.store.purgeDestroyed(Date.now() + 1)) >= 1);
        const retry = await as(keyA).post('/v1/machines', body, { 'idempotency-key': 'idem-purged' });
        const stuck = (await t.server.store.machinesInStatus(['creating'])).map((m) => m.id);
        if (retry.status === 201) await as(keyA).del(`/v1/machines/${retry.body.id}`);
        assert.deepEqual(stuck, [], 'no machine left in creating');
        assert.equal(retry.status, 201, retry.text);
        assert.equal(retry.body.status, 'running');
      },
    );
  });
});
