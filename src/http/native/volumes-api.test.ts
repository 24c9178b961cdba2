/**
 * Volumes on real machines (real runc, CRIU, loop-mounted ext4, SQLite): data that
 * outlives its machines, read-write exclusivity and shared read-only mounts, pause and
 * resume with files open on a volume, a full volume, forks, restore points, and server
 * restarts. `dispose()` fails the suite if a mount or loop device of the instance is left.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { ADMIN_KEY, execIn, TestServer, waitFor } from '../../testing/harness.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const execFileP = promisify(execFile);

describe('volumes', () => {
  let t: TestServer;
  let keyB: string;

  before(async () => {
    t = await TestServer.start();
    keyB = (await t.newTeamKey('volumes-b')).key;
    const info = await t.request('GET', '/v1/info');
    assert.equal(info.body.snapshots.memory, true, `CRIU must work on this host: ${info.body.snapshots.reason}`);
  });
  after(async () => {
    await t.dispose();
  });

  /** Run a shell script inside a machine (runc exec, no API activity). */
  const sh = (id: string, script: string) => execIn(t.server, id, ['sh', '-c', script]);

  async function newVolume(name: string, sizeMb = 64, key?: string): Promise<string> {
    const r = await t.request('POST', '/v1/volumes', { body: { name, size_mb: sizeMb }, key });
    assert.equal(r.status, 201, r.text);
    return r.body.id as string;
  }

  async function newMachine(body: Record<string, unknown>, key?: string): Promise<Record<string, any>> {
    const r = await t.request('POST', '/v1/machines', { body, key });
    assert.equal(r.status, 201, r.text);
    return r.body;
  }

  async function destroy(id: string): Promise<Record<string, any>> {
    const r = await t.request('DELETE', `/v1/machines/${id}`);
    assert.equal(r.status, 200, r.text);
    return r.body;
  }

  /** Whether the volume's host mount exists (it does while a running machine uses it). */
  async function hostMounted(volumeId: string): Promise<boolean> {
    const mounts = await readFile('/proc/self/mounts', 'utf8');
    const at = join(t.server.settings.volumesDir, 'mounts', `${t.server.settings.instancePrefix}-${volumeId}`);
    return mounts.split('\n').some((l) => l.split(' ')[1] === at);
  }

  it('create, list, get and delete; another team sees none of it (404, the message of a missing volume)', async () => {
    const created = await t.request('POST', '/v1/volumes', { body: { name: 'crud', size_mb: 32 } });
    assert.equal(created.status, 201, created.text);
    const v = created.body;
    assert.match(v.id, /^vol_[a-z0-9]{16}$/);
    assert.deepEqual({ ...v, created_at: undefined }, { id: v.id, name: 'crud', size_mb: 32, created_at: undefined, attachments: [] });
    assert.ok(Math.abs(Date.parse(v.created_at) - Date.now()) < 60_000);

    assert.deepEqual((await t.request('GET', `/v1/volumes/${v.id}`)).body, v);
    const list = await t.request('GET', '/v1/volumes');
    assert.equal(list.status, 200);
    assert.ok(list.body.items.some((x: { id: string }) => x.id === v.id));

    const theirs = await t.request('GET', `/v1/volumes/${v.id}`, { key: keyB });
    const missing = await t.request('GET', '/v1/volumes/vol_doesnotexist0000', { key: keyB });
    assert.equal(theirs.status, 404);
    assert.equal(theirs.body.code, 'NOT_FOUND');
    assert.equal(theirs.body.message, missing.body.message.replace('vol_doesnotexist0000', v.id));
    assert.deepEqual((await t.request('GET', '/v1/volumes', { key: keyB })).body, { items: [] });
    assert.equal((await t.request('DELETE', `/v1/volumes/${v.id}`, { key: keyB })).status, 404);
    // Names are per team: team B may use the same one.
    await newVolume('crud', 16, keyB);
    const dup = await t.request('POST', '/v1/volumes', { body: { name: 'crud', size_mb: 16 } });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.code, 'VOLUME_NAME_TAKEN');

    assert.equal((await t.request('DELETE', `/v1/volumes/${v.id}`)).status, 204);
    assert.equal((await t.request('GET', `/v1/volumes/${v.id}`)).status, 404);
    assert.equal((await t.request('DELETE', `/v1/volumes/${v.id}`)).status, 404);
    assert.deepEqual(await t.server.store.allVolumeIds().then((ids) => ids.includes(v.id)), false);
  });

  it('a volume written in one machine is read in the next, after the first is destroyed', async () => {
    const vol = await newVolume('handover');
    const first = await newMachine({ volumes: [{ volume_id: vol, mount_path: '/data/./' }], metadata: { role: 'writer' } });
    assert.deepEqual(first.metadata, {
      role: 'writer',
      volume_attachments: [{ volume_id: vol, mount_path: '/data', read_only: false, mode: 'rw', state: 'attached' }],
    });
    assert.equal((await sh(first.id, 'echo "from the first machine" > /data/note && sync')).code, 0);
    assert.ok(await hostMounted(vol));
    const gone = await destroy(first.id);
    assert.equal(gone.metadata.volume_attachments[0].state, 'released');
    assert.equal(await hostMounted(vol), false, 'the host mount goes with its last machine');
    assert.deepEqual((await t.request('GET', `/v1/volumes/${vol}`)).body.attachments, []);

    const next = await newMachine({ volumes: [{ volume_id: vol, mount_path: '/srv/state' }] });
    const read = await sh(next.id, 'cat /srv/state/note');
    assert.equal(read.out, 'from the first machine\n');
    const got = await t.request('GET', `/v1/machines/${next.id}?fields=id,metadata`);
    assert.deepEqual(got.body.metadata.volume_attachments, [{ volume_id: vol, mount_path: '/srv/state', read_only: false, mode: 'rw', state: 'attached' }]);
    await destroy(next.id);
  });

  it('read-write in one live machine at a time, read-only in many (one shared mount); an attached volume is not deleted', async () => {
    const vol = await newVolume('shared');
    const writer = await newMachine({ volumes: [{ volume_id: vol, mount_path: '/data' }] });
    await sh(writer.id, 'echo one > /data/f');

    const before = (await t.request('GET', '/v1/machines')).body.length;
    const second = await t.request('POST', '/v1/machines', { body: { volumes: [{ volume_id: vol, mount_path: '/data' }] } });
    assert.equal(second.status, 409, second.text);
    assert.equal(second.body.code, 'VOLUME_IN_USE');
    assert.equal(second.body.details.machine_id, writer.id);
    assert.match(second.body.message, new RegExp(writer.id));
    assert.equal((await t.request('GET', '/v1/machines')).body.length, before, 'nothing was created');

    const readers = [
      await newMachine({ volumes: [{ volume_id: vol, mount_path: '/shared', read_only: true }] }),
      await newMachine({ volumes: [{ volume_id: vol, mount_path: '/mnt/x', read_only: true }] }),
    ];
    assert.deepEqual(readers[0]!.metadata.volume_attachments, [{ volume_id: vol, mount_path: '/shared', read_only: true, mode: 'ro', state: 'attached' }]);
    assert.equal((await sh(readers[0]!.id, 'cat /shared/f')).out, 'one\n');
    const refused = await sh(readers[1]!.id, 'echo no > /mnt/x/g');
    assert.notEqual(refused.code, 0);
    assert.match(refused.out, /read-only/i);
    // One host mount: what the writer writes now, the readers see at once.
    await sh(writer.id, 'echo two > /data/f');
    assert.equal((await sh(readers[1]!.id, 'cat /mnt/x/f')).out, 'two\n');

    const view = (await t.request('GET', `/v1/volumes/${vol}`)).body;
    assert.deepEqual(
      view.attachments.map((a: Record<string, unknown>) => [a.machine_id, a.mode, a.state]),
      [[writer.id, 'rw', 'attached'], [readers[0]!.id, 'ro', 'attached'], [readers[1]!.id, 'ro', 'attached']],
    );

    // A paused writer keeps its attachment: still in use, still exclusive; the readers keep the mount.
    assert.equal((await t.request('POST', `/v1/machines/${writer.id}/pause`)).status, 200);
    assert.equal((await t.request('GET', `/v1/machines/${writer.id}`)).body.metadata.volume_attachments[0].state, 'detached');
    assert.equal((await t.request('POST', '/v1/machines', { body: { volumes: [{ volume_id: vol, mount_path: '/d' }] } })).body.code, 'VOLUME_IN_USE');
    assert.equal((await sh(readers[0]!.id, 'cat /shared/f')).out, 'two\n');
    const del = await t.request('DELETE', `/v1/volumes/${vol}`);
    assert.equal(del.status, 409);
    assert.equal(del.body.code, 'VOLUME_IN_USE');
    assert.deepEqual(del.body.details.machine_ids, [writer.id, readers[0]!.id, readers[1]!.id]);

    await destroy(writer.id);
    const nextWriter = await newMachine({ volumes: [{ volume_id: vol, mount_path: '/data' }] });
    assert.equal((await sh(nextWriter.id, 'cat /data/f')).out, 'two\n');
    for (const m of [nextWriter, ...readers]) await destroy(m.id);
    assert.equal(await hostMounted(vol), false);
    assert.equal((await t.request('DELETE', `/v1/volumes/${vol}`)).status, 204);
  });

  it('pause and resume keep the volume, and processes with files open on it carry on', async () => {
    const vol = await newVolume('paused');
    const m = await newMachine({ volumes: [{ volume_id: vol, mount_path: '/data' }] });
    // A writer holding its file open across the checkpoint, its cwd on the volume.
    await sh(m.id, 'cd /data && (exec 3>>log; while :; do echo x >&3; sleep 0.05; done) > /dev/null 2>&1 &');
    const lines = async () => Number((await sh(m.id, 'wc -l < /data/log')).out.trim());
    await waitFor(async () => (await lines()) > 3);

    const paused = await t.request('POST', `/v1/machines/${m.id}/pause`);
    assert.equal(paused.status, 200, paused.text);
    assert.equal(await hostMounted(vol), false, 'a paused machine holds no mount');
    await sleep(200);
    const resumed = await t.request('POST', `/v1/machines/${m.id}/resume`);
    assert.equal(resumed.status, 200, resumed.text);
    assert.equal(resumed.body.metadata.volume_attachments[0].state, 'attached');
    const n1 = await lines();
    await waitFor(async () => (await lines()) > n1 + 3);
    assert.match((await sh(m.id, 'grep " /data " /proc/mounts')).out, /\/data ext4 rw/);

    // A second round: the restored machine checkpoints again.
    assert.equal((await t.request('POST', `/v1/machines/${m.id}/pause`)).status, 200);
    assert.equal((await t.request('POST', `/v1/machines/${m.id}/resume`)).status, 200);
    const n2 = await lines();
    await waitFor(async () => (await lines()) > n2 + 3);
    await destroy(m.id);
  });

  it('a restart and a disk resize (CRIU holds the processes while the disk grows) keep the volume bound', async () => {
    const vol = await newVolume('held');
    const m = await newMachine({ volumes: [{ volume_id: vol, mount_path: '/data' }], config: { disk_mb: 64 } });
    await sh(m.id, 'cd /data && (exec 3>>log; while :; do echo x >&3; sleep 0.05; done) > /dev/null 2>&1 &');
    const lines = async () => Number((await sh(m.id, 'wc -l < /data/log')).out.trim());
    await waitFor(async () => (await lines()) > 3);
    const grown = await t.request('PATCH', `/v1/machines/${m.id}`, { body: { config: { disk_mb: 96 } } });
    assert.equal(grown.status, 200, grown.text);
    const n = await lines();
    await waitFor(async () => (await lines()) > n + 3);
    const caller = await t.server.auth.authenticate(`Bearer ${ADMIN_KEY}`);
    await t.server.machines.restart(caller, m.id);
    assert.match((await sh(m.id, 'grep " /data " /proc/mounts')).out, /\/data ext4 rw/);
    assert.ok(Number((await sh(m.id, 'wc -l < /data/log')).out.trim()) > n);
    assert.ok(await hostMounted(vol));
    await destroy(m.id);
    assert.equal(await hostMounted(vol), false);
  });

  it('a full volume is ENOSPC inside the machine; the machine\'s own disk and the host are not touched', async () => {
    const vol = await newVolume('small', 16);
    const m = await newMachine({ volumes: [{ volume_id: vol, mount_path: '/data' }] });
    const df = await sh(m.id, "df -k /data | tail -1 | awk '{print $2}'");
    const totalKb = Number(df.out.trim());
    assert.ok(totalKb > 10_000 && totalKb <= 16_384, `the file system holds at most 16 MiB: ${df.out}`);
    const full = await sh(m.id, 'dd if=/dev/zero of=/data/big bs=1M count=64 conv=fsync');
    assert.notEqual(full.code, 0);
    assert.match(full.out, /No space left/);
    const used = Number((await sh(m.id, 'du -k /data/big | cut -f1')).out.trim());
    assert.ok(used <= 16_384, `the file stopped at the volume's size: ${used} KiB`);
    assert.equal((await sh(m.id, 'dd if=/dev/zero of=/root/own bs=1M count=32 2>&1')).code, 0, "the machine's own disk has room");
    await sh(m.id, 'rm -f /data/big');
    const upload = await fetch(`${t.url}/v1/machines/${m.id}/files?path=/data/up.bin`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/octet-stream' },
      body: Buffer.alloc(24 * 1024 * 1024, 1),
    });
    const answer = (await upload.json()) as { code: string; message: string };
    assert.equal(upload.status, 507);
    assert.equal(answer.code, 'DISK_FULL');
    assert.match(answer.message, /volume mounted at \/data is full/);
    await destroy(m.id);
  });

  it('a fork carries its source\'s read-only volumes; a machine with a read-write volume cannot be forked', async () => {
    const ro = await newVolume('fork-ro');
    const rw = await newVolume('fork-rw');
    const seed = await newMachine({ volumes: [{ volume_id: rw, mount_path: '/data' }] });
    await sh(seed.id, 'echo seeded > /data/f');
    await destroy(seed.id);

    const withRw = await newMachine({ volumes: [{ volume_id: rw, mount_path: '/data' }, { volume_id: ro, mount_path: '/ro', read_only: true }] });
    const rwSnap = await t.request('POST', `/v1/machines/${withRw.id}/snapshots`);
    assert.equal(rwSnap.status, 201, rwSnap.text);
    const refused = await t.request('POST', '/v1/machines', { body: { snapshot_id: rwSnap.body.id } });
    assert.equal(refused.status, 409, refused.text);
    assert.equal(refused.body.code, 'VOLUME_IN_USE');
    assert.match(refused.body.message, /fork cannot share a read-write volume/);
    await destroy(withRw.id);
    // Still refused once the writer is gone: a fork restores its source's mounts as they were.
    assert.equal((await t.request('POST', '/v1/machines', { body: { snapshot_id: rwSnap.body.id } })).status, 409);

    const reader = await newMachine({ volumes: [{ volume_id: rw, mount_path: '/in', read_only: true }] });
    await sh(reader.id, 'cd /in && (while :; do cat f > /tmp/seen; sleep 0.05; done) > /dev/null 2>&1 &');
    const snap = await t.request('POST', `/v1/machines/${reader.id}/snapshots`);
    assert.equal(snap.status, 201, snap.text);
    const asked = await t.request('POST', '/v1/machines', { body: { snapshot_id: snap.body.id, volumes: [{ volume_id: ro, mount_path: '/x' }] } });
    assert.equal(asked.status, 422);
    assert.equal(asked.body.code, 'UNSUPPORTED_OPERATION');
    assert.match(asked.body.message, /volumes/);
    const fork = await newMachine({ snapshot_id: snap.body.id });
    assert.deepEqual(fork.metadata.volume_attachments, [{ volume_id: rw, mount_path: '/in', read_only: true, mode: 'ro', state: 'attached' }]);
    assert.equal((await sh(fork.id, 'cat /in/f')).out, 'seeded\n');
    await sh(fork.id, 'rm /tmp/seen');
    await waitFor(async () => (await sh(fork.id, 'cat /tmp/seen')).out === 'seeded\n');
    for (const id of [fork.id, reader.id]) await destroy(id);
  });

  it('a restore point reverts the machine\'s disk and memory, never the volume', async () => {
    const vol = await newVolume('revert');
    const m = await newMachine({ volumes: [{ volume_id: vol, mount_path: '/data' }] });
    await sh(m.id, 'echo before > /data/a; echo before > /root/a');
    const caller = await t.server.auth.authenticate(`Bearer ${ADMIN_KEY}`);
    await t.server.machines.update(caller, m.id, { restorePoint: {} });
    await sh(m.id, 'echo after > /data/b; echo after > /root/b; sync');
    assert.equal((await t.request('POST', `/v1/machines/${m.id}/pause`)).status, 200);
    assert.equal((await t.request('POST', `/v1/machines/${m.id}/resume`)).status, 200);
    assert.equal((await sh(m.id, 'cat /root/a; test -e /root/b && echo not-reverted; true')).out, 'before\n', 'the machine\'s disk was reverted');
    assert.equal((await sh(m.id, 'cat /data/a /data/b')).out, 'before\nafter\n', 'the volume kept every write');
    await destroy(m.id);
  });

  it('a create with volumes never takes a warm-pool machine', async () => {
    const put = await t.request('PUT', '/v1/warm-pools/vols', { body: { template: 'base', size: 1 } });
    assert.ok(put.status < 300, put.text);
    await waitFor(async () => (await t.request('GET', '/v1/warm-pools/vols')).body.ready >= 1, 60_000);
    const vol = await newVolume('pooled');
    const m = await newMachine({ volumes: [{ volume_id: vol, mount_path: '/data' }] });
    assert.equal(m.warm_pool_checkout, undefined, 'the pool was not considered');
    assert.equal((await sh(m.id, 'grep -c " /data " /proc/mounts')).out.trim(), '1');
    await destroy(m.id);
    assert.equal((await t.request('DELETE', '/v1/warm-pools/vols')).status < 300, true);
  });

  it('across a server restart: running machines keep their volumes, the mount count is rebuilt', async () => {
    const vol = await newVolume('restart');
    const w = await newMachine({ volumes: [{ volume_id: vol, mount_path: '/data' }] });
    await sh(w.id, 'echo kept > /data/f');
    await t.restart();
    assert.ok(await hostMounted(vol), 'the running machine\'s volume stays mounted');
    assert.equal((await sh(w.id, 'cat /data/f; echo more >> /data/f')).code, 0);
    const r = await newMachine({ volumes: [{ volume_id: vol, mount_path: '/ro', read_only: true }] });
    assert.equal((await sh(r.id, 'cat /ro/f')).out, 'kept\nmore\n');
    await destroy(r.id);
    assert.ok(await hostMounted(vol), 'the writer still uses it');
    assert.equal((await t.request('POST', `/v1/machines/${w.id}/pause`)).status, 200);
    assert.equal(await hostMounted(vol), false, 'unmounted with its last user');
    // What a crash could leave: a mount no running machine uses, and files of a volume no record has.
    await t.server.close();
    const stale = join(t.server.settings.volumesDir, 'mounts', `${t.server.settings.instancePrefix}-${vol}`);
    await mkdir(stale, { recursive: true });
    await execFileP('mount', ['-o', 'loop', join(t.server.settings.volumesDir, vol, 'volume.img'), stale]);
    const orphan = join(t.server.settings.volumesDir, 'vol_orphan0000000000');
    await mkdir(orphan, { recursive: true });
    await writeFile(join(orphan, 'volume.img'), 'x');
    assert.ok(await hostMounted(vol));
    await t.restart();
    assert.equal(await hostMounted(vol), false, 'a stale mount is removed at start');
    assert.equal(await stat(orphan).catch(() => null), null, 'files of no volume are removed at start');
    assert.equal((await t.request('POST', `/v1/machines/${w.id}/resume`)).status, 200);
    assert.equal((await sh(w.id, 'cat /data/f')).out, 'kept\nmore\n');
    await destroy(w.id);
  });
});
