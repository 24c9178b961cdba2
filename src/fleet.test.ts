/**
 * Two hosts over one real PostgreSQL (issue 15): host A runs in this process, host B is a
 * server process of its own (so it can be SIGKILLed), each with its own data dir, runc
 * state and machine subnet. Shows: creates spread over both; exec, files, a terminal
 * (WebSocket) and ingress reach a machine through either server; a killed host is marked
 * down within the bound and its running machines turn error with the reason; they can be
 * deleted from the host that is left; its paused machine moves to the host that is left
 * (both keep snapshots in one directory) and resumes there with its processes; a
 * restarted host cleans up after itself.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { ServerProcess } from './testing/chaos/chaos-runner.js';
import { ADMIN_KEY, TestServer, waitFor } from './testing/harness.js';
import { startPostgres, type PostgresServer } from './testing/postgres-server.js';

const DIST = join(dirname(fileURLToPath(import.meta.url)), '..');
const HEARTBEAT_MS = 200;
const DOWN_AFTER_MS = 1500;
const fleetEnv = (hostId: string, databaseUrl: string, snapshotsDir: string): Record<string, string> => ({
  HANGAR_DATABASE_URL: databaseUrl,
  HANGAR_SNAPSHOTS_DIR: snapshotsDir,
  HANGAR_HOST_ID: hostId,
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

describe('a fleet of two hosts over one PostgreSQL', () => {
  let pg: PostgresServer;
  let databaseUrl: string;
  let a: TestServer | undefined;
  let b: ServerProcess | undefined;
  let bDir: string;
  let shared: string;

  before(async () => {
    pg = await startPostgres();
    databaseUrl = pg.url(await pg.createDatabase());
    // The snapshots directory both hosts keep snapshots in (shared storage, on one machine).
    shared = await mkdtemp(join(tmpdir(), 'hangar-fleet-snapshots-'));
    a = await TestServer.start({ env: fleetEnv('host-a', databaseUrl, shared) });
    bDir = await mkdtemp(join(tmpdir(), 'hangar-fleet-b-'));
    b = new ServerProcess({ dataDir: bDir, distDir: DIST, env: fleetEnv('host-b', databaseUrl, shared) });
    await b.start();
    // A learns of B at its next heartbeat.
    await waitFor(async () => a!.server.hosts.hasPeers(), 10_000);
  });

  after(async () => {
    try {
      await b?.kill();
      // B again, in this process on its data dir: it settles its machines, and is cleaned like any test server.
      if (bDir) {
        const again = await TestServer.start({ dataDir: bDir, env: fleetEnv('host-b', databaseUrl, shared) });
        await again.dispose();
      }
      await a?.dispose();
    } finally {
      await pg?.stop();
      if (shared) await rm(shared, { recursive: true, force: true });
    }
  });

  it('spreads creates, reaches every machine through either server, and fails a killed host\'s machines within the bound', async () => {
    const A = a!.url;
    const B = b!.url;
    const hosts = await call(A, 'GET', '/v1/admin/hosts');
    assert.equal(hosts.status, 200, hosts.text);
    assert.deepEqual(
      hosts.body.items.map((h: Json) => [h.id, h.state]),
      [['host-a', 'up'], ['host-b', 'up']],
    );

    // Four creates through A: placement alternates between the two hosts by free capacity.
    const made: Json[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await call(A, 'POST', '/v1/machines', { metadata: { i } });
      assert.equal(r.status, 201, r.text);
      made.push(r.body);
    }
    const listed = await call(A, 'GET', '/v1/admin/hosts');
    assert.deepEqual(listed.body.items.map((h: Json) => h.machines), [2, 2], listed.text);

    // Every machine answers through both servers: exec, files (written through one, read through the other).
    for (const m of made) {
      for (const [name, base] of [['A', A], ['B', B]] as const) {
        const r = await call(base, 'POST', `/v1/machines/${m.id}/exec`, { cmd: ['hostname'] });
        assert.equal(r.status, 200, `${name}: ${r.text}`);
        assert.equal(r.body.stdout.trim(), m.id);
      }
      const put = await fetch(`${B}/v1/machines/${m.id}/files?path=/tmp/note`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/octet-stream' },
        body: `written through B to ${m.id}`,
      });
      assert.equal(put.status, 200, await put.text());
      const got = await fetch(`${A}/v1/machines/${m.id}/files?path=/tmp/note`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
      assert.equal(await got.text(), `written through B to ${m.id}`);
    }

    // E2B's envd, addressed by its sandbox header through the server that does not run the machine.
    for (const m of made) {
      for (const base of [A, B]) {
        const sbx = await fetch(`${base}/sandboxes/${m.id}`, { headers: { 'x-api-key': ADMIN_KEY } });
        assert.equal(sbx.status, 200);
        const { envdAccessToken } = (await sbx.json()) as { envdAccessToken: string };
        const file = await fetch(`${base}/files?path=/tmp/note`, { headers: { 'e2b-sandbox-id': m.id, 'x-access-token': envdAccessToken } });
        assert.equal(await file.text(), `written through B to ${m.id}`);
      }
    }

    // Which host runs which: the store says, and each host has its own containers.
    const local = new Set((await a!.server.runtime.list()).keys());
    const aMachines = made.filter((m) => local.has(m.id));
    const bMachines = made.filter((m) => !local.has(m.id));
    assert.equal(aMachines.length, 2);
    assert.equal(bMachines.length, 2);

    // A template built on B: its layers are in B's data dir, so a create of it through A is made on B.
    const build = await call(B, 'POST', '/v1/templates', { name: 'fleet-tools', source: { template: 'base' }, steps: [{ run: 'echo built-on-b > /etc/fleet-mark' }] });
    assert.equal(build.status, 202, build.text);
    const ready = await waitFor(async () => {
      const r = await call(B, 'GET', `/v1/templates/fleet-tools/builds/${build.body.id}`);
      return r.body.status === 'building' ? null : r.body;
    }, 120_000, 100);
    assert.equal(ready!.status, 'ready', JSON.stringify(ready!.error));
    const fromBuilt = await call(A, 'POST', '/v1/machines', { template: 'fleet-tools' });
    assert.equal(fromBuilt.status, 201, fromBuilt.text);
    assert.equal((await a!.server.runtime.list()).has(fromBuilt.body.id), false, 'a create of a template built on B was made on A');
    const mark = await call(A, 'POST', `/v1/machines/${fromBuilt.body.id}/exec`, { cmd: ['cat', '/etc/fleet-mark'] });
    assert.equal(mark.body.stdout, 'built-on-b\n');
    assert.equal((await call(A, 'DELETE', `/v1/machines/${fromBuilt.body.id}`)).status, 200);

    // A paused machine of A, which the drain moves to B.
    const drainee = aMachines[1]!;
    await call(A, 'POST', `/v1/machines/${drainee.id}/exec`, { cmd: ['sh', '-c', 'echo before-the-drain > /root/mark'] });
    assert.equal((await call(B, 'POST', `/v1/machines/${drainee.id}/pause`)).body.status, 'paused');

    // Draining A (asked through B; the id percent-encoded as any host id with a "/" must be): creates through A go to B.
    const drained = await call(B, 'POST', `/v1/admin/hosts/${encodeURIComponent('host-a')}/drain`);
    assert.equal(drained.status, 200, drained.text);
    assert.equal(drained.body.state, 'draining');
    await waitFor(async () => {
      await a!.server.hosts.beat();
      return (await call(A, 'GET', '/v1/admin/hosts')).body.items[0].state === 'draining';
    }, 5_000);
    const placed = await call(A, 'POST', '/v1/machines', {});
    assert.equal(placed.status, 201, placed.text);
    assert.equal((await a!.server.runtime.list()).has(placed.body.id), false, 'a draining host took a new machine');
    assert.equal((await call(A, 'DELETE', `/v1/machines/${placed.body.id}`)).status, 200);
    // The draining host moved its paused machine to B and kept nothing of it; resumed through A, it runs on B.
    await waitFor(async () => {
      await a!.server.hosts.beat();
      return (await a!.server.store.getMachine(drainee.id))?.hostId === 'host-b';
    }, 5_000);
    assert.equal((await a!.server.runtime.machinesOnDisk()).includes(drainee.id), false, 'A kept the moved machine\'s directory');
    const back = await call(A, 'POST', `/v1/machines/${drainee.id}/resume`);
    assert.equal(back.status, 200, back.text);
    assert.equal((await a!.server.runtime.list()).has(drainee.id), false, 'the drained machine resumed on A');
    assert.equal((await call(A, 'POST', `/v1/machines/${drainee.id}/exec`, { cmd: ['cat', '/root/mark'] })).body.stdout, 'before-the-drain\n');
    assert.equal((await call(A, 'DELETE', '/v1/admin/hosts/host-a/drain')).body.state, 'up');
    assert.equal((await call(A, 'POST', '/v1/admin/hosts/host-x/drain')).status, 404);

    // A terminal (a WebSocket) through A to a machine on B, and through B to one on A.
    assert.match(await terminal(A, bMachines[0]!.id, 'echo pty-$((6*7))', /pty-42/), /pty-42/);
    assert.match(await terminal(B, aMachines[0]!.id, 'echo pty-$((6*8))', /pty-48/), /pty-48/);

    // Ingress through A to a server inside a machine on B.
    const target = bMachines[0]!;
    const served = await call(B, 'POST', `/v1/machines/${target.id}/exec`, { cmd: ['sh', '-c', 'mkdir -p /srv && echo "hello-$(hostname)" > /srv/index.html && httpd -p 8080 -h /srv'] });
    assert.equal(served.body.exit_code, 0, served.text);
    await waitFor(async () => {
      const r = await fetch(`${A}/v1/machines/${target.id}/ports/8080/index.html`, { headers: { 'x-traffic-access-token': target.traffic_access_token } });
      return r.status === 200 && (await r.text()).trim() === `hello-${target.id}`;
    }, 10_000);

    // What B was doing when it died: a template build it runs, an operation on one of its machines; and a build of A's.
    const store = a!.server.store;
    const spec = { source: { template: 'base' }, steps: [], description: '', startCmd: null, readyCmd: null, readyTimeoutMs: 60_000, timeoutMs: 600_000 } as never;
    const buildOf = (id: string, hostId: string) => ({ id, teamId: null, name: id, version: 0, status: 'building' as const, spec, result: null, error: null, createdAt: Date.now(), finishedAt: null, deletedAt: null, hostId });
    await store.insertTemplateBuild(buildOf('bld_fleetonb', 'host-b'));
    await store.insertTemplateBuild(buildOf('bld_fleetona', 'host-a'));
    const event = { id: 'mev_fleetonb', teamId: (await store.getMachine(target.id))!.teamId, machineId: target.id, name: 'stop' as const, state: 'in progress' as const, error: null, createdAt: Date.now(), startedAt: Date.now(), finishedAt: null, startupScript: null };
    await store.insertMachineEvent(event);

    // A machine of B paused (through A) with a process that holds a value only in its memory.
    const sleeper = bMachines[1]!;
    const keeper = await call(A, 'POST', `/v1/machines/${sleeper.id}/exec`, {
      cmd: ['sh', '-c', `echo on-disk > /root/mark; setsid sh -c 'v=kept-in-memory; trap "echo \\$v > /tmp/reveal" USR1; while :; do sleep 0.1; done' >/dev/null 2>&1 </dev/null & echo $!`],
    });
    assert.equal(keeper.body.exit_code, 0, keeper.text);
    const keeperPid = keeper.body.stdout.trim();
    const paused = await call(A, 'POST', `/v1/machines/${sleeper.id}/pause`);
    assert.equal(paused.status, 200, paused.text);
    assert.equal(paused.body.status, 'paused');

    // B dies without a word: A marks it down within the bound and fails its running machines.
    const killedAt = Date.now();
    await b!.kill();
    await waitFor(async () => {
      const r = await call(A, 'GET', `/v1/machines/${target.id}`);
      return r.body.status === 'error';
    }, DOWN_AFTER_MS + 10 * HEARTBEAT_MS + 5_000);
    const tookMs = Date.now() - killedAt;
    assert.ok(tookMs >= DOWN_AFTER_MS - HEARTBEAT_MS, `failed after ${tookMs} ms: before the bound`);
    for (const m of [...bMachines.filter((m) => m !== sleeper), drainee]) {
      const r = await call(A, 'GET', `/v1/machines/${m.id}`);
      assert.equal(r.body.status, 'error', r.text);
      assert.match(r.body.error_reason, /^host host-b was lost: no heartbeat for \d+ ms/);
    }

    // B's paused machine moved to A, still paused; a resume brings it back on A with its process and files.
    await waitFor(async () => (await store.getMachine(sleeper.id))?.hostId === 'host-a', 10_000);
    assert.equal((await call(A, 'GET', `/v1/machines/${sleeper.id}`)).body.status, 'paused');
    const resumed = await call(A, 'POST', `/v1/machines/${sleeper.id}/resume`);
    assert.equal(resumed.status, 200, resumed.text);
    assert.equal(resumed.body.status, 'running');
    assert.ok((await a!.server.runtime.list()).has(sleeper.id), 'the moved machine runs on A');
    assert.notEqual(resumed.body.private_ip, sleeper.private_ip, 'it has an address of A');
    const reveal = await call(A, 'POST', `/v1/machines/${sleeper.id}/exec`, {
      cmd: ['sh', '-c', `kill -USR1 ${keeperPid}; for i in $(seq 50); do [ -s /tmp/reveal ] && break; sleep 0.1; done; cat /tmp/reveal /root/mark`],
    });
    assert.equal(reveal.body.stdout, 'kept-in-memory\non-disk\n', reveal.text);
    assert.deepEqual((await store.getTemplateBuild('bld_fleetonb'))?.error, { step: 'build', message: (await store.getMachine(target.id))!.errorReason });
    assert.equal((await store.getTemplateBuild('bld_fleetona'))?.status, 'building', "A's own build is not B's to end");
    assert.equal((await store.getMachineEvent('mev_fleetonb'))?.state, 'error');
    await store.dropTemplateBuild('bld_fleetonb');
    await store.dropTemplateBuild('bld_fleetona');
    const down = await call(A, 'GET', '/v1/admin/hosts');
    assert.deepEqual(down.body.items.map((h: Json) => [h.id, h.state]), [['host-a', 'up'], ['host-b', 'down']]);
    // A's machines did not notice.
    for (const m of aMachines.filter((m) => m !== drainee)) {
      const r = await call(A, 'POST', `/v1/machines/${m.id}/exec`, { cmd: ['true'] });
      assert.equal(r.status, 200, r.text);
    }
    // The lost host's machine: no exec (it is in error), but it can be deleted from A.
    const exec = await call(A, 'POST', `/v1/machines/${target.id}/exec`, { cmd: ['true'] });
    assert.equal(exec.status, 409, exec.text);
    const del = await call(A, 'DELETE', `/v1/machines/${target.id}`);
    assert.equal(del.status, 200, del.text);
    assert.equal((await call(A, 'GET', `/v1/machines/${target.id}`)).body.status, 'destroyed');
  });
});
