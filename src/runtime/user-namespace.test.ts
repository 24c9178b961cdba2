/**
 * User-namespaced machines (HANGAR_USER_NAMESPACES=on) on real runc and CRIU: machine
 * root is an unprivileged range of host ids, and what works without one keeps working
 * (writes to the template's files, the files API, low ports, commands as other users in
 * the machine's own network, volumes shared between machines of different ranges,
 * pause and resume with the same processes, forks).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { ADMIN_KEY, TestServer, waitFor } from '../testing/harness.js';
import { FIRST_UID_BASE, UID_RANGE_SIZE } from './user-namespace.js';

describe('user-namespaced machines', () => {
  let t: TestServer;
  const exec = async (id: string, cmd: string, user?: string): Promise<{ code: number; out: string }> => {
    const r = await t.request('POST', `/v1/machines/${id}/exec`, { body: { cmd, ...(user ? { user } : {}) } });
    assert.equal(r.status, 200, r.text);
    return { code: r.body.exit_code as number, out: `${r.body.stdout as string}${r.body.stderr as string}` };
  };
  const create = async (body: Record<string, unknown> = {}): Promise<string> => {
    const r = await t.request('POST', '/v1/machines', { body });
    assert.equal(r.status, 201, r.text);
    return r.body.id as string;
  };
  /** The host range a machine's ids 0.. are, from its own /proc/self/uid_map. */
  const rangeOf = async (id: string): Promise<number> => {
    const fields = (await exec(id, 'cat /proc/self/uid_map')).out.trim().split(/\s+/).map(Number);
    assert.equal(fields[0], 0);
    assert.equal(fields[2], UID_RANGE_SIZE);
    return fields[1]!;
  };

  before(async () => {
    t = await TestServer.start({ env: { HANGAR_USER_NAMESPACES: 'on' } });
  });
  after(async () => {
    await t.dispose();
  });

  it("machine root is the first id of the machine's own unprivileged range on the host", async () => {
    const a = await create();
    const b = await create();
    const [ra, rb] = [await rangeOf(a), await rangeOf(b)];
    assert.ok(ra >= FIRST_UID_BASE && rb >= FIRST_UID_BASE, `ranges ${ra}, ${rb}`);
    assert.notEqual(ra, rb, 'two machines share a range');
    assert.equal((await exec(a, 'id -u; id -g')).out, '0\n0\n');
    const pid = (await t.server.runtime.inspect(a))!.pid;
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    assert.match(status, new RegExp(`^Uid:\\s+${ra}\\s+${ra}\\s+${ra}\\s+${ra}$`, 'm'), 'init is not the range\'s first id on the host');
    // What host root could do and machine root cannot, whatever its capabilities inside.
    assert.notEqual((await exec(a, 'echo 1 > /proc/sys/kernel/sysrq')).code, 0);
    assert.notEqual((await exec(a, 'mount -t tmpfs none /mnt')).code, 0);
    await t.request('DELETE', `/v1/machines/${a}`);
    await t.request('DELETE', `/v1/machines/${b}`);
  });

  it("the template's files are root's, and root writes anywhere on its disk; the files API agrees", async () => {
    const id = await create({ cwd: '/work/here' });
    assert.equal((await exec(id, 'stat -c %u:%g / /etc /root /work/here')).out, '0:0\n0:0\n0:0\n0:0\n');
    assert.equal((await exec(id, 'touch /top && mkdir /etc/new && echo x > /root/f && stat -c %u /top /etc/new /root/f')).out, '0\n0\n0\n');
    const put = await t.request('PUT', `/v1/machines/${id}/files?path=/srv/put.txt`, { rawBody: 'through the API' });
    assert.ok(put.status === 200 || put.status === 201 || put.status === 204, put.text);
    assert.equal((await exec(id, 'stat -c %u:%g /srv/put.txt && cat /srv/put.txt')).out, '0:0\nthrough the API');
    await t.request('DELETE', `/v1/machines/${id}`);
  });

  it("binds a low port, and a command as another user runs in the machine's network, not the host's", async () => {
    const id = await create();
    const served = await exec(id, 'mkdir -p /www && echo hello > /www/index.html && httpd -p 80 -h /www && wget -qO- http://127.0.0.1:80/index.html');
    assert.equal(served.out, 'hello\n', served.out);
    // As nobody: the `runc exec` path, not the agent's.
    const nets = await exec(id, 'cat /proc/net/dev', 'nobody');
    const names = nets.out.split('\n').slice(2).map((l) => l.split(':')[0]!.trim()).filter(Boolean).sort();
    assert.deepEqual(names, ['eth0', 'lo']);
    assert.equal((await exec(id, 'id -u', 'nobody')).out, '65534\n');
    await t.request('DELETE', `/v1/machines/${id}`);
  });

  it('pause and resume keep the same processes and the range; a fork keeps its snapshot\'s range', async () => {
    const id = await create();
    const range = await rangeOf(id);
    await exec(id, 'i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done > /dev/null 2>&1 &');
    await waitFor(async () => Number((await exec(id, 'cat /tmp/count')).out) > 2);
    const paused = await t.request('POST', `/v1/machines/${id}/pause`);
    assert.equal(paused.status, 200, paused.text);
    const at = Number(await readFile(`${t.server.settings.snapshotsDir}/${paused.body.snapshot_id}/uid-base`, 'utf8'));
    assert.equal(at, range);
    const resumed = await t.request('POST', `/v1/machines/${id}/resume`);
    assert.equal(resumed.status, 200, resumed.text);
    const n = Number((await exec(id, 'cat /tmp/count')).out);
    await waitFor(async () => Number((await exec(id, 'cat /tmp/count')).out) > n, 5_000).catch(() => assert.fail('the counter did not come back'));
    assert.equal(await rangeOf(id), range);
    const snap = await t.request('POST', `/v1/machines/${id}/snapshots`);
    assert.equal(snap.status, 201, snap.text);
    const fork = await create({ snapshot_id: snap.body.id });
    assert.equal(await rangeOf(fork), range);
    const m = Number((await exec(fork, 'cat /tmp/count')).out);
    await waitFor(async () => Number((await exec(fork, 'cat /tmp/count')).out) > m, 5_000).catch(() => assert.fail('the fork\'s counter does not run'));
    assert.equal((await exec(fork, 'touch /fork-file && stat -c %u /fork-file')).out, '0\n');
    await t.request('DELETE', `/v1/machines/${fork}`);
    await t.request('DELETE', `/v1/machines/${id}`);
  });

  it("a volume written by one machine is root's in another of a different range", async () => {
    const v = await t.request('POST', '/v1/volumes', { body: { name: 'shared', size_mb: 64 } });
    assert.equal(v.status, 201, v.text);
    const a = await create({ volumes: [{ volume_id: v.body.id, mount_path: '/data' }] });
    assert.equal((await exec(a, 'stat -c %u:%g /data && mkdir /data/d && echo from-a > /data/d/f && stat -c %u /data/d/f')).out, '0:0\n0\n');
    // CRIU restores the volume's bind from inside the user namespace.
    assert.equal((await t.request('POST', `/v1/machines/${a}/pause`)).status, 200);
    const resumed = await t.request('POST', `/v1/machines/${a}/resume`);
    assert.equal(resumed.status, 200, resumed.text);
    assert.equal((await exec(a, 'cat /data/d/f')).out, 'from-a\n');
    await t.request('DELETE', `/v1/machines/${a}`);
    const b = await create({ volumes: [{ volume_id: v.body.id, mount_path: '/data' }] });
    assert.notEqual(await rangeOf(b), undefined);
    assert.equal((await exec(b, 'stat -c %u /data/d/f && cat /data/d/f && echo from-b >> /data/d/f && cat /data/d/f')).out, '0\nfrom-a\nfrom-a\nfrom-b\n');
    await t.request('DELETE', `/v1/machines/${b}`);
    assert.equal((await t.request('DELETE', `/v1/volumes/${v.body.id}`, { key: ADMIN_KEY })).status < 300, true);
  });
});
