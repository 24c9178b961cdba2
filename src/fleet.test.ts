/**
 * A fleet over one real PostgreSQL (issue 15): three hosts and two API servers, each its own
 * server with its own data dir, runc state and machine subnet. Each host has a network of its
 * own: host A runs in this process, in this network namespace; B and C are processes, each in a
 * network namespace the test makes (its own bridge, machine links, iptables rules), reached over
 * a bridge of this namespace. The API servers P and Q (HANGAR_HOST_CAPACITY=0: they run no
 * machine, as an unprivileged user without runc) are processes on loopback addresses. B, C, P
 * and Q can be SIGKILLed. All hosts keep snapshots in one shared directory. Every request of
 * the test goes through P or Q. Shows: creates spread over the three hosts; exec, files, envd,
 * a terminal (WebSocket) and ingress reach a machine on any host through either API server; a
 * template build is placed on a host and its machines follow it; a draining host moves its
 * paused machine away; a killed API server loses nothing; a killed host is marked down within
 * the bound, its running machines turn error with the reason and can be deleted, and its paused
 * machine resumes on another host (in another network namespace) with its processes; restarted
 * servers clean up after themselves, each in its own namespace.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { ServerProcess } from './testing/chaos/chaos-runner.js';
import { ADMIN_KEY, leftovers, networkLeftovers, TestServer, waitFor } from './testing/harness.js';
import { makeHostNamespaces, type HostNamespaces } from './testing/host-netns.js';
import { startPostgres, type PostgresServer } from './testing/postgres-server.js';

const DIST = join(dirname(fileURLToPath(import.meta.url)), '..');
const HEARTBEAT_MS = 200;
/** The unprivileged user the API servers run as (the Kubernetes manifests' runAsUser). */
const API_UID = 10001;
const DOWN_AFTER_MS = 1500;
const fleetEnv = (hostId: string, databaseUrl: string, snapshotsDir: string, capacity: number): Record<string, string> => ({
  HANGAR_DATABASE_URL: databaseUrl,
  HANGAR_SNAPSHOTS_DIR: snapshotsDir,
  HANGAR_HOST_ID: hostId,
  HANGAR_HOST_CAPACITY: String(capacity),
  HANGAR_HEARTBEAT_MS: String(HEARTBEAT_MS),
  HANGAR_HOST_DOWN_AFTER_MS: String(DOWN_AFTER_MS),
});

type Json = Record<string, any>;

async function call(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: Json; text: string }> {
  const headers: Record<string, string> = { authorization: `Bearer ${ADMIN_KEY}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let parsed: Json = {};
  try {
    parsed = text ? (JSON.parse(text) as Json) : {};
  } catch {
    parsed = {};
  }
  return { status: res.status, body: parsed, text };
}

/** Open a terminal through `base`, type a command, and resolve with the screen once `want` shows. */
function terminal(base: string, machine: string, command: string, want: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/v1/machines/${machine}/pty`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    let screen = '';
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`terminal: no ${want} in ${JSON.stringify(screen)}`));
    }, 20_000);
    ws.on('message', (data: Buffer, binary: boolean) => {
      if (!binary) return;
      screen += data.toString('utf8');
      if (want.test(screen)) {
        clearTimeout(timer);
        ws.close();
        resolve(screen);
      }
    });
    ws.once('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      reject(new Error(`terminal refused: ${res.statusCode}`));
    });
    ws.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    ws.once('open', () => ws.send(Buffer.from(`${command}\n`), { binary: true }));
  });
}

/** A server process of the fleet, with its data dir kept for the clean-up. */
interface Proc {
  id: string;
  dir: string;
  capacity: number;
  server: ServerProcess;
  /** The command prefix that enters its network namespace (a host of its own network), if any. */
  enter?: string[];
}

describe('a fleet of three hosts and two API servers over one PostgreSQL', () => {
  let pg: PostgresServer;
  let databaseUrl: string;
  let shared: string;
  let a: TestServer | undefined;
  let nets: HostNamespaces | undefined;
  const procs: Proc[] = [];
  const proc = (id: string): ServerProcess => procs.find((p) => p.id === id)!.server;

  before(async () => {
    pg = await startPostgres();
    // The API servers' user reaches the database's socket (the cluster's own directory below stays closed).
    await chmod(pg.socketDir, 0o711);
    databaseUrl = pg.url(await pg.createDatabase());
    // The snapshots directory every server keeps snapshots in (shared storage, on one machine).
    shared = await mkdtemp(join(tmpdir(), 'hangar-fleet-snapshots-'));
    // B and C each in a network namespace of its own; A here, on this namespace's end of their bridge (so they reach it too).
    nets = await makeHostNamespaces(['host-b', 'host-c']);
    a = await TestServer.start({ env: { ...fleetEnv('host-a', databaseUrl, shared, 10), HANGAR_LISTEN: `${nets.gateway}:0` } });
    const others: Array<[string, number, string]> = [['host-b', 10, nets.address('host-b')], ['host-c', 10, nets.address('host-c')], ['api-p', 0, '127.0.0.4'], ['api-q', 0, '127.0.0.5']];
    for (const [id, capacity, address] of others) {
      const dir = await mkdtemp(join(tmpdir(), `hangar-fleet-${id}-`));
      // An API server runs no machine: it starts without runc or CRIU, as a user of no privilege at all.
      const api = capacity === 0;
      if (api) await chown(dir, API_UID, API_UID);
      const noRuntime: Record<string, string> = api ? { HANGAR_RUNC: '/nonexistent/runc', HANGAR_CRIU: '/nonexistent/criu' } : {};
      // Started as their roles: `main.js api` fixes the capacity at 0, `main.js agent` is a host (role.ts).
      const { HANGAR_HOST_CAPACITY: _fixedByRole, ...roleFree } = fleetEnv(id, databaseUrl, shared, capacity);
      const env: Record<string, string> = { ...(api ? roleFree : fleetEnv(id, databaseUrl, shared, capacity)), HANGAR_LISTEN: `${address}:0`, ...noRuntime, HANGAR_LOG_LEVEL: 'error' };
      const enter = api ? undefined : nets.enter(id);
      const server = new ServerProcess({ dataDir: dir, distDir: DIST, env, ...(api ? { runAs: API_UID, role: 'api' } : { enter, role: 'agent' }) });
      procs.push({ id, dir, capacity, server, enter });
    }
    await Promise.all(procs.map((p) => p.server.start()));
    // Every server has heard of every other once its heartbeats read them all.
    await waitFor(async () => {
      await a!.server.hosts.beat();
      return (await a!.server.store.listHosts()).filter((h) => h.state === 'up').length === 5;
    }, 10_000);
    await new Promise((r) => setTimeout(r, 3 * HEARTBEAT_MS));
  });

  after(async () => {
    try {
      for (const p of procs) await p.server.kill();
      // Each again on its data dir (a host in its own network namespace): it settles its machines, and is cleaned like any test server.
      for (const p of procs) {
        const env = fleetEnv(p.id, databaseUrl, shared, p.capacity);
        if (p.enter) {
          const r = spawnSync(p.enter[0]!, [...p.enter.slice(1), process.execPath, join(DIST, 'src/testing/dispose-host.js'), p.dir, JSON.stringify(env)], { encoding: 'utf8' });
          assert.equal(r.status, 0, `${p.id} was not cleaned: ${r.stderr}`);
        } else {
          const again = await TestServer.start({ dataDir: p.dir, env });
          await again.dispose();
        }
      }
      await a?.dispose();
    } finally {
      await pg?.stop();
      if (shared) await rm(shared, { recursive: true, force: true });
      if (nets) {
        await nets.close();
        assert.deepEqual(await nets.leftovers(), []);
      }
    }
  });

  it('spreads creates over the hosts, reaches every machine through either API server, and loses nothing to a killed server', async () => {
    const P = proc('api-p').url;
    const Q = proc('api-q').url;
    const store = a!.server.store;
    const hostOf = async (id: string): Promise<string | null> => (await store.getMachine(id))?.hostId ?? null;
    const count = async (): Promise<Record<string, number>> => Object.fromEntries((await call(P, 'GET', '/v1/admin/hosts')).body.items.map((h: Json) => [h.id, h.machines]));

    const hosts = await call(Q, 'GET', '/v1/admin/hosts');
    assert.equal(hosts.status, 200, hosts.text);
    assert.deepEqual(
      hosts.body.items.map((h: Json) => [h.id, h.state, h.capacity_machines]),
      [['api-p', 'up', 0], ['api-q', 'up', 0], ['host-a', 'up', 10], ['host-b', 'up', 10], ['host-c', 'up', 10]],
    );
    const stores = hosts.body.items.map((h: Json) => h.snapshot_store);
    assert.deepEqual(stores.slice(0, 2), [null, null], 'an API server keeps no snapshot');
    assert.equal(new Set(stores.slice(2)).size, 1, 'one snapshots directory for the three hosts');
    assert.match(stores[2], /^store_/);
    // The API servers made nothing on the host: no bridge, veth, namespace or rule, no cgroup, no runc state.
    for (const base of [P, Q]) {
      const info = await call(base, 'GET', '/v1/info');
      assert.match(info.body.runtime.version, /^not used/, info.text);
      assert.deepEqual(await leftovers(join(tmpdir(), 'no-such-dir'), info.body.runtime.instance_prefix), []);
    }

    // Six creates, through P and Q in turn: placement spreads them by free capacity, none on an API server.
    const made: Json[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await call(i % 2 ? Q : P, 'POST', '/v1/machines', { metadata: { i } });
      assert.equal(r.status, 201, r.text);
      made.push(r.body);
    }
    assert.deepEqual(await count(), { 'api-p': 0, 'api-q': 0, 'host-a': 2, 'host-b': 2, 'host-c': 2 });
    const on: Record<string, Json[]> = { 'host-a': [], 'host-b': [], 'host-c': [] };
    for (const m of made) on[(await hostOf(m.id))!]!.push(m);
    assert.deepEqual(on['host-a']!.map((m) => m.id).sort(), [...(await a!.server.runtime.list()).keys()].sort(), 'the store and host A agree on what A runs');
    // B and C run their machines on networks of their own: this namespace (A's) has none of their bridges, links or
    // rules (the machines' namespaces are files under /run/netns, seen from every network namespace).
    for (const id of ['host-b', 'host-c']) {
      const prefix = (await call(proc(id).url, 'GET', '/v1/info')).body.runtime.instance_prefix as string;
      assert.match(prefix, /^hangar-[0-9a-f]{8}$/);
      assert.deepEqual((await networkLeftovers(prefix)).filter((l) => !l.startsWith('netns ')), [], `${id}'s network is in this namespace`);
    }

    // The compute listing through an API server (which runs nothing) samples each machine on its host: pid, root filesystem, cgroups.
    const listing = await call(Q, 'GET', '/compute/machines');
    assert.equal(listing.status, 200, listing.text + proc('api-q').output);
    const dirOf: Record<string, string> = { 'host-a': a!.dataDir, ...Object.fromEntries(procs.map((p) => [p.id, p.dir])) };
    for (const m of made) {
      const item = listing.body.body.results.find((r: Json) => r.id === m.id);
      const on = (await hostOf(m.id))!;
      assert.equal(item.status, 'running');
      assert.ok(item.pid > 0, `${m.id} on ${on}: no pid`);
      assert.ok(item.rootfs.startsWith(dirOf[on]!), `${m.id} on ${on}: rootfs ${item.rootfs}`);
      assert.ok(item.stats.CgroupStats.pids_stats.current >= 1, `${m.id} on ${on}: no live sample`);
      assert.ok(item.stats.CgroupStats.memory_stats.usage.usage > 0, `${m.id} on ${on}: no memory in use`);
    }

    // Every machine answers through both API servers: exec, files (written through one, read through the other), envd.
    for (const m of made) {
      for (const [name, base] of [['P', P], ['Q', Q]] as const) {
        const r = await call(base, 'POST', `/v1/machines/${m.id}/exec`, { cmd: ['hostname'] });
        assert.equal(r.status, 200, `${name}: ${r.text}`);
        assert.equal(r.body.stdout.trim(), m.id);
      }
      const put = await fetch(`${Q}/v1/machines/${m.id}/files?path=/tmp/note`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/octet-stream' },
        body: `written through Q to ${m.id}`,
      });
      assert.equal(put.status, 200, await put.text());
      const got = await fetch(`${P}/v1/machines/${m.id}/files?path=/tmp/note`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
      assert.equal(await got.text(), `written through Q to ${m.id}`);
      const sbx = await fetch(`${P}/sandboxes/${m.id}`, { headers: { 'x-api-key': ADMIN_KEY } });
      assert.equal(sbx.status, 200);
      const { envdAccessToken } = (await sbx.json()) as { envdAccessToken: string };
      const file = await fetch(`${Q}/files?path=/tmp/note`, { headers: { 'e2b-sandbox-id': m.id, 'x-access-token': envdAccessToken } });
      assert.equal(await file.text(), `written through Q to ${m.id}`);
    }

    // A template build through Q is placed on a host (not on Q), its log read through P; a create of it through P runs there.
    const build = await call(Q, 'POST', '/v1/templates', { name: 'fleet-tools', source: { template: 'base' }, steps: [{ run: 'echo built-in-the-fleet > /etc/fleet-mark' }] });
    assert.equal(build.status, 202, build.text);
    const ready = await waitFor(async () => {
      const r = await call(P, 'GET', `/v1/templates/fleet-tools/builds/${build.body.id}`);
      return r.body.status === 'building' ? null : r.body;
    }, 120_000, 100);
    assert.equal(ready!.status, 'ready', JSON.stringify(ready!.error));
    const builtOn = (await store.getTemplateBuild(build.body.id))!.hostId!;
    assert.match(builtOn, /^host-/);
    const log = await fetch(`${P}/v1/templates/fleet-tools/builds/${build.body.id}/logs`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    assert.equal(log.status, 200);
    assert.match(await log.text(), /ready/);
    const fromBuilt = await call(P, 'POST', '/v1/machines', { template: 'fleet-tools' });
    assert.equal(fromBuilt.status, 201, fromBuilt.text);
    assert.equal(await hostOf(fromBuilt.body.id), builtOn, "a create of a built template ran away from the template's host");
    const mark = await call(Q, 'POST', `/v1/machines/${fromBuilt.body.id}/exec`, { cmd: ['cat', '/etc/fleet-mark'] });
    assert.equal(mark.body.stdout, 'built-in-the-fleet\n');
    assert.equal((await call(Q, 'DELETE', `/v1/machines/${fromBuilt.body.id}`)).status, 200);

    // An upload through P goes on to a host (an API server runs no build); a build using it, through Q, is sent there.
    const archive = execFileSync('tar', ['-c', '-f', '-', '-C', join(DIST, '..', 'docs'), 'kubernetes.md']);
    const sent = await fetch(`${P}/v1/uploads`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/octet-stream' }, body: archive });
    assert.equal(sent.status, 201, await sent.clone().text());
    const uploadId = ((await sent.json()) as Json).upload_id as string;
    const keptOn = a!.server.hosts.hostOfUpload(uploadId);
    assert.match(String(keptOn), /^host-/, 'the upload stayed on an API server');
    const fromUpload = await call(Q, 'POST', '/v1/templates', { name: 'fleet-upload', source: { template: 'base' }, steps: [{ copy: { upload_id: uploadId, dest: '/opt/up' } }] });
    assert.equal(fromUpload.status, 202, fromUpload.text);
    const uploaded = await waitFor(async () => {
      const r = await call(Q, 'GET', `/v1/templates/fleet-upload/builds/${fromUpload.body.id}`);
      return r.body.status === 'building' ? null : r.body;
    }, 120_000, 100);
    assert.equal(uploaded!.status, 'ready', JSON.stringify(uploaded!.error));
    assert.equal((await store.getTemplateBuild(fromUpload.body.id))!.hostId, keptOn);

    // A paused machine of A, which the drain moves to another host.
    const drainee = on['host-a']![1]!;
    await call(P, 'POST', `/v1/machines/${drainee.id}/exec`, { cmd: ['sh', '-c', 'echo before-the-drain > /root/mark'] });
    assert.equal((await call(Q, 'POST', `/v1/machines/${drainee.id}/pause`)).body.status, 'paused');

    // Draining A (the id percent-encoded as any host id with a "/" must be): creates go elsewhere.
    const drained = await call(Q, 'POST', `/v1/admin/hosts/${encodeURIComponent('host-a')}/drain`);
    assert.equal(drained.status, 200, drained.text);
    assert.equal(drained.body.state, 'draining');
    await waitFor(async () => {
      await a!.server.hosts.beat();
      return (await hostOf(drainee.id)) !== 'host-a';
    }, 5_000);
    // Placement reads the state at P's next heartbeat.
    await new Promise((r) => setTimeout(r, 3 * HEARTBEAT_MS));
    const placed = await call(P, 'POST', '/v1/machines', {});
    assert.equal(placed.status, 201, placed.text);
    assert.notEqual(await hostOf(placed.body.id), 'host-a', 'a draining host took a new machine');
    assert.equal((await call(P, 'DELETE', `/v1/machines/${placed.body.id}`)).status, 200);
    // The draining host moved its paused machine and kept nothing of it; resumed through P, it runs where it went.
    assert.equal((await a!.server.runtime.machinesOnDisk()).includes(drainee.id), false, "A kept the moved machine's directory");
    const movedTo = (await hostOf(drainee.id))!;
    const back = await call(P, 'POST', `/v1/machines/${drainee.id}/resume`);
    assert.equal(back.status, 200, back.text);
    assert.equal(await hostOf(drainee.id), movedTo);
    assert.equal((await a!.server.runtime.list()).has(drainee.id), false, 'the drained machine resumed on A');
    assert.equal((await call(Q, 'POST', `/v1/machines/${drainee.id}/exec`, { cmd: ['cat', '/root/mark'] })).body.stdout, 'before-the-drain\n');
    on['host-a'] = on['host-a']!.filter((m) => m !== drainee);
    on[movedTo]!.push(drainee);
    assert.equal((await call(P, 'DELETE', '/v1/admin/hosts/host-a/drain')).body.state, 'up');
    assert.equal((await call(P, 'POST', '/v1/admin/hosts/host-x/drain')).status, 404);

    // A terminal (a WebSocket) through P to a machine on B, and through Q to one on A.
    assert.match(await terminal(P, on['host-b']![0]!.id, 'echo pty-$((6*7))', /pty-42/), /pty-42/);
    assert.match(await terminal(Q, on['host-a']![0]!.id, 'echo pty-$((6*8))', /pty-48/), /pty-48/);

    // Ingress through P to a server inside a machine on C.
    const target = on['host-c']![0]!;
    const served = await call(Q, 'POST', `/v1/machines/${target.id}/exec`, { cmd: ['sh', '-c', 'mkdir -p /srv && echo "hello-$(hostname)" > /srv/index.html && httpd -p 8080 -h /srv'] });
    assert.equal(served.body.exit_code, 0, served.text);
    await waitFor(async () => {
      const r = await fetch(`${P}/v1/machines/${target.id}/ports/8080/index.html`, { headers: { 'x-traffic-access-token': target.traffic_access_token } });
      return r.status === 200 && (await r.text()).trim() === `hello-${target.id}`;
    }, 10_000);

    // P dies with a command streaming through it and a create in flight: their clients see the
    // cut, the create's retry through Q (same Idempotency-Key) gets one machine, and nothing else changes.
    const statuses = async (): Promise<string[]> => Promise.all(made.map(async (m) => (await call(Q, 'GET', `/v1/machines/${m.id}`)).body.status as string));
    const before = await statuses();
    const cut = call(P, 'POST', `/v1/machines/${on['host-b']![0]!.id}/exec`, { cmd: ['sleep', '30'] }).then(
      () => 'answered',
      () => 'cut',
    );
    const createThrough = (base: string): Promise<Response> =>
      fetch(`${base}/v1/machines`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json', 'idempotency-key': 'fleet-retry-1' },
        body: JSON.stringify({ metadata: { retried: 'yes' } }),
      });
    const inFlight = createThrough(P).then(
      () => 'answered',
      () => 'cut',
    );
    await new Promise((r) => setTimeout(r, 300));
    await proc('api-p').kill();
    assert.equal(await cut, 'cut');
    await inFlight;
    await waitFor(async () => (await call(Q, 'GET', '/v1/admin/hosts')).body.items[0].state === 'down', DOWN_AFTER_MS + 10 * HEARTBEAT_MS + 5_000);
    assert.deepEqual(await statuses(), before, 'a killed API server changed a machine');
    for (const m of made) assert.equal((await call(Q, 'POST', `/v1/machines/${m.id}/exec`, { cmd: ['cat', '/tmp/note'] })).body.stdout, `written through Q to ${m.id}`);
    const retried = await createThrough(Q);
    assert.equal(retried.status, 201, await retried.clone().text());
    const retriedId = ((await retried.json()) as Json).id as string;
    const tagged = (await store.machinesInStatus(['creating', 'running'])).filter((m) => m.metadata.retried === 'yes');
    assert.deepEqual(tagged.map((m) => m.id), [retriedId], 'the retry made a second machine, or lost the first');
    assert.equal((await call(Q, 'DELETE', `/v1/machines/${retriedId}`)).status, 200);

    // A machine of C paused (through Q) with a process that holds a value only in its memory.
    const sleeper = on['host-c']![1]!;
    const keeper = await call(Q, 'POST', `/v1/machines/${sleeper.id}/exec`, {
      cmd: ['sh', '-c', `echo on-disk > /root/mark; setsid sh -c 'v=kept-in-memory; trap "echo \\$v > /tmp/reveal" USR1; while :; do sleep 0.1; done' >/dev/null 2>&1 </dev/null & echo $!`],
    });
    assert.equal(keeper.body.exit_code, 0, keeper.text);
    const keeperPid = keeper.body.stdout.trim();
    const paused = await call(Q, 'POST', `/v1/machines/${sleeper.id}/pause`);
    assert.equal(paused.status, 200, paused.text);
    assert.equal(paused.body.status, 'paused');

    // What C was doing when it died: a template build it runs, an operation on one of its machines; and a build of A's.
    const spec = { source: { template: 'base' }, steps: [], description: '', startCmd: null, readyCmd: null, readyTimeoutMs: 60_000, timeoutMs: 600_000 } as never;
    const buildOf = (id: string, hostId: string) => ({ id, teamId: null, name: id, version: 0, status: 'building' as const, spec, result: null, error: null, createdAt: Date.now(), finishedAt: null, deletedAt: null, hostId });
    await store.insertTemplateBuild(buildOf('bld_fleetonc', 'host-c'));
    await store.insertTemplateBuild(buildOf('bld_fleetona', 'host-a'));
    const event = { id: 'mev_fleetonc', teamId: (await store.getMachine(target.id))!.teamId, machineId: target.id, name: 'stop' as const, state: 'in progress' as const, error: null, createdAt: Date.now(), startedAt: Date.now(), finishedAt: null, startupScript: null };
    await store.insertMachineEvent(event);

    // C dies without a word: it is marked down within the bound and its running machines fail.
    const killedAt = Date.now();
    await proc('host-c').kill();
    await waitFor(async () => (await call(Q, 'GET', `/v1/machines/${target.id}`)).body.status === 'error', DOWN_AFTER_MS + 10 * HEARTBEAT_MS + 5_000);
    const tookMs = Date.now() - killedAt;
    assert.ok(tookMs >= DOWN_AFTER_MS - HEARTBEAT_MS, `failed after ${tookMs} ms: before the bound`);
    for (const m of on['host-c']!.filter((m) => m !== sleeper)) {
      const r = await call(Q, 'GET', `/v1/machines/${m.id}`);
      assert.equal(r.body.status, 'error', r.text);
      assert.match(r.body.error_reason, /^host host-c was lost: no heartbeat for \d+ ms/);
    }
    assert.deepEqual((await store.getTemplateBuild('bld_fleetonc'))?.error, { step: 'build', message: (await store.getMachine(target.id))!.errorReason });
    assert.equal((await store.getTemplateBuild('bld_fleetona'))?.status, 'building', "A's own build is not C's to end");
    assert.equal((await store.getMachineEvent('mev_fleetonc'))?.state, 'error');
    await store.dropTemplateBuild('bld_fleetonc');
    await store.dropTemplateBuild('bld_fleetona');
    const down = await call(Q, 'GET', '/v1/admin/hosts');
    assert.deepEqual(down.body.items.map((h: Json) => [h.id, h.state]), [['api-p', 'down'], ['api-q', 'up'], ['host-a', 'up'], ['host-b', 'up'], ['host-c', 'down']]);

    // C's paused machine moved to a host left, still paused; a resume through Q brings it back there with its process and files.
    await waitFor(async () => ['host-a', 'host-b'].includes((await hostOf(sleeper.id))!), 10_000);
    assert.equal((await call(Q, 'GET', `/v1/machines/${sleeper.id}`)).body.status, 'paused');
    const resumed = await call(Q, 'POST', `/v1/machines/${sleeper.id}/resume`);
    assert.equal(resumed.status, 200, resumed.text);
    assert.equal(resumed.body.status, 'running');
    assert.notEqual(resumed.body.private_ip, sleeper.private_ip, 'it has an address of its new host');
    const reveal = await call(Q, 'POST', `/v1/machines/${sleeper.id}/exec`, {
      cmd: ['sh', '-c', `kill -USR1 ${keeperPid}; for i in $(seq 50); do [ -s /tmp/reveal ] && break; sleep 0.1; done; cat /tmp/reveal /root/mark`],
    });
    assert.equal(reveal.body.stdout, 'kept-in-memory\non-disk\n', reveal.text);

    // The other hosts' machines did not notice.
    for (const m of [...on['host-a']!, ...on['host-b']!]) {
      const r = await call(Q, 'POST', `/v1/machines/${m.id}/exec`, { cmd: ['true'] });
      assert.equal(r.status, 200, r.text);
    }
    // The lost host's machine: no exec (it is in error), but it can be deleted.
    const exec = await call(Q, 'POST', `/v1/machines/${target.id}/exec`, { cmd: ['true'] });
    assert.equal(exec.status, 409, exec.text);
    const del = await call(Q, 'DELETE', `/v1/machines/${target.id}`);
    assert.equal(del.status, 200, del.text);
    assert.equal((await call(Q, 'GET', `/v1/machines/${target.id}`)).body.status, 'destroyed');

    // A warm pool that only B keeps filled (A's refills are stopped): a create it can serve, through an API
    // server, goes to B and is a hit (by free capacity alone it could go to A: B's pool machine is B's load).
    await a!.server.pools.stop();
    const put = await call(Q, 'PUT', '/v1/warm-pools/fleet-pool', { template: 'base', config: { memory_mb: 256 }, size: 1 });
    assert.equal(put.status, 200, put.text);
    await waitFor(async () => (await store.poolMachines('fleet-pool')).length === 1, 60_000, 100);
    assert.deepEqual((await store.poolMachines('fleet-pool')).map((m) => m.hostId), ['host-b']);
    const pooled = await call(Q, 'POST', '/v1/machines', { config: { memory_mb: 256 } });
    assert.equal(pooled.status, 201, pooled.text);
    assert.deepEqual(pooled.body.warm_pool_checkout, { hit: true, id: 'fleet-pool' });
    assert.equal(await hostOf(pooled.body.id), 'host-b');
    assert.equal((await call(Q, 'DELETE', `/v1/machines/${pooled.body.id}`)).status, 200);
    // Changed, then deleted, through an API server (which keeps no pool machine): B replaces, then removes, its own.
    await waitFor(async () => (await store.poolMachines('fleet-pool')).length === 1, 30_000, 100);
    assert.equal((await call(Q, 'PUT', '/v1/warm-pools/fleet-pool', { template: 'base', config: { memory_mb: 384 }, size: 1 })).status, 200);
    await waitFor(async () => (await store.poolMachines('fleet-pool')).map((m) => m.config.memory_mb).join() === '384', 30_000, 100);
    assert.equal((await call(Q, 'DELETE', '/v1/warm-pools/fleet-pool')).status, 204);
    await waitFor(async () => (await store.poolMachines('fleet-pool')).length === 0, 30_000, 100);
    a!.server.pools.start();
  });
});
