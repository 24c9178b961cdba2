/**
 * GET /machines of the Paperspace-style API over many machines: every order, direction,
 * filter and page size against the listing's rule computed here from each machine as GET
 * /machines/{id} shows it, the nextPage tokens in the format clients already hold, and a
 * member's narrower view. The records are written to the store directly (no containers):
 * the listing reads records, and what it shows of each is what GET shows.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { newMachineRecord, type MachineRecord, type MachineStatus } from '../../domain/machine.js';
import type { Caller } from '../../domain/team.js';
import { ServerSecret } from '../../service/secrets.js';
import { ADMIN_KEY, TestServer } from '../../testing/harness.js';
import { MachinePageSchema } from './schemas.js';

type Json = Record<string, any>;
const BASE = '/paperspace/v1';
const T0 = Date.UTC(2026, 0, 2, 3, 4, 5, 6);

/** JavaScript's order, as the listing promises: keys (numbers numerically, strings by code unit), then ids. */
function compare(a: [string | number, string], b: [string | number, string]): number {
  if (a[0] !== b[0]) {
    if (typeof a[0] === 'number' && typeof b[0] === 'number') return a[0] - b[0];
    return String(a[0]) < String(b[0]) ? -1 : 1;
  }
  return a[1] === b[1] ? 0 : a[1] < b[1] ? -1 : 1;
}

describe('Paperspace-style machine list over many machines', () => {
  let t: TestServer;
  let teamId: string;
  let key: string;
  let memberKey: string;
  let memberId: string;
  let secret: ServerSecret;
  const records: MachineRecord[] = [];
  /** Each machine as GET /machines/{id} shows it to the team key. */
  const shown = new Map<string, Json>();
  /** Ids of the machines the member reaches: its own, and those it is an active accessor of. */
  const memberSees = new Set<string>();
  let releaseOperations!: () => void;

  const get = async (query: string, k = key): Promise<Json> => {
    const r = await t.request('GET', `${BASE}/machines${query ? `?${query}` : ''}`, { key: k });
    assert.equal(r.status, 200, `${query}: ${r.text}`);
    MachinePageSchema.parse(r.body);
    return r.body;
  };

  before(async () => {
    t = await TestServer.start();
    ({ teamId, key } = await t.newTeamKey('many'));
    const user = await t.request('POST', `/v1/admin/teams/${teamId}/users`, { body: { email: 'mia@example.test', role: 'member' }, key: ADMIN_KEY });
    assert.equal(user.status, 201, user.text);
    memberId = user.body.id;
    memberKey = (await t.request('POST', `/v1/admin/users/${memberId}/keys`, { body: { name: 'mia' }, key: ADMIN_KEY })).body.key;
    const other = await t.newTeamKey('elsewhere');
    secret = await ServerSecret.load(t.server.store);

    // Ties on every key, unnamed machines (named by their id), names in several scripts
    // ('😀' and 'Ａ' order differently by UTF-8 bytes and by UTF-16 code units), the four
    // sizes of C1, C2, C3 and none (custom), and a template that has no desktop and one
    // that no longer exists (both LinuxHeadless).
    // The lengths are prime to each other, so every name, size and template meets every status.
    const names = [null, 'twin', 'alpha', '😀', 'twin', 'Ａ', 'é', null, 'Zed', 'twin', 'b', 'alpha', 'Ｂ'];
    const sizes = [{ vcpus: 1, memory_mb: 512 }, { vcpus: 1, memory_mb: 1024 }, { vcpus: 2, memory_mb: 2048 }, { vcpus: 3, memory_mb: 3000 }, { vcpus: 1, memory_mb: 512 }, { vcpus: 2, memory_mb: 2048 }, { vcpus: 3, memory_mb: 3000 }];
    const templates = ['base', 'base', 'gone', 'desktop', 'base'];
    const statuses: MachineStatus[] = ['running', 'paused', 'error', 'creating', 'running', 'destroyed'];
    for (let i = 0; i < 40; i++) {
      const m = newMachineRecord({
        id: `mch_list${String(i).padStart(12, '0')}`,
        teamId: i === 39 ? other.teamId : teamId,
        template: templates[i % templates.length]!,
        createdAt: T0 + (i % 9) * 1000,
        status: statuses[i % statuses.length]!,
        config: { ...sizes[i % sizes.length]!, disk_mb: 1024 },
        timeoutMs: 300_000,
        timeoutAt: T0 + 300_000,
        outbound: { mode: 'allow' },
        name: names[i % names.length]!,
        createdBy: i % 4 === 0 ? memberId : null,
      });
      records.push(m);
      await t.server.store.insertMachine(m);
      if (i % 5 === 2) await t.server.store.putAccessor({ machineId: m.id, userId: memberId, createdAt: T0, deletedAt: i % 10 === 7 ? T0 + 1 : null });
      if (m.teamId === teamId && m.status !== 'destroyed' && (i % 4 === 0 || (i % 5 === 2 && i % 10 !== 7))) memberSees.add(m.id);
    }
    // Operations in flight refine the state: a running machine stopping, a paused one starting.
    const team = await t.server.store.getTeam(teamId);
    const caller: Caller = { team: team!, keyId: 'key_test', user: null, scope: { readOnly: false, machineId: null } };
    const gate = new Promise<void>((resolve) => (releaseOperations = resolve));
    await t.server.operations.run(caller, records[0]!.id, 'stop', () => gate);
    await t.server.operations.run(caller, records[1]!.id, 'start', () => gate);
    for (const m of records.filter((r) => r.teamId === teamId && r.status !== 'destroyed')) {
      const r = await t.request('GET', `${BASE}/machines/${m.id}`, { key });
      assert.equal(r.status, 200, r.text);
      shown.set(m.id, r.body);
    }
    assert.equal(shown.get(records[0]!.id)!.state, 'stopping');
    assert.equal(shown.get(records[1]!.id)!.state, 'starting');
  });
  after(async () => {
    releaseOperations();
    await t.server.operations.drain();
    // No containers stand behind these records: destroyed, they are nothing to clean up.
    for (const m of records) await t.server.store.updateMachine({ ...m, status: 'destroyed', destroyedAt: T0 });
    await t.dispose();
  });

  /** The ids the listing must return for these parameters, over the machines in `visible`. */
  function expected(p: Record<string, string>, visible: (id: string) => boolean = () => true): { ids: string[]; keys: Map<string, string | number> } {
    const orderBy = p.orderBy ?? 'dtCreated';
    const sign = (p.order ?? 'desc') === 'asc' ? 1 : -1;
    const keys = new Map<string, string | number>();
    const rows = [...shown.values()]
      .filter((m) => visible(m.id))
      .filter((m) => (p.name === undefined || m.name === p.name) && (p.region === undefined || m.region === p.region))
      .filter((m) => (p.agentType === undefined || m.agentType === p.agentType) && (p.machineType === undefined || m.machineType === p.machineType))
      .map((m) => {
        const k = orderBy === 'dtCreated' ? Date.parse(m.dtCreated) : orderBy === 'name' ? m.name : m.state;
        keys.set(m.id, k);
        return [k, m.id] as [string | number, string];
      })
      .sort((a, b) => sign * compare(a, b));
    return { ids: rows.map((r) => r[1]), keys };
  }

  /** The nextPage a client holds for a position: base64url of [key, id], signed for the listing, team and filters. */
  function token(p: Record<string, string>, pos: [string | number, string]): string {
    const scope = JSON.stringify([p.orderBy ?? 'dtCreated', p.order ?? 'desc', p.name ?? null, p.region ?? null, p.agentType ?? null, p.machineType ?? null]);
    const body = Buffer.from(JSON.stringify(pos)).toString('base64url');
    return `${body}.${secret.sign('paperspace-machines', `${teamId}\0${scope}\0${body}`)}`;
  }

  /** Walk every page and check each one: items, hasMore and the token. */
  async function walk(p: Record<string, string>, limit: number, want: { ids: string[]; keys: Map<string, string | number> }, k = key): Promise<void> {
    const what = JSON.stringify({ ...p, limit });
    let afterToken: string | undefined;
    for (let start = 0; ; start += limit) {
      const query = new URLSearchParams({ ...p, limit: String(limit), ...(afterToken ? { after: afterToken } : {}) }).toString();
      const page = await get(query, k);
      const slice = want.ids.slice(start, start + limit);
      assert.deepEqual(page.items.map((m: Json) => m.id), slice, `${what} from ${start}`);
      for (const m of page.items) assert.deepEqual(m, shown.get(m.id), `${what}: ${m.id} as GET shows it`);
      const more = start + limit < want.ids.length;
      assert.equal(page.hasMore, more, `${what} hasMore from ${start}`);
      if (!more) {
        assert.equal(page.nextPage, null, what);
        return;
      }
      const last = slice[slice.length - 1]!;
      assert.equal(page.nextPage, token(p, [want.keys.get(last)!, last]), `${what} nextPage from ${start}`);
      afterToken = page.nextPage;
    }
  }

  it('every order, direction and filter: the items in order, hasMore and nextPage of each page', async () => {
    const desktop = [...shown.values()].some((m) => m.agentType === 'LinuxDesktop');
    const filters: Record<string, string>[] = [
      {},
      { name: 'twin' },
      { name: records[0]!.id },
      { name: '😀' },
      { name: 'nobody' },
      { machineType: 'C1' },
      { machineType: 'C3' },
      { machineType: 'custom' },
      { machineType: 'C5' },
      { agentType: 'LinuxHeadless' },
      { agentType: 'LinuxDesktop' },
      { agentType: 'WindowsDesktop' },
      { region: 'local' },
      { region: 'ny2' },
      { name: 'twin', machineType: 'C1', agentType: 'LinuxHeadless', region: 'local' },
      { name: 'alpha', agentType: 'LinuxHeadless' },
    ];
    let nonEmpty = 0;
    for (const orderBy of [undefined, 'dtCreated', 'name', 'state']) {
      for (const order of [undefined, 'asc', 'desc']) {
        for (const f of filters) {
          const p: Record<string, string> = { ...f, ...(orderBy ? { orderBy } : {}), ...(order ? { order } : {}) };
          const want = expected(p);
          if (want.ids.length) nonEmpty++;
          for (const limit of [2, 7, 120]) await walk(p, limit, want);
        }
      }
    }
    assert.ok(nonEmpty > 100, `the cases select machines (${nonEmpty})`);
    // Without the desktop template installed its machines are LinuxHeadless, and the desktop filter is empty.
    assert.equal(expected({ agentType: 'LinuxDesktop' }).ids.length > 0, desktop);
  });

  it('the default page is 20 machines, newest first', async () => {
    const page = await get('');
    assert.deepEqual(page.items.map((m: Json) => m.id), expected({}).ids.slice(0, 20));
    assert.equal(page.hasMore, true);
  });

  it('a member sees only its own machines and those it is an active accessor of, in the same orders', async () => {
    assert.ok(memberSees.size >= 5);
    for (const p of [{}, { orderBy: 'name', order: 'asc' }, { orderBy: 'state' }, { machineType: 'C1', orderBy: 'name' }] as Record<string, string>[]) {
      const want = expected(p, (id) => memberSees.has(id));
      for (const limit of [1, 3]) await walk(p, limit, want, memberKey);
    }
  });

  it('a nextPage is bound to its filters and order: another combination refuses it', async () => {
    const page = await get('limit=2&orderBy=name');
    for (const q of ['limit=2&orderBy=state', 'limit=2&orderBy=name&order=asc', 'limit=2&orderBy=name&name=twin']) {
      const r = await t.request('GET', `${BASE}/machines?${q}&after=${encodeURIComponent(page.nextPage)}`, { key });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.body.code, 'INVALID_NEXT_TOKEN');
    }
    // Signed for the right filters but with a key of the wrong type for the order: refused, not compared.
    for (const [p, pos] of [[{}, ['alpha', records[0]!.id]], [{ orderBy: 'name' }, [T0, records[0]!.id]]] as [Record<string, string>, [string | number, string]][]) {
      const q = new URLSearchParams({ ...p, after: token(p, pos) }).toString();
      const r = await t.request('GET', `${BASE}/machines?${q}`, { key });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.body.code, 'INVALID_NEXT_TOKEN');
    }
    const good = new URLSearchParams({ orderBy: 'name', after: token({ orderBy: 'name' }, ['alpha', '']) }).toString();
    assert.equal((await t.request('GET', `${BASE}/machines?${good}`, { key })).status, 200, 'the same helper signs a token that is accepted');
  });
});
