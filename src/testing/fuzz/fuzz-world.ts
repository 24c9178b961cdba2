/**
 * The small real world the fuzzer aims at: two teams with keys and a user, a running
 * machine, a volume and a startup script per team, a snapshot when the host takes them; plus a listing of
 * everything a request could change, and the clean-up of what accepted requests made.
 */
import { waitFor, type TestResponse, type TestServer } from '../harness.js';

/** Who sends a request. */
export type Caller = 'admin' | 'A' | 'B' | 'wrong' | 'none' | 'malformed';

/** Ids and keys of the world, by kind. */
export interface World {
  keys: Record<'A' | 'B', string>;
  teams: Record<'A' | 'B', string>;
  userA: string;
  machines: Record<'A' | 'B', string>;
  volumes: Record<'A' | 'B', string>;
  startupScripts: Record<'A' | 'B', string>;
  snapshotA: string | null;
  /** A key made to be revoked: the only real key id DELETE /v1/admin/keys ever sees. */
  spareKeyId: string;
  paperspaceBase: string;
}

/** Everything a rejected request must leave as it was, as comparable JSON. */
export type StateListing = Record<string, unknown>;

/** Throw unless the answer has the status; the world must be built for the fuzz to mean anything. */
function expect(r: TestResponse, status: number, what: string): any {
  if (r.status !== status) throw new Error(`fuzz world: ${what} answered ${r.status}: ${r.text.slice(0, 300)}`);
  return r.body;
}

const MACHINE_BODY = { template: 'base', config: { vcpus: 1, memory_mb: 128, disk_mb: 64 }, timeout_ms: 86_400_000, metadata: { fuzz: 'world' } };

/** Create a running base machine for `key`. */
async function newMachine(t: TestServer, key: string): Promise<string> {
  return expect(await t.request('POST', '/v1/machines', { key, body: MACHINE_BODY }), 201, 'create machine').id;
}

/** Build the world on a fresh server. */
export async function buildWorld(t: TestServer): Promise<World> {
  const a = await t.newTeamKey('fuzz-a');
  const b = await t.newTeamKey('fuzz-b');
  const user = expect(await t.request('POST', `/v1/admin/teams/${a.teamId}/users`, { body: { email: 'fuzz@example.test', role: 'member' } }), 201, 'add user');
  const spare = expect(await t.request('POST', `/v1/admin/teams/${b.teamId}/keys`, { body: { name: 'spare' } }), 201, 'spare key');
  const machines = { A: await newMachine(t, a.key), B: await newMachine(t, b.key) };
  const volumes = {
    A: expect(await t.request('POST', '/v1/volumes', { key: a.key, body: { name: 'fuzz-a', size_mb: 16 } }), 201, 'volume A').id,
    B: expect(await t.request('POST', '/v1/volumes', { key: b.key, body: { name: 'fuzz-b', size_mb: 16 } }), 201, 'volume B').id,
  };
  const startupScripts = {
    A: expect(await t.request('POST', '/v1/startup-scripts', { key: a.key, body: { name: 'fuzz-a', script: 'true' } }), 201, 'startup script A').id,
    B: expect(await t.request('POST', '/v1/startup-scripts', { key: b.key, body: { name: 'fuzz-b', script: 'true' } }), 201, 'startup script B').id,
  };
  const snap = await t.request('POST', `/v1/machines/${machines.A}/snapshots`, { key: a.key });
  return {
    keys: { A: a.key, B: b.key },
    teams: { A: a.teamId, B: b.teamId },
    userA: user.id,
    machines,
    volumes,
    startupScripts,
    snapshotA: snap.status === 201 ? snap.body.id : null,
    spareKeyId: spare.id,
    paperspaceBase: t.server.settings.paperspace.basePath,
  };
}

/** The Authorization header value of a caller (undefined: none). */
export function authorization(world: World, caller: Caller): string | undefined {
  switch (caller) {
    case 'admin':
      return undefined; // the harness default: the admin key
    case 'A':
    case 'B':
      return world.keys[caller];
    case 'wrong':
      return 'hk_this-key-was-never-issued-0000000000';
    case 'none':
    case 'malformed':
      return undefined;
  }
}

const UNKNOWN: Record<string, string> = {
  machine: 'mch_0000000000000000',
  snapshot: 'snap_0000000000000000',
  volume: 'vol_0000000000000000',
  startupScript: 'scr_0000000000000000',
  network: 'net_0000000000000000',
  team: 'team_000000000000',
  user: 'usr_000000000000',
  key: 'key_000000000000',
  template: 'no-such-template',
  event: 'mev_0000000000000000',
};

/** Real and unknown values for a path parameter: the caller's, another team's, nobody's. */
export function pathIds(world: World, path: string, name: string): string[] {
  if (name === 'pid') return ['1', '2', '99999', '0', '-1', '4294967296'];
  if (name === 'build_id') return ['bld_0000000000000000', '1'];
  if (name === 'userId') return [world.userA, UNKNOWN.user!];
  if (path.startsWith('/v1/snapshots')) return [world.snapshotA ?? UNKNOWN.snapshot!, UNKNOWN.snapshot!];
  if (path.startsWith('/v1/volumes')) return [world.volumes.A, world.volumes.B, UNKNOWN.volume!];
  if (path.startsWith('/v1/startup-scripts')) return [world.startupScripts.A, world.startupScripts.B, UNKNOWN.startupScript!];
  if (path.startsWith('/v1/networks')) return [UNKNOWN.network!];
  if (path.startsWith('/v1/templates') || path.startsWith('/v1/warm-pools') || path.startsWith('/templates')) return ['base', 'desktop', UNKNOWN.template!];
  if (path.startsWith('/v1/admin/teams')) return [world.teams.A, world.teams.B, UNKNOWN.team!];
  if (path.startsWith('/v1/admin/users')) return [world.userA, UNKNOWN.user!];
  // Only the spare key is ever revoked: the world's own keys must keep working.
  if (path.startsWith('/v1/admin/keys')) return [world.spareKeyId, UNKNOWN.key!];
  if (path.includes('machine-events')) return [UNKNOWN.event!];
  return [world.machines.A, world.machines.B, UNKNOWN.machine!];
}

/** The items of a listing: a bare array, or the one array field of a page object. */
function itemsOf(body: unknown): Record<string, unknown>[] {
  if (Array.isArray(body)) return body as Record<string, unknown>[];
  if (body !== null && typeof body === 'object') {
    const arr = Object.values(body).find((v) => Array.isArray(v));
    if (arr) return arr as Record<string, unknown>[];
  }
  return [];
}

/** A projection of each listed item that only a real change moves (no clocks, no counters). */
function project(body: unknown, keys: string[]): unknown {
  return itemsOf(body)
    .map((it) => Object.fromEntries(keys.map((k) => [k, it[k]])))
    .sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)));
}

/** List everything a request could change, as the admin and as each team. */
export async function listState(t: TestServer, world: World): Promise<StateListing> {
  const get = async (path: string, key?: string): Promise<unknown> => {
    const r = await t.request('GET', path, { key });
    if (r.status !== 200) throw new Error(`fuzz listing ${path}: ${r.status} ${r.text.slice(0, 200)}`);
    return r.body;
  };
  const machineKeys = ['id', 'status', 'config', 'template', 'metadata', 'timeout_ms', 'timeout_action', 'inactivity_timeout_ms', 'auto_delete_after_ms', 'ephemeral', 'public'];
  const state: StateListing = {};
  for (const who of ['A', 'B'] as const) {
    const key = world.keys[who];
    state[`machines ${who}`] = project(await get('/v1/machines?state=creating,running,paused,error', key), machineKeys);
    state[`volumes ${who}`] = project(await get('/v1/volumes', key), ['id', 'name', 'size_mb', 'attachments']);
    state[`startup scripts ${who}`] = project(await get('/v1/startup-scripts', key), ['id', 'name', 'script', 'run_once']);
    state[`networks ${who}`] = project(await get('/v1/networks', key), ['id', 'name', 'machines']);
    state[`snapshots ${who}`] = project(await get('/v1/snapshots', key), ['id', 'machine_id']);
    state[`templates ${who}`] = project(await get('/v1/templates?limit=100', key), ['name', 'version', 'status']);
    state[`keys ${who}`] = project(await get(`/v1/admin/teams/${world.teams[who]}/keys`), ['id', 'name', 'revoked_at']);
    state[`users ${who}`] = project(await get(`/v1/admin/teams/${world.teams[who]}/users`), ['id', 'email', 'role']);
    state[`quotas ${who}`] = (await get(`/v1/admin/teams/${world.teams[who]}/quotas`) as { quotas: unknown }).quotas;
    state[`accessors ${who}`] = await get(`${world.paperspaceBase}/machines/${world.machines[who]}/accessors`, key);
  }
  state.teams = project(await get('/v1/admin/teams'), ['id', 'name']);
  state['warm pools'] = project(await get('/v1/warm-pools'), ['name', 'template', 'config', 'size']);
  return state;
}

/**
 * Undo what accepted requests made, so the world stays tiny: lift the teams' quotas; destroy
 * machines, volumes, networks, startup scripts, snapshots, templates and warm pools that are
 * not the world's; bring back a world machine the fuzzer destroyed or paused.
 */
export async function restoreWorld(t: TestServer, world: World): Promise<void> {
  for (const pool of itemsOf((await t.request('GET', '/v1/warm-pools')).body) as { name: string }[]) {
    await t.request('DELETE', `/v1/warm-pools/${encodeURIComponent(pool.name)}`);
  }
  for (const who of ['A', 'B'] as const) {
    const key = world.keys[who];
    // An accepted PUT …/quotas may have set a ceiling of 0 that would refuse the world's own machine.
    expect(await t.request('PUT', `/v1/admin/teams/${world.teams[who]}/quotas`, { body: {} }), 200, 'quotas');
    const listed = itemsOf((await t.request('GET', '/v1/machines?state=creating,running,paused,error', { key })).body) as { id: string; status: string }[];
    for (const m of listed) {
      if (m.id === world.machines[who] && m.status === 'paused') await t.request('POST', `/v1/machines/${m.id}/resume`, { key });
      if (m.id !== world.machines[who]) await t.request('DELETE', `/v1/machines/${m.id}`, { key });
    }
    const own = listed.find((m) => m.id === world.machines[who]);
    // An accepted POST …/timeout may have set a deadline that would fire during a later batch.
    if (own !== undefined && own.status !== 'error') await t.request('POST', `/v1/machines/${own.id}/timeout`, { key, body: { timeout_ms: 86_400_000 } });
    if (own === undefined || own.status === 'error') {
      if (own) await t.request('DELETE', `/v1/machines/${own.id}`, { key });
      world.machines[who] = await newMachine(t, key);
    }
    const snaps = itemsOf((await t.request('GET', '/v1/snapshots', { key })).body) as { id: string }[];
    for (const s of snaps) if (s.id !== world.snapshotA) await t.request('DELETE', `/v1/snapshots/${s.id}`, { key });
    const vols = itemsOf((await t.request('GET', '/v1/volumes', { key })).body) as { id: string }[];
    for (const v of vols) if (v.id !== world.volumes[who]) await t.request('DELETE', `/v1/volumes/${v.id}`, { key });
    const scripts = itemsOf((await t.request('GET', '/v1/startup-scripts', { key })).body) as { id: string }[];
    for (const sc of scripts) if (sc.id !== world.startupScripts[who]) await t.request('DELETE', `/v1/startup-scripts/${sc.id}`, { key });
    // The fuzzer may have deleted the world's own: make it again.
    if (!scripts.some((sc) => sc.id === world.startupScripts[who])) {
      world.startupScripts[who] = expect(await t.request('POST', '/v1/startup-scripts', { key, body: { name: `fuzz-${who}`, script: 'true' } }), 201, 'startup script').id;
    }
    // Machines are destroyed above, so every network is free to go.
    const nets = itemsOf((await t.request('GET', '/v1/networks', { key })).body) as { id: string }[];
    for (const n of nets) await t.request('DELETE', `/v1/networks/${n.id}`, { key });
    // A build still running would finish inside a later batch, and cannot be deleted yet: wait for it.
    const templates = await waitFor(async () => {
      const listed = itemsOf((await t.request('GET', '/v1/templates?limit=100', { key })).body) as { name: string; scope: string; status: string }[];
      return listed.some((tpl) => tpl.status === 'building') ? null : listed;
    }, 180_000, 200) ?? [];
    for (const tpl of templates) if (tpl.scope === 'team') await t.request('DELETE', `/v1/templates/${encodeURIComponent(tpl.name)}`, { key });
  }
  if (world.snapshotA !== null) {
    const s = await t.request('GET', `/v1/snapshots/${world.snapshotA}`, { key: world.keys.A });
    if (s.status === 404) world.snapshotA = null;
  }
}
