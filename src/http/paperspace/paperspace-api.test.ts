/**
 * The Paperspace-style API's contract (seed 002 and docs/paperspace-api.md) against a
 * real server with real machines: every path, every field of the machine and event
 * objects, paging, ordering and filters, the same machines through /v1/machines,
 * stop/start keeping processes, restart keeping files, events, errors and bad input.
 */
import assert from 'node:assert/strict';
import { appendFile, truncate, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestServer, waitFor, type TestResponse } from '../../testing/harness.js';
import { EventPageSchema, MachinePageSchema, MachineWithEventSchema, PaperspaceErrorSchema, PaperspaceEventSchema, PaperspaceMachineSchema } from './schemas.js';

type Json = Record<string, any>;
const BASE = '/paperspace/v1';
const MIB = 1024 * 1024;
const LONG = 120_000;

const isIso = (v: unknown): boolean => typeof v === 'string' && new Date(v).toISOString() === v;

/** An error answer in the seed's shape with a stable code. */
function assertError(r: TestResponse, status: number, code: string, mentions?: string): void {
  assert.equal(r.status, status, r.text);
  PaperspaceErrorSchema.strict().parse(r.body);
  assert.equal(r.body.code, code, r.text);
  assert.ok(r.body.message.length > 10, r.text);
  if (mentions) assert.ok(r.text.includes(mentions), `error mentions ${mentions}: ${r.text}`);
}

const CREATE = { name: 'alpha', machineType: 'C1', templateId: 'base', region: 'local', diskSize: 1 };

describe('Paperspace-style API', () => {
  let t: TestServer;
  let key: string;
  let teamId: string;
  let otherKey: string;
  /** alpha: created here; native: created through /v1/machines; beta: created stopped. */
  let alpha: Json;
  let nativeId: string;
  let beta: Json;

  const ps = (method: string, path: string, body?: unknown, k: string | null = key) => t.request(method, `${BASE}${path}`, { body, key: k });
  const native = (method: string, path: string, body?: unknown) => t.request(method, path, { body, key });
  const exec = async (id: string, cmd: string): Promise<string> => {
    const r = await native('POST', `/v1/machines/${id}/exec`, { cmd });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.exit_code, 0, r.text);
    return r.body.stdout as string;
  };
  /** Poll an event until it is finished; return it. */
  const finished = (eventId: string): Promise<Json> => t.finishedEvent(eventId, key, LONG);
  const machineCount = async (): Promise<number> => (await native('GET', '/v1/machines')).body.length;

  before(async () => {
    t = await TestServer.start();
    ({ key, teamId } = await t.newTeamKey('paperspace'));
    otherKey = (await t.newTeamKey('paperspace-other')).key;
  });
  after(async () => {
    await t.dispose();
  });

  describe('create and get', () => {
    it('create answers at once with the machine and a create event, which ends done', async () => {
      const r = await ps('POST', '/machines', CREATE);
      assert.equal(r.status, 200, r.text);
      MachineWithEventSchema.parse(r.body);
      const { data, event } = r.body;
      assert.match(data.id, /^mch_/);
      assert.ok(['provisioning', 'ready'].includes(data.state), data.state);
      assert.equal(event.name, 'create');
      assert.equal(event.machineId, data.id);
      assert.ok(['new', 'in progress', 'done'].includes(event.state));
      assert.ok(isIso(event.dtCreated));
      const done = await finished(event.id);
      assert.equal(done.state, 'done', JSON.stringify(done));
      assert.equal(done.error, null);
      assert.ok(isIso(done.dtStarted) && isIso(done.dtFinished));
      assert.ok(Date.parse(done.dtCreated) <= Date.parse(done.dtStarted) && Date.parse(done.dtStarted) <= Date.parse(done.dtFinished));
      alpha = (await ps('GET', `/machines/${data.id}`)).body;
    });

    it('get: every field of the seed, with Hangar\'s values', async () => {
      PaperspaceMachineSchema.parse(alpha);
      assert.deepEqual(Object.keys(alpha).sort(), Object.keys(PaperspaceMachineSchema.shape).sort());
      assert.equal(alpha.state, 'ready');
      assert.equal(alpha.name, 'alpha');
      assert.equal(alpha.machineType, 'C1');
      assert.equal(alpha.cpus, 1);
      assert.equal(alpha.ram, 512 * MIB);
      assert.equal(alpha.storageTotal, 1024 * MIB);
      assert.ok(Number.isInteger(alpha.storageUsed) && alpha.storageUsed >= 0 && alpha.storageUsed < alpha.storageTotal);
      assert.equal(alpha.region, 'local');
      assert.equal(alpha.agentType, 'LinuxHeadless');
      assert.equal(alpha.os, 'base');
      assert.equal(alpha.autoShutdownEnabled, false);
      assert.equal(alpha.autoShutdownTimeout, null);
      assert.equal(alpha.autoShutdownForce, null);
      assert.match(alpha.privateIp, /^\d+\.\d+\.\d+\.\d+$/);
      for (const f of ['publicIp', 'networkId', 'reservation', 'dtDeleted', 'restorePointSnapshotId', 'autoSnapshotFrequency']) assert.equal(alpha[f], null, f);
      assert.deepEqual(alpha.accelerators, []);
      assert.equal(alpha.publicIpType, 'none');
      assert.equal(alpha.usageRate, 0);
      assert.equal(alpha.storageRate, 0);
      assert.equal(alpha.updatesPending, false);
      assert.ok(isIso(alpha.dtCreated) && isIso(alpha.dtModified));
    });

    it('the same machine through /v1/machines: running, the type\'s resources, no deadline to speak of', async () => {
      const r = await native('GET', `/v1/machines/${alpha.id}`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.status, 'running');
      assert.deepEqual(r.body.config, { vcpus: 1, memory_mb: 512, disk_mb: 1024 });
      assert.equal(r.body.template, 'base');
      assert.equal(r.body.private_ip, alpha.privateIp);
      assert.equal(r.body.timeout_action, 'hibernate');
      assert.equal(r.body.timeout_ms, 30 * 24 * 3_600_000);
      assert.equal(r.body.created_at, alpha.dtCreated);
    });

    it('a machine created through /v1/machines is seen here, named by its id', async () => {
      const r = await native('POST', '/v1/machines', { config: { vcpus: 2, memory_mb: 2048, disk_mb: 64 } });
      assert.equal(r.status, 201, r.text);
      nativeId = r.body.id;
      const m = (await ps('GET', `/machines/${nativeId}`)).body;
      PaperspaceMachineSchema.parse(m);
      assert.equal(m.name, nativeId);
      assert.equal(m.machineType, 'C3');
      assert.equal(m.state, 'ready');
      assert.equal(m.storageTotal, 64 * MIB);
      assert.equal(m.autoShutdownEnabled, true, 'its 5-minute deadline is an auto shutdown');
      assert.equal(m.autoShutdownTimeout, 300_000 / 3_600_000);
    });

    it('storageUsed counts bytes written in the writable layer', async () => {
      const before = (await ps('GET', `/machines/${alpha.id}`)).body.storageUsed as number;
      await exec(alpha.id, 'dd if=/dev/zero of=/root/blob bs=1M count=8 2>/dev/null && sync');
      const afterWrite = (await ps('GET', `/machines/${alpha.id}`)).body.storageUsed as number;
      assert.ok(afterWrite - before >= 7 * MIB, `storageUsed grew by ${afterWrite - before}`);
      await exec(alpha.id, 'rm /root/blob && sync');
    });

    it('startOnCreate false: created, then stopped (off, paused underneath)', async () => {
      const r = await ps('POST', '/machines', { ...CREATE, name: 'beta', machineType: 'C2', startOnCreate: false, autoShutdownEnabled: true, autoShutdownTimeout: 3 });
      assert.equal(r.status, 200, r.text);
      assert.equal((await finished(r.body.event.id)).state, 'done');
      beta = (await ps('GET', `/machines/${r.body.data.id}`)).body;
      assert.equal(beta.state, 'off');
      assert.equal(beta.machineType, 'C2');
      assert.equal(beta.autoShutdownEnabled, true);
      assert.equal(beta.autoShutdownTimeout, 3);
      assert.equal(beta.autoShutdownForce, true);
      assert.equal(beta.storageUsed, 0);
      const n = (await native('GET', `/v1/machines/${beta.id}`)).body;
      assert.equal(n.status, 'paused');
      assert.equal(n.timeout_ms, 3 * 3_600_000);
    });
  });

  describe('list', () => {
    const list = async (query: string): Promise<Json> => {
      const r = await ps('GET', `/machines?${query}`);
      assert.equal(r.status, 200, r.text);
      MachinePageSchema.parse(r.body);
      return r.body;
    };
    const ids = (page: Json): string[] => page.items.map((m: Json) => m.id);

    it('newest first by default, every item a full machine', async () => {
      const page = await list('');
      assert.deepEqual(ids(page), [beta.id, nativeId, alpha.id]);
      assert.equal(page.hasMore, false);
      assert.equal(page.nextPage, null);
      for (const m of page.items) PaperspaceMachineSchema.parse(m);
    });

    it('orderBy and order', async () => {
      assert.deepEqual(ids(await list('order=asc')), [alpha.id, nativeId, beta.id]);
      assert.deepEqual(ids(await list('orderBy=name&order=asc')), [alpha.id, beta.id, nativeId]);
      assert.deepEqual(ids(await list('orderBy=name&order=desc')), [nativeId, beta.id, alpha.id]);
      const byState = await list('orderBy=state&order=asc');
      assert.deepEqual(byState.items.map((m: Json) => m.state), ['off', 'ready', 'ready']);
      const byStateDesc = await list('orderBy=state&order=desc');
      assert.deepEqual(byStateDesc.items.map((m: Json) => m.state), ['ready', 'ready', 'off']);
      assert.deepEqual(ids(byStateDesc).slice(0, 2), [nativeId, alpha.id].sort().reverse(), 'ties by id, in the same direction');
    });

    it('filters: name, machineType, region, agentType', async () => {
      assert.deepEqual(ids(await list('name=alpha')), [alpha.id]);
      assert.deepEqual(ids(await list('machineType=C3')), [nativeId]);
      assert.deepEqual(ids(await list('machineType=C5')), []);
      assert.deepEqual(ids(await list('machineType=custom')), []);
      assert.deepEqual(ids(await list(`name=${nativeId}`)), [nativeId], 'a machine never named is found by its id');
      assert.deepEqual(ids(await list('machineType=C1&name=alpha&agentType=LinuxHeadless&region=local')), [alpha.id]);
      assert.equal((await list('region=local')).items.length, 3);
      assert.deepEqual(ids(await list('region=ny2')), []);
      assert.equal((await list('agentType=LinuxHeadless')).items.length, 3);
      assert.deepEqual(ids(await list('agentType=WindowsDesktop')), []);
    });

    it('paging with limit and after: every machine once, in order', async () => {
      for (const query of ['limit=1', 'limit=2&order=asc', 'limit=1&orderBy=name', 'limit=2&orderBy=name&order=desc', 'limit=1&orderBy=state', 'limit=1&agentType=LinuxHeadless&orderBy=state&order=asc']) {
        const all = ids(await list(query.replace(/limit=\d+&?/, '')));
        const seen: string[] = [];
        let page = await list(query);
        for (;;) {
          seen.push(...ids(page));
          if (!page.hasMore) break;
          assert.equal(typeof page.nextPage, 'string');
          page = await list(`${query}&after=${encodeURIComponent(page.nextPage)}`);
        }
        assert.equal(page.nextPage, null);
        assert.deepEqual(seen, all, query);
      }
    });

    it('bad parameters: 400 in the seed\'s shape', async () => {
      for (const q of ['limit=0', 'limit=121', 'limit=x', 'orderBy=id', 'order=up', 'bogus=1']) {
        assertError(await ps('GET', `/machines?${q}`), 400, 'VALIDATION_FAILED');
      }
      assertError(await ps('GET', '/machines?after=forged.cursor'), 400, 'INVALID_NEXT_TOKEN', 'after');
      const first = await list('limit=1');
      assertError(await ps('GET', `/machines?limit=1&order=asc&after=${encodeURIComponent(first.nextPage)}`), 400, 'INVALID_NEXT_TOKEN');
    });

    it('other teams see none of them', async () => {
      const r = await ps('GET', '/machines', undefined, otherKey);
      assert.equal(r.status, 200);
      assert.deepEqual(r.body.items, []);
      assertError(await ps('GET', `/machines/${alpha.id}`, undefined, otherKey), 404, 'NOT_FOUND');
    });
  });

  describe('stop, start, restart', () => {
    /** A counter in the background of alpha, re-parented to init. */
    const count = async (): Promise<number> => Number((await exec(alpha.id, 'cat /root/count')).trim());

    it('stop pauses to a memory snapshot; start resumes the same process, still counting', async () => {
      await exec(alpha.id, '(i=0; while true; do i=$((i+1)); echo $i > /root/count; sleep 0.1; done) > /dev/null 2>&1 & echo $! > /root/counter.pid');
      await waitFor(async () => (await count()) > 3, LONG);
      const pid = (await exec(alpha.id, 'cat /root/counter.pid')).trim();

      // As the seed's curl does: a JSON content type and no body.
      const stop = await t.request('PATCH', `${BASE}/machines/${alpha.id}/stop`, { key, headers: { 'content-type': 'application/json' } });
      assert.equal(stop.status, 200, stop.text);
      MachineWithEventSchema.parse(stop.body);
      assert.equal(stop.body.event.name, 'stop');
      assert.equal(stop.body.event.state, 'new');
      assert.ok(['ready', 'stopping', 'off'].includes(stop.body.data.state));
      assert.equal((await finished(stop.body.event.id)).state, 'done');
      assert.equal((await native('GET', `/v1/machines/${alpha.id}`)).body.status, 'paused');
      const off = (await ps('GET', `/machines/${alpha.id}`)).body;
      assert.equal(off.state, 'off');
      assert.equal(off.storageUsed, 0);

      const start = await ps('PATCH', `/machines/${alpha.id}/start`);
      assert.equal(start.status, 200, start.text);
      assert.equal(start.body.event.name, 'start');
      assert.equal((await finished(start.body.event.id)).state, 'done');
      assert.equal((await native('GET', `/v1/machines/${alpha.id}`)).body.status, 'running');
      assert.equal((await ps('GET', `/machines/${alpha.id}`)).body.state, 'ready');
      const resumedAt = await count();
      assert.equal((await exec(alpha.id, `kill -0 ${pid} && echo alive`)).trim(), 'alive', 'the same counter process');
      await waitFor(async () => (await count()) > resumedAt + 2, LONG);
    });

    it('restart starts init again: processes gone, files kept', async () => {
      await exec(alpha.id, 'echo kept > /root/file');
      const initStart = (await exec(alpha.id, 'cut -d" " -f22 /proc/1/stat')).trim();
      const pid = (await exec(alpha.id, 'cat /root/counter.pid')).trim();
      const r = await ps('PATCH', `/machines/${alpha.id}/restart`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.event.name, 'restart');
      assert.equal((await finished(r.body.event.id)).state, 'done');
      const m = (await ps('GET', `/machines/${alpha.id}`)).body;
      assert.equal(m.state, 'ready');
      assert.ok(Date.parse(m.dtModified) >= Date.parse(r.body.event.dtCreated), 'dtModified moves with a restart');
      assert.equal((await exec(alpha.id, 'cat /root/file')).trim(), 'kept');
      assert.notEqual((await exec(alpha.id, 'cut -d" " -f22 /proc/1/stat')).trim(), initStart, 'a new init');
      assert.equal((await exec(alpha.id, `kill -0 ${pid} 2>/dev/null || echo gone`)).trim(), 'gone');
      assert.equal((await native('GET', `/v1/machines/${alpha.id}`)).body.status, 'running');
    });

    it('a start that fails ends its event in error with the reason; the machine stays off', async () => {
      const snap = (await native('GET', `/v1/machines/${beta.id}`)).body.snapshot_id as string;
      const image = join(t.server.settings.snapshotsDir, snap, 'disk.img');
      const size = (await stat(image)).size;
      await appendFile(image, 'x');
      try {
        const r = await ps('PATCH', `/machines/${beta.id}/start`);
        assert.equal(r.status, 200, r.text);
        const e = await finished(r.body.event.id);
        assert.equal(e.state, 'error');
        assert.match(e.error, /could not be resumed/);
        assert.equal((await ps('GET', `/machines/${beta.id}`)).body.state, 'off');
      } finally {
        await truncate(image, size);
      }
    });

    it('operations in the wrong state, or while another is in flight: 409', async () => {
      assertError(await ps('PATCH', `/machines/${alpha.id}/start`), 409, 'STATE_CONFLICT', 'ready');
      assertError(await ps('PATCH', `/machines/${beta.id}/stop`), 409, 'STATE_CONFLICT');
      assertError(await ps('PATCH', `/machines/${beta.id}/restart`), 409, 'STATE_CONFLICT');
      const stop = await ps('PATCH', `/machines/${alpha.id}/stop`);
      assert.equal(stop.status, 200, stop.text);
      // Stopping or already off: a restart conflicts either way (service tests cover the in-flight case exactly).
      assertError(await ps('PATCH', `/machines/${alpha.id}/restart`), 409, 'STATE_CONFLICT');
      assert.equal((await finished(stop.body.event.id)).state, 'done');
      const start = await ps('PATCH', `/machines/${alpha.id}/start`);
      assert.equal((await finished(start.body.event.id)).state, 'done');
      for (const verb of ['start', 'stop', 'restart']) {
        assertError(await ps('PATCH', `/machines/mch_nosuchmachine00/${verb}`), 404, 'NOT_FOUND');
        assertError(await ps('PATCH', `/machines/${alpha.id}/${verb}`, undefined, otherKey), 404, 'NOT_FOUND');
      }
    });
  });

  describe('update', () => {
    it('renames and sets auto shutdown; the event is done; native sees the deadline', async () => {
      const r = await ps('PUT', `/machines/${alpha.id}`, { name: 'alpha-2', autoShutdownEnabled: true, autoShutdownTimeout: 2, machineType: 'C1', diskSize: 1 });
      assert.equal(r.status, 200, r.text);
      MachineWithEventSchema.parse(r.body);
      assert.equal(r.body.data.name, 'alpha-2');
      assert.equal(r.body.data.autoShutdownEnabled, true);
      assert.equal(r.body.data.autoShutdownTimeout, 2);
      assert.equal(r.body.event.name, 'update');
      assert.equal(r.body.event.state, 'done');
      const n = (await native('GET', `/v1/machines/${alpha.id}`)).body;
      assert.equal(n.timeout_ms, 7_200_000);
      assert.equal(n.timeout_action, 'hibernate');
      assert.equal((await ps('GET', `/machines/${alpha.id}`)).body.name, 'alpha-2');
      const off = await ps('PUT', `/machines/${alpha.id}`, { autoShutdownEnabled: false });
      assert.equal(off.body.data.autoShutdownEnabled, false);
      assert.equal(off.body.data.autoShutdownTimeout, null);
    });

    it('resizes a ready machine: machineType and diskSize take effect inside and read back', async () => {
      const r = await ps('PUT', `/machines/${alpha.id}`, { machineType: 'C3', diskSize: 2 });
      assert.equal(r.status, 200, r.text);
      MachineWithEventSchema.parse(r.body);
      assert.equal(r.body.event.name, 'update');
      assert.equal(r.body.event.state, 'done');
      const m = (await ps('GET', `/machines/${alpha.id}`)).body;
      assert.equal(m.machineType, 'C3');
      assert.equal(m.cpus, 2);
      assert.equal(m.ram, 2048 * MIB);
      assert.equal(m.storageTotal, 2048 * MIB);
      assert.equal(m.state, 'ready');
      assert.deepEqual((await native('GET', `/v1/machines/${alpha.id}`)).body.config, { vcpus: 2, memory_mb: 2048, disk_mb: 2048 });
      const rootKib = Number((await exec(alpha.id, 'df -k / | tail -1')).trim().split(/\s+/).at(-5));
      assert.ok(rootKib > 1024 * 1024, `df of / after the resize: ${rootKib} KiB`);
    });

    it('resizing refused: a smaller disk 422, a stopped machine 409, bad values 400; nothing changes', async () => {
      assertError(await ps('PUT', `/machines/${alpha.id}`, { diskSize: 1, machineType: 'C1' }), 422, 'UNSUPPORTED_OPERATION', 'create a new machine');
      assertError(await ps('PUT', `/machines/${beta.id}`, { machineType: 'C3' }), 409, 'STATE_CONFLICT', 'start it first');
      assertError(await ps('PUT', `/machines/${alpha.id}`, { diskSize: 3 }), 400, 'VALIDATION_FAILED', '250');
      assertError(await ps('PUT', `/machines/${alpha.id}`, { machineType: 'Z9' }), 400, 'VALIDATION_FAILED', 'C1');
      assertError(await ps('PUT', `/machines/${alpha.id}`, { restorePointSnapshotId: 'snap_nosuchsnapshot0' }), 422, 'UNKNOWN_SNAPSHOT', 'snap_nosuchsnapshot0');
      assertError(await ps('PUT', `/machines/${alpha.id}`, { autoSnapshotEnabled: true }), 400, 'VALIDATION_FAILED', 'autoSnapshotFrequency');
      assertError(await ps('PUT', `/machines/${alpha.id}`, { autoSnapshotSaveCount: 3 }), 400, 'VALIDATION_FAILED', 'autoSnapshotEnabled');
      assertError(await ps('PUT', `/machines/${alpha.id}`, { restorePointEnabled: false, restorePointSnapshotId: 'snap_x' }), 400, 'VALIDATION_FAILED', 'restorePointSnapshotId');
      assertError(await ps('PUT', `/machines/${alpha.id}`, { name: '' }), 400, 'VALIDATION_FAILED', 'name');
      assertError(await ps('PUT', `/machines/${alpha.id}`, { colour: 'red' }), 400, 'VALIDATION_FAILED', 'colour');
      assertError(await ps('PUT', `/machines/${alpha.id}`, { autoShutdownTimeout: 1 }), 400, 'VALIDATION_FAILED', 'autoShutdownTimeout');
      assertError(await ps('PUT', '/machines/mch_nosuchmachine00', { name: 'x' }), 404, 'NOT_FOUND');
      const m = (await ps('GET', `/machines/${alpha.id}`)).body;
      assert.equal(m.name, 'alpha-2');
      assert.equal(m.machineType, 'C3');
      assert.equal(m.storageTotal, 2048 * MIB);
      assert.equal(m.autoShutdownEnabled, false);
      assert.equal(m.autoSnapshotEnabled, false);
      assert.equal(m.restorePointEnabled, false);
      assert.equal((await ps('GET', `/machines/${beta.id}`)).body.machineType, 'C2');
    });
  });

  describe('create: bad input changes nothing', () => {
    it('400 for missing, unknown or invalid fields, naming the accepted values', async () => {
      const count = await machineCount();
      const cases: Array<[Json, string]> = [
        [{ ...CREATE, name: undefined }, 'name'],
        [{ ...CREATE, machineType: 'X9' }, 'C1'],
        [{ ...CREATE, region: 'ny2' }, 'local'],
        [{ ...CREATE, diskSize: 3 }, '250'],
        [{ ...CREATE, diskSize: 'big' }, 'diskSize'],
        [{ ...CREATE, templateId: 'windows' }, 'base'],
        [{ ...CREATE, colour: 'red' }, 'colour'],
        [{ ...CREATE, autoShutdownEnabled: true }, 'autoShutdownTimeout'],
        [{ ...CREATE, autoShutdownTimeout: 2 }, 'autoShutdownTimeout'],
        [{ ...CREATE, autoShutdownEnabled: true, autoShutdownTimeout: 1000 }, 'autoShutdownTimeout'],
        [{ ...CREATE, accessorIds: ['usr_nobody'] }, 'accessorIds'],
        [{ ...CREATE, autoSnapshotEnabled: true, autoSnapshotSaveCount: 2 }, 'autoSnapshotFrequency'],
        [{ ...CREATE, autoSnapshotEnabled: true, autoSnapshotFrequency: 'hourly' }, 'autoSnapshotSaveCount'],
        [{ ...CREATE, autoSnapshotEnabled: true, autoSnapshotFrequency: 'yearly', autoSnapshotSaveCount: 2 }, 'autoSnapshotFrequency'],
        [{ ...CREATE, autoSnapshotEnabled: true, autoSnapshotFrequency: 'daily', autoSnapshotSaveCount: 0 }, 'autoSnapshotSaveCount'],
        [{ ...CREATE, autoSnapshotEnabled: true, autoSnapshotFrequency: 'daily', autoSnapshotSaveCount: 31 }, 'autoSnapshotSaveCount'],
        [{ ...CREATE, autoSnapshotEnabled: true, autoSnapshotFrequency: 'daily', autoSnapshotSaveCount: 1.5 }, 'autoSnapshotSaveCount'],
        [{ ...CREATE, autoSnapshotFrequency: 'daily' }, 'autoSnapshotFrequency'],
        [{ ...CREATE, restorePointFrequency: 'shutdown' }, 'restorePointFrequency'],
        [{ ...CREATE, restorePointEnabled: true, restorePointFrequency: 'daily' }, 'restorePointFrequency'],
        [{ ...CREATE, restorePointEnabled: true, takeInitialSnapshot: false }, 'takeInitialSnapshot'],
      ];
      for (const [body, mentions] of cases) assertError(await ps('POST', '/machines', body), 400, 'VALIDATION_FAILED', mentions);
      assertError(await t.request('POST', `${BASE}/machines`, { rawBody: '{"name": ', key, headers: { 'content-type': 'application/json' } }), 400, 'INVALID_JSON');
      assert.equal(await machineCount(), count);
    });

    it('422 for features not supported yet', async () => {
      const count = await machineCount();
      for (const extra of [{ publicIpType: 'static' }, { enableNvlink: true }, { autoShutdownForce: false }]) {
        assertError(await ps('POST', '/machines', { ...CREATE, ...extra }), 422, 'UNSUPPORTED_OPERATION', Object.keys(extra)[0]);
      }
      // Served now (startup-scripts-api.test.ts): an unknown script is the create's 422, and nothing is created.
      assertError(await ps('POST', '/machines', { ...CREATE, startupScriptId: 'scr_nosuchscript0000' }), 422, 'UNKNOWN_STARTUP_SCRIPT', 'scr_nosuchscript0000');
      assert.equal(await machineCount(), count);
    });

    it('networkId: a network of the team is joined and shown; an unknown or another team\'s is a 422 that creates nothing; an update cannot change it', async () => {
      const count = await machineCount();
      const theirs = await t.request('POST', '/v1/networks', { body: { name: 'theirs' }, key: otherKey });
      assert.equal(theirs.status, 201, theirs.text);
      for (const networkId of ['net_doesnotexist00', theirs.body.id as string]) {
        assertError(await ps('POST', '/machines', { ...CREATE, name: 'netless', networkId }), 422, 'UNKNOWN_NETWORK', `networkId ${networkId}`);
      }
      assert.equal(await machineCount(), count, 'a refused networkId created a machine');
      const net = await native('POST', '/v1/networks', { name: 'paperspace-net' });
      assert.equal(net.status, 201, net.text);
      const r = await ps('POST', '/machines', { ...CREATE, name: 'networked', networkId: net.body.id });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.data.networkId, net.body.id);
      assert.equal((await finished(r.body.event.id)).state, 'done');
      const got = await ps('GET', `/machines/${r.body.data.id}`);
      assert.equal(got.body.networkId, net.body.id);
      assert.equal((await native('GET', `/v1/machines/${r.body.data.id}`)).body.network_id, net.body.id, 'the native view shows it too');
      const members = await native('GET', `/v1/networks/${net.body.id}`);
      assert.deepEqual(members.body.machines.map((m: Json) => m.machine_id), [r.body.data.id]);
      assertError(await ps('PUT', `/machines/${r.body.data.id}`, { networkId: net.body.id }), 422, 'UNSUPPORTED_OPERATION', 'networkId');
      const destroyed = await ps('DELETE', `/machines/${r.body.data.id}`);
      assert.equal(destroyed.status, 200, destroyed.text);
      assert.equal((await finished(destroyed.body.event.id)).state, 'done');
      assert.equal((await native('DELETE', `/v1/networks/${net.body.id}`)).status, 204);
    });

    it('401 without a key, and only a Bearer key', async () => {
      assertError(await ps('GET', '/machines', undefined, null), 401, 'UNAUTHORIZED');
      assertError(await t.request('GET', `${BASE}/machines`, { key: null, headers: { 'x-api-key': key } }), 401, 'UNAUTHORIZED');
      assertError(await ps('POST', '/machines', CREATE, 'wrong-key-0123456789'), 401, 'UNAUTHORIZED');
      assertError(await ps('GET', '/nothing-here'), 404, 'ROUTE_NOT_FOUND');
      // Served now (desktop-api.test.ts): a headless machine has no desktop.
      assertError(await ps('GET', `/machines/${alpha.id}/desktop`), 422, 'NO_DESKTOP');
    });

    it('ids that cannot exist: 400 for an over-long one, 404 otherwise', async () => {
      const long = `mch_${'a'.repeat(200)}`;
      for (const [method, path] of [['GET', `/machines/${long}`], ['PUT', `/machines/${long}`], ['DELETE', `/machines/${long}`], ['PATCH', `/machines/${long}/stop`], ['GET', `/machine-events/${long}`]] as const) {
        assertError(await ps(method, path, method === 'PUT' ? { name: 'x' } : undefined), 400, 'VALIDATION_FAILED', 'id');
      }
      assertError(await ps('GET', '/machines/mch_nosuchmachine00'), 404, 'NOT_FOUND');
    });
  });

  describe('machine events', () => {
    it('every operation on a machine is an event, in dtCreated order, all finished', async () => {
      const r = await ps('GET', `/machine-events?machineId=${alpha.id}&order=asc&limit=120`);
      assert.equal(r.status, 200, r.text);
      EventPageSchema.parse(r.body);
      assert.deepEqual(
        r.body.items.map((e: Json) => e.name),
        ['create', 'stop', 'start', 'restart', 'stop', 'start', 'update', 'update', 'update'],
      );
      for (const e of r.body.items) {
        PaperspaceEventSchema.strict().parse(e);
        assert.equal(e.machineId, alpha.id);
        assert.equal(e.state, 'done');
        assert.ok(isIso(e.dtCreated) && isIso(e.dtStarted) && isIso(e.dtFinished));
      }
      const desc = await ps('GET', `/machine-events?machineId=${alpha.id}`);
      assert.deepEqual(desc.body.items.map((e: Json) => e.id), [...r.body.items].reverse().map((e: Json) => e.id));
    });

    it('pages with limit and after, in both orders', async () => {
      for (const order of ['asc', 'desc']) {
        const all = (await ps('GET', `/machine-events?order=${order}&limit=120`)).body.items.map((e: Json) => e.id);
        const seen: string[] = [];
        let page = (await ps('GET', `/machine-events?order=${order}&limit=3&orderBy=dtCreated`)).body;
        for (;;) {
          EventPageSchema.parse(page);
          seen.push(...page.items.map((e: Json) => e.id));
          if (!page.hasMore) break;
          page = (await ps('GET', `/machine-events?order=${order}&limit=3&orderBy=dtCreated&after=${encodeURIComponent(page.nextPage)}`)).body;
        }
        assert.deepEqual(seen, all);
      }
    });

    it('operations through the native API and lifecycle timers are events too; refused ones are not', async () => {
      const created = await native('POST', '/v1/machines', { timeout_ms: 600_000 });
      assert.equal(created.status, 201, created.text);
      const id = created.body.id as string;
      const events = async (): Promise<string[]> =>
        (await ps('GET', `/machine-events?machineId=${id}&order=asc`)).body.items.map((e: Json) => `${e.name}:${e.state}`);
      assert.equal((await native('POST', `/v1/machines/${id}/pause`)).status, 200);
      assert.equal((await native('POST', `/v1/machines/${id}/pause`)).status, 409);
      assert.equal((await native('POST', `/v1/machines/${id}/resume`)).status, 200);
      assert.equal((await native('POST', `/v1/machines/${id}/timeout`, { timeout_ms: 1_000 })).status, 200);
      assert.deepEqual(await events(), ['create:done', 'stop:done', 'start:done', 'update:done']);
      // The one-second deadline destroys it (its action is destroy): a delete event.
      await waitFor(async () => (await native('GET', `/v1/machines/${id}`)).body.status === 'destroyed', LONG);
      await waitFor(async () => (await events()).join() === 'create:done,stop:done,start:done,update:done,delete:done', LONG);
      assert.equal((await native('DELETE', `/v1/machines/${id}`)).status, 409);
      assert.equal((await events()).length, 5);
    });

    it('bad input and other teams', async () => {
      for (const q of ['limit=0', 'limit=121', 'orderBy=name', 'order=sideways', 'x=1']) assertError(await ps('GET', `/machine-events?${q}`), 400, 'VALIDATION_FAILED');
      assertError(await ps('GET', '/machine-events?after=nope'), 400, 'INVALID_NEXT_TOKEN');
      assertError(await ps('GET', '/machine-events/mev_nosuchevent000'), 404, 'NOT_FOUND');
      const mine = (await ps('GET', '/machine-events?limit=1')).body.items[0];
      assertError(await ps('GET', `/machine-events/${mine.id}`, undefined, otherKey), 404, 'NOT_FOUND');
      assert.deepEqual((await ps('GET', '/machine-events', undefined, otherKey)).body.items, []);
    });
  });

  describe('delete and shutdown', () => {
    it('delete destroys in the background; the machine shows dtDeleted and leaves the list', async () => {
      const r = await ps('DELETE', `/machines/${beta.id}`);
      assert.equal(r.status, 200, r.text);
      MachineWithEventSchema.parse(r.body);
      assert.equal(r.body.event.name, 'delete');
      assert.equal((await finished(r.body.event.id)).state, 'done');
      const m = (await ps('GET', `/machines/${beta.id}`)).body;
      assert.equal(m.state, 'off');
      assert.ok(isIso(m.dtDeleted));
      assert.equal((await native('GET', `/v1/machines/${beta.id}`)).body.status, 'destroyed');
      assert.ok(!(await ps('GET', '/machines')).body.items.some((x: Json) => x.id === beta.id));
      assertError(await ps('DELETE', `/machines/${beta.id}`), 409, 'STATE_CONFLICT');
      assertError(await ps('PUT', `/machines/${beta.id}`, { name: 'late' }), 409, 'STATE_CONFLICT');
      assertError(await ps('PATCH', `/machines/${beta.id}/start`), 409, 'STATE_CONFLICT');
      const events = (await ps('GET', `/machine-events?machineId=${beta.id}&order=asc`)).body.items.map((e: Json) => `${e.name}:${e.state}`);
      assert.deepEqual(events, ['create:done', 'start:error', 'delete:done'], 'refused requests record no event');
      assertError(await ps('DELETE', '/machines/mch_nosuchmachine00'), 404, 'NOT_FOUND');
    });

    it('a server that closes while an operation runs finishes it and records its event', async () => {
      const r = await ps('POST', '/machines', { ...CREATE, name: 'gamma' });
      assert.equal(r.status, 200, r.text);
      await t.restart();
      const e = (await ps('GET', `/machine-events/${r.body.event.id}`)).body;
      assert.equal(e.state, 'done', JSON.stringify(e));
      assert.equal((await ps('GET', `/machines/${r.body.data.id}`)).body.state, 'ready');
    });

    it('events a dead server left unfinished are recorded as errors at the next start', async () => {
      // As a killed process leaves them: recorded, never finished.
      const at = Date.now();
      await t.server.store.insertMachineEvent({ id: 'mev_interrupted0001', teamId, machineId: alpha.id, name: 'stop', state: 'in progress', error: null, createdAt: at, startedAt: at, finishedAt: null, startupScript: null });
      await t.server.store.insertMachineEvent({ id: 'mev_interrupted0002', teamId, machineId: alpha.id, name: 'restart', state: 'new', error: null, createdAt: at, startedAt: null, finishedAt: null, startupScript: null });
      await t.restart();
      for (const id of ['mev_interrupted0001', 'mev_interrupted0002']) {
        const e = (await ps('GET', `/machine-events/${id}`)).body;
        assert.equal(e.state, 'error', JSON.stringify(e));
        assert.match(e.error, /server stopped before this operation finished/);
        assert.ok(isIso(e.dtStarted) && isIso(e.dtFinished));
      }
      assert.equal((await ps('GET', `/machines/${alpha.id}`)).body.state, 'ready');
    });
  });
});

describe('Paperspace-style API under another base path', () => {
  let t: TestServer;
  before(async () => {
    t = await TestServer.start({ env: { HANGAR_PAPERSPACE_BASE: '/ps/v2', HANGAR_PAPERSPACE_REGION: 'ams1' } });
  });
  after(async () => {
    await t.dispose();
  });

  it('serves at HANGAR_PAPERSPACE_BASE only, with the configured region', async () => {
    const r = await t.request('GET', '/ps/v2/machines');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, { hasMore: false, items: [], nextPage: null });
    assertError(await t.request('GET', `${BASE}/machines`), 404, 'ROUTE_NOT_FOUND');
    assertError(await t.request('POST', '/ps/v2/machines', { body: { ...CREATE, region: 'local' } }), 400, 'VALIDATION_FAILED', 'ams1');
  });
});

describe('Paperspace-style API with several regions', () => {
  let t: TestServer;
  let key: string;
  const ps = (method: string, path: string, body?: unknown) => t.request(method, `${BASE}${path}`, { body, key });
  before(async () => {
    t = await TestServer.start({ env: { HANGAR_REGIONS: 'ny2,ca1,ams1' } });
    ({ key } = await t.newTeamKey('regions'));
  });
  after(async () => {
    await t.dispose();
  });

  it('creates in a named region, shows and filters by it, puts native machines in the first, and refuses another', async () => {
    const ca = await ps('POST', '/machines', { ...CREATE, name: 'in-ca1', region: 'ca1', startOnCreate: false });
    assert.equal(ca.status, 200, ca.text);
    assert.equal(ca.body.data.region, 'ca1');
    assert.equal((await t.finishedEvent(ca.body.event.id, key, LONG)).state, 'done');
    const ny = await ps('POST', '/machines', { ...CREATE, name: 'in-ny2', region: 'ny2', startOnCreate: false });
    assert.equal(ny.status, 200, ny.text);
    assert.equal((await t.finishedEvent(ny.body.event.id, key, LONG)).state, 'done');
    const nat = await t.request('POST', '/v1/machines', { body: { template: 'base' }, key });
    assert.equal(nat.status, 201, nat.text);

    assert.equal((await ps('GET', `/machines/${ca.body.data.id}`)).body.region, 'ca1');
    assert.equal((await ps('GET', `/machines/${nat.body.id}`)).body.region, 'ny2');
    const names = async (region: string): Promise<string[]> => {
      const r = await ps('GET', `/machines?region=${region}&orderBy=name&order=asc`);
      assert.equal(r.status, 200, r.text);
      return r.body.items.map((m: Json) => m.id);
    };
    assert.deepEqual(await names('ca1'), [ca.body.data.id]);
    assert.deepEqual(new Set(await names('ny2')), new Set([ny.body.data.id, nat.body.id]));
    assert.deepEqual(await names('ams1'), []);
    assert.deepEqual(await names('local'), []);

    const before = (await t.request('GET', '/v1/machines', { key })).body.length;
    assertError(await ps('POST', '/machines', { ...CREATE, region: 'local' }), 400, 'VALIDATION_FAILED', 'ny2, ca1, ams1');
    assert.equal((await t.request('GET', '/v1/machines', { key })).body.length, before);
    for (const id of [ca.body.data.id, ny.body.data.id, nat.body.id]) await t.request('DELETE', `/v1/machines/${id}`, { key });
  });

  it('refuses publicIpType dynamic/static, emailPassword and enableNvlink with a 422 that says why, creating nothing', async () => {
    const count = (await t.request('GET', '/v1/machines', { key })).body.length;
    const cases: Array<[Json, string]> = [
      [{ publicIpType: 'dynamic' }, 'ingress'],
      [{ publicIpType: 'static' }, 'no public addresses'],
      [{ emailPassword: true }, 'no login password'],
      [{ enableNvlink: true }, 'no GPUs'],
    ];
    for (const [extra, why] of cases) {
      const r = await ps('POST', '/machines', { ...CREATE, region: 'ny2', ...extra });
      assertError(r, 422, 'UNSUPPORTED_OPERATION', Object.keys(extra)[0]);
      assert.ok(r.body.message.includes(why), r.text);
    }
    for (const off of [{ publicIpType: 'none' }, { emailPassword: false }, { enableNvlink: false }]) {
      const r = await ps('POST', '/machines', { ...CREATE, name: 'off-values', region: 'ny2', startOnCreate: false, ...off });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual([r.body.data.accelerators, r.body.data.publicIp, r.body.data.publicIpType], [[], null, 'none']);
      await t.finishedEvent(r.body.event.id, key, LONG);
      await t.request('DELETE', `/v1/machines/${r.body.data.id}`, { key });
    }
    assert.equal((await t.request('GET', '/v1/machines', { key })).body.length, count);
  });
});
