/**
 * A paused machine resumes on another host that shares the snapshots directory: two
 * runtimes on this machine stand for two hosts (each its own instance prefix, data dir,
 * subnet and agents directory); the snapshots directory is a tmpfs of its own, so every
 * move of the disk image crosses file systems as it does onto shared storage.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { newMachineId } from '../../domain/ids.js';
import { defaultSubnet, IpAllocator } from '../../domain/network.js';
import { buildBaseTemplate } from '../../templates/base-template.js';
import { leftovers } from '../../testing/host-leftovers.js';
import type { ExecOptions, MachineSpec } from '../runtime.js';
import { readUidBase, writeUidBase } from '../user-namespace.js';
import { run } from './command.js';
import { RuncRuntime } from './runc-runtime.js';
import { moveFile, snapshotStoreId } from './snapshot-files.js';

interface Host {
  runtime: RuncRuntime;
  prefix: string;
  dataDir: string;
  ips: IpAllocator;
}

describe('runc runtime: a paused machine resumes on another host', () => {
  let root: string;
  let shared: string;
  let rootfs: string;
  let init: string[];
  let a: Host;
  let b: Host;

  function host(name: string): Host {
    const hex = randomBytes(4).toString('hex');
    const prefix = `hangar-${hex}`;
    const dataDir = join(root, name);
    const subnet = defaultSubnet(hex);
    const runtime = new RuncRuntime({
      runcPath: 'runc',
      criuPath: 'criu',
      machinesDir: join(dataDir, 'machines'),
      snapshotsDir: shared,
      instancePrefix: prefix,
      stateDir: `/run/${prefix}`,
      pidsLimit: 128,
      subnet,
      userNamespaces: true,
    });
    return { runtime, prefix, dataDir, ips: new IpAllocator(subnet) };
  }

  before(async () => {
    root = await realpath(await mkdtemp(join(tmpdir(), 'hangar-move-')));
    shared = join(root, 'shared-snapshots');
    await mkdir(shared);
    await run('mount', ['-t', 'tmpfs', '-o', 'size=512m', 'hangar-move-test', shared]);
    const template = await buildBaseTemplate({ templatesDir: join(root, 'templates'), busyboxPath: '/bin/busybox' });
    rootfs = join(root, 'templates', 'base', 'rootfs');
    init = template.init;
    a = host('a');
    b = host('b');
  });

  after(async () => {
    for (const h of [a, b]) {
      for (const id of (await readdir(join(h.dataDir, 'machines')).catch(() => [] as string[]))) await h.runtime.destroy(id);
      await h.runtime.teardown();
    }
    await run('umount', [shared]).catch(() => undefined);
    await rm(root, { recursive: true, force: true });
    const left = [...(await leftovers(root, a.prefix)), ...(await leftovers(root, b.prefix))];
    assert.deepEqual(left, [], 'the hosts left resources behind');
  });

  function spec(on: Host, id: string): MachineSpec {
    const ip = on.ips.allocate(id);
    assert.ok(ip);
    return {
      id,
      hostname: id,
      templateLayers: [rootfs],
      init,
      env: { PATH: '/bin:/sbin:/usr/bin:/usr/sbin' },
      cwd: '/',
      config: { vcpus: 1, memory_mb: 128, disk_mb: 64 },
      network: { ip, outbound: { mode: 'allow' } },
    };
  }

  async function sh(on: Host, id: string, script: string): Promise<string> {
    let out = '';
    let err = '';
    const o: ExecOptions = { argv: ['sh', '-c', script], cwd: '/', env: {}, uid: 0, gid: 0, timeoutMs: 30_000 };
    const r = await on.runtime.exec(id, o, { stdout: (c) => void (out += c.toString()), stderr: (c) => void (err += c.toString()) });
    assert.equal(r.exitCode, 0, `${script}: ${err}`);
    return out.trim();
  }

  it('one store id for every host of a directory, whoever asks first', async () => {
    const [ida, idb] = await Promise.all([a.runtime.snapshotStore(), b.runtime.snapshotStore()]);
    assert.match(ida, /^store_[0-9a-f]{24}$/);
    assert.equal(ida, idb);
    assert.notEqual(await snapshotStoreId(join(root, 'elsewhere')), ida, 'another directory is another store');
    assert.deepEqual(await a.runtime.snapshotsOnDisk(), [], 'the id file is no snapshot');
  });

  it('moves a file across file systems whole, and leaves the source when the copy fails', async () => {
    const src = join(root, 'image');
    await writeFile(src, 'disk');
    await moveFile(src, join(shared, 'image'));
    assert.equal(await run('cat', [join(shared, 'image')]), 'disk');
    await assert.rejects(readdir(src));
    await writeFile(src, 'disk again');
    await assert.rejects(moveFile(src, join(shared, 'no-such-dir', 'image')));
    assert.equal(await run('cat', [src]), 'disk again', 'a failed move keeps its source');
    assert.deepEqual((await readdir(shared)).filter((n) => n.includes('partial')), [], 'no partial copy is left');
    await rm(join(shared, 'image'));
  });

  /**
   * A machine started on host a with `file` in /root/file and a process holding a value only
   * in its memory, then paused there; null (the test skipped) without CRIU.
   */
  async function pausedOnA(t: TestContext, file: string): Promise<{ id: string; onA: MachineSpec; snap: string; keeper: string } | null> {
    if (!(await a.runtime.snapshotSupport()).memory) {
      t.skip('no CRIU here');
      return null;
    }
    const id = newMachineId();
    const onA = spec(a, id);
    await a.runtime.start(onA);
    await sh(a, id, `echo ${file} > /root/file`);
    const keeper = await sh(a, id, `sh -c 'token=kept-in-memory; trap "echo \\$token > /tmp/reveal" USR1; while :; do sleep 0.05; done' >/dev/null 2>&1 </dev/null & echo $!`);
    const snap = `snap_${randomBytes(8).toString('hex')}`;
    assert.equal((await a.runtime.pause(id, snap)).memory, true);
    return { id, onA, snap, keeper };
  }

  it('pauses on one host and resumes on the other with its processes, its files and a new address', async (t) => {
    const paused = await pausedOnA(t, 'kept-on-disk');
    if (!paused) return;
    const { id, onA, snap, keeper } = paused;
    // Host a is gone from here on: b resumes the machine from the shared directory.
    const onB = spec(b, id);
    assert.notEqual(onB.network.ip, onA.network.ip);
    await b.runtime.resume(onB, snap);
    assert.equal(await sh(b, id, 'cat /root/file'), 'kept-on-disk');
    await sh(b, id, `rm -f /tmp/reveal; kill -USR1 ${keeper}; for i in $(seq 50); do [ -s /tmp/reveal ] && break; sleep 0.1; done`);
    assert.equal(await sh(b, id, 'cat /tmp/reveal'), 'kept-in-memory', 'the process or its memory was lost');
    assert.match(await sh(b, id, 'ip -o -4 addr show eth0'), new RegExp(`inet ${onB.network.ip.replace(/\./g, '\\.')}/`));
    assert.deepEqual(await b.runtime.snapshotsOnDisk(), [], 'the pause snapshot was consumed');
    // What host a kept of it (its directory, its network namespace) goes when a cleans up, and b's machine runs on.
    await a.runtime.destroy(id);
    assert.equal(await sh(b, id, 'cat /root/file'), 'kept-on-disk');
    // It can pause and resume again where it is now.
    const again = `snap_${randomBytes(8).toString('hex')}`;
    await b.runtime.pause(id, again);
    await b.runtime.resume(onB, again);
    assert.equal(await sh(b, id, 'cat /root/file'), 'kept-on-disk');
    await b.runtime.destroy(id);
  });

  it('refuses a machine whose user-id range a machine of its own holds, and leaves the snapshot for its host', async (t) => {
    const paused = await pausedOnA(t, 'still-here');
    if (!paused) return;
    const { id, onA, snap } = paused;
    const range = await readUidBase(join(a.dataDir, 'machines', id));
    assert.ok(range !== null);
    // A machine of b's that holds the same range (as if b had handed it out too).
    const local = newMachineId();
    await b.runtime.start(spec(b, local));
    await writeUidBase(join(b.dataDir, 'machines', local), range);
    await assert.rejects(b.runtime.resume(spec(b, id), snap), new RegExp(`user-id range \\(${range}\\) is held by machine ${local}`));
    assert.deepEqual(await readdir(join(b.dataDir, 'machines')), [local], 'b kept nothing of the refused machine');
    await a.runtime.resume(onA, snap);
    assert.equal(await sh(a, id, 'cat /root/file'), 'still-here');
    await a.runtime.destroy(id);
    await b.runtime.destroy(local);
  });
});
