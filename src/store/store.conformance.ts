/**
 * The conformance suite every Store implementation passes (SQLite and PostgreSQL).
 * It states the contract the service layer relies on; a store-specific test
 * file calls `storeConformance` with a factory for a fresh, empty store.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { MachineEventRecord } from '../domain/machine-event.js';
import { MachineMovedError, type HostRecord } from '../domain/host.js';
import { ISOLATIONS, MACHINE_STATUSES, newMachineRecord, type MachineRecord, type MachineStatus } from '../domain/machine.js';
import { NetworkConflictError, type NetworkRecord } from '../domain/private-network.js';
import { SNAPSHOT_KINDS, type SnapshotRecord } from '../domain/snapshot.js';
import type { StartupScriptRecord } from '../domain/startup-script.js';
import type { ApiKeyRecord, Team, User } from '../domain/team.js';
import type { TemplateBuildRecord } from '../domain/template.js';
import { VolumeConflictError, type VolumeRecord } from '../domain/volume.js';
import type { WarmPool } from '../domain/warm-pool.js';
import type { LabelRule, ListCursor, MachinePageOrder, MachinePagePosition, MachinePageQuery, Store } from './store.js';

/** A fresh, empty store and how to dispose of it. */
export interface StoreFixture {
  store: Store;
  cleanup: () => Promise<void>;
}

const T0 = 1_700_000_000_000;
let seq = 0;

/** A unique, sortable-enough machine id for tests (ASCII only, so every collation agrees). */
function nextId(prefix = 'mch_'): string {
  seq += 1;
  return `${prefix}${seq.toString(36).padStart(8, '0')}`;
}

/** A running machine with every nullable field null. */
function machine(o: Partial<MachineRecord> = {}): MachineRecord {
  return newMachineRecord({
    id: nextId(),
    teamId: 'team_a',
    template: 'base',
    createdAt: T0,
    status: 'running',
    config: { vcpus: 1, memory_mb: 512, disk_mb: 1024 },
    timeoutMs: 300_000,
    timeoutAt: T0 + 300_000,
    outbound: { mode: 'allow' },
    ...o,
  });
}

/** A machine with every field set to a non-default value, and awkward metadata. */
function fullMachine(): MachineRecord {
  return machine({
    teamId: 'team_full',
    status: 'paused',
    template: 'python-3.12',
    config: { vcpus: 4, memory_mb: 8192, disk_mb: 65_536 },
    // Built with JSON.parse so "__proto__" is an own key, as it is for a parsed request body.
    metadata: JSON.parse(
      JSON.stringify({
        zeta: 1,
        alpha: { nested: { z: true, a: [1, 'two', null, { k: 'v' }, []] }, empty: {} },
        middle: -0.5,
        big: 9_007_199_254_740_991,
        exp: 1e21,
        unicode: 'é 日本 🙂 "quoted" \\ \n\u0000',
        '': 'empty key',
        volume_attachments: [{ id: 'vol_2' }, { id: 'vol_1' }],
      }).replace('"zeta":1', '"zeta":1,"__proto__":{"x":1}'),
    ),
    env: { PATH: '/usr/bin', EMPTY: '', Z: 'last', A: 'first' },
    cwd: '/srv/app',
    region: 'ams1',
    ephemeral: true,
    timeoutMs: 2_592_000_000,
    timeoutAt: T0 + 2_592_000_000,
    timeoutAction: 'hibernate',
    inactivityTimeoutMs: 60_000,
    autoDeleteAfterMs: 0,
    createdAt: T0 + 1,
    startedAt: T0 + 2,
    lastActiveAt: T0 + 3,
    pausedAt: T0 + 4,
    resumedAt: T0 + 5,
    destroyedAt: T0 + 6,
    name: 'my machine ✓',
    updatedAt: T0 + 7,
    snapshotId: 'snap_0123456789abcdef',
    warmPoolCheckout: { hit: false, id: 'pool_default' },
    pool: 'pool_default',
    errorReason: 'runc: exit status 1 — "quoted"',
    deadlineAt: T0 + 7,
    privateIp: '10.123.4.5',
    public: true,
    autoResume: true,
    createdBy: 'usr_creator',
    outbound: { mode: 'rules', allow: ['203.0.113.0/24', '198.51.100.7/32'], deny: ['203.0.113.128/25'] },
    autoSnapshot: { frequency: 'weekly', keep: 7, since: T0 + 8, lastAt: T0 + 9 },
    restorePoint: { frequency: 'shutdown', snapshotId: 'snap_restorepoint0001' },
    templateBuild: 'bld_full0000000000',
    startupScript: { scriptId: 'scr_full0000000000', script: '#!/bin/sh\necho "é 🙂" > /tmp/x\n', runOnce: true },
    isolation: 'gvisor',
    hostId: 'host-é/hangar-0123abcd',
  });
}

/** A new event of a machine with every nullable field null. */
function machineEvent(o: Partial<MachineEventRecord> = {}): MachineEventRecord {
  return {
    id: nextId('mev_'),
    teamId: 'team_a',
    machineId: 'mch_events',
    name: 'create',
    state: 'new',
    error: null,
    createdAt: T0,
    startedAt: null,
    finishedAt: null,
    startupScript: null,
    ...o,
  };
}

/** A startup script of team_a unless told otherwise. */
function startupScript(o: Partial<StartupScriptRecord> = {}): StartupScriptRecord {
  return { id: nextId('scr_'), teamId: 'team_a', name: 'setup', script: 'echo hi', runOnce: false, createdAt: T0, ...o };
}

/** Deep equality plus identical key order of the JSON-valued fields. */
function assertSameMachine(got: MachineRecord | null, want: MachineRecord): void {
  assert.ok(got, `machine ${want.id} not found`);
  assert.deepStrictEqual(got, want);
  assert.equal(JSON.stringify(got.metadata), JSON.stringify(want.metadata), 'metadata key order');
  assert.equal(JSON.stringify(got.env), JSON.stringify(want.env), 'env key order');
  assert.equal(JSON.stringify(got.config), JSON.stringify(want.config), 'config key order');
}

/** Newest-first order: created_at desc, then id desc. */
function byNewest(a: { createdAt: number; id: string }, b: { createdAt: number; id: string }): number {
  if (a.createdAt !== b.createdAt) return b.createdAt - a.createdAt;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/** JavaScript's order of page positions: numbers numerically, strings by UTF-16 code unit, then ids. */
function comparePagePositions(a: MachinePagePosition, b: MachinePagePosition): number {
  if (a.key !== b.key) {
    if (typeof a.key === 'number' && typeof b.key === 'number') return a.key - b.key;
    return String(a.key) < String(b.key) ? -1 : 1;
  }
  return a.id === b.id ? 0 : a.id < b.id ? -1 : 1;
}

/** The key a machine sorts by in a page order, as the contract defines it. */
function pageKey(m: MachineRecord, order: MachinePageOrder): string | number {
  switch (order.by) {
    case 'createdAt':
      return m.createdAt;
    case 'displayName':
      return m.name ?? m.id;
    case 'label': {
      const tag = order.tags.get(m.id) ?? null;
      return order.rules.find((r) => r.status === m.status && r.tag === tag)?.label ?? '';
    }
  }
}

/** What pageMachines must return, computed in memory from every stored machine. */
function referencePage(all: readonly MachineRecord[], activeAccess: ReadonlySet<string>, q: MachinePageQuery): MachineRecord[] {
  const inFilter = <T>(f: { oneOf: readonly T[] } | { noneOf: readonly T[] } | undefined, has: (values: readonly T[]) => boolean): boolean =>
    f === undefined || ('oneOf' in f ? has(f.oneOf) : !has(f.noneOf));
  const sign = q.direction === 'asc' ? 1 : -1;
  return all
    .filter(
      (m) =>
        m.teamId === q.teamId &&
        q.statuses.includes(m.status) &&
        (q.displayName === undefined || (m.name ?? m.id) === q.displayName) &&
        (q.region === undefined || m.region === q.region.name || (q.region.orDefault && m.region === null)) &&
        inFilter(q.templates, (ts) => ts.includes(m.template)) &&
        inFilter(q.sizes, (ss) => ss.some((s) => s.vcpus === m.config.vcpus && s.memory_mb === m.config.memory_mb)) &&
        (q.visibleTo === undefined || m.createdBy === q.visibleTo || activeAccess.has(`${m.id}/${q.visibleTo}`)),
    )
    .map((m) => ({ m, pos: { key: pageKey(m, q.order), id: m.id } }))
    .sort((a, b) => sign * comparePagePositions(a.pos, b.pos))
    .filter((r) => !q.after || sign * comparePagePositions(r.pos, q.after) > 0)
    .slice(0, q.limit)
    .map((r) => r.m);
}

const ids = (ms: readonly { id: string }[]): string[] => ms.map((m) => m.id);
const sortedIds = (ms: readonly { id: string }[]): string[] => ids(ms).sort();

function team(o: Partial<Team> = {}): Team {
  return { id: nextId('team_'), name: 'a team', isAdmin: false, createdAt: T0, ...o };
}

function apiKey(o: Partial<ApiKeyRecord> = {}): ApiKeyRecord {
  const id = nextId('key_');
  return { id, teamId: 'team_a', name: 'ci', hash: `hash-${id}`, createdAt: T0, revokedAt: null, userId: null, readOnly: false, machineId: null, expiresAt: null, rateLimit: null, ...o };
}

/** A template build in progress for team_a. */
function build(o: Partial<TemplateBuildRecord> = {}): TemplateBuildRecord {
  return {
    id: nextId('bld_'),
    teamId: 'team_a',
    name: 'py',
    version: 0,
    status: 'building',
    spec: { source: { debian: { suite: 'trixie', packages: ['python3'] } }, steps: [{ run: 'true' }, { env: { Z: '1', A: '2' } }], description: '', startCmd: null, readyCmd: null, readyTimeoutMs: 60_000, timeoutMs: 600_000 },
    result: null,
    error: null,
    createdAt: T0,
    finishedAt: null,
    deletedAt: null,
    hostId: null,
    ...o,
  };
}

function snapshot(o: Partial<SnapshotRecord> = {}): SnapshotRecord {
  return {
    id: nextId('snap_'),
    teamId: 'team_a',
    machineId: 'mch_source',
    kind: 'manual',
    createdAt: T0,
    sizeBytes: 123_456_789,
    memory: true,
    template: 'base',
    templateBuild: null,
    config: { vcpus: 1, memory_mb: 512, disk_mb: 1024 },
    env: { A: '1' },
    cwd: '/root',
    volumes: [],
    ...o,
  };
}

function volume(o: Partial<VolumeRecord> = {}): VolumeRecord {
  const id = nextId('vol_');
  return { id, teamId: 'team_a', name: `v-${id}`, sizeMb: 1024, createdAt: T0, ...o };
}

function network(o: Partial<NetworkRecord> = {}): NetworkRecord {
  const id = nextId('net_');
  return { id, teamId: 'team_a', name: `n-${id}`, createdAt: T0, ...o };
}

/** Runs `fn`, which must throw VolumeConflictError for `volumeId` with this reason (and holder). */
async function assertConflict(fn: () => Promise<unknown>, volumeId: string, reason: 'missing' | 'held', heldBy: string | null = null): Promise<void> {
  await assert.rejects(fn, (err: unknown) => {
    assert.ok(err instanceof VolumeConflictError, `a VolumeConflictError, got ${String(err)}`);
    assert.deepStrictEqual({ volumeId: err.volumeId, reason: err.reason, heldBy: err.heldBy }, { volumeId, reason, heldBy });
    return true;
  });
}

function warmPool(o: Partial<WarmPool> = {}): WarmPool {
  return {
    name: 'default',
    template: 'base',
    config: { vcpus: 1, memory_mb: 512, disk_mb: 1024 },
    size: 3,
    hits: 0,
    misses: 0,
    lastError: null,
    createdAt: T0,
    updatedAt: T0,
    ...o,
  };
}

/** Register the conformance tests for one Store implementation. */
export function storeConformance(name: string, makeStore: () => Promise<StoreFixture>): void {
  describe(`Store conformance: ${name}`, () => {
    let fixture: StoreFixture;
    let store: Store;

    beforeEach(async () => {
      fixture = await makeStore();
      store = fixture.store;
    });
    afterEach(async () => {
      await fixture.cleanup();
    });

    async function insertAll(ms: MachineRecord[]): Promise<MachineRecord[]> {
      for (const m of ms) await store.insertMachine(m);
      return ms;
    }

    describe('meta', () => {
      it('getMeta is null for an unknown key', async () => {
        assert.equal(await store.getMeta('nope'), null);
      });

      it('putMetaIfAbsent stores the first value and keeps it', async () => {
        assert.equal(await store.putMetaIfAbsent('k', 'first'), 'first');
        assert.equal(await store.putMetaIfAbsent('k', 'second'), 'first');
        assert.equal(await store.getMeta('k'), 'first');
        assert.equal(await store.putMetaIfAbsent('other', 'x'), 'x');
        assert.equal(await store.getMeta('k'), 'first');
      });
    });

    describe('teams', () => {
      it('insert, get and list round-trip every field', async () => {
        const a = team({ name: 'Alpha', isAdmin: true, createdAt: T0 + 1 });
        const b = team({ name: 'Beta é', isAdmin: false, createdAt: T0 + 2 });
        await store.insertTeam(a);
        await store.insertTeam(b);
        assert.deepStrictEqual(await store.getTeam(a.id), a);
        assert.deepStrictEqual(await store.getTeam(b.id), b);
        assert.equal(await store.getTeam('team_missing'), null);
        const listed = await store.listTeams();
        assert.deepStrictEqual(
          listed.sort((x, y) => x.createdAt - y.createdAt),
          [a, b],
        );
      });

      it('quotas: none by default, set, replaced, per team, and cleared with {}', async () => {
        const a = team();
        const b = team();
        await store.insertTeam(a);
        await store.insertTeam(b);
        assert.deepStrictEqual(await store.getTeamQuotas(a.id), {});
        await store.setTeamQuotas(a.id, { machines: 3, memory_mb: 4096, snapshot_bytes: 9_007_199_254_740_991 });
        assert.deepStrictEqual(await store.getTeamQuotas(a.id), { machines: 3, memory_mb: 4096, snapshot_bytes: 9_007_199_254_740_991 });
        assert.deepStrictEqual(await store.getTeamQuotas(b.id), {});
        await store.setTeamQuotas(a.id, { templates: 0 });
        assert.deepStrictEqual(await store.getTeamQuotas(a.id), { templates: 0 });
        await store.setTeamQuotas(a.id, {});
        assert.deepStrictEqual(await store.getTeamQuotas(a.id), {});
        assert.deepStrictEqual(await store.getTeamQuotas('team_missing'), {});
      });

      it('a duplicate team id is refused', async () => {
        const a = team();
        await store.insertTeam(a);
        await assert.rejects(store.insertTeam({ ...a, name: 'other' }));
        assert.equal((await store.getTeam(a.id))?.name, a.name);
      });
    });

    describe('api keys', () => {
      let ta: Team;
      let tb: Team;
      beforeEach(async () => {
        ta = team();
        tb = team();
        await store.insertTeam(ta);
        await store.insertTeam(tb);
      });

      it('findApiKeyByHash returns the whole record, or null', async () => {
        const k = apiKey({ teamId: ta.id, name: 'deploy' });
        await store.insertApiKey(k);
        assert.deepStrictEqual(await store.findApiKeyByHash(k.hash), k);
        assert.equal(await store.findApiKeyByHash('hash-unknown'), null);
      });

      it('scoped keys round-trip; getApiKey by id; expireApiKey sets or keeps the earlier expiry, never on a revoked key', async () => {
        const k = apiKey({ teamId: ta.id, readOnly: true, machineId: 'mch_one', expiresAt: T0 + 500, rateLimit: { perSecond: 0.25, burst: 3 } });
        await store.insertApiKey(k);
        assert.deepStrictEqual(await store.getApiKey(k.id), k);
        assert.deepStrictEqual(await store.findApiKeyByHash(k.hash), k);
        assert.equal(await store.getApiKey('key_missing'), null);
        assert.equal(await store.expireApiKey(k.id, T0 + 900), true);
        assert.equal((await store.getApiKey(k.id))!.expiresAt, T0 + 500, 'a later expiry does not extend the key');
        assert.equal(await store.expireApiKey(k.id, T0 + 100), true);
        assert.equal((await store.getApiKey(k.id))!.expiresAt, T0 + 100);
        const open = apiKey({ teamId: ta.id });
        await store.insertApiKey(open);
        assert.equal(await store.expireApiKey(open.id, T0 + 7), true);
        assert.equal((await store.getApiKey(open.id))!.expiresAt, T0 + 7);
        const revoked = apiKey({ teamId: ta.id });
        await store.insertApiKey(revoked);
        await store.revokeApiKey(revoked.id, T0 + 1);
        assert.equal(await store.expireApiKey(revoked.id, T0 + 2), false);
        assert.equal((await store.getApiKey(revoked.id))!.expiresAt, null);
        assert.equal(await store.expireApiKey('key_missing', T0), false);
      });

      it('listApiKeys lists one team\'s keys only', async () => {
        const a1 = apiKey({ teamId: ta.id, createdAt: T0 + 1 });
        const a2 = apiKey({ teamId: ta.id, createdAt: T0 + 2 });
        const b1 = apiKey({ teamId: tb.id });
        for (const k of [a1, b1, a2]) await store.insertApiKey(k);
        assert.deepStrictEqual(sortedIds(await store.listApiKeys(ta.id)), [a1.id, a2.id].sort());
        assert.deepStrictEqual(await store.listApiKeys(tb.id), [b1]);
        assert.deepStrictEqual(await store.listApiKeys('team_missing'), []);
      });

      it('revokeApiKey revokes once, keeps the record findable with revokedAt, and stops counting it', async () => {
        const k1 = apiKey({ teamId: ta.id });
        const k2 = apiKey({ teamId: tb.id });
        const k3 = apiKey({ teamId: tb.id });
        for (const k of [k1, k2, k3]) await store.insertApiKey(k);
        assert.equal(await store.countApiKeys(), 3);
        assert.equal(await store.revokeApiKey(k2.id, T0 + 100), true);
        assert.equal(await store.revokeApiKey(k2.id, T0 + 200), false, 'second revoke is a no-op');
        assert.equal(await store.revokeApiKey('key_missing', T0), false);
        assert.deepStrictEqual(await store.findApiKeyByHash(k2.hash), { ...k2, revokedAt: T0 + 100 });
        assert.equal(await store.countApiKeys(), 2);
        assert.equal((await store.findApiKeyByHash(k1.hash))?.revokedAt, null);
      });

      it('countApiKeys does not count keys inserted already revoked', async () => {
        assert.equal(await store.countApiKeys(), 0);
        await store.insertApiKey(apiKey({ teamId: ta.id, revokedAt: T0 }));
        await store.insertApiKey(apiKey({ teamId: ta.id }));
        assert.equal(await store.countApiKeys(), 1);
      });

      it('a duplicate hash is refused (a secret resolves to one key)', async () => {
        const k = apiKey({ teamId: ta.id });
        await store.insertApiKey(k);
        await assert.rejects(store.insertApiKey(apiKey({ teamId: tb.id, hash: k.hash })));
        assert.equal((await store.findApiKeyByHash(k.hash))?.teamId, ta.id);
      });
    });

    describe('machines: records', () => {
      it('insert then get round-trips every field exactly (all set)', async () => {
        const m = fullMachine();
        await store.insertMachine(structuredClone(m));
        assertSameMachine(await store.getMachine(m.id), m);
      });

      it('insert then get round-trips every field exactly (every nullable null)', async () => {
        const m = machine({ metadata: {}, env: {} });
        await store.insertMachine(structuredClone(m));
        assertSameMachine(await store.getMachine(m.id), m);
      });

      it('warmPoolCheckout with hit true round-trips', async () => {
        const m = machine({ warmPoolCheckout: { hit: true, id: 'pool_x' } });
        await store.insertMachine(m);
        assert.deepStrictEqual((await store.getMachine(m.id))?.warmPoolCheckout, { hit: true, id: 'pool_x' });
      });

      it('auto snapshot settings (before and after the first attempt) and restore points round-trip', async () => {
        for (const autoSnapshot of [
          { frequency: 'hourly' as const, keep: 1, since: T0, lastAt: null },
          { frequency: 'monthly' as const, keep: 30, since: T0, lastAt: T0 + 3_600_000 },
          null,
        ]) {
          const m = machine({ autoSnapshot, restorePoint: autoSnapshot ? { frequency: 'shutdown', snapshotId: 'snap_rp' } : null });
          await store.insertMachine(m);
          assert.deepStrictEqual(await store.getMachine(m.id), m);
        }
      });

      it('every isolation tier round-trips; a new record is a container', async () => {
        assert.equal(machine().isolation, 'container');
        for (const isolation of ISOLATIONS) {
          const m = machine({ isolation });
          await store.insertMachine(structuredClone(m));
          assert.equal((await store.getMachine(m.id))?.isolation, isolation);
          const other = ISOLATIONS.find((i) => i !== isolation)!;
          await store.updateMachine({ ...m, isolation: other });
          assert.equal((await store.getMachine(m.id))?.isolation, other);
        }
      });

      it('privateIp and every outbound policy shape round-trip', async () => {
        for (const outbound of [{ mode: 'allow' }, { mode: 'deny' }, { mode: 'rules', allow: null, deny: ['10.0.0.0/8'] }] as const) {
          const m = machine({ privateIp: '10.9.8.7', outbound: structuredClone(outbound) as MachineRecord['outbound'] });
          await store.insertMachine(m);
          assert.deepStrictEqual(await store.getMachine(m.id), m);
          m.privateIp = null;
          await store.updateMachine(m);
          assert.equal((await store.getMachine(m.id))?.privateIp, null);
        }
      });

      it('getMachine of an unknown id is null', async () => {
        assert.equal(await store.getMachine('mch_missing'), null);
      });

      it('a duplicate machine id is refused and the first record kept', async () => {
        const m = machine({ template: 'first' });
        await store.insertMachine(m);
        await assert.rejects(store.insertMachine({ ...m, template: 'second' }));
        assert.equal((await store.getMachine(m.id))?.template, 'first');
      });

      it('updateMachine replaces every field: nulls become values and values become nulls', async () => {
        const plain = machine();
        const full = fullMachine();
        await store.insertMachine(plain);
        await store.insertMachine(full);
        // Every field but the host, which changes only by a move or an adoption.
        const filled: MachineRecord = { ...fullMachine(), id: plain.id, hostId: plain.hostId };
        const emptied: MachineRecord = { ...machine(), id: full.id, hostId: full.hostId, metadata: { only: ['this'] } };
        await store.updateMachine(structuredClone(filled));
        await store.updateMachine(structuredClone(emptied));
        assertSameMachine(await store.getMachine(plain.id), filled);
        assertSameMachine(await store.getMachine(full.id), emptied);
      });

      it('updateMachine of a record that names another host than the stored one (it moved) writes nothing and says so', async () => {
        const m = machine({ hostId: 'host-a', status: 'paused' });
        await store.insertMachine(structuredClone(m));
        assert.equal(await store.movePausedMachine(m.id, 'host-a', 'host-b', T0 + 5), true);
        const moved = await store.getMachine(m.id);
        // host-a, which still holds the record as it loaded it, saves it: refused, the move stands.
        await assert.rejects(store.updateMachine({ ...m, status: 'running' }), (err: unknown) => err instanceof MachineMovedError && err.hostId === 'host-b' && err.machineId === m.id);
        assertSameMachine(await store.getMachine(m.id), moved!);
        // The new host's save goes through; so does one of an unhosted record; an unknown id writes nothing.
        await store.updateMachine({ ...moved!, status: 'running' });
        assert.equal((await store.getMachine(m.id))?.status, 'running');
        const loose = machine({ hostId: null });
        await store.insertMachine(loose);
        await store.updateMachine({ ...loose, status: 'error' });
        assert.equal((await store.getMachine(loose.id))?.status, 'error');
        await store.updateMachine(machine({ id: 'mch_nowhere' }));
        assert.equal(await store.getMachine('mch_nowhere'), null);
      });

      it('updateMachine touches only the machine with that id', async () => {
        const a = machine();
        const b = machine();
        await insertAll([a, b]);
        await store.updateMachine({ ...a, status: 'destroyed', destroyedAt: T0 + 9 });
        assertSameMachine(await store.getMachine(b.id), b);
      });

      it('records returned are copies: mutating one does not change the store', async () => {
        const m = machine({ metadata: { a: 1 } });
        await store.insertMachine(m);
        const got = (await store.getMachine(m.id))!;
        got.metadata.a = 2;
        got.status = 'error';
        m.metadata.a = 3;
        const again = (await store.getMachine(m.id))!;
        assert.deepStrictEqual(again.metadata, { a: 1 });
        assert.equal(again.status, 'running');
      });
    });

    describe('machines: listMachines', () => {
      const LIVE: MachineStatus[] = ['creating', 'running', 'paused', 'error'];

      it('orders newest first: created_at desc, then id desc on ties', async () => {
        const ms = [
          machine({ createdAt: T0 + 10, id: 'mch_b' }),
          machine({ createdAt: T0 + 30, id: 'mch_a' }),
          machine({ createdAt: T0 + 10, id: 'mch_c' }),
          machine({ createdAt: T0 + 20, id: 'mch_z' }),
          machine({ createdAt: T0 + 10, id: 'mch_a' + 'a' }),
          machine({ createdAt: T0 + 30, id: 'mch_b' + 'b' }),
        ];
        await insertAll(ms);
        const got = await store.listMachines({ teamId: 'team_a', statuses: LIVE });
        assert.deepStrictEqual(ids(got), ['mch_bb', 'mch_a', 'mch_z', 'mch_c', 'mch_b', 'mch_aa']);
        assert.deepStrictEqual(ids(got), ids([...ms].sort(byNewest)));
      });

      it('returns full records', async () => {
        const m = { ...fullMachine(), teamId: 'team_a', status: 'running' as const };
        await store.insertMachine(m);
        const [got] = await store.listMachines({ teamId: 'team_a', statuses: ['running'] });
        assertSameMachine(got ?? null, m);
      });

      it('lists only the team\'s machines', async () => {
        const a = await insertAll([machine({ teamId: 'team_a' }), machine({ teamId: 'team_a' })]);
        const b = await insertAll([machine({ teamId: 'team_b', metadata: { k: 1 } })]);
        assert.deepStrictEqual(sortedIds(await store.listMachines({ teamId: 'team_a', statuses: LIVE })), sortedIds(a));
        assert.deepStrictEqual(ids(await store.listMachines({ teamId: 'team_b', statuses: LIVE, metadata: { k: 1 } })), ids(b));
        assert.deepStrictEqual(await store.listMachines({ teamId: 'team_a', statuses: LIVE, metadata: { k: 1 } }), []);
        assert.deepStrictEqual(await store.listMachines({ teamId: 'team_c', statuses: LIVE }), []);
      });

      it('filters by status', async () => {
        const byStatus = new Map<MachineStatus, MachineRecord>();
        for (const status of ['creating', 'running', 'paused', 'destroyed', 'error'] as const) {
          const m = machine({ status });
          byStatus.set(status, m);
          await store.insertMachine(m);
        }
        const list = async (statuses: MachineStatus[]): Promise<string[]> => sortedIds(await store.listMachines({ teamId: 'team_a', statuses }));
        assert.deepStrictEqual(await list(['running']), [byStatus.get('running')!.id]);
        assert.deepStrictEqual(await list(['destroyed']), [byStatus.get('destroyed')!.id]);
        assert.deepStrictEqual(await list(['running', 'paused']), [byStatus.get('running')!.id, byStatus.get('paused')!.id].sort());
        assert.deepStrictEqual(await list(LIVE), sortedIds([...byStatus.values()].filter((m) => m.status !== 'destroyed')));
        assert.deepStrictEqual(await list([]), []);
      });

      it('filters by exact template', async () => {
        const [base] = await insertAll([machine({ template: 'base' }), machine({ template: 'base-2' }), machine({ template: 'Base' })]);
        assert.deepStrictEqual(ids(await store.listMachines({ teamId: 'team_a', statuses: LIVE, template: 'base' })), [base!.id]);
        assert.deepStrictEqual(await store.listMachines({ teamId: 'team_a', statuses: LIVE, template: 'bas%' }), []);
        assert.deepStrictEqual(await store.listMachines({ teamId: 'team_a', statuses: LIVE, template: 'nope' }), []);
      });

      describe('metadata filter (exact JSON equality per key)', () => {
        const md = { env: 'prod', owner: { name: 'ann', team: 'x' }, tags: ['a', 'b'], n: 1, nil: null };
        let target: MachineRecord;
        let others: MachineRecord[];
        beforeEach(async () => {
          target = machine({ metadata: md, createdAt: T0 + 1 });
          others = [
            machine({ metadata: { env: 'dev', owner: { name: 'ann', team: 'x' } }, createdAt: T0 + 2 }),
            machine({ metadata: {}, createdAt: T0 + 3 }),
            machine({ metadata: { env: 'prod', n: '1' }, createdAt: T0 + 4 }),
          ];
          await insertAll([target, ...others]);
        });
        const match = async (metadata: Record<string, unknown>): Promise<string[]> =>
          ids(await store.listMachines({ teamId: 'team_a', statuses: LIVE, metadata }));

        it('nested objects match whatever their key order', async () => {
          assert.deepStrictEqual(await match({ owner: { team: 'x', name: 'ann' }, env: 'prod' }), [target.id]);
        });

        it('extra keys in the machine metadata are fine', async () => {
          assert.deepStrictEqual(await match({ tags: ['a', 'b'] }), [target.id]);
          assert.deepStrictEqual(await match({ nil: null }), [target.id]);
          assert.deepStrictEqual(await match({ n: 1 }), [target.id]);
        });

        it('a missing key, a different type or a partial nested object does not match', async () => {
          assert.deepStrictEqual(await match({ missing: null }), []);
          assert.deepStrictEqual(await match({ n: true }), []);
          assert.deepStrictEqual(await match({ owner: { name: 'ann' } }), []);
          assert.deepStrictEqual(await match({ tags: ['b', 'a'] }), []);
          assert.deepStrictEqual(await match({ tags: ['a'] }), []);
          assert.deepStrictEqual(await match({ env: 'prod', n: 2 }), []);
        });

        it('numbers and strings differ', async () => {
          assert.deepStrictEqual(await match({ n: '1' }), [others[2]!.id]);
          assert.deepStrictEqual(await match({ n: 1 }), [target.id]);
        });

        it('matches several machines, newest first', async () => {
          assert.deepStrictEqual(await match({ env: 'prod' }), [others[2]!.id, target.id]);
        });

        it('the empty filter matches every machine', async () => {
          assert.deepStrictEqual(sortedIds(await store.listMachines({ teamId: 'team_a', statuses: LIVE, metadata: {} })), sortedIds([target, ...others]));
        });

        it('limit counts matching machines, not scanned rows', async () => {
          // Many newer non-matching machines ahead of three older matching ones.
          await insertAll(Array.from({ length: 12 }, (_, i) => machine({ metadata: { env: 'dev' }, createdAt: T0 + 100 + i })));
          const older = await insertAll([machine({ metadata: { pick: 1 }, createdAt: T0 - 3 }), machine({ metadata: { pick: 1 }, createdAt: T0 - 2 }), machine({ metadata: { pick: 1 }, createdAt: T0 - 1 })]);
          const got = await store.listMachines({ teamId: 'team_a', statuses: LIVE, metadata: { pick: 1 }, limit: 2 });
          assert.deepStrictEqual(ids(got), [older[2]!.id, older[1]!.id]);
        });
      });

      it('limit returns the first rows in order', async () => {
        const ms = await insertAll(Array.from({ length: 7 }, (_, i) => machine({ createdAt: T0 + (i % 3) })));
        const want = ids([...ms].sort(byNewest));
        assert.deepStrictEqual(ids(await store.listMachines({ teamId: 'team_a', statuses: LIVE, limit: 3 })), want.slice(0, 3));
        assert.deepStrictEqual(ids(await store.listMachines({ teamId: 'team_a', statuses: LIVE, limit: 1 })), want.slice(0, 1));
        assert.deepStrictEqual(ids(await store.listMachines({ teamId: 'team_a', statuses: LIVE, limit: 100 })), want);
      });

      it(
        'limit 0 returns no rows',
                async () => {
          await insertAll([machine(), machine()]);
          assert.deepStrictEqual(await store.listMachines({ teamId: 'team_a', statuses: LIVE, limit: 0 }), []);
        },
      );

      it('after starts strictly after the position, ties on created_at broken by id', async () => {
        const ms = await insertAll([
          machine({ createdAt: T0 + 5, id: 'mch_k' }),
          machine({ createdAt: T0 + 5, id: 'mch_m' }),
          machine({ createdAt: T0 + 5, id: 'mch_p' }),
          machine({ createdAt: T0 + 6, id: 'mch_a' }),
          machine({ createdAt: T0 + 4, id: 'mch_z' }),
        ]);
        const list = async (after: ListCursor): Promise<string[]> => ids(await store.listMachines({ teamId: 'team_a', statuses: LIVE, after }));
        assert.deepStrictEqual(await list({ createdAt: T0 + 5, id: 'mch_m' }), ['mch_k', 'mch_z']);
        assert.deepStrictEqual(await list({ createdAt: T0 + 5, id: 'mch_n' }), ['mch_m', 'mch_k', 'mch_z'], 'a position needs no row of its own');
        assert.deepStrictEqual(await list({ createdAt: T0 + 6, id: 'mch_a' }), ['mch_p', 'mch_m', 'mch_k', 'mch_z']);
        assert.deepStrictEqual(await list({ createdAt: T0 + 4, id: 'mch_z' }), []);
        assert.deepStrictEqual(await list({ createdAt: T0 + 100, id: '' }), ids([...ms].sort(byNewest)));
      });

      it('paging with after never repeats or skips a machine while others are inserted between pages', async () => {
        // 30 machines in groups of 3 sharing a created_at, so page boundaries fall inside ties.
        const original = await insertAll(Array.from({ length: 30 }, (_, i) => machine({ createdAt: T0 + Math.floor(i / 3) * 10 })));
        const seen: MachineRecord[] = [];
        let after: ListCursor | undefined;
        let inserted = 0;
        for (let page = 0; page < 50; page++) {
          const rows = await store.listMachines({ teamId: 'team_a', statuses: LIVE, after, limit: 4 });
          if (rows.length === 0) break;
          seen.push(...rows);
          const last = rows[rows.length - 1]!;
          after = { createdAt: last.createdAt, id: last.id };
          // Between pages: a newest machine, two sharing the cursor's created_at (one on each side
          // of the cursor's id), and one older than everything.
          await insertAll([
            machine({ createdAt: T0 + 1_000 + page }),
            machine({ createdAt: last.createdAt, id: `${last.id}~${page}` }),
            machine({ createdAt: last.createdAt, id: `${last.id.slice(0, -1)}!${page}` }),
            machine({ createdAt: T0 - 1_000 - page }),
          ]);
          inserted += 4;
        }
        assert.ok(inserted > 0);
        const seenIds = ids(seen);
        assert.equal(new Set(seenIds).size, seenIds.length, 'no machine repeated');
        for (const m of original) assert.ok(seenIds.includes(m.id), `original ${m.id} skipped`);
        for (let i = 1; i < seen.length; i++) assert.ok(byNewest(seen[i - 1]!, seen[i]!) < 0, `order broken at ${i}`);
      });
    });

    describe('machines: pageMachines', () => {
      const LIVE: MachineStatus[] = ['creating', 'running', 'paused', 'error'];
      // Names chosen to tell orders apart: ties, the empty name, unnamed machines (their id),
      // and '😀' (U+1F600) against 'Ａ' (U+FF21), which UTF-8 byte order puts the other way round.
      // Every list's length is prime to the five statuses, so each value meets each status.
      const NAMES = [null, 'alpha', 'twin', 'Beta', 'twin', '', 'é', '😀', 'Ａ', 'twin', 'a', null, 'zz', 'mch_'];
      const TEMPLATES = ['base', 'desktop', 'python', 'base'];
      const REGIONS = [null, 'ny2', 'ca1'];
      const SIZES = [{ vcpus: 1, memory_mb: 512 }, { vcpus: 1, memory_mb: 1024 }, { vcpus: 2, memory_mb: 2048 }, { vcpus: 3, memory_mb: 3000 }, { vcpus: 1, memory_mb: 512 }, { vcpus: 2, memory_mb: 2048 }];
      const TAGS = new Map<string, string>();
      // Like the Paperspace state: the status, refined by an operation in flight (the tag).
      const RULES: LabelRule[] = [
        ...MACHINE_STATUSES.map((status) => ({ status, tag: null, label: { creating: 'provisioning', running: 'ready', paused: 'off', destroyed: 'off', error: 'off' }[status] })),
        { status: 'running', tag: 'stop', label: 'stopping' },
        { status: 'paused', tag: 'start', label: 'starting' },
        { status: 'running', tag: 'start', label: 'ready' },
        { status: 'running', tag: 'stop', label: 'never: a later rule for the same case' },
      ];
      const ORDERS: MachinePageOrder[] = [{ by: 'createdAt' }, { by: 'displayName' }, { by: 'label', tags: TAGS, rules: RULES }];
      let all: MachineRecord[];
      const access = new Set<string>();

      beforeEach(async () => {
        TAGS.clear();
        access.clear();
        all = [];
        for (let i = 0; i < 45; i++) {
          all.push(
            machine({
              teamId: i % 9 === 8 ? 'team_b' : 'team_a',
              status: MACHINE_STATUSES[i % MACHINE_STATUSES.length]!,
              name: NAMES[i % NAMES.length]!,
              template: TEMPLATES[i % TEMPLATES.length]!,
              region: REGIONS[(i * 7) % REGIONS.length]!,
              config: { ...SIZES[i % SIZES.length]!, disk_mb: 1024 },
              createdAt: T0 + (i % 7),
              createdBy: i % 3 === 0 ? 'usr_me' : i % 3 === 1 ? 'usr_other' : null,
            }),
          );
        }
        await insertAll(all);
        for (const [i, m] of all.entries()) {
          if (i % 4 === 1) TAGS.set(m.id, i % 8 === 1 ? 'stop' : 'start');
          if (i % 5 === 1) {
            const revoked = i % 10 === 6;
            await store.putAccessor({ machineId: m.id, userId: 'usr_me', createdAt: T0, deletedAt: revoked ? T0 + 1 : null });
            if (!revoked) access.add(`${m.id}/usr_me`);
          }
        }
        TAGS.set('mch_not_stored', 'stop');
      });

      const base = (o: Partial<MachinePageQuery> = {}): MachinePageQuery => ({ teamId: 'team_a', statuses: LIVE, order: { by: 'createdAt' }, direction: 'desc', limit: 1_000, ...o });

      /** Every page of `q` with this page size, each `after` the last position of the previous one. */
      async function pages(q: MachinePageQuery, size: number): Promise<MachineRecord[][]> {
        const out: MachineRecord[][] = [];
        let after: MachinePagePosition | undefined;
        for (let n = 0; n < 100; n++) {
          const page = await store.pageMachines({ ...q, after, limit: size });
          if (page.length === 0) return out;
          out.push(page);
          const last = page[page.length - 1]!;
          after = { key: pageKey(last, q.order), id: last.id };
        }
        throw new Error('paging did not end');
      }

      it('every order, direction and filter gives the reference page, and pages join up to it', async () => {
        const filters: Partial<MachinePageQuery>[] = [
          {},
          { displayName: 'twin' },
          { displayName: all[0]!.id },
          { displayName: '' },
          { templates: { oneOf: ['desktop'] } },
          { templates: { noneOf: ['desktop'] } },
          { templates: { oneOf: ['base', 'python'] }, sizes: { noneOf: [{ vcpus: 1, memory_mb: 512 }] } },
          { sizes: { oneOf: [{ vcpus: 1, memory_mb: 512 }, { vcpus: 2, memory_mb: 2048 }] } },
          { sizes: { noneOf: SIZES.slice(0, 3) } },
          { visibleTo: 'usr_me' },
          { visibleTo: 'usr_me', templates: { noneOf: ['python'] }, displayName: 'twin' },
          { statuses: ['running', 'destroyed'] },
          { teamId: 'team_b' },
          { region: { name: 'ny2', orDefault: true } },
          { region: { name: 'ca1', orDefault: false } },
          { region: { name: 'ams1', orDefault: false } },
          { region: { name: 'ca1', orDefault: false }, displayName: 'twin' },
        ];
        let compared = 0;
        for (const order of ORDERS) {
          for (const direction of ['asc', 'desc'] as const) {
            for (const f of filters) {
              const q = base({ order, direction, ...f });
              const want = ids(referencePage(all, access, q));
              const what = JSON.stringify({ order: order.by, direction, ...f });
              assert.deepStrictEqual(ids(await store.pageMachines(q)), want, what);
              for (const size of [1, 4]) assert.deepStrictEqual(ids((await pages(q, size)).flat()), want, `${what} in pages of ${size}`);
              compared += want.length;
            }
          }
        }
        assert.ok(compared > 200, 'the cases select machines');
      });

      it('orders strings as JavaScript does (UTF-16 code units), not by UTF-8 bytes', async () => {
        const q = base({ order: { by: 'displayName' }, direction: 'asc', templates: { oneOf: ['only-these'] } });
        const ms = await insertAll(['Ａ', '😀', 'a', 'é', 'B', ''].map((name) => machine({ name, template: 'only-these' })));
        const byName = new Map(ms.map((m) => [m.name, m.id]));
        assert.deepStrictEqual(ids(await store.pageMachines(q)), ['', 'B', 'a', 'é', '😀', 'Ａ'].map((n) => byName.get(n)));
        const after = { key: '😀', id: '' };
        assert.deepStrictEqual(ids(await store.pageMachines({ ...q, after })), [byName.get('😀'), byName.get('Ａ')]);
      });

      it('after starts strictly after a position, which needs no row of its own', async () => {
        const q = base({ order: { by: 'label', tags: TAGS, rules: RULES }, direction: 'asc' });
        const want = (after: MachinePagePosition): string[] => ids(referencePage(all, access, { ...q, after }));
        for (const after of [{ key: 'off', id: '' }, { key: 'ready', id: all[20]!.id }, { key: 'q', id: 'zzz' }, { key: 'zzz', id: '' }, { key: '', id: '' }]) {
          assert.deepStrictEqual(ids(await store.pageMachines({ ...q, after })), want(after), JSON.stringify(after));
        }
        const byTime = base({ direction: 'desc' });
        const mid = { key: T0 + 3, id: all[10]!.id };
        assert.deepStrictEqual(ids(await store.pageMachines({ ...byTime, after: mid })), ids(referencePage(all, access, { ...byTime, after: mid })));
      });

      it('a label rule list that covers nothing gives every machine the empty label', async () => {
        const q = base({ order: { by: 'label', tags: new Map(), rules: [] }, direction: 'desc' });
        assert.deepStrictEqual(ids(await store.pageMachines(q)), ids(referencePage(all, access, q)));
        const live = all.filter((m) => m.teamId === 'team_a' && LIVE.includes(m.status));
        assert.deepStrictEqual(ids(await store.pageMachines(q)), ids(live).sort().reverse(), 'all tied: by id alone');
      });

      it('nothing to match: no statuses, limit 0, or an empty oneOf', async () => {
        assert.deepStrictEqual(await store.pageMachines(base({ statuses: [] })), []);
        assert.deepStrictEqual(await store.pageMachines(base({ limit: 0 })), []);
        assert.deepStrictEqual(await store.pageMachines(base({ templates: { oneOf: [] } })), []);
        assert.deepStrictEqual(await store.pageMachines(base({ sizes: { oneOf: [] } })), []);
        assert.deepStrictEqual(await store.pageMachines(base({ teamId: 'team_none' })), []);
        assert.deepStrictEqual(ids(await store.pageMachines(base({ templates: { noneOf: [] }, sizes: { noneOf: [] } }))), ids(referencePage(all, access, base())));
      });

      it('limit returns the first rows in order, and the records are whole', async () => {
        const q = base({ order: { by: 'displayName' }, direction: 'desc' });
        assert.deepStrictEqual(ids(await store.pageMachines({ ...q, limit: 5 })), ids(referencePage(all, access, q)).slice(0, 5));
        const full = { ...fullMachine(), teamId: 'team_full_page' };
        await store.insertMachine(full);
        const [got] = await store.pageMachines(base({ teamId: 'team_full_page', statuses: [full.status] }));
        assertSameMachine(got ?? null, full);
      });

      it('machineTemplates lists the distinct templates of one team, whatever the status', async () => {
        assert.deepStrictEqual((await store.machineTemplates('team_a')).sort(), ['base', 'desktop', 'python']);
        await store.insertMachine(machine({ teamId: 'team_c', template: 'gone', status: 'destroyed' }));
        assert.deepStrictEqual(await store.machineTemplates('team_c'), ['gone']);
        assert.deepStrictEqual(await store.machineTemplates('team_none'), []);
      });
    });

    describe('machines: lifecycle queries', () => {
      it('machineCounts counts machines by status and template across teams', async () => {
        await insertAll([machine(), machine({ teamId: 'team_b' }), machine({ template: 'python' }), machine({ status: 'paused' })]);
        assert.deepStrictEqual(await store.machineCounts(), [
          { status: 'paused', template: 'base', count: 1 },
          { status: 'running', template: 'base', count: 2 },
          { status: 'running', template: 'python', count: 1 },
        ]);
      });
      it('machinesInStatus returns the machines in those statuses across teams', async () => {
        const ms = await insertAll([
          machine({ teamId: 'team_a', status: 'running' }),
          machine({ teamId: 'team_b', status: 'running' }),
          machine({ teamId: 'team_b', status: 'paused' }),
          machine({ teamId: 'team_a', status: 'creating' }),
          machine({ teamId: 'team_a', status: 'destroyed' }),
          machine({ teamId: 'team_c', status: 'error' }),
        ]);
        const want = (...s: MachineStatus[]): string[] => sortedIds(ms.filter((m) => s.includes(m.status)));
        assert.deepStrictEqual(sortedIds(await store.machinesInStatus(['running'])), want('running'));
        assert.deepStrictEqual(sortedIds(await store.machinesInStatus(['creating', 'running', 'paused'])), want('creating', 'running', 'paused'));
        assert.deepStrictEqual(await store.machinesInStatus([]), []);
        const [full] = await store.machinesInStatus(['error']);
        assertSameMachine(full ?? null, ms[5]!);
      });

      it('dueMachines returns only deadlines at or before now, earliest first, at most limit', async () => {
        const ms = await insertAll([
          machine({ deadlineAt: T0 + 300, teamId: 'team_a' }),
          machine({ deadlineAt: null }),
          machine({ deadlineAt: T0 + 100, teamId: 'team_b' }),
          machine({ deadlineAt: T0 + 200 }),
          machine({ deadlineAt: T0 + 201 }),
          machine({ deadlineAt: T0 + 50, status: 'paused' }),
        ]);
        const [d300, , d100, d200, , d50] = ms;
        assert.deepStrictEqual(ids(await store.dueMachines(T0 + 200, 10)), [d50!.id, d100!.id, d200!.id]);
        assert.deepStrictEqual(ids(await store.dueMachines(T0 + 200, 2)), [d50!.id, d100!.id]);
        assert.deepStrictEqual(await store.dueMachines(T0 + 49, 10), []);
        assert.equal((await store.dueMachines(T0 + 10_000, 10)).length, 5);
        assert.ok(ids(await store.dueMachines(T0 + 300, 10)).includes(d300!.id));
      });

      it('dueMachines follows updates of deadlineAt', async () => {
        const m = machine({ deadlineAt: T0 + 10 });
        await store.insertMachine(m);
        await store.updateMachine({ ...m, deadlineAt: null });
        assert.deepStrictEqual(await store.dueMachines(T0 + 1_000, 10), []);
        await store.updateMachine({ ...m, deadlineAt: T0 + 500 });
        assert.deepStrictEqual(ids(await store.dueMachines(T0 + 1_000, 10)), [m.id]);
      });

      it('purgeDestroyed deletes only destroyed machines destroyed at or before the cut-off', async () => {
        const ms = await insertAll([
          machine({ status: 'destroyed', destroyedAt: T0 + 100 }),
          machine({ status: 'destroyed', destroyedAt: T0 + 200 }),
          machine({ status: 'destroyed', destroyedAt: T0 + 201 }),
          machine({ status: 'running', destroyedAt: T0 + 50 }),
          machine({ status: 'error', destroyedAt: T0 + 50 }),
          machine({ status: 'paused' }),
        ]);
        assert.equal(await store.purgeDestroyed(T0 + 200), 2);
        assert.equal(await store.getMachine(ms[0]!.id), null);
        assert.equal(await store.getMachine(ms[1]!.id), null);
        for (const m of ms.slice(2)) assertSameMachine(await store.getMachine(m.id), m);
        assert.equal(await store.purgeDestroyed(T0 + 200), 0);
        assert.equal(await store.purgeDestroyed(T0 + 10_000), 1);
      });
    });

    describe('snapshots', () => {
      it('insert, get and update round-trip every field', async () => {
        const s = snapshot({ kind: 'pause', memory: false, cwd: null, env: { Z: '1', A: '' } });
        await store.insertSnapshot(s);
        assert.deepStrictEqual(await store.getSnapshot(s.id), s);
        const changed = { ...s, sizeBytes: 5, memory: true, kind: 'manual' as const, cwd: '/x', config: { vcpus: 2, memory_mb: 64, disk_mb: 32 } };
        await store.updateSnapshot(changed);
        assert.deepStrictEqual(await store.getSnapshot(s.id), changed);
        assert.equal(await store.getSnapshot('snap_missing'), null);
      });

      it('every snapshot kind round-trips', async () => {
        for (const kind of SNAPSHOT_KINDS) {
          const s = snapshot({ kind });
          await store.insertSnapshot(s);
          assert.equal((await store.getSnapshot(s.id))?.kind, kind);
        }
      });

      it('listSnapshots lists one team\'s snapshots newest first, optionally of one machine', async () => {
        const a1 = snapshot({ createdAt: T0 + 1, machineId: 'mch_1' });
        const a2 = snapshot({ createdAt: T0 + 3, machineId: 'mch_2' });
        const a3 = snapshot({ createdAt: T0 + 2, machineId: 'mch_1' });
        const b1 = snapshot({ teamId: 'team_b', machineId: 'mch_1' });
        for (const s of [a1, a2, a3, b1]) await store.insertSnapshot(s);
        assert.deepStrictEqual(ids(await store.listSnapshots('team_a')), [a2.id, a3.id, a1.id]);
        assert.deepStrictEqual(ids(await store.listSnapshots('team_a', 'mch_1')), [a3.id, a1.id]);
        assert.deepStrictEqual(ids(await store.listSnapshots('team_b')), [b1.id]);
        assert.deepStrictEqual(await store.listSnapshots('team_a', 'mch_none'), []);
      });

      it('snapshotTotals counts snapshots and their bytes across teams', async () => {
        assert.deepStrictEqual(await store.snapshotTotals(), { count: 0, bytes: 0 });
        await store.insertSnapshot(snapshot({ sizeBytes: 5 }));
        await store.insertSnapshot(snapshot({ sizeBytes: 7, teamId: 'team_b' }));
        assert.deepStrictEqual(await store.snapshotTotals(), { count: 2, bytes: 12 });
      });

      it('allSnapshotIds and deleteSnapshot', async () => {
        const s1 = snapshot();
        const s2 = snapshot({ teamId: 'team_b' });
        await store.insertSnapshot(s1);
        await store.insertSnapshot(s2);
        assert.deepStrictEqual((await store.allSnapshotIds()).sort(), [s1.id, s2.id].sort());
        await store.deleteSnapshot(s1.id);
        assert.equal(await store.getSnapshot(s1.id), null);
        assert.deepStrictEqual(await store.allSnapshotIds(), [s2.id]);
        await store.deleteSnapshot('snap_missing');
      });
    });

    describe('template builds', () => {
      it('versions count up per team and name; insert, get and update round-trip', async () => {
        const a = build();
        assert.equal(await store.insertTemplateBuild(a), 1);
        const b = build({ hostId: 'host-é/hangar-0123abcd' });
        assert.equal(await store.insertTemplateBuild(b), 2);
        assert.deepStrictEqual(await store.getTemplateBuild(b.id), { ...b, version: 2 });
        assert.equal(await store.insertTemplateBuild(build({ teamId: 'team_b' })), 1, 'another team has its own versions');
        assert.equal(await store.insertTemplateBuild(build({ teamId: null })), 1, 'server-wide ones too');
        assert.deepStrictEqual(await store.getTemplateBuild(a.id), { ...a, version: 1 });
        const done = {
          ...a, version: 1, status: 'ready' as const, finishedAt: T0 + 5,
          result: { layers: ['ab', 'cd'], init: ['/x'], env: { Z: '1' }, cwd: '/w', user: 'root', sizeBytes: 10, startSnapshotId: null, startPid: null },
        };
        await store.updateTemplateBuild(done);
        assert.deepStrictEqual(await store.getTemplateBuild(a.id), done);
        assert.equal(await store.getTemplateBuild('bld_missing'), null);
      });

      it('current is the newest ready version, latest the newest of any status; deleting hides all', async () => {
        const v1 = build({ status: 'ready' });
        const v2 = build({ status: 'ready' });
        const v3 = build({ status: 'error', error: { step: 'step 1 (run)', message: 'exit 1' } });
        for (const b of [v1, v2, v3]) await store.insertTemplateBuild(b);
        assert.equal((await store.currentTemplate('team_a', 'py'))?.id, v2.id);
        assert.equal((await store.latestTemplateBuild('team_a', 'py'))?.id, v3.id);
        assert.equal(await store.currentTemplate('team_b', 'py'), null);
        assert.equal(await store.currentTemplate(null, 'py'), null, 'a team template is not server-wide');
        assert.equal(await store.deleteTemplateName('team_a', 'py', T0 + 9), 3);
        assert.equal(await store.currentTemplate('team_a', 'py'), null);
        assert.equal(await store.latestTemplateBuild('team_a', 'py'), null);
        assert.equal((await store.getTemplateBuild(v1.id))?.deletedAt, T0 + 9, 'the rows stay for the machines on them');
        const again = build({ status: 'ready' });
        assert.equal(await store.insertTemplateBuild(again), 4, 'a name rebuilt after deletion goes on counting');
        assert.equal((await store.currentTemplate('team_a', 'py'))?.id, again.id);
      });

      it('pageTemplates gives the newest build of each name the team sees, by name', async () => {
        await store.insertTemplateBuild(build({ name: 'b', status: 'ready' }));
        const b2 = build({ name: 'b' });
        await store.insertTemplateBuild(b2);
        const a = build({ name: 'a', status: 'ready' });
        await store.insertTemplateBuild(a);
        const shared = build({ name: 'c', teamId: null, status: 'ready' });
        await store.insertTemplateBuild(shared);
        await store.insertTemplateBuild(build({ name: 'd', teamId: 'team_b', status: 'ready' }));
        const gone = build({ name: 'e', status: 'ready' });
        await store.insertTemplateBuild(gone);
        await store.deleteTemplateName('team_a', 'e', T0);
        assert.deepStrictEqual(ids(await store.pageTemplates('team_a', null, 10)), [a.id, b2.id, shared.id]);
        assert.deepStrictEqual(ids(await store.pageTemplates('team_a', null, 2)), [a.id, b2.id]);
        assert.deepStrictEqual(ids(await store.pageTemplates('team_a', 'b', 2)), [shared.id]);
      });

      it('templateBuildUsers counts live machines and snapshots on a version; drop forgets a build', async () => {
        const b = build({ status: 'ready' });
        await store.insertTemplateBuild(b);
        await store.insertMachine(machine({ templateBuild: b.id }));
        await store.insertMachine(machine({ templateBuild: b.id, status: 'destroyed' }));
        await store.insertMachine(machine());
        await store.insertSnapshot(snapshot({ templateBuild: b.id }));
        assert.deepStrictEqual(await store.templateBuildUsers(b.id), { machines: 1, snapshots: 1 });
        assert.deepStrictEqual(await store.templateBuildUsers('bld_none'), { machines: 0, snapshots: 0 });
        assert.deepStrictEqual(ids(await store.allTemplateBuilds()), [b.id]);
        await store.dropTemplateBuild(b.id);
        assert.equal(await store.getTemplateBuild(b.id), null);
      });
    });

    describe('volumes', () => {
      const rw = (v: VolumeRecord, mountPath = '/data') => ({ volumeId: v.id, mountPath, readOnly: false });
      const ro = (v: VolumeRecord, mountPath = '/ro') => ({ volumeId: v.id, mountPath, readOnly: true });

      it('insert, get and list round-trip every field; lists are one team\'s, newest first', async () => {
        const a1 = volume({ createdAt: T0 + 1, name: 'data', sizeMb: 16 });
        const a2 = volume({ createdAt: T0 + 3, name: 'cache', sizeMb: 1_048_576 });
        const a3 = volume({ createdAt: T0 + 3, name: 'logs' });
        const b1 = volume({ teamId: 'team_b', name: 'data' });
        for (const v of [a1, a2, a3, b1]) assert.equal(await store.insertVolume(v, 100), 'inserted');
        assert.deepStrictEqual(await store.getVolume(a1.id), a1);
        assert.equal(await store.getVolume('vol_missing'), null);
        const newest = [a2, a3].sort((x, y) => (x.id < y.id ? 1 : -1));
        assert.deepStrictEqual(await store.listVolumes('team_a'), [...newest, a1]);
        assert.deepStrictEqual(await store.listVolumes('team_b'), [b1]);
        assert.deepStrictEqual(await store.listVolumes('team_none'), []);
        assert.deepStrictEqual((await store.allVolumeIds()).sort(), [a1.id, a2.id, a3.id, b1.id].sort());
      });

      it('a name is unique within a team (name_taken, nothing written), not across teams; a full team is refused', async () => {
        const first = volume({ name: 'data' });
        assert.equal(await store.insertVolume(first, 2), 'inserted');
        const again = volume({ name: 'data' });
        assert.equal(await store.insertVolume(again, 2), 'name_taken');
        assert.equal(await store.getVolume(again.id), null);
        assert.equal(await store.insertVolume(volume({ name: 'data', teamId: 'team_b' }), 2), 'inserted');
        assert.equal(await store.insertVolume(volume({ name: 'second' }), 2), 'inserted');
        const third = volume({ name: 'third' });
        assert.equal(await store.insertVolume(third, 2), 'team_full');
        assert.equal(await store.getVolume(third.id), null);
      });

      it('a machine\'s attachments round-trip in request order, and its snapshots\' too', async () => {
        const v1 = volume();
        const v2 = volume();
        const v3 = volume();
        for (const v of [v1, v2, v3]) await store.insertVolume(v, 100);
        const m = machine({ volumes: [ro(v3, '/z'), rw(v1, '/a'), ro(v2, '/m/n')] });
        await store.insertMachine(m);
        assertSameMachine(await store.getMachine(m.id), m);
        assert.deepStrictEqual((await store.listMachines({ teamId: 'team_a', statuses: ['running'] }))[0]?.volumes, m.volumes);
        const none = machine();
        await store.insertMachine(none);
        assert.deepStrictEqual((await store.getMachine(none.id))?.volumes, []);
        const s = snapshot({ machineId: m.id, volumes: m.volumes });
        await store.insertSnapshot(s);
        assert.deepStrictEqual(await store.getSnapshot(s.id), s);
      });

      it('read-write to one live machine, read-only to many; the conflict names the holder and writes nothing', async () => {
        const v = volume();
        await store.insertVolume(v, 100);
        const writer = machine({ createdAt: T0 + 1, volumes: [rw(v)] });
        await store.insertMachine(writer);
        const second = machine({ volumes: [rw(v)] });
        await assertConflict(() => store.insertMachine(second), v.id, 'held', writer.id);
        assert.equal(await store.getMachine(second.id), null);
        const readers = [machine({ createdAt: T0 + 2, volumes: [ro(v)] }), machine({ createdAt: T0 + 3, volumes: [ro(v)] })];
        for (const r of readers) await store.insertMachine(r);
        assert.deepStrictEqual(
          await store.volumeHolders(v.id),
          [writer, ...readers].map((m) => ({ machineId: m.id, status: 'running', mountPath: m.volumes[0]!.mountPath, readOnly: m.volumes[0]!.readOnly })),
        );
        // Paused and error machines keep their attachments; a destroyed one has released it.
        writer.status = 'paused';
        await store.updateMachine(writer);
        await assertConflict(() => store.insertMachine(machine({ volumes: [rw(v)] })), v.id, 'held', writer.id);
        writer.status = 'error';
        await store.updateMachine(writer);
        await assertConflict(() => store.insertMachine(machine({ volumes: [rw(v)] })), v.id, 'held', writer.id);
        writer.status = 'destroyed';
        await store.updateMachine(writer);
        // Readers never keep a writer out.
        const next = machine({ createdAt: T0 + 4, volumes: [rw(v)] });
        await store.insertMachine(next);
        assert.deepStrictEqual((await store.volumeHolders(v.id)).map((h) => h.machineId), [...readers, next].map((m) => m.id));
      });

      it('concurrent read-write inserts: exactly one machine gets the volume', async () => {
        const v = volume();
        await store.insertVolume(v, 100);
        const ms = Array.from({ length: 5 }, () => machine({ volumes: [rw(v)] }));
        const results = await Promise.allSettled(ms.map((m) => store.insertMachine(m)));
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
        assert.equal((await store.volumeHolders(v.id)).length, 1);
      });

      it('a missing volume, or another team\'s, cannot be attached (nothing written)', async () => {
        const theirs = volume({ teamId: 'team_b' });
        await store.insertVolume(theirs, 100);
        const ok = volume();
        await store.insertVolume(ok, 100);
        const m1 = machine({ volumes: [ro(ok), ro(theirs, '/other')] });
        await assertConflict(() => store.insertMachine(m1), theirs.id, 'missing');
        assert.equal(await store.getMachine(m1.id), null);
        const m2 = machine({ volumes: [rw({ ...ok, id: 'vol_missing' })] });
        await assertConflict(() => store.insertMachine(m2), 'vol_missing', 'missing');
        assert.deepStrictEqual(await store.volumeHolders(ok.id), []);
      });

      it('deleteVolume refuses while a live machine holds the volume, deletes once none does', async () => {
        const v = volume();
        await store.insertVolume(v, 100);
        const m = machine({ status: 'paused', volumes: [ro(v)] });
        await store.insertMachine(m);
        const refused = await store.deleteVolume(v.id);
        assert.equal(refused.deleted, false);
        assert.deepStrictEqual(refused.holders.map((h) => h.machineId), [m.id]);
        assert.ok(await store.getVolume(v.id));
        await store.updateMachine({ ...m, status: 'destroyed', destroyedAt: T0 + 5 });
        assert.deepStrictEqual(await store.deleteVolume(v.id), { deleted: true, holders: [] });
        assert.equal(await store.getVolume(v.id), null);
        assert.deepStrictEqual(await store.deleteVolume(v.id), { deleted: false, holders: [] });
        // The destroyed machine still shows what it had attached.
        assert.deepStrictEqual((await store.getMachine(m.id))?.volumes, m.volumes);
        // A name is free again once its volume is deleted.
        assert.equal(await store.insertVolume(volume({ name: v.name }), 100), 'inserted');
      });
    });

    describe('private networks', () => {
      it('insert, get and list newest first, per team', async () => {
        const a1 = network({ createdAt: T0 + 1, name: 'backend' });
        const a2 = network({ createdAt: T0 + 3, name: 'frontend' });
        const a3 = network({ createdAt: T0 + 3, name: 'jobs' });
        const b1 = network({ teamId: 'team_b', name: 'backend' });
        for (const n of [a1, a2, a3, b1]) assert.equal(await store.insertNetwork(n, 100), 'inserted');
        assert.deepStrictEqual(await store.getNetwork(a1.id), a1);
        assert.equal(await store.getNetwork('net_missing'), null);
        const newest = [a2, a3].sort((x, y) => (x.id < y.id ? 1 : -1));
        assert.deepStrictEqual(await store.listNetworks('team_a'), [...newest, a1]);
        assert.deepStrictEqual(await store.listNetworks('team_b'), [b1]);
        assert.deepStrictEqual(await store.listNetworks('team_none'), []);
      });

      it('refuses a name the team has, and a full team, writing nothing', async () => {
        assert.equal(await store.insertNetwork(network({ name: 'net' }), 2), 'inserted');
        const again = network({ name: 'net' });
        assert.equal(await store.insertNetwork(again, 2), 'name_taken');
        assert.equal(await store.getNetwork(again.id), null);
        assert.equal(await store.insertNetwork(network({ name: 'net', teamId: 'team_b' }), 2), 'inserted');
        assert.equal(await store.insertNetwork(network({ name: 'second' }), 2), 'inserted');
        const third = network({ name: 'third' });
        assert.equal(await store.insertNetwork(third, 2), 'team_full');
        assert.equal(await store.getNetwork(third.id), null);
      });

      it('a machine\'s network round-trips; members are the live machines on it, oldest first', async () => {
        const n = network();
        const other = network();
        await store.insertNetwork(n, 100);
        await store.insertNetwork(other, 100);
        const a = machine({ createdAt: T0 + 1, networkId: n.id, privateIp: '10.0.0.2' });
        const b = machine({ createdAt: T0 + 2, networkId: n.id, status: 'paused', privateIp: '10.0.0.3' });
        const c = machine({ createdAt: T0 + 3, networkId: other.id, privateIp: '10.0.0.4' });
        const none = machine({ createdAt: T0 + 4 });
        for (const m of [a, b, c, none]) await store.insertMachine(m);
        assertSameMachine(await store.getMachine(a.id), a);
        assert.equal((await store.getMachine(none.id))?.networkId, null);
        assert.deepStrictEqual(await store.networkMembers(n.id), [
          { machineId: a.id, status: 'running', privateIp: '10.0.0.2' },
          { machineId: b.id, status: 'paused', privateIp: '10.0.0.3' },
        ]);
        await store.updateMachine({ ...a, status: 'destroyed', destroyedAt: T0 + 9 });
        assert.deepStrictEqual((await store.networkMembers(n.id)).map((x) => x.machineId), [b.id]);
        assert.deepStrictEqual((await store.networkMembers(other.id)).map((x) => x.machineId), [c.id]);
      });

      it('a missing network, or another team\'s, cannot be joined (nothing written)', async () => {
        const theirs = network({ teamId: 'team_b' });
        await store.insertNetwork(theirs, 100);
        for (const networkId of [theirs.id, 'net_missing']) {
          const m = machine({ networkId });
          await assert.rejects(
            () => store.insertMachine(m),
            (err: unknown) => err instanceof NetworkConflictError && err.networkId === networkId,
          );
          assert.equal(await store.getMachine(m.id), null);
        }
        assert.deepStrictEqual(await store.networkMembers(theirs.id), []);
      });

      it('deleteNetwork refuses while a live machine is on it, deletes once none is', async () => {
        const n = network();
        await store.insertNetwork(n, 100);
        const m = machine({ status: 'error', networkId: n.id });
        await store.insertMachine(m);
        const refused = await store.deleteNetwork(n.id);
        assert.equal(refused.deleted, false);
        assert.deepStrictEqual(refused.members.map((x) => x.machineId), [m.id]);
        assert.ok(await store.getNetwork(n.id));
        await store.updateMachine({ ...m, status: 'destroyed', destroyedAt: T0 + 5 });
        assert.deepStrictEqual(await store.deleteNetwork(n.id), { deleted: true, members: [] });
        assert.equal(await store.getNetwork(n.id), null);
        assert.deepStrictEqual(await store.deleteNetwork(n.id), { deleted: false, members: [] });
        // The destroyed machine still shows the network it was on.
        assert.equal((await store.getMachine(m.id))?.networkId, n.id);
        assert.equal(await store.insertNetwork(network({ name: n.name }), 100), 'inserted');
      });
    });

    describe('warm pools', () => {
      it('put, get, list and delete', async () => {
        const a = warmPool({ name: 'a', lastError: 'refill failed', size: 0 });
        const b = warmPool({ name: 'b', template: 'python', config: { vcpus: 2, memory_mb: 1024, disk_mb: 2048 }, hits: 4, misses: 5 });
        await store.putWarmPool(a);
        await store.putWarmPool(b);
        assert.deepStrictEqual(await store.getWarmPool('a'), a);
        assert.deepStrictEqual(await store.getWarmPool('b'), b);
        assert.equal(await store.getWarmPool('missing'), null);
        assert.deepStrictEqual((await store.listWarmPools()).sort((x, y) => x.name.localeCompare(y.name)), [a, b]);
        await store.deleteWarmPool('a');
        assert.equal(await store.getWarmPool('a'), null);
        assert.deepStrictEqual(await store.listWarmPools(), [b]);
        await store.deleteWarmPool('missing');
      });

      it('put replaces an existing pool\'s settings and counters', async () => {
        await store.putWarmPool(warmPool({ name: 'p', hits: 9, misses: 9, lastError: 'x' }));
        const next = warmPool({ name: 'p', template: 'node', config: { vcpus: 4, memory_mb: 64, disk_mb: 32 }, size: 7, hits: 1, misses: 2, lastError: null, updatedAt: T0 + 5 });
        await store.putWarmPool(next);
        const got = await store.getWarmPool('p');
        assert.deepStrictEqual({ ...got!, createdAt: next.createdAt }, next);
        assert.equal((await store.listWarmPools()).length, 1);
      });

      it('countPoolCheckout adds one hit or one miss', async () => {
        await store.putWarmPool(warmPool({ name: 'p', hits: 2, misses: 3 }));
        await store.countPoolCheckout('p', true);
        await store.countPoolCheckout('p', true);
        await store.countPoolCheckout('p', false);
        const got = await store.getWarmPool('p');
        assert.equal(got?.hits, 4);
        assert.equal(got?.misses, 4);
      });

      it('poolMachines lists the pool\'s idle running machines, oldest first', async () => {
        const ms = await insertAll([
          machine({ teamId: 'team_warmpool', pool: 'p', createdAt: T0 + 2 }),
          machine({ teamId: 'team_warmpool', pool: 'p', createdAt: T0 + 1 }),
          machine({ teamId: 'team_warmpool', pool: 'p', createdAt: T0, status: 'creating' }),
          machine({ teamId: 'team_warmpool', pool: 'p', createdAt: T0, status: 'error' }),
          machine({ teamId: 'team_warmpool', pool: 'other', createdAt: T0 }),
          machine({ teamId: 'team_a', pool: null, createdAt: T0 }),
        ]);
        const got = await store.poolMachines('p');
        assert.deepStrictEqual(ids(got), [ms[1]!.id, ms[0]!.id]);
        assertSameMachine(got[0] ?? null, ms[1]!);
        assert.deepStrictEqual(await store.poolMachines('none'), []);
      });

      it('claimPoolMachine takes the oldest idle machine: pool cleared, team set, nothing else changed', async () => {
        const [newer, older] = await insertAll([
          machine({ teamId: 'team_warmpool', pool: 'p', createdAt: T0 + 2, metadata: { k: 1 } }),
          machine({ teamId: 'team_warmpool', pool: 'p', createdAt: T0 + 1, metadata: { k: 2 } }),
        ]);
        const claimed = await store.claimPoolMachine('p', 'team_a');
        assertSameMachine(claimed, { ...older!, pool: null, teamId: 'team_a' });
        assertSameMachine(await store.getMachine(older!.id), { ...older!, pool: null, teamId: 'team_a' });
        assert.deepStrictEqual(ids(await store.poolMachines('p')), [newer!.id]);
        assert.deepStrictEqual(ids(await store.listMachines({ teamId: 'team_a', statuses: ['running'] })), [older!.id]);
      });

      it('claimPoolMachine is null when no idle running machine is ready', async () => {
        await insertAll([
          machine({ teamId: 'team_warmpool', pool: 'p', status: 'creating' }),
          machine({ teamId: 'team_warmpool', pool: 'other' }),
        ]);
        assert.equal(await store.claimPoolMachine('p', 'team_a'), null);
        assert.equal(await store.claimPoolMachine('missing', 'team_a'), null);
      });

      it('concurrent claims never get the same machine', async () => {
        const pool = await insertAll(Array.from({ length: 5 }, (_, i) => machine({ teamId: 'team_warmpool', pool: 'p', createdAt: T0 + i })));
        const claims = await Promise.all(Array.from({ length: 8 }, (_, i) => store.claimPoolMachine('p', `team_${i}`)));
        const won = claims.filter((c): c is MachineRecord => c !== null);
        assert.equal(won.length, 5);
        assert.deepStrictEqual(sortedIds(won), sortedIds(pool));
        for (const c of won) assert.equal((await store.getMachine(c.id))?.teamId, c.teamId);
        assert.deepStrictEqual(await store.poolMachines('p'), []);
      });
    });

    describe('hosts', () => {
      const host = (o: Partial<HostRecord> = {}): HostRecord => ({
        id: 'host-a',
        state: 'up',
        url: 'http://127.0.0.1:1',
        capacityMachines: 10,
        startedAt: T0,
        heartbeatAt: T0,
        downReason: null,
        snapshotStore: 'store_shared',
        ...o,
      });

      it('registerHost inserts as up, and again replaces url, capacity and times and clears down', async () => {
        await store.registerHost(host({ state: 'down', downReason: 'ignored' }));
        assert.deepStrictEqual(await store.getHost('host-a'), host());
        await store.markHostsDown(T0 + 1, 'other', () => 'silent');
        assert.equal((await store.getHost('host-a'))?.state, 'down');
        await store.registerHost(host({ url: null, capacityMachines: 0, startedAt: T0 + 5 }));
        assert.deepStrictEqual(await store.getHost('host-a'), host({ url: null, capacityMachines: 0, startedAt: T0 + 5, heartbeatAt: T0 + 5 }));
        assert.equal(await store.getHost('missing'), null);
      });

      it('heartbeatHost returns the state it had and makes the host up again; null when unknown', async () => {
        assert.equal(await store.heartbeatHost('host-a', T0), null);
        await store.registerHost(host());
        assert.equal(await store.heartbeatHost('host-a', T0 + 10), 'up');
        assert.equal((await store.getHost('host-a'))?.heartbeatAt, T0 + 10);
        await store.markHostsDown(T0 + 11, 'other', () => 'silent');
        assert.equal(await store.heartbeatHost('host-a', T0 + 20), 'down');
        assert.deepStrictEqual(await store.getHost('host-a'), host({ heartbeatAt: T0 + 20 }));
        await store.stopHost('host-a', T0 + 30);
        assert.deepStrictEqual(await store.getHost('host-a'), host({ state: 'stopped', heartbeatAt: T0 + 30 }));
        assert.equal(await store.heartbeatHost('host-a', T0 + 40), 'stopped');
      });

      it('markHostsDown marks only up hosts silent since before the cut-off, never the caller, each once', async () => {
        await store.registerHost(host({ id: 'h1', heartbeatAt: T0, startedAt: T0 }));
        await store.registerHost(host({ id: 'h2', startedAt: T0 + 100 }));
        await store.registerHost(host({ id: 'h3', startedAt: T0 }));
        await store.registerHost(host({ id: 'h4', startedAt: T0 }));
        await store.stopHost('h4', T0);
        const marked = await store.markHostsDown(T0 + 50, 'h3', (h) => `silent since ${h.heartbeatAt}`);
        assert.deepStrictEqual(marked, [host({ id: 'h1', state: 'down', downReason: `silent since ${T0}` })]);
        assert.deepStrictEqual(await store.markHostsDown(T0 + 50, 'h3', () => 'again'), []);
        assert.deepStrictEqual(
          (await store.listHosts()).map((h) => [h.id, h.state, h.downReason]),
          [['h1', 'down', `silent since ${T0}`], ['h2', 'up', null], ['h3', 'up', null], ['h4', 'stopped', null]],
        );
      });

      it('setHostDraining: up and draining hosts switch; heartbeats and re-registering keep draining; stopped or down ones stay', async () => {
        assert.equal(await store.setHostDraining('missing', true), null);
        await store.registerHost(host());
        assert.equal((await store.setHostDraining('host-a', true))?.state, 'draining');
        assert.equal(await store.heartbeatHost('host-a', T0 + 1), 'draining');
        assert.equal((await store.getHost('host-a'))?.state, 'draining');
        await store.registerHost(host({ startedAt: T0 + 2 }));
        assert.equal((await store.getHost('host-a'))?.state, 'draining');
        assert.deepStrictEqual((await store.markHostsDown(T0 + 100, 'other', () => 'silent')).map((h) => h.id), ['host-a']);
        assert.equal((await store.setHostDraining('host-a', false))?.state, 'down');
        assert.equal(await store.heartbeatHost('host-a', T0 + 200), 'down');
        assert.equal((await store.setHostDraining('host-a', false))?.state, 'up');
        await store.stopHost('host-a', T0 + 300);
        assert.equal((await store.setHostDraining('host-a', true))?.state, 'stopped');
      });

      it('heartbeats concurrent with a drain or undrain keep what the drain set', async () => {
        await store.registerHost(host());
        for (let round = 0; round < 40; round++) {
          const draining = round % 2 === 0;
          await Promise.all([
            ...Array.from({ length: 3 }, (_, i) => store.heartbeatHost('host-a', T0 + round * 10 + i)),
            store.setHostDraining('host-a', draining),
            ...Array.from({ length: 3 }, (_, i) => store.heartbeatHost('host-a', T0 + round * 10 + 5 + i)),
          ]);
          assert.equal((await store.getHost('host-a'))?.state, draining ? 'draining' : 'up', `round ${round}`);
        }
      });

      it('forgetHosts deletes down or stopped hosts silent since before the bound that no live machine names', async () => {
        for (const id of ['gone-down', 'gone-stopped', 'busy', 'only-destroyed', 'recent', 'alive']) await store.registerHost(host({ id, heartbeatAt: T0 }));
        await store.markHostsDown(T0 + 1, 'alive', () => 'silent');
        await store.heartbeatHost('alive', T0 + 50);
        await store.stopHost('gone-stopped', T0);
        await store.stopHost('recent', T0 + 60);
        await insertAll([machine({ hostId: 'busy', status: 'paused' }), machine({ hostId: 'only-destroyed', status: 'destroyed', destroyedAt: T0 })]);
        assert.deepStrictEqual(await store.forgetHosts(T0 + 55), ['gone-down', 'gone-stopped', 'only-destroyed']);
        assert.deepStrictEqual((await store.listHosts()).map((h) => h.id), ['alive', 'busy', 'recent']);
        assert.deepStrictEqual(await store.forgetHosts(T0 + 55), []);
        // A forgotten host that comes back registers anew.
        await store.registerHost(host({ id: 'gone-down', heartbeatAt: T0 + 70 }));
        assert.equal((await store.getHost('gone-down'))?.state, 'up');
      });

      it('concurrent markHostsDown calls mark each host once between them', async () => {
        for (const id of ['h1', 'h2', 'h3']) await store.registerHost(host({ id }));
        const rounds = await Promise.all(Array.from({ length: 4 }, (_, i) => store.markHostsDown(T0 + 1, `w${i}`, () => 'silent')));
        assert.deepStrictEqual(rounds.flat().map((h) => h.id).sort(), ['h1', 'h2', 'h3']);
      });

      it('machines keep their host; the host filters and the adoption of unhosted machines', async () => {
        const [a1, a2, b1, none, aDone] = await insertAll([
          machine({ hostId: 'host-a', deadlineAt: T0 + 1, createdAt: T0 }),
          machine({ hostId: 'host-a', status: 'paused', createdAt: T0 + 1 }),
          machine({ hostId: 'host-b', deadlineAt: T0 + 1 }),
          machine({ hostId: null, status: 'paused' }),
          machine({ hostId: 'host-a', status: 'destroyed' }),
        ]);
        assert.equal((await store.getMachine(b1!.id))?.hostId, 'host-b');
        assert.deepStrictEqual(ids(await store.machinesInStatus(['running', 'paused'], 'host-a')), [a1!.id, a2!.id]);
        assert.equal((await store.machinesInStatus(['running', 'paused'])).length, 4);
        assert.deepStrictEqual(ids(await store.dueMachines(T0 + 5, 10, 'host-b')), [b1!.id]);
        assert.equal((await store.dueMachines(T0 + 5, 10)).length, 2);
        assert.deepStrictEqual(Object.fromEntries(await store.hostLoads()), { 'host-a': 2, 'host-b': 1 });
        assert.equal(await store.adoptUnhostedMachines('host-b'), 1);
        assert.equal((await store.getMachine(none!.id))?.hostId, 'host-b');
        assert.equal(await store.adoptUnhostedMachines('host-b'), 0);
        assert.equal((await store.getMachine(aDone!.id))?.hostId, 'host-a');
      });

      it('registerHost keeps the snapshot store, and a new one replaces it', async () => {
        await store.registerHost(host({ snapshotStore: null }));
        assert.equal((await store.getHost('host-a'))?.snapshotStore, null);
        await store.registerHost(host({ snapshotStore: 'store_other' }));
        assert.equal((await store.getHost('host-a'))?.snapshotStore, 'store_other');
      });

      it('movePausedMachine hands a paused machine to another host with its address cleared, once, and nothing else', async () => {
        const [paused, running, other] = await insertAll([
          machine({ hostId: 'host-a', status: 'paused', privateIp: '10.0.0.5' }),
          machine({ hostId: 'host-a', status: 'running', privateIp: '10.0.0.6' }),
          machine({ hostId: 'host-c', status: 'paused', privateIp: '10.0.0.7' }),
        ]);
        const moves = await Promise.all([store.movePausedMachine(paused!.id, 'host-a', 'host-b', T0 + 9), store.movePausedMachine(paused!.id, 'host-a', 'host-c', T0 + 9)]);
        assert.deepStrictEqual(moves, [true, false], 'the first move wins, the second finds it gone');
        const moved = await store.getMachine(paused!.id);
        assert.deepStrictEqual([moved?.hostId, moved?.privateIp, moved?.status, moved?.updatedAt], ['host-b', null, 'paused', T0 + 9]);
        assert.equal(await store.movePausedMachine(running!.id, 'host-a', 'host-b', T0), false, 'a running machine does not move');
        assert.equal(await store.movePausedMachine(other!.id, 'host-a', 'host-b', T0), false, 'a machine of another host does not move');
        assert.deepStrictEqual([(await store.getMachine(running!.id))?.hostId, (await store.getMachine(other!.id))?.privateIp], ['host-a', '10.0.0.7']);
      });

      it('allSnapshotIds of one host: the snapshots of its machines', async () => {
        const [onA, onB] = await insertAll([machine({ hostId: 'host-a' }), machine({ hostId: 'host-b' })]);
        const snapA = snapshot({ machineId: onA!.id });
        const snapB = snapshot({ machineId: onB!.id });
        await store.insertSnapshot(snapA);
        await store.insertSnapshot(snapB);
        assert.deepStrictEqual(await store.allSnapshotIds('host-a'), [snapA.id]);
        assert.deepStrictEqual((await store.allSnapshotIds()).sort(), [snapA.id, snapB.id].sort());
      });

      it('warm pool machines of one host: listed and claimed only there', async () => {
        const [onA, onB] = await insertAll([
          machine({ teamId: 'team_warmpool', pool: 'p', hostId: 'host-a', createdAt: T0 }),
          machine({ teamId: 'team_warmpool', pool: 'p', hostId: 'host-b', createdAt: T0 + 1 }),
        ]);
        assert.deepStrictEqual(ids(await store.poolMachines('p', 'host-b')), [onB!.id]);
        assert.deepStrictEqual(ids(await store.poolMachines('p')), [onA!.id, onB!.id]);
        assert.equal((await store.claimPoolMachine('p', 'team_x', 'host-b'))?.id, onB!.id);
        assert.equal(await store.claimPoolMachine('p', 'team_x', 'host-b'), null);
        assert.equal((await store.claimPoolMachine('p', 'team_x'))?.id, onA!.id);
      });
    });

    describe('idempotency keys', () => {
      it('get is null until inserted, then returns the record; scoped by team', async () => {
        const m = machine();
        await store.insertMachine(m);
        const rec = { teamId: 'team_a', key: 'retry-1', requestHash: 'h1', machineId: m.id, createdAt: T0 };
        assert.equal(await store.getIdempotency('team_a', 'retry-1'), null);
        await store.insertIdempotency(rec);
        assert.deepStrictEqual(await store.getIdempotency('team_a', 'retry-1'), rec);
        assert.equal(await store.getIdempotency('team_b', 'retry-1'), null);
        assert.equal(await store.getIdempotency('team_a', 'retry-2'), null);
      });

      it('the same key may be used by two teams, but only once per team', async () => {
        const ma = machine({ teamId: 'team_a' });
        const mb = machine({ teamId: 'team_b' });
        await insertAll([ma, mb]);
        await store.insertIdempotency({ teamId: 'team_a', key: 'k', requestHash: 'ha', machineId: ma.id, createdAt: T0 });
        await store.insertIdempotency({ teamId: 'team_b', key: 'k', requestHash: 'hb', machineId: mb.id, createdAt: T0 });
        assert.equal((await store.getIdempotency('team_b', 'k'))?.machineId, mb.id);
        await assert.rejects(store.insertIdempotency({ teamId: 'team_a', key: 'k', requestHash: 'hx', machineId: mb.id, createdAt: T0 }));
        assert.equal((await store.getIdempotency('team_a', 'k'))?.requestHash, 'ha');
      });

      it('purgeIdempotency deletes records created at or before the cut-off', async () => {
        const m = machine();
        await store.insertMachine(m);
        for (const [key, createdAt] of [['old', T0], ['edge', T0 + 10], ['new', T0 + 11]] as const) {
          await store.insertIdempotency({ teamId: 'team_a', key, requestHash: 'h', machineId: m.id, createdAt });
        }
        assert.equal(await store.purgeIdempotency(T0 + 10), 2);
        assert.equal(await store.getIdempotency('team_a', 'old'), null);
        assert.equal(await store.getIdempotency('team_a', 'edge'), null);
        assert.equal((await store.getIdempotency('team_a', 'new'))?.createdAt, T0 + 11);
        assert.equal(await store.purgeIdempotency(T0 + 10), 0);
      });

      it('purgeDestroyed drops the keys of purged machines and keeps the others', async () => {
        // The service re-creates on a key whose machine is gone; a stale key would collide with the new one.
        const gone = machine({ status: 'destroyed', destroyedAt: T0 });
        const kept = machine({ status: 'destroyed', destroyedAt: T0 + 1_000 });
        const live = machine();
        await insertAll([gone, kept, live]);
        for (const m of [gone, kept, live]) {
          await store.insertIdempotency({ teamId: 'team_a', key: `k-${m.id}`, requestHash: 'h', machineId: m.id, createdAt: T0 });
        }
        assert.equal(await store.purgeDestroyed(T0), 1);
        assert.equal(await store.getIdempotency('team_a', `k-${gone.id}`), null);
        assert.equal((await store.getIdempotency('team_a', `k-${kept.id}`))?.machineId, kept.id);
        assert.equal((await store.getIdempotency('team_a', `k-${live.id}`))?.machineId, live.id);
      });
    });

    describe('users and accessors', () => {
      const user = (o: Partial<User> = {}): User => ({
        id: nextId('usr_'), teamId: 'team_a', email: `${nextId('u')}@example.test`, firstName: 'Ada', lastName: 'Lovelace', role: 'member', createdAt: T0, ...o,
      });
      beforeEach(async () => {
        await store.insertTeam(team({ id: 'team_a' }));
        await store.insertTeam(team({ id: 'team_b' }));
      });

      it('insert, get, find by email and list round-trip every field', async () => {
        const a = user({ firstName: null, lastName: null });
        const b = user({ role: 'admin', createdAt: T0 + 1 });
        const other = user({ teamId: 'team_b' });
        for (const u of [b, a, other]) await store.insertUser(u);
        assert.deepStrictEqual(await store.getUser(a.id), a);
        assert.deepStrictEqual(await store.findUserByEmail('team_a', b.email), b);
        assert.equal(await store.findUserByEmail('team_b', b.email), null);
        assert.equal(await store.getUser('usr_nobody'), null);
        assert.deepStrictEqual(await store.listUsers('team_a'), [a, b]);
      });

      it('an email is unique within a team, not across teams', async () => {
        await store.insertUser(user({ email: 'same@example.test' }));
        await assert.rejects(store.insertUser(user({ email: 'same@example.test' })));
        await store.insertUser(user({ teamId: 'team_b', email: 'same@example.test' }));
        assert.equal((await store.listUsers('team_a')).length, 1);
      });

      it('a key keeps its user id', async () => {
        const u = user();
        await store.insertUser(u);
        const k = apiKey({ userId: u.id });
        await store.insertApiKey(k);
        assert.deepStrictEqual(await store.findApiKeyByHash(k.hash), k);
      });

      it('accessors: put, get, list active ones, remove once, grant again', async () => {
        await store.putAccessor({ machineId: 'mch_x', userId: 'usr_b', createdAt: T0, deletedAt: null });
        await store.putAccessor({ machineId: 'mch_x', userId: 'usr_a', createdAt: T0 + 1, deletedAt: null });
        await store.putAccessor({ machineId: 'mch_y', userId: 'usr_a', createdAt: T0, deletedAt: null });
        assert.deepStrictEqual((await store.listAccessors('mch_x')).map((a) => a.userId), ['usr_a', 'usr_b']);
        assert.equal(await store.removeAccessor('mch_x', 'usr_a', T0 + 5), true);
        assert.equal(await store.removeAccessor('mch_x', 'usr_a', T0 + 6), false, 'already removed');
        assert.equal(await store.removeAccessor('mch_x', 'usr_nobody', T0 + 6), false);
        assert.deepStrictEqual(await store.getAccessor('mch_x', 'usr_a'), { machineId: 'mch_x', userId: 'usr_a', createdAt: T0 + 1, deletedAt: T0 + 5 });
        assert.deepStrictEqual((await store.listAccessors('mch_x')).map((a) => a.userId), ['usr_b']);
        await store.putAccessor({ machineId: 'mch_x', userId: 'usr_a', createdAt: T0 + 9, deletedAt: null });
        assert.deepStrictEqual(await store.getAccessor('mch_x', 'usr_a'), { machineId: 'mch_x', userId: 'usr_a', createdAt: T0 + 9, deletedAt: null });
        assert.equal(await store.getAccessor('mch_z', 'usr_a'), null);
      });

      it('listMachines and listMachineEvents narrowed to a user: created by it, or accessor while active', async () => {
        const mine = machine({ createdBy: 'usr_me', createdAt: T0 + 3 });
        const granted = machine({ createdBy: 'usr_other', createdAt: T0 + 2 });
        const revoked = machine({ createdBy: 'usr_other', createdAt: T0 + 1 });
        const teamKeyMade = machine({ createdAt: T0 });
        await insertAll([mine, granted, revoked, teamKeyMade]);
        await store.putAccessor({ machineId: granted.id, userId: 'usr_me', createdAt: T0, deletedAt: null });
        await store.putAccessor({ machineId: revoked.id, userId: 'usr_me', createdAt: T0, deletedAt: T0 + 1 });
        const q = { teamId: 'team_a', statuses: ['running'] as MachineStatus[] };
        assert.deepStrictEqual(ids(await store.listMachines({ ...q, visibleTo: 'usr_me' })), [mine.id, granted.id]);
        assert.deepStrictEqual(ids(await store.listMachines({ ...q, visibleTo: 'usr_me', limit: 1 })), [mine.id]);
        assert.equal((await store.listMachines(q)).length, 4);
        for (const m of [mine, granted, revoked, teamKeyMade]) await store.insertMachineEvent(machineEvent({ machineId: m.id }));
        const events = await store.listMachineEvents({ teamId: 'team_a', order: 'asc', visibleTo: 'usr_me' });
        assert.deepStrictEqual(events.map((e) => e.machineId).sort(), [mine.id, granted.id].sort());
      });

      it('purging a destroyed machine drops its accessors', async () => {
        const m = machine({ status: 'destroyed', destroyedAt: T0 });
        await store.insertMachine(m);
        await store.putAccessor({ machineId: m.id, userId: 'usr_a', createdAt: T0, deletedAt: null });
        assert.equal(await store.purgeDestroyed(T0), 1);
        assert.equal(await store.getAccessor(m.id, 'usr_a'), null);
      });
    });

    describe('startup scripts', () => {
      it('insert, get, list per team newest first, delete', async () => {
        const a1 = startupScript({ createdAt: T0 + 1, script: '#!/bin/sh\nprintf "é 🙂\\n"\n', runOnce: true });
        const a2 = startupScript({ createdAt: T0 + 3, name: 'setup' });
        const a3 = startupScript({ createdAt: T0 + 3, name: 'other' });
        const b1 = startupScript({ teamId: 'team_b' });
        for (const s of [a1, a2, a3, b1]) assert.equal(await store.insertStartupScript(s, 100), true);
        assert.deepStrictEqual(await store.getStartupScript(a1.id), a1);
        assert.equal(await store.getStartupScript('scr_missing'), null);
        const newest = [a2, a3].sort((x, y) => (x.id < y.id ? 1 : -1));
        assert.deepStrictEqual(await store.listStartupScripts('team_a'), [...newest, a1]);
        assert.deepStrictEqual(await store.listStartupScripts('team_b'), [b1]);
        assert.deepStrictEqual(await store.listStartupScripts('team_none'), []);
        assert.equal(await store.deleteStartupScript(a1.id), true);
        assert.equal(await store.deleteStartupScript(a1.id), false);
        assert.equal(await store.getStartupScript(a1.id), null);
        assert.deepStrictEqual(await store.listStartupScripts('team_a'), newest);
      });

      it('a team full of scripts is refused atomically; other teams are not', async () => {
        assert.equal(await store.insertStartupScript(startupScript(), 2), true);
        assert.equal(await store.insertStartupScript(startupScript(), 2), true);
        const third = startupScript();
        assert.equal(await store.insertStartupScript(third, 2), false);
        assert.equal(await store.getStartupScript(third.id), null);
        assert.equal(await store.insertStartupScript(startupScript({ teamId: 'team_b' }), 2), true);
      });

      it('a machine keeps its copy of a script after the script is deleted', async () => {
        const s = startupScript();
        await store.insertStartupScript(s, 100);
        const m = machine({ startupScript: { scriptId: s.id, script: s.script, runOnce: s.runOnce } });
        await store.insertMachine(m);
        await store.deleteStartupScript(s.id);
        assertSameMachine(await store.getMachine(m.id), m);
      });
    });

    describe('machine events', () => {
      const eventIds = (es: MachineEventRecord[]): string[] => es.map((e) => e.id);

      it('insert, get and update round-trip every field', async () => {
        const e = machineEvent({ name: 'restart' });
        await store.insertMachineEvent(e);
        assert.deepStrictEqual(await store.getMachineEvent(e.id), e);
        const done = { ...e, state: 'error' as const, error: 'runc: "failed" — é', startedAt: T0 + 1, finishedAt: T0 + 2 };
        await store.updateMachineEvent(done);
        assert.deepStrictEqual(await store.getMachineEvent(e.id), done);
        assert.equal(await store.getMachineEvent('mev_missing'), null);
      });

      it('a startup-script event keeps its run (process, exit code, output) through insert and update', async () => {
        const e = machineEvent({ name: 'startup-script', state: 'in progress', startedAt: T0, startupScript: { pid: 42, exitCode: null, output: '', outputBytes: 0 } });
        await store.insertMachineEvent(e);
        assert.deepStrictEqual(await store.getMachineEvent(e.id), e);
        const ended = { ...e, state: 'error' as const, error: 'exit code 3', finishedAt: T0 + 5, startupScript: { pid: 42, exitCode: 3, output: 'out ✓\nerr "x"\n', outputBytes: 9000 } };
        await store.updateMachineEvent(ended);
        assert.deepStrictEqual(await store.getMachineEvent(e.id), ended);
      });

      it('lists only the events of one name when asked', async () => {
        const create = machineEvent({ machineId: 'mch_1', createdAt: T0 + 1 });
        const run1 = machineEvent({ machineId: 'mch_1', name: 'startup-script', createdAt: T0 + 2 });
        const run2 = machineEvent({ machineId: 'mch_2', name: 'startup-script', createdAt: T0 + 3 });
        for (const e of [create, run1, run2]) await store.insertMachineEvent(e);
        assert.deepStrictEqual(eventIds(await store.listMachineEvents({ teamId: 'team_a', order: 'asc', name: 'startup-script' })), [run1.id, run2.id]);
        assert.deepStrictEqual(eventIds(await store.listMachineEvents({ teamId: 'team_a', order: 'asc', machineId: 'mch_1', name: 'startup-script', limit: 1 })), [run1.id]);
        assert.deepStrictEqual(await store.listMachineEvents({ teamId: 'team_a', order: 'asc', machineId: 'mch_1', name: 'restart' }), []);
      });

      it('a duplicate event id is refused', async () => {
        const e = machineEvent();
        await store.insertMachineEvent(e);
        await assert.rejects(store.insertMachineEvent({ ...e, name: 'stop' }));
        assert.equal((await store.getMachineEvent(e.id))?.name, 'create');
      });

      it('lists one team\'s events in either order, ties broken by id, optionally of one machine', async () => {
        const a = machineEvent({ createdAt: T0 + 1, machineId: 'mch_1' });
        const b = machineEvent({ createdAt: T0 + 2, machineId: 'mch_2' });
        const c = machineEvent({ createdAt: T0 + 2, machineId: 'mch_1' });
        const other = machineEvent({ createdAt: T0 + 3, teamId: 'team_b', machineId: 'mch_1' });
        for (const e of [c, other, a, b]) await store.insertMachineEvent(e);
        assert.deepStrictEqual(eventIds(await store.listMachineEvents({ teamId: 'team_a', order: 'asc' })), [a.id, b.id, c.id]);
        assert.deepStrictEqual(eventIds(await store.listMachineEvents({ teamId: 'team_a', order: 'desc' })), [c.id, b.id, a.id]);
        assert.deepStrictEqual(eventIds(await store.listMachineEvents({ teamId: 'team_a', order: 'desc', machineId: 'mch_1' })), [c.id, a.id]);
        assert.deepStrictEqual(await store.listMachineEvents({ teamId: 'team_a', order: 'asc', machineId: 'mch_none' }), []);
        assert.deepStrictEqual((await store.listMachineEvents({ teamId: 'team_a', order: 'asc', limit: 1 }))[0], a);
      });

      it('after and limit page without repeats or gaps, in both orders', async () => {
        const es = [3, 1, 2, 2, 2, 5, 4].map((d) => machineEvent({ createdAt: T0 + d }));
        for (const e of es) await store.insertMachineEvent(e);
        for (const order of ['asc', 'desc'] as const) {
          const all = eventIds(await store.listMachineEvents({ teamId: 'team_a', order }));
          const seen: string[] = [];
          let after: { createdAt: number; id: string } | undefined;
          for (;;) {
            const page = await store.listMachineEvents({ teamId: 'team_a', order, after, limit: 2 });
            if (page.length === 0) break;
            seen.push(...eventIds(page));
            const last = page[page.length - 1]!;
            after = { createdAt: last.createdAt, id: last.id };
          }
          assert.deepStrictEqual(seen, all, order);
          assert.equal(seen.length, es.length);
        }
      });

      it('failUnfinishedMachineEvents finishes new and in-progress events as errors, and nothing else', async () => {
        const fresh = machineEvent({ state: 'new' });
        const running = machineEvent({ state: 'in progress', startedAt: T0 + 1 });
        const done = machineEvent({ state: 'done', startedAt: T0 + 1, finishedAt: T0 + 2 });
        for (const e of [fresh, running, done]) await store.insertMachineEvent(e);
        assert.equal(await store.failUnfinishedMachineEvents('server stopped', T0 + 9), 2);
        assert.deepStrictEqual(await store.getMachineEvent(fresh.id), { ...fresh, state: 'error', error: 'server stopped', startedAt: T0 + 9, finishedAt: T0 + 9 });
        assert.deepStrictEqual(await store.getMachineEvent(running.id), { ...running, state: 'error', error: 'server stopped', finishedAt: T0 + 9 });
        assert.deepStrictEqual(await store.getMachineEvent(done.id), done);
        assert.equal(await store.failUnfinishedMachineEvents('again', T0 + 10), 0);
      });

      it('failUnfinishedMachineEvents of one host leaves the events of machines another host holds', async () => {
        const [mine, theirs, unhosted] = await insertAll([machine({ hostId: 'host-a' }), machine({ hostId: 'host-b' }), machine({ hostId: null })]);
        const es = [mine!, theirs!, unhosted!].map((m) => machineEvent({ machineId: m.id, state: 'in progress', startedAt: T0 }));
        const orphan = machineEvent({ machineId: 'mch_norecord', state: 'new' });
        for (const e of [...es, orphan]) await store.insertMachineEvent(e);
        const states = async () => Promise.all([...es, orphan].map(async (e) => (await store.getMachineEvent(e.id))?.state));
        assert.equal(await store.failUnfinishedMachineEvents('host-c lost', T0 + 4, { hostId: 'host-c', unhosted: false }), 0);
        assert.equal(await store.failUnfinishedMachineEvents('host-a restarted', T0 + 5, { hostId: 'host-a', unhosted: true }), 3);
        assert.deepStrictEqual(await states(), ['error', 'in progress', 'error', 'error']);
        assert.equal(await store.failUnfinishedMachineEvents('host-b lost', T0 + 6, { hostId: 'host-b', unhosted: false }), 1);
        assert.deepStrictEqual(await states(), ['error', 'error', 'error', 'error']);
      });

      it('purgeDestroyed drops the events of purged machines and keeps the others', async () => {
        const gone = machine({ status: 'destroyed', destroyedAt: T0 });
        const live = machine();
        await insertAll([gone, live]);
        const eGone = machineEvent({ machineId: gone.id, name: 'delete' });
        const eLive = machineEvent({ machineId: live.id });
        for (const e of [eGone, eLive]) await store.insertMachineEvent(e);
        assert.equal(await store.purgeDestroyed(T0), 1);
        assert.equal(await store.getMachineEvent(eGone.id), null);
        assert.deepStrictEqual(await store.getMachineEvent(eLive.id), eLive);
      });
    });
  });
}
