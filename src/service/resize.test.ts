/**
 * Resizing running machines through PATCH /v1/machines/{id} on real machines: the host
 * cgroup files carry the new CPU quota and memory limit, the machine sees a larger disk
 * it can fill, its processes run on; refusals (a smaller disk, memory below what a
 * process holds, a paused machine, bad values, a grow failing after its checkpoint)
 * change nothing.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execIn, TestServer, waitFor, type TestResponse } from '../testing/harness.js';

const MIB = 1024 * 1024;
const COUNTER = 'i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done > /dev/null 2>&1 &';
/** A process holding 40 MiB of anonymous memory: dd's buffer, filled, blocked writing to a pipe nobody reads. */
const HOLD_40M = '(dd if=/dev/zero bs=40M count=2 2>/dev/null | sleep 1000) > /dev/null 2>&1 < /dev/null &';

describe('resize a running machine (native API)', () => {
  let t: TestServer;
  let key: string;
  let id: string;
  const timings: Record<string, number[]> = { 'cpu+memory': [], disk: [] };

  const api = (method: string, path: string, body?: unknown): Promise<TestResponse> => t.request(method, path, { body, key });
  const patch = async (config: Record<string, unknown>, kind?: string): Promise<TestResponse> => {
    const started = performance.now();
    const r = await api('PATCH', `/v1/machines/${id}`, { config });
    if (kind !== undefined && r.status === 200) timings[kind]!.push(Math.round(performance.now() - started));
    return r;
  };
  const cgroup = (controller: string, file: string): Promise<string> =>
    readFile(join('/sys/fs/cgroup', controller, t.server.settings.instancePrefix, id, file), 'utf8').then((s) => s.trim());
  const exec = async (cmd: string): Promise<string> => {
    const r = await api('POST', `/v1/machines/${id}/exec`, { cmd });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.exit_code, 0, r.text);
    return r.body.stdout as string;
  };
  /** Size of / inside the machine in KiB, as df reports it. */
  const rootKib = async (): Promise<number> => Number((await exec('df -k / | tail -1')).trim().split(/\s+/).at(-5));
  const count = async (): Promise<number> => Number((await execIn(t.server, id, ['cat', '/tmp/count'])).out.trim());
  const limits = async () => ({
    quota: await cgroup('cpu', 'cpu.cfs_quota_us'),
    period: await cgroup('cpu', 'cpu.cfs_period_us'),
    memory: await cgroup('memory', 'memory.limit_in_bytes'),
    memsw: await cgroup('memory', 'memory.memsw.limit_in_bytes'),
    pids: await cgroup('pids', 'pids.max'),
  });

  before(async () => {
    t = await TestServer.start();
    ({ key } = await t.newTeamKey('resize'));
    const r = await api('POST', '/v1/machines', { config: { vcpus: 1, memory_mb: 128, disk_mb: 64 } });
    assert.equal(r.status, 201, r.text);
    id = r.body.id;
    await execIn(t.server, id, ['sh', '-c', COUNTER]);
    await waitFor(async () => (await count()) > 2);
  });
  after(async () => {
    await t.dispose();
    console.log(`resize timings (ms): ${JSON.stringify(timings)}`);
  });

  it('CPU and memory change at once in the host cgroups; the processes run on', async () => {
    assert.deepEqual(await limits(), { quota: '100000', period: '100000', memory: String(128 * MIB), memsw: String(128 * MIB), pids: '512' });
    const pid = (await t.server.runtime.inspect(id))!.pid;
    const r = await patch({ vcpus: 2, memory_mb: 256 }, 'cpu+memory');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.config, { vcpus: 2, memory_mb: 256, disk_mb: 64 });
    assert.deepEqual(await limits(), { quota: '200000', period: '100000', memory: String(256 * MIB), memsw: String(256 * MIB), pids: '512' });
    assert.equal((await t.server.runtime.inspect(id))!.pid, pid, 'the same init, not a restart');
    const c = await count();
    await waitFor(async () => (await count()) > c);
    assert.deepEqual((await api('GET', `/v1/machines/${id}`)).body.config, { vcpus: 2, memory_mb: 256, disk_mb: 64 });
    // A few more samples for the timings, ending where it was.
    for (const config of [{ vcpus: 3, memory_mb: 384 }, { vcpus: 1, memory_mb: 192 }, { vcpus: 2, memory_mb: 256 }]) {
      assert.equal((await patch(config, 'cpu+memory')).status, 200);
    }
    assert.equal(await cgroup('cpu', 'cpu.cfs_quota_us'), '200000');
  });

  it('the disk grows: df inside shows it and a file larger than the old quota fits; processes and files are kept', async () => {
    await exec('echo kept > /root/before');
    const before = await rootKib();
    assert.ok(before < 64 * 1024, `df before: ${before} KiB`);
    // Larger than the whole old disk: refused now.
    const full = await api('POST', `/v1/machines/${id}/exec`, { cmd: 'dd if=/dev/zero of=/root/big bs=1M count=100' });
    assert.notEqual(full.body.exit_code, 0, 'a 100 MiB file must not fit in 64 MiB');
    await exec('rm -f /root/big');

    const r = await patch({ disk_mb: 256 }, 'disk');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.config, { vcpus: 2, memory_mb: 256, disk_mb: 256 });
    const after = await rootKib();
    assert.ok(after > 0.88 * 256 * 1024 && after <= 256 * 1024, `df after: ${after} KiB (ext4 keeps some for itself)`);
    await exec('dd if=/dev/zero of=/root/big bs=1M count=100 2>/dev/null');
    assert.equal(Number((await exec('wc -c < /root/big')).trim()), 100 * MIB);
    assert.equal((await exec('cat /root/before')).trim(), 'kept');
    const c = await count();
    await waitFor(async () => (await count()) > c);
    // The limits set before are still in force after the disk step.
    assert.equal(await cgroup('cpu', 'cpu.cfs_quota_us'), '200000');
    assert.equal(await cgroup('memory', 'memory.limit_in_bytes'), String(256 * MIB));
    for (const disk_mb of [320, 384]) assert.equal((await patch({ disk_mb }, 'disk')).status, 200);
    assert.ok((await rootKib()) > 0.88 * 384 * 1024);
  });

  it('all three at once, recorded as one update event', async () => {
    const r = await patch({ vcpus: 1, memory_mb: 320, disk_mb: 448 });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.config, { vcpus: 1, memory_mb: 320, disk_mb: 448 });
    assert.equal(await cgroup('cpu', 'cpu.cfs_quota_us'), '100000');
    assert.equal(await cgroup('memory', 'memory.memsw.limit_in_bytes'), String(320 * MIB));
    assert.ok((await rootKib()) > 0.88 * 448 * 1024);
    const events = await t.request('GET', `/paperspace/v1/machine-events?machineId=${id}&limit=120`, { key });
    assert.equal(events.status, 200, events.text);
    const updates = (events.body.items as Array<{ name: string; state: string }>).filter((e) => e.name === 'update');
    assert.equal(updates.length, 8, JSON.stringify(events.body.items));
    assert.ok(updates.every((e) => e.state === 'done'));
  });

  it('a smaller disk is refused (422) and nothing changes', async () => {
    const r = await patch({ disk_mb: 128, vcpus: 2 });
    assert.equal(r.status, 422, r.text);
    assert.equal(r.body.code, 'UNSUPPORTED_OPERATION');
    assert.match(r.body.message, /[Ss]hrinking the disk is not supported.*create a new machine/);
    assert.deepEqual((await api('GET', `/v1/machines/${id}`)).body.config, { vcpus: 1, memory_mb: 320, disk_mb: 448 });
    assert.equal(await cgroup('cpu', 'cpu.cfs_quota_us'), '100000');
    assert.ok((await rootKib()) > 0.88 * 448 * 1024);
  });

  it('memory below what a process holds is refused (409) and nothing changes; a later resize works', async () => {
    await exec(HOLD_40M);
    await waitFor(async () => Number(await cgroup('memory', 'memory.usage_in_bytes')) > 40 * MIB);
    const r = await patch({ memory_mb: 20, vcpus: 3 });
    assert.equal(r.status, 409, r.text);
    assert.equal(r.body.code, 'STATE_CONFLICT');
    assert.match(r.body.message, /uses \d+ MiB of memory.*Nothing was changed/);
    assert.ok(r.body.details.used_mb >= 40, r.text);
    assert.deepEqual(await limits(), { quota: '100000', period: '100000', memory: String(320 * MIB), memsw: String(320 * MIB), pids: '512' });
    assert.deepEqual((await api('GET', `/v1/machines/${id}`)).body.config, { vcpus: 1, memory_mb: 320, disk_mb: 448 });
    assert.match(await exec('ps'), /sleep 1000/, 'the process holding the memory still runs');
    // Above what it holds: accepted.
    const ok = await patch({ memory_mb: 96 }, 'cpu+memory');
    assert.equal(ok.status, 200, ok.text);
    assert.equal(await cgroup('memory', 'memory.limit_in_bytes'), String(96 * MIB));
  });

  it('bad values are 400 and change nothing', async () => {
    const bad: Array<[unknown, string]> = [
      [{ config: { vcpus: 0 } }, 'vcpus'],
      [{ config: { vcpus: 1.5 } }, 'vcpus'],
      [{ config: { memory_mb: 8 } }, 'memory_mb'],
      [{ config: { disk_mb: 'big' } }, 'disk_mb'],
      [{ config: { disk_mb: 2_000_000 } }, 'disk_mb'],
      [{ config: {} }, 'config'],
      [{ config: { gpus: 1 } }, 'gpus'],
      [{ name: 'x' }, 'name'],
      [{}, 'config'],
    ];
    for (const [body, field] of bad) {
      const r = await api('PATCH', `/v1/machines/${id}`, body);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
      assert.equal(r.body.code, 'VALIDATION_FAILED');
      assert.ok(r.text.includes(field), `${JSON.stringify(body)} names ${field}: ${r.text}`);
    }
    assert.equal((await t.request('PATCH', `/v1/machines/mch_nosuchmachine00`, { body: { config: { vcpus: 2 } }, key })).status, 404);
    assert.deepEqual((await api('GET', `/v1/machines/${id}`)).body.config, { vcpus: 1, memory_mb: 96, disk_mb: 448 });
  });

  it('a disk grow keeps processes started after an earlier restore: restores leave no time namespace behind', async () => {
    // The holder of the test above started after the disk grows' restores (see growDiskHeld).
    const r = await patch({ disk_mb: 512, vcpus: 2 }, 'disk');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.config, { vcpus: 2, memory_mb: 96, disk_mb: 512 });
    assert.equal(await cgroup('cpu', 'cpu.cfs_quota_us'), '200000');
    assert.match(await exec('ps'), /sleep 1000/);
    assert.ok((await rootKib()) > 448 * 1024, 'larger than the disk before');
  });

  it('a paused machine is refused (409: start it first); after the resume the resized limits and disk hold', async () => {
    const created = await api('POST', '/v1/machines', { config: { vcpus: 1, memory_mb: 64, disk_mb: 32 } });
    assert.equal(created.status, 201, created.text);
    const first = id;
    id = created.body.id;
    try {
      assert.equal((await patch({ vcpus: 2, memory_mb: 96, disk_mb: 48 })).status, 200);
      const paused = await api('POST', `/v1/machines/${id}/pause`);
      assert.equal(paused.status, 200, paused.text);
      const r = await patch({ vcpus: 3 });
      assert.equal(r.status, 409, r.text);
      assert.equal(r.body.code, 'STATE_CONFLICT');
      assert.match(r.body.message, /start it first/);
      // Asking for what it has already is no resize: accepted while paused.
      assert.equal((await patch({ vcpus: 2 })).status, 200);
      const resumed = await api('POST', `/v1/machines/${id}/resume`);
      assert.equal(resumed.status, 200, resumed.text);
      // The restore reads the regenerated bundle: the limits of the resize, not those of the create.
      assert.equal(await cgroup('cpu', 'cpu.cfs_quota_us'), '200000');
      assert.equal(await cgroup('memory', 'memory.limit_in_bytes'), String(96 * MIB));
      assert.ok((await rootKib()) > 32 * 1024, 'larger than the whole old disk');
    } finally {
      id = first;
    }
  });
});

describe('a disk grow that fails after the checkpoint', () => {
  let t: TestServer;
  let fakes: string;
  before(async () => {
    t = await TestServer.start();
    // An e2fsck that fails, found first on PATH only while the resize runs: the failure
    // comes after the processes were checkpointed and the layer unmounted.
    fakes = await mkdtemp(join(tmpdir(), 'hangar-resize-fakes-'));
    await writeFile(join(fakes, 'e2fsck'), '#!/bin/sh\necho "e2fsck: injected failure" >&2\nexit 8\n', { mode: 0o755 });
  });
  after(async () => {
    await t.dispose();
    await rm(fakes, { recursive: true, force: true });
  });

  it('restores the processes on the old disk with the old limits: 500 saying it still runs, nothing changed', async () => {
    const created = await t.request('POST', '/v1/machines', { body: { config: { vcpus: 1, memory_mb: 64, disk_mb: 32 } } });
    assert.equal(created.status, 201, created.text);
    const id = created.body.id as string;
    await execIn(t.server, id, ['sh', '-c', COUNTER]);
    const count = async (): Promise<number> => Number((await execIn(t.server, id, ['cat', '/tmp/count'])).out.trim());
    await waitFor(async () => (await count()) > 2);
    const cpu = join('/sys/fs/cgroup/cpu', t.server.settings.instancePrefix, id, 'cpu.cfs_quota_us');
    const path = process.env.PATH;
    process.env.PATH = `${fakes}:${path}`;
    let r: TestResponse;
    try {
      r = await t.request('PATCH', `/v1/machines/${id}`, { body: { config: { vcpus: 2, disk_mb: 64 } } });
    } finally {
      process.env.PATH = path;
    }
    assert.equal(r.status, 500, r.text);
    assert.equal(r.body.code, 'RUNTIME_FAILED');
    assert.match(r.body.message, /injected failure.*still running with its old resources/);
    const m = (await t.request('GET', `/v1/machines/${id}`)).body;
    assert.equal(m.status, 'running');
    assert.deepEqual(m.config, { vcpus: 1, memory_mb: 64, disk_mb: 32 });
    assert.equal((await readFile(cpu, 'utf8')).trim(), '100000');
    const kib = Number((await execIn(t.server, id, ['df', '-k', '/'])).out.trim().split('\n').at(-1)!.split(/\s+/).at(-5));
    assert.ok(kib < 32 * 1024, `disk unchanged: ${kib} KiB`);
    const c = await count();
    await waitFor(async () => (await count()) > c);
    // The image was cut back to its size: the same grow works once e2fsck does.
    const ok = await t.request('PATCH', `/v1/machines/${id}`, { body: { config: { vcpus: 2, disk_mb: 64 } } });
    assert.equal(ok.status, 200, ok.text);
    assert.equal((await readFile(cpu, 'utf8')).trim(), '200000');
  });
});

describe('resize on a host without CRIU (and, like this one, without CAP_SYS_RESOURCE)', () => {
  let t: TestServer;
  before(async () => {
    t = await TestServer.start({ env: { HANGAR_CRIU: '/nonexistent/criu' } });
  });
  after(async () => {
    await t.dispose();
  });

  it('CPU and memory still change; growing the disk is a 422 that changes nothing', async (ctx) => {
    const status = await readFile('/proc/self/status', 'utf8');
    const capEff = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)$/m.exec(status)![1]}`);
    if (((capEff >> 24n) & 1n) === 1n) {
      ctx.skip('this host grows disks online (CAP_SYS_RESOURCE): no refusal to see');
      return;
    }
    const created = await t.request('POST', '/v1/machines', { body: { config: { vcpus: 1, memory_mb: 64, disk_mb: 32 } } });
    assert.equal(created.status, 201, created.text);
    const id = created.body.id as string;
    const r = await t.request('PATCH', `/v1/machines/${id}`, { body: { config: { vcpus: 2, disk_mb: 64 } } });
    assert.equal(r.status, 422, r.text);
    assert.equal(r.body.code, 'UNSUPPORTED_OPERATION');
    assert.match(r.body.message, /CAP_SYS_RESOURCE.*CRIU/);
    const cpu = join('/sys/fs/cgroup/cpu', t.server.settings.instancePrefix, id, 'cpu.cfs_quota_us');
    assert.equal((await readFile(cpu, 'utf8')).trim(), '100000');
    assert.deepEqual((await t.request('GET', `/v1/machines/${id}`)).body.config, { vcpus: 1, memory_mb: 64, disk_mb: 32 });
    const ok = await t.request('PATCH', `/v1/machines/${id}`, { body: { config: { vcpus: 2, memory_mb: 128 } } });
    assert.equal(ok.status, 200, ok.text);
    assert.equal((await readFile(cpu, 'utf8')).trim(), '200000');
    const df = (await execIn(t.server, id, ['df', '-k', '/'])).out.trim().split('\n').at(-1)!.split(/\s+/).at(-5);
    assert.ok(Number(df) < 32 * 1024, `disk unchanged: ${df} KiB`);
  });
});

describe('a restore point taken before a resize', () => {
  let t: TestServer;
  let key: string;
  let id: string;
  const api = (method: string, path: string, body?: unknown): Promise<TestResponse> => t.request(method, path, { body, key });
  const finished = async (r: TestResponse): Promise<void> => {
    assert.equal(r.status, 200, r.text);
    const done = await t.finishedEvent(r.body.event.id, key);
    assert.equal(done.state, 'done', JSON.stringify(done));
  };

  before(async () => {
    t = await TestServer.start();
    ({ key } = await t.newTeamKey('resize-restore-point'));
    const r = await api('POST', '/v1/machines', { config: { vcpus: 1, memory_mb: 128, disk_mb: 64 } });
    assert.equal(r.status, 201, r.text);
    id = r.body.id;
  });
  after(async () => {
    await t.dispose();
  });

  it('brings the restore point\'s resources back at the stop, with its disk', async () => {
    await finished(await api('PUT', `/paperspace/v1/machines/${id}`, { restorePointEnabled: true }));
    const grown = await api('PATCH', `/v1/machines/${id}`, { config: { memory_mb: 256, disk_mb: 128 } });
    assert.equal(grown.status, 200, grown.text);
    assert.deepEqual(grown.body.config, { vcpus: 1, memory_mb: 256, disk_mb: 128 });
    await finished(await api('PATCH', `/paperspace/v1/machines/${id}/stop`));
    const stopped = await api('GET', `/v1/machines/${id}`);
    assert.deepEqual(stopped.body.config, { vcpus: 1, memory_mb: 128, disk_mb: 64 }, 'the record follows the reverted disk image');
    await finished(await api('PATCH', `/paperspace/v1/machines/${id}/start`));
    const limit = await readFile(join('/sys/fs/cgroup/memory', t.server.settings.instancePrefix, id, 'memory.limit_in_bytes'), 'utf8');
    assert.equal(Number(limit), 128 * MIB);
    const df = (await execIn(t.server, id, ['df', '-k', '/'])).out.trim().split('\n').at(-1)!.split(/\s+/).at(-5);
    assert.ok(Number(df) < 80 * 1024, `df shows the restore point's 64 MiB disk, not 128 MiB: ${df} KiB`);
  });
});
