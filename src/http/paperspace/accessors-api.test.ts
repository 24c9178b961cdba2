/**
 * Users, user keys and machine accessors against a real server and real machines: a
 * member reaches only the machines it created or is an accessor of, on every surface;
 * team admins and team keys reach all of the team's; adding and removing an accessor
 * really grants and revokes; bad input is a clear 4xx that changes nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN_KEY, TestServer, type TestResponse } from '../../testing/harness.js';
import { AccessorPageSchema, PaperspaceAccessorSchema, PaperspaceErrorSchema } from './schemas.js';

type Json = Record<string, any>;
const BASE = '/paperspace/v1';
const CREATE = { name: 'shared', machineType: 'C1', templateId: 'base', region: 'local', diskSize: 1 };

function assertError(r: TestResponse, status: number, code: string, mentions?: string): void {
  assert.equal(r.status, status, r.text);
  assert.equal(r.body.code, code, r.text);
  assert.ok(r.body.message.length > 10, r.text);
  if (mentions) assert.ok(r.text.includes(mentions), `error mentions ${mentions}: ${r.text}`);
}

describe('users and accessors', () => {
  let t: TestServer;
  let teamId: string;
  let teamKey: string;
  const users: Record<string, Json> = {};
  const keys: Record<string, string> = {};
  /** Created by alice, through the Paperspace surface. */
  let shared: Json;

  const ps = (key: string, method: string, path: string, body?: unknown) => t.request(method, `${BASE}${path}`, { body, key });
  const native = (key: string, method: string, path: string, body?: unknown) => t.request(method, path, { body, key });
  const admin = (method: string, path: string, body?: unknown) => t.request(method, path, { body, key: ADMIN_KEY });
  const finished = (key: string, eventId: string): Promise<Json> => t.finishedEvent(eventId, key);
  const create = async (key: string, body: Json): Promise<Json> => {
    const r = await ps(key, 'POST', '/machines', body);
    assert.equal(r.status, 200, r.text);
    assert.equal((await finished(key, r.body.event.id)).state, 'done');
    return r.body.data;
  };
  const reaches = async (who: string, id: string): Promise<boolean> => {
    const r = await ps(keys[who]!, 'GET', `/machines/${id}`);
    if (r.status === 404) {
      assertError(r, 404, 'NOT_FOUND');
      return false;
    }
    assert.equal(r.status, 200, r.text);
    return true;
  };

  before(async () => {
    t = await TestServer.start();
    ({ teamId, key: teamKey } = await t.newTeamKey('people'));
    for (const [name, role] of [['alice', 'member'], ['bob', 'member'], ['carol', 'admin'], ['dave', 'member']] as const) {
      const r = await admin('POST', `/v1/admin/teams/${teamId}/users`, { email: `${name.toUpperCase()}@example.test`, first_name: name, last_name: 'Tester', role });
      assert.equal(r.status, 201, r.text);
      users[name] = r.body;
      const k = await admin('POST', `/v1/admin/users/${r.body.id}/keys`, { name: `${name}'s key` });
      assert.equal(k.status, 201, k.text);
      assert.equal(k.body.user_id, r.body.id);
      keys[name] = k.body.key;
    }
    const other = await t.newTeamKey('others');
    const olga = await admin('POST', `/v1/admin/teams/${other.teamId}/users`, { email: 'olga@example.test' });
    users.olga = olga.body;
    shared = await create(keys.alice!, CREATE);
  });
  after(async () => {
    await t.dispose();
  });

  describe('admin endpoints for users', () => {
    it('creates users with lower-cased email, names and role, and lists and gets them', async () => {
      assert.match(users.alice!.id, /^usr_[a-z0-9]{12}$/);
      assert.deepEqual(
        { ...users.alice, id: undefined, created_at: undefined },
        { id: undefined, team_id: teamId, email: 'alice@example.test', first_name: 'alice', last_name: 'Tester', role: 'member', created_at: undefined },
      );
      assert.equal(users.carol!.role, 'admin');
      assert.equal(users.olga!.role, 'member', 'role defaults to member');
      assert.equal(users.olga!.first_name, null);
      const list = await admin('GET', `/v1/admin/teams/${teamId}/users`);
      assert.deepEqual(list.body.items.map((u: Json) => u.email), ['alice@example.test', 'bob@example.test', 'carol@example.test', 'dave@example.test']);
      assert.deepEqual((await admin('GET', `/v1/admin/users/${users.bob!.id}`)).body, users.bob);
    });

    it('bad input is a clear 4xx and creates nothing', async () => {
      assertError(await admin('POST', `/v1/admin/teams/${teamId}/users`, { email: 'Alice@Example.test' }), 400, 'VALIDATION_FAILED', 'already has a user');
      assertError(await admin('POST', `/v1/admin/teams/${teamId}/users`, { email: 'not-an-email' }), 400, 'VALIDATION_FAILED', 'email');
      assertError(await admin('POST', `/v1/admin/teams/${teamId}/users`, { email: 'x@example.test', role: 'owner' }), 400, 'VALIDATION_FAILED', 'role');
      assertError(await admin('POST', `/v1/admin/teams/${teamId}/users`, { email: 'x@example.test', extra: 1 }), 400, 'VALIDATION_FAILED');
      assertError(await admin('POST', '/v1/admin/teams/team_nosuchteam/users', { email: 'x@example.test' }), 404, 'NOT_FOUND');
      assertError(await admin('GET', '/v1/admin/users/usr_nosuchuser'), 404, 'NOT_FOUND');
      assertError(await admin('POST', '/v1/admin/users/usr_nosuchuser/keys', {}), 404, 'NOT_FOUND');
      assertError(await t.request('POST', `/v1/admin/teams/${teamId}/users`, { body: { email: 'y@example.test' }, key: keys.carol }), 403, 'FORBIDDEN');
      assertError(await t.request('GET', `/v1/admin/teams/${teamId}/users`, { key: teamKey }), 403, 'FORBIDDEN');
      assert.equal((await admin('GET', `/v1/admin/teams/${teamId}/users`)).body.items.length, 4);
    });
  });

  describe('who reaches a machine', () => {
    it('records its creator; the creator, team admins and team keys reach it, other members get 404', async () => {
      const n = await native(teamKey, 'GET', `/v1/machines/${shared.id}`);
      assert.equal(n.body.created_by, users.alice!.id);
      assert.equal(await reaches('alice', shared.id), true);
      assert.equal(await reaches('carol', shared.id), true);
      assert.equal((await ps(teamKey, 'GET', `/machines/${shared.id}`)).status, 200);
      assert.equal(await reaches('bob', shared.id), false);
    });

    it('a member sees it nowhere: lists, native API, exec, events, operations, snapshots', async () => {
      const id = shared.id as string;
      const bob = keys.bob!;
      assert.ok(!(await ps(bob, 'GET', '/machines')).body.items.some((m: Json) => m.id === id));
      assert.ok(!(await native(bob, 'GET', '/v1/machines')).body.some((m: Json) => m.id === id));
      assert.ok((await native(keys.carol!, 'GET', '/v1/machines')).body.some((m: Json) => m.id === id));
      const computeIds = async (k: string): Promise<string[]> => (await native(k, 'GET', '/compute/machines')).body.body.results.map((m: Json) => m.id);
      assert.ok(!(await computeIds(bob)).includes(id));
      assert.ok((await computeIds(keys.alice!)).includes(id));
      assertError(await native(bob, 'GET', `/v1/machines/${id}`), 404, 'NOT_FOUND');
      assertError(await native(bob, 'POST', `/v1/machines/${id}/exec`, { cmd: ['true'] }), 404, 'NOT_FOUND');
      assertError(await native(bob, 'GET', `/v1/machines/${id}/files?path=/etc/hostname`), 404, 'NOT_FOUND');
      assertError(await ps(bob, 'PATCH', `/machines/${id}/stop`), 404, 'NOT_FOUND');
      assertError(await ps(bob, 'DELETE', `/machines/${id}`), 404, 'NOT_FOUND');
      const events = await ps(bob, 'GET', '/machine-events');
      assert.ok(!events.body.items.some((e: Json) => e.machineId === id), events.text);
      const aliceEvents = await ps(keys.alice!, 'GET', `/machine-events?machineId=${id}`);
      assert.ok(aliceEvents.body.items.length >= 1);
      assertError(await ps(bob, 'GET', `/machine-events/${aliceEvents.body.items[0].id}`), 404, 'NOT_FOUND');
      const snap = await native(keys.alice!, 'POST', `/v1/machines/${id}/snapshots`);
      assert.equal(snap.status, 201, snap.text);
      assert.ok(!(await native(bob, 'GET', '/v1/snapshots')).body.items.some((s: Json) => s.id === snap.body.id));
      assertError(await native(bob, 'GET', `/v1/snapshots/${snap.body.id}`), 404, 'NOT_FOUND');
      assertError(await native(bob, 'POST', '/v1/machines', { snapshot_id: snap.body.id }), 422, 'UNKNOWN_SNAPSHOT');
      assert.equal((await native(keys.carol!, 'GET', `/v1/snapshots/${snap.body.id}`)).status, 200);
      assert.equal((await native(keys.alice!, 'DELETE', `/v1/snapshots/${snap.body.id}`)).status, 204);
      assertError(await ps(bob, 'GET', `/machines/${id}/accessors`), 404, 'NOT_FOUND');
      assertError(await ps(bob, 'POST', `/machines/${id}/accessors`, { userId: users.bob!.id }), 404, 'NOT_FOUND');
    });
  });

  describe('accessors', () => {
    it('adding one grants access on every surface; removing it revokes it', async () => {
      const id = shared.id as string;
      const added = await ps(keys.alice!, 'POST', `/machines/${id}/accessors`, { userId: users.bob!.id });
      assert.equal(added.status, 200, added.text);
      PaperspaceAccessorSchema.parse(added.body);
      assert.deepEqual(added.body, {
        dtDeleted: null,
        user: { email: 'bob@example.test', firstName: 'bob', id: users.bob!.id, lastName: 'Tester', publicProfileImageUrl: null },
      });
      // Granting again changes nothing.
      assert.deepEqual((await ps(keys.alice!, 'POST', `/machines/${id}/accessors`, { userId: users.bob!.id })).body, added.body);
      assert.equal(await reaches('bob', id), true);
      const ran = await native(keys.bob!, 'POST', `/v1/machines/${id}/exec`, { cmd: ['echo', 'hello from bob'] });
      assert.equal(ran.status, 200, ran.text);
      assert.equal(ran.body.stdout, 'hello from bob\n');
      assert.ok((await ps(keys.bob!, 'GET', '/machines')).body.items.some((m: Json) => m.id === id));
      assert.ok((await ps(keys.bob!, 'GET', '/machine-events')).body.items.some((e: Json) => e.machineId === id));
      assert.deepEqual((await ps(keys.bob!, 'GET', `/machines/${id}/accessors/${users.bob!.id}`)).body, added.body);
      assert.equal(await reaches('dave', id), false, 'only bob was granted');

      const removed = await ps(keys.alice!, 'DELETE', `/machines/${id}/accessors/${users.bob!.id}`);
      assert.equal(removed.status, 200, removed.text);
      assert.equal(removed.body.user.id, users.bob!.id);
      assert.equal(new Date(removed.body.dtDeleted).toISOString(), removed.body.dtDeleted);
      assert.equal(await reaches('bob', id), false);
      assertError(await native(keys.bob!, 'POST', `/v1/machines/${id}/exec`, { cmd: ['true'] }), 404, 'NOT_FOUND');
      assertError(await ps(keys.alice!, 'GET', `/machines/${id}/accessors/${users.bob!.id}`), 404, 'NOT_FOUND');
      assertError(await ps(keys.alice!, 'DELETE', `/machines/${id}/accessors/${users.bob!.id}`), 404, 'NOT_FOUND');
      assert.deepEqual((await ps(keys.alice!, 'GET', `/machines/${id}/accessors`)).body, { hasMore: false, items: [], nextPage: null });
    });

    it('only the creator and team admins change accessors; an accessor may read them', async () => {
      const id = shared.id as string;
      assert.equal((await ps(keys.carol!, 'POST', `/machines/${id}/accessors`, { userId: users.bob!.id })).status, 200, 'a team admin may');
      assertError(await ps(keys.bob!, 'POST', `/machines/${id}/accessors`, { userId: users.dave!.id }), 403, 'FORBIDDEN', 'creator');
      assertError(await ps(keys.bob!, 'DELETE', `/machines/${id}/accessors/${users.bob!.id}`), 403, 'FORBIDDEN');
      assert.equal((await ps(keys.bob!, 'GET', `/machines/${id}/accessors`)).body.items.length, 1);
      assert.equal(await reaches('dave', id), false, 'the refused grant changed nothing');
      assert.equal((await ps(teamKey, 'DELETE', `/machines/${id}/accessors/${users.bob!.id}`)).status, 200, 'a team key may');
    });

    it('pages by user id, in either order', async () => {
      const id = shared.id as string;
      for (const u of ['bob', 'carol', 'dave']) assert.equal((await ps(keys.alice!, 'POST', `/machines/${id}/accessors`, { userId: users[u]!.id })).status, 200);
      const expected = ['bob', 'carol', 'dave'].map((u) => users[u]!.id as string).sort();
      for (const order of ['asc', 'desc'] as const) {
        const seen: string[] = [];
        let after: string | null = null;
        do {
          const r: TestResponse = await ps(keys.alice!, 'GET', `/machines/${id}/accessors?limit=2&order=${order}${after ? `&after=${encodeURIComponent(after)}` : ''}`);
          assert.equal(r.status, 200, r.text);
          AccessorPageSchema.parse(r.body);
          seen.push(...r.body.items.map((a: Json) => a.user.id));
          assert.equal(r.body.hasMore, r.body.nextPage !== null);
          after = r.body.nextPage;
        } while (after);
        assert.deepEqual(seen, order === 'asc' ? expected : [...expected].reverse());
      }
      for (const u of ['bob', 'carol', 'dave']) assert.equal((await ps(keys.alice!, 'DELETE', `/machines/${id}/accessors/${users[u]!.id}`)).status, 200);
    });

    it('bad input on each accessor endpoint is a clear 4xx that changes nothing', async () => {
      const id = shared.id as string;
      const a = keys.alice!;
      assertError(await ps(a, 'POST', `/machines/${id}/accessors`, { userId: users.olga!.id }), 400, 'VALIDATION_FAILED', 'userId');
      assertError(await ps(a, 'POST', `/machines/${id}/accessors`, { userId: 'usr_nosuchuser' }), 400, 'VALIDATION_FAILED', 'userId');
      assertError(await ps(a, 'POST', `/machines/${id}/accessors`, {}), 400, 'VALIDATION_FAILED', 'userId');
      assertError(await ps(a, 'POST', `/machines/${id}/accessors`, { userId: users.bob!.id, role: 'x' }), 400, 'VALIDATION_FAILED');
      assertError(await ps(a, 'POST', '/machines/mch_nosuchmachine/accessors', { userId: users.bob!.id }), 404, 'NOT_FOUND');
      assertError(await ps(a, 'GET', `/machines/${id}/accessors?limit=0`), 400, 'VALIDATION_FAILED', 'limit');
      assertError(await ps(a, 'GET', `/machines/${id}/accessors?orderBy=email`), 400, 'VALIDATION_FAILED', 'orderBy');
      assertError(await ps(a, 'GET', `/machines/${id}/accessors?after=forged`), 400, 'INVALID_NEXT_TOKEN');
      assertError(await ps(a, 'GET', `/machines/${id}/accessors/usr_nosuchuser`), 404, 'NOT_FOUND');
      assertError(await ps(a, 'DELETE', `/machines/${id}/accessors/usr_nosuchuser`), 404, 'NOT_FOUND');
      assertError(await t.request('GET', `${BASE}/machines/${id}/accessors`, { key: null }), 401, 'UNAUTHORIZED');
      PaperspaceErrorSchema.strict().parse((await ps(a, 'POST', `/machines/${id}/accessors`, {})).body);
      assert.deepEqual((await ps(a, 'GET', `/machines/${id}/accessors`)).body.items, []);
    });

    it('accessorIds at create grants at once; an unknown or foreign user refuses the create and creates nothing', async () => {
      const before = (await native(teamKey, 'GET', '/v1/machines')).body.length;
      assertError(await ps(keys.carol!, 'POST', '/machines', { ...CREATE, name: 'nope', accessorIds: [users.bob!.id, users.olga!.id] }), 400, 'VALIDATION_FAILED', 'accessorIds');
      assert.equal((await native(teamKey, 'GET', '/v1/machines')).body.length, before);
      const m = await create(keys.carol!, { ...CREATE, name: 'for bob', accessorIds: [users.bob!.id, users.bob!.id] });
      assert.equal(await reaches('bob', m.id), true);
      assert.equal(await reaches('dave', m.id), false);
      assert.deepEqual((await ps(keys.carol!, 'GET', `/machines/${m.id}/accessors`)).body.items.map((x: Json) => x.user.id), [users.bob!.id]);
      // An accessor operates the machine like its creator (only the accessor list is the creator's).
      const del = await ps(keys.bob!, 'DELETE', `/machines/${m.id}`);
      assert.equal(del.status, 200, del.text);
      assert.equal((await finished(keys.bob!, del.body.event.id)).state, 'done');
    });
  });
});
