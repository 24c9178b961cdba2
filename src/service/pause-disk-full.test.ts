/**
 * The data dir's disk full during a pause (issue 14, the chaos run's other half): the
 * server's data dir is on a small tmpfs the test mounts (its source named with the
 * instance prefix, unmounted at the end), nearly filled before the pause, so CRIU's dump
 * of a machine holding 16 MiB of memory meets ENOSPC. The pause must fail with 507
 * STORAGE_FULL, the machine keep running, no partial snapshot be kept or listed, and the
 * space come back.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, realpath, rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { run } from '../runtime/runc/command.js';
import { execIn, TestServer, waitFor } from '../testing/harness.js';

const MIB = 1024 * 1024;
/** Room left for the pause: enough for the store's writes, far less than the dump. */
const HEADROOM = 8 * MIB;
const COUNTER = 'i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done > /dev/null 2>&1 &';
/** 16 MiB of memory that is not zero (CRIU skips zero pages), held while awk waits for its child. */
const MEMORY = `awk 'BEGIN { s = "x"; while (length(s) < 16777216) s = s s; system("sleep 100000") }' > /dev/null 2>&1 &`;

describe("pause when the data dir's disk is full", () => {
  let t: TestServer;
  let base: string;
  let fs: string;
  const free = async (): Promise<number> => {
    const s = await statfs(fs);
    return s.bavail * s.bsize;
  };
  before(async () => {
    base = await realpath(await mkdtemp(join(tmpdir(), 'hangar-test-')));
    fs = join(base, 'fs');
    await mkdir(fs);
    const dataDir = join(fs, 'data');
    // The server's own prefix (settings.ts: a hash of the data dir), so the host check sees the mount.
    const prefix = `hangar-${createHash('sha256').update(dataDir).digest('hex').slice(0, 8)}`;
    await run('mount', ['-t', 'tmpfs', '-o', 'size=64m,mode=0700', `${prefix}-small-disk`, fs]);
    t = await TestServer.start({ dataDir });
    assert.equal(t.server.settings.instancePrefix, prefix);
  });
  after(async () => {
    await t.dispose({ beforeCheck: () => run('umount', [fs]).then(() => undefined) });
    await rm(base, { recursive: true, force: true });
  });

  it('fails the pause with 507 STORAGE_FULL, keeps the machine running, removes the partial images', async () => {
    const r = await t.request('POST', '/v1/machines', { body: {} });
    assert.equal(r.status, 201, r.text);
    const id = r.body.id as string;
    await execIn(t.server, id, ['sh', '-c', `${COUNTER} ${MEMORY} echo kept > /root/data`]);
    await waitFor(async () => /awk/.test((await execIn(t.server, id, ['ps', '-o', 'args'])).out) && (await execIn(t.server, id, ['cat', '/tmp/count'])).code === 0);
    // The awk's string is whole once its child runs (it starts it after building the string).
    await waitFor(async () => /sleep 100000/.test((await execIn(t.server, id, ['ps', '-o', 'args'])).out));
    await run('fallocate', ['-l', String((await free()) - HEADROOM), join(fs, 'filler')]);
    const before = await free();

    const p = await t.request('POST', `/v1/machines/${id}/pause`);
    assert.equal(p.status, 507, p.text);
    assert.equal(p.body.code, 'STORAGE_FULL');
    assert.match(p.body.message, /data dir is full .*No space left on device.*; it is still running/);
    const m = await t.request('GET', `/v1/machines/${id}`);
    assert.equal(m.body.status, 'running');
    const c = Number((await execIn(t.server, id, ['cat', '/tmp/count'])).out);
    await waitFor(async () => Number((await execIn(t.server, id, ['cat', '/tmp/count'])).out) > c + 2);
    const exec = await t.request('POST', `/v1/machines/${id}/exec`, { body: { cmd: ['cat', '/root/data'] } });
    assert.equal(exec.status, 200, exec.text);
    assert.equal(exec.body.stdout.trim(), 'kept');
    assert.deepEqual((await t.request('GET', '/v1/snapshots')).body.items, [], 'no half snapshot listed');
    assert.deepEqual((await readdir(t.server.settings.snapshotsDir)).filter((n) => !n.startsWith('.')), [], 'no half snapshot on disk (its store id aside)');
    // The partial images are gone: what is used now is at most the dump's log kept beside the machine.
    const after = await free();
    assert.ok(after >= before - 512 * 1024, `free ${after} bytes after the failed pause, ${before} before`);
    console.log(`disk full: ${Math.round(before / 1024)} KiB free before the pause, ${Math.round(after / 1024)} KiB after`);

    // Space freed: the same machine pauses and resumes with its processes.
    await rm(join(fs, 'filler'));
    const paused = await t.request('POST', `/v1/machines/${id}/pause`);
    assert.equal(paused.body.status, 'paused', paused.text);
    const size = (await t.request('GET', `/v1/snapshots/${paused.body.snapshot_id}`)).body.size_bytes as number;
    assert.ok(size > HEADROOM, `the dump (${size} bytes) is larger than the room the full disk had`);
    console.log(`disk full: the dump that did not fit takes ${Math.round(size / MIB)} MiB`);
    assert.equal((await t.request('POST', `/v1/machines/${id}/resume`)).body.status, 'running');
    assert.equal((await execIn(t.server, id, ['cat', '/root/data'])).out.trim(), 'kept');
  });
});
