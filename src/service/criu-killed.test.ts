/**
 * CRIU killed on its own (issue 14, the chaos run's other half): SIGKILL to the CRIU of a
 * pause while it dumps, and to the CRIU of a resume while it restores, at exact points
 * (`testing/criu-trap.ts`: when CRIU opens a given image file), with the real CRIU doing
 * the work up to there. A killed dump leaves the machine running with its processes; a
 * killed restore leaves it paused with its snapshot whole, and the next resume works.
 * `dispose()` then fails the test if a container, mount, cgroup or netns is left.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { snapshotPaths } from '../runtime/runc/snapshot-files.js';
import { CriuTrap } from '../testing/criu-trap.js';
import { execIn, TestServer, waitFor } from '../testing/harness.js';

const COUNTER = 'i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done > /dev/null 2>&1 &';

describe('CRIU killed mid-dump and mid-restore', () => {
  let t: TestServer;
  let trap: CriuTrap;
  let trapDir: string;
  before(async () => {
    // The data dir is made first: the trap must know the snapshots directory before the server starts.
    const dataDir = await realpath(await mkdtemp(join(tmpdir(), 'hangar-test-')));
    trapDir = await mkdtemp(join(tmpdir(), 'hangar-criu-trap-'));
    trap = await CriuTrap.create(trapDir, join(dataDir, 'snapshots'));
    t = await TestServer.start({ dataDir, env: { HANGAR_CRIU: trap.criuPath } });
    assert.equal((await t.request('GET', '/v1/info')).body.snapshots.memory, true, 'CRIU must work on this host');
  });
  after(async () => {
    await t.dispose();
    await rm(trapDir, { recursive: true, force: true });
  });

  const count = async (id: string): Promise<number> => Number((await execIn(t.server, id, ['cat', '/tmp/count'])).out.trim());
  /** The counter moves on: the machine's own processes run (not frozen, not restarted). */
  const counting = async (id: string): Promise<void> => {
    const from = await count(id);
    await waitFor(async () => (await count(id)) > from + 2, 10_000);
  };

  async function machineWithCounter(): Promise<string> {
    const r = await t.request('POST', '/v1/machines', { body: {} });
    assert.equal(r.status, 201, r.text);
    const id = r.body.id as string;
    await execIn(t.server, id, ['sh', '-c', `${COUNTER} echo kept > /root/data`]);
    await waitFor(async () => (await count(id)) > 0);
    return id;
  }

  // pages-1.img: CRIU's parasite is inside the machine's init, draining its memory.
  // inventory.img: the last image, every process dumped and still frozen, about to be killed by CRIU.
  for (const image of ['pages-1.img', 'inventory.img']) {
    it(`a dump killed when CRIU opens ${image}: the pause fails clearly, the machine keeps running with its processes`, async () => {
      const id = await machineWithCounter();
      await trap.arm(image);
      const r = await t.request('POST', `/v1/machines/${id}/pause`);
      assert.equal(await trap.outcome(), `killed dump ${image}`);
      assert.equal(r.status, 500, r.text);
      assert.equal(r.body.code, 'SNAPSHOT_FAILED');
      assert.match(r.body.message, /CRIU stopped before the dump finished and logged no error \(it was killed\)\); it is still running/);
      const m = await t.request('GET', `/v1/machines/${id}`);
      assert.equal(m.body.status, 'running');
      assert.equal(m.body.error_reason, undefined);
      await counting(id);
      assert.equal((await execIn(t.server, id, ['cat', '/root/data'])).out.trim(), 'kept');
      assert.equal((await t.request('POST', `/v1/machines/${id}/exec`, { body: { cmd: ['true'] } })).status, 200, 'exec through the agent again');
      assert.deepEqual((await t.request('GET', `/v1/snapshots?machine_id=${id}`)).body.items, [], 'no half snapshot listed');
      assert.deepEqual((await readdir(t.server.settings.snapshotsDir)).filter((n) => !n.startsWith('.')), [], 'no half snapshot on disk (its store id aside)');
      // CRIU left alone: the same machine pauses and resumes.
      assert.equal((await t.request('POST', `/v1/machines/${id}/pause`)).body.status, 'paused');
      assert.equal((await t.request('POST', `/v1/machines/${id}/resume`)).body.status, 'running');
      await counting(id);
      assert.equal((await t.request('DELETE', `/v1/machines/${id}`)).body.status, 'destroyed');
    });
  }

  // pages-1.img is read by the half-restored init itself: the machine's processes exist, CRIU's gone.
  // They keep runc's socket to CRIU open, so runc restore would wait for ever; the runtime kills it once
  // CRIU has been dead and unreaped for ORPHANED_WAIT_MS (command.ts), not at its 60 s bound.
  // pstree.img is read by CRIU before it makes any process.
  for (const image of ['pstree.img', 'pages-1.img']) {
    it(`a restore killed when CRIU opens ${image}: the machine stays paused with its snapshot whole, and the next resume works`, async () => {
      const id = await machineWithCounter();
      const paused = await t.request('POST', `/v1/machines/${id}/pause`);
      assert.equal(paused.body.status, 'paused', paused.text);
      const snapshotId = paused.body.snapshot_id as string;
      await trap.arm(image);
      const started = performance.now();
      const r = await t.request('POST', `/v1/machines/${id}/resume`);
      const took = performance.now() - started;
      assert.equal(await trap.outcome(), `killed restore ${image}`);
      assert.ok(took < 30_000, `the resume failed in ${took} ms, not at runc's 60 s bound`);
      assert.equal(r.status, 500, r.text);
      assert.equal(r.body.code, 'RESTORE_FAILED');
      assert.match(r.body.message, new RegExp(`stays paused with snapshot ${snapshotId} intact`));
      const m = await t.request('GET', `/v1/machines/${id}`);
      assert.equal(m.body.status, 'paused');
      assert.equal(m.body.snapshot_id, snapshotId);
      assert.equal(await t.server.runtime.inspect(id), null, 'no half-restored container');
      const files = await readdir(snapshotPaths(t.server.settings.snapshotsDir, snapshotId).dir);
      assert.ok(files.includes('disk.img') && files.includes('manifest.json'), files.join(' '));
      const again = await t.request('POST', `/v1/machines/${id}/resume`);
      assert.equal(again.status, 200, again.text);
      await counting(id);
      assert.equal((await execIn(t.server, id, ['cat', '/root/data'])).out.trim(), 'kept');
      assert.equal((await t.request('DELETE', `/v1/machines/${id}`)).body.status, 'destroyed');
    });
  }
});
