/**
 * Real machines on real runc: every limit of `config` enforced, isolation as the
 * issue lists it, and destroy leaving nothing behind.
 */
import assert from 'node:assert/strict';
import { readFile, readlink, stat } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { execIn, leftovers, TestServer, waitFor } from '../../testing/harness.js';
import { layerPaths } from './writable-layer.js';

const PIDS_LIMIT = 64;

describe('runc runtime: real machines', () => {
  let t: TestServer;
  before(async () => {
    t = await TestServer.start({ env: { HANGAR_PIDS_LIMIT: String(PIDS_LIMIT) } });
  });
  after(async () => {
    await t.dispose();
  });

  const cgroupFile = (controller: string, id: string, file: string) =>
    readFile(`/sys/fs/cgroup/${controller}/${t.server.settings.instancePrefix}/${id}/${file}`, 'utf8').then((s) => s.trim());

  async function create(body: Record<string, unknown> = {}): Promise<string> {
    const r = await t.request('POST', '/v1/machines', { body });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.body.status, 'running');
    return r.body.id as string;
  }

  it('runs busybox init as pid 1 in its own pid, uts, net, ipc and mount namespaces', async () => {
    const id = await create();
    const ps = await execIn(t.server, id, ['ps', '-o', 'pid,comm']);
    assert.match(ps.out, /^\s*1\s+init$/m);
    assert.equal((await execIn(t.server, id, ['hostname'])).out.trim(), id);
    const links = (await execIn(t.server, id, ['ip', '-o', 'link'])).out;
    assert.deepEqual(links.trim().split('\n').map((l) => l.split(':')[1]!.trim().replace(/@.*/, '')), ['lo', 'eth0'], 'loopback and its own eth0 in its network namespace');
    const state = await t.server.runtime.inspect(id);
    assert.ok(state && state.status === 'running' && state.pid > 1);
    for (const ns of ['pid', 'uts', 'net', 'ipc', 'mnt']) {
      assert.notEqual(await readlink(`/proc/${state.pid}/ns/${ns}`), await readlink(`/proc/self/ns/${ns}`), `${ns} namespace is the host's`);
    }
  });

  it('drops capabilities, sets no_new_privs and seccomp, and refuses mount and new namespaces', async () => {
    const id = await create();
    const status = (await execIn(t.server, id, ['cat', '/proc/self/status'])).out;
    // CAP_KILL (5), CAP_NET_BIND_SERVICE (10), CAP_AUDIT_WRITE (29): runc spec's default set.
    assert.match(status, /^CapEff:\s+0000000020000420$/m);
    assert.match(status, /^CapBnd:\s+0000000020000420$/m);
    assert.match(status, /^NoNewPrivs:\s+1$/m);
    assert.match(status, /^Seccomp:\s+2$/m);
    const mount = await execIn(t.server, id, ['mount', '-t', 'tmpfs', 'none', '/mnt']);
    assert.notEqual(mount.code, 0, 'mount must fail inside a machine');
    const userns = await execIn(t.server, id, ['unshare', '-U', 'true']);
    assert.notEqual(userns.code, 0, 'a new user namespace must be refused');
    assert.match(userns.out, /not permitted/i);
    const kmsg = await execIn(t.server, id, ['cat', '/proc/kcore']);
    assert.notEqual(kmsg.code, 0, '/proc/kcore is masked');
  });

  it('enforces memory_mb: the cgroup limit is set and a process cannot exceed it', async () => {
    const id = await create({ config: { memory_mb: 32 } });
    assert.equal(Number(await cgroupFile('memory', id, 'memory.limit_in_bytes')), 32 * 1024 * 1024);
    // /dev/shm pages are charged to the machine's memory cgroup and cannot be reclaimed without swap.
    const r = await execIn(t.server, id, ['sh', '-c', 'dd if=/dev/zero of=/dev/shm/fill bs=1M count=60 2>&1; echo rc=$?; ls -l /dev/shm/fill']);
    const max = Number(await cgroupFile('memory', id, 'memory.max_usage_in_bytes'));
    assert.ok(max <= 32 * 1024 * 1024, `peak ${max} above the limit`);
    assert.match(await cgroupFile('memory', id, 'memory.oom_control'), /oom_kill [1-9]/, 'the OOM killer never acted');
    assert.match(r.out, /Killed|rc=[1-9]/, 'dd was not stopped');
    assert.doesNotMatch(r.out, /62914560 .*fill/, 'all 60 MiB were written');
  });

  it('enforces vcpus as a CPU quota', async () => {
    const id = await create({ config: { vcpus: 1 } });
    assert.equal(await cgroupFile('cpu', id, 'cpu.cfs_quota_us'), '100000');
    assert.equal(await cgroupFile('cpu', id, 'cpu.cfs_period_us'), '100000');
    const two = await create({ config: { vcpus: 2 } });
    assert.equal(await cgroupFile('cpu', two, 'cpu.cfs_quota_us'), '200000');
    // Three busy loops under a one-CPU quota: throttling must kick in (polled: a loaded host
    // may give the loops less than a CPU for a while).
    const loop = '(timeout 8 sh -c "while :; do :; done" &)';
    await execIn(t.server, id, ['sh', '-c', `${loop}; ${loop}; ${loop}`]);
    let stats = '';
    const throttled = await waitFor(async () => {
      stats = await cgroupFile('cpu', id, 'cpu.stat');
      return Number(/nr_throttled (\d+)/.exec(stats)?.[1]) > 0;
    }, 7_000).catch(() => false);
    assert.ok(throttled, `never throttled: ${stats}`);
  });

  it('enforces disk_mb: writing past it fails with "No space left on device"', async () => {
    const id = await create({ config: { disk_mb: 32 } });
    const r = await execIn(t.server, id, ['dd', 'if=/dev/zero', 'of=/root/big', 'bs=1M', 'count=64']);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /No space left on device/);
    const ok = await execIn(t.server, id, ['sh', '-c', 'rm /root/big && echo small > /root/small && cat /root/small']);
    assert.equal(ok.out.trim(), 'small', 'the machine recovers once space is freed');
  });

  it('stops a fork bomb at the pids limit and stays usable', async () => {
    const id = await create();
    assert.equal(await cgroupFile('pids', id, 'pids.max'), String(PIDS_LIMIT));
    await execIn(t.server, id, ['timeout', '-s', 'KILL', '3', 'sh', '-c', 'b(){ b|b& }; b'], 10_000);
    const peak = Number(await cgroupFile('pids', id, 'pids.peak').catch(() => '0'));
    assert.ok(peak <= PIDS_LIMIT, `peak ${peak} over the limit`);
    const events = await cgroupFile('pids', id, 'pids.events');
    assert.match(events, /max [1-9]/, 'fork failures were counted');
    // Failed forks make the bomb's shells exit; the machine then answers again.
    await waitFor(async () => (await execIn(t.server, id, ['echo', 'alive'])).out.trim() === 'alive', 20_000, 250);
    assert.equal((await t.request('GET', `/v1/machines/${id}`)).body.status, 'running');
  });

  it('puts each machine in cgroups whose paths contain its id', async () => {
    const id = await create();
    const state = await t.server.runtime.inspect(id);
    const cg = await readFile(`/proc/${state!.pid}/cgroup`, 'utf8');
    for (const ctl of ['memory', 'pids', 'cpu']) {
      assert.match(cg, new RegExp(`:[^:]*\\b${ctl}\\b[^:]*:/${t.server.settings.instancePrefix}/${id}$`, 'm'));
    }
  });

  it('keeps machines apart: a file written in one is not in another', async () => {
    const a = await create();
    const b = await create();
    await execIn(t.server, a, ['sh', '-c', 'echo secret > /root/a.txt']);
    const seen = await execIn(t.server, b, ['cat', '/root/a.txt']);
    assert.notEqual(seen.code, 0);
    // Besides init and ps itself, only the machine's agent (its server and the session running ps).
    const ps = (await execIn(t.server, b, ['ps', '-o', 'pid,args'])).out.trim().split('\n').slice(1);
    const others = ps.filter((l) => !/\/\.hangar\/bin\/hangar-agent /.test(l));
    assert.ok(others.length <= 3, `machine sees ${others.length} processes: host or other machines are visible: ${ps.join('; ')}`);
  });

  it('destroy removes processes, mounts, cgroups and files', async () => {
    const id = await create();
    const state = await t.server.runtime.inspect(id);
    const paths = layerPaths(t.server.settings.machinesDir, id);
    const r = await t.request('DELETE', `/v1/machines/${id}`);
    assert.equal(r.status, 200);
    assert.equal(r.body.status, 'destroyed');
    assert.equal(await t.server.runtime.inspect(id), null);
    // The host's init reaps the killed container init; give it a moment.
    await waitFor(async () => (await stat(`/proc/${state!.pid}`).catch(() => null)) === null, 5_000);
    const mounts = await readFile('/proc/self/mounts', 'utf8');
    assert.ok(!mounts.includes(paths.dir), 'a mount of the machine is left');
    assert.equal(await stat(paths.dir).catch(() => null), null, 'machine files left');
    for (const ctl of ['memory', 'pids', 'cpu']) {
      assert.equal(await stat(`/sys/fs/cgroup/${ctl}/${t.server.settings.instancePrefix}/${id}`).catch(() => null), null, `${ctl} cgroup left`);
    }
  });

  it('reports every host resource of the instance as gone after dispose (checked by leftovers)', async () => {
    // leftovers() is what dispose() asserts with; prove it sees a live machine.
    const id = await create();
    const left = await leftovers(t.dataDir, t.server.settings.instancePrefix);
    assert.ok(left.some((l) => l.includes(id)), `leftovers() missed a live machine: ${left.join('; ')}`);
  });
});
