/**
 * Pause, resume, snapshots and forks on real machines with real CRIU, including the
 * failures the issue names: CRIU killed mid-pause, a truncated or missing image file,
 * racing requests, and a host without CRIU.
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, rm, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { snapshotPaths } from '../runtime/runc/snapshot-files.js';
import { execIn, TestServer, waitFor } from '../testing/harness.js';

const COUNTER = 'i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done > /dev/null 2>&1 &';

async function count(t: TestServer, id: string): Promise<number> {
  return Number((await execIn(t.server, id, ['cat', '/tmp/count'])).out.trim());
}

async function createWithCounter(t: TestServer, body: Record<string, unknown> = {}): Promise<string> {
  const r = await t.request('POST', '/v1/machines', { body });
  assert.equal(r.status, 201, r.text);
  const id = r.body.id as string;
  await execIn(t.server, id, ['sh', '-c', COUNTER]);
  await waitFor(async () => (await count(t, id)) > 2);
  return id;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('pause and resume with CRIU', () => {
  let t: TestServer;
  before(async () => {
    t = await TestServer.start();
    const info = await t.request('GET', '/v1/info');
    assert.equal(info.body.snapshots.memory, true, `CRIU must work on this host: ${info.body.snapshots.reason}`);
  });
  after(async () => {
    await t.dispose();
  });

  it('pause stops the processes and keeps a snapshot; resume continues the same processes', async () => {
    const id = await createWithCounter(t);
    await execIn(t.server, id, ['sh', '-c', 'echo kept > /root/file; httpd -p 8080 -h /root']);
    const before = await t.server.runtime.inspect(id);

    const paused = await t.request('POST', `/v1/machines/${id}/pause`);
    assert.equal(paused.status, 200, paused.text);
    assert.equal(paused.body.status, 'paused');
    assert.match(paused.body.snapshot_id, /^snap_[a-z0-9]+$/);
    assert.equal(await t.server.runtime.inspect(id), null, 'container still on the host');
    await waitFor(async () => (await stat(`/proc/${before!.pid}`).catch(() => null)) === null, 5_000);
    const snap = await t.request('GET', `/v1/snapshots/${paused.body.snapshot_id}`);
    assert.equal(snap.body.machine_id, id);
    assert.equal(snap.body.memory, true);
    assert.ok(snap.body.size_bytes > 0);
    const masked = await t.request('GET', `/v1/machines/${id}?fields=status,snapshot_id`);
    assert.deepEqual(masked.body, { status: 'paused', snapshot_id: paused.body.snapshot_id });

    await sleep(300);
    const resumed = await t.request('POST', `/v1/machines/${id}/resume`);
    assert.equal(resumed.status, 200, resumed.text);
    assert.equal(resumed.body.status, 'running');
    assert.equal(resumed.body.snapshot_id, undefined);
    assert.ok(Date.parse(resumed.body.timeout_at) > Date.now() + 290_000, 'timers restart from the resume');
    const c1 = await count(t, id);
    await sleep(300);
    const c2 = await count(t, id);
    assert.ok(c2 > c1, 'the counter keeps counting');
    assert.equal((await execIn(t.server, id, ['cat', '/root/file'])).out.trim(), 'kept');
    const served = await execIn(t.server, id, ['wget', '-q', '-O', '-', 'http://127.0.0.1:8080/file']);
    assert.equal(served.out.trim(), 'kept', 'the server kept its listening socket');
    const ps = (await execIn(t.server, id, ['ps', '-o', 'comm'])).out;
    assert.match(ps, /httpd/);
    assert.equal((await t.request('GET', `/v1/snapshots/${paused.body.snapshot_id}`)).status, 404, 'a pause snapshot is consumed by resume');
  });

  it('processes started after a resume survive the next pause and resume, in the machine\'s time namespace', async () => {
    const id = await createWithCounter(t);
    for (let round = 1; round <= 2; round++) {
      assert.equal((await t.request('POST', `/v1/machines/${id}/pause`)).status, 200);
      const resumed = await t.request('POST', `/v1/machines/${id}/resume`);
      assert.equal(resumed.status, 200, `resume ${round}: ${resumed.text}`);
      // Started after the restore: by exec, as a background process, and through a terminal-less shell.
      await execIn(t.server, id, ['sh', '-c', `sleep 100${round} > /dev/null 2>&1 &`]);
      const bg = await t.request('POST', `/v1/machines/${id}/processes`, { body: { cmd: ['sleep', `200${round}`] } });
      assert.equal(bg.status, 201, bg.text);
      const inits = (await execIn(t.server, id, ['sh', '-c', 'readlink /proc/1/ns/time; readlink /proc/self/ns/time'])).out.trim().split('\n');
      assert.equal(inits[0], inits[1], 'an exec joins the time namespace of the restored init');
    }
    const ps = (await execIn(t.server, id, ['ps', '-o', 'args'])).out;
    // Background processes of the API end at a pause (documented); what exec left running survives both.
    for (const n of ['1001', '1002', '2002']) assert.match(ps, new RegExp(`sleep ${n}\\b`), ps);
    assert.doesNotMatch(ps, /sleep 2001/);
  });

  it('answers 409 to pause of a paused machine and resume of a running one', async () => {
    const r = await t.request('POST', '/v1/machines', { body: {} });
    const id = r.body.id as string;
    assert.equal((await t.request('POST', `/v1/machines/${id}/resume`)).body.code, 'STATE_CONFLICT');
    assert.equal((await t.request('POST', `/v1/machines/${id}/pause`)).status, 200);
    const again = await t.request('POST', `/v1/machines/${id}/pause`);
    assert.equal(again.status, 409);
    assert.equal(again.body.code, 'STATE_CONFLICT');
  });

  it('serialises racing pause, pause and delete: one wins, the others get 409', async () => {
    const r = await t.request('POST', '/v1/machines', { body: {} });
    const id = r.body.id as string;
    const results = await Promise.all([
      t.request('POST', `/v1/machines/${id}/pause`),
      t.request('POST', `/v1/machines/${id}/pause`),
      t.request('DELETE', `/v1/machines/${id}`),
    ]);
    const statuses = results.map((x) => x.status).sort();
    assert.deepEqual(statuses, [200, 409, 409], JSON.stringify(results.map((x) => x.body)));
    const final = (await t.request('GET', `/v1/machines/${id}`)).body.status;
    assert.ok(final === 'paused' || final === 'destroyed');
  });

  it('snapshots a running machine without stopping it, and forks run side by side', async () => {
    const id = await createWithCounter(t, { metadata: { role: 'source' } });
    await execIn(t.server, id, ['sh', '-c', 'echo from-source > /root/mark']);
    const snap = await t.request('POST', `/v1/machines/${id}/snapshots`);
    assert.equal(snap.status, 201, snap.text);
    assert.equal(snap.body.memory, true);
    assert.equal((await t.request('GET', `/v1/machines/${id}`)).body.status, 'running');
    const c = await count(t, id);
    await sleep(200);
    assert.ok((await count(t, id)) > c, 'source keeps running after its snapshot');

    const forks = await Promise.all([1, 2].map(() => t.request('POST', '/v1/machines', { body: { snapshot_id: snap.body.id, metadata: { role: 'fork' } } })));
    for (const f of forks) {
      assert.equal(f.status, 201, f.text);
      assert.notEqual(f.body.id, id);
      assert.deepEqual(f.body.metadata, { role: 'fork' });
      const fid = f.body.id as string;
      assert.equal((await execIn(t.server, fid, ['hostname'])).out.trim(), fid, 'a fork has its own hostname');
      assert.equal((await execIn(t.server, fid, ['cat', '/root/mark'])).out.trim(), 'from-source');
      const f1 = await count(t, fid);
      await sleep(200);
      assert.ok((await count(t, fid)) > f1, 'the fork continues the counter process');
    }
    // Own writable layers: a write in one fork is not seen by the other or the source.
    await execIn(t.server, forks[0]!.body.id, ['sh', '-c', 'echo only-fork-0 > /root/mark']);
    assert.equal((await execIn(t.server, forks[1]!.body.id, ['cat', '/root/mark'])).out.trim(), 'from-source');
    assert.equal((await execIn(t.server, id, ['cat', '/root/mark'])).out.trim(), 'from-source');

    const list = await t.request('GET', `/v1/snapshots?machine_id=${id}`);
    assert.deepEqual(list.body.items.map((s: { id: string }) => s.id), [snap.body.id]);
    assert.equal((await t.request('DELETE', `/v1/snapshots/${snap.body.id}`)).status, 204);
    assert.equal((await t.request('GET', `/v1/snapshots/${snap.body.id}`)).status, 404);
    const gone = await t.request('POST', '/v1/machines', { body: { snapshot_id: snap.body.id } });
    assert.equal(gone.status, 422);
    assert.equal(gone.body.code, 'UNKNOWN_SNAPSHOT');
  });

  it('refuses to delete a snapshot that holds a paused machine; destroying the machine removes it', async () => {
    const r = await t.request('POST', '/v1/machines', { body: {} });
    const id = r.body.id as string;
    const p = await t.request('POST', `/v1/machines/${id}/pause`);
    const del = await t.request('DELETE', `/v1/snapshots/${p.body.snapshot_id}`);
    assert.equal(del.status, 409);
    assert.equal(del.body.code, 'STATE_CONFLICT');
    assert.equal((await t.request('DELETE', `/v1/machines/${id}`)).body.status, 'destroyed');
    assert.equal((await t.request('GET', `/v1/snapshots/${p.body.snapshot_id}`)).status, 404);
    assert.equal(await stat(snapshotPaths(t.server.settings.snapshotsDir, p.body.snapshot_id).dir).catch(() => null), null);
  });

  it('hides snapshots from other teams', async () => {
    const r = await t.request('POST', '/v1/machines', { body: {} });
    const snap = await t.request('POST', `/v1/machines/${r.body.id}/snapshots`);
    const other = await t.newTeamKey('other');
    assert.equal((await t.request('GET', `/v1/snapshots/${snap.body.id}`, { key: other.key })).status, 404);
    assert.deepEqual((await t.request('GET', '/v1/snapshots', { key: other.key })).body.items, []);
    const fork = await t.request('POST', '/v1/machines', { key: other.key, body: { snapshot_id: snap.body.id } });
    assert.equal(fork.body.code, 'UNKNOWN_SNAPSHOT');
  });

  it('a truncated image file fails the resume clearly and leaves the machine paused with its snapshot', async () => {
    const id = await createWithCounter(t);
    const p = await t.request('POST', `/v1/machines/${id}/pause`);
    const paths = snapshotPaths(t.server.settings.snapshotsDir, p.body.snapshot_id);
    const pages = (await readdir(paths.criu)).filter((f) => f.startsWith('pages-'));
    assert.ok(pages.length > 0);
    for (const f of pages) await truncate(join(paths.criu, f), 10);
    const r = await t.request('POST', `/v1/machines/${id}/resume`);
    assert.equal(r.status, 500);
    assert.equal(r.body.code, 'RESTORE_FAILED');
    assert.match(r.body.message, /stays paused/);
    const m = await t.request('GET', `/v1/machines/${id}`);
    assert.equal(m.body.status, 'paused');
    assert.equal(m.body.snapshot_id, p.body.snapshot_id);
    assert.ok(await stat(paths.image), 'the disk image went back into the snapshot');
    assert.equal(await t.server.runtime.inspect(id), null);
    assert.equal((await t.request('GET', '/healthz')).status, 200, 'the server is fine');
  });

  it('a missing snapshot disk image is a clear error on resume', async () => {
    const r = await t.request('POST', '/v1/machines', { body: {} });
    const id = r.body.id as string;
    const p = await t.request('POST', `/v1/machines/${id}/pause`);
    await unlink(snapshotPaths(t.server.settings.snapshotsDir, p.body.snapshot_id).image);
    const res = await t.request('POST', `/v1/machines/${id}/resume`);
    assert.equal(res.body.code, 'RESTORE_FAILED');
    assert.match(res.body.message, /missing its disk image/);
    assert.equal((await t.request('GET', `/v1/machines/${id}`)).body.status, 'paused');
  });
});

describe('pause when CRIU is killed', () => {
  let t: TestServer;
  let dir: string;
  let mark: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hangar-criu-'));
    mark = join(dir, 'kill-next');
    const wrapper = join(dir, 'criu');
    // With the mark present, the CRIU that seizes the machine's init (TracerPid set) is
    // killed in the middle of its dump; runc's earlier CRIU calls (version query) pass.
    await writeFile(
      wrapper,
      `#!/bin/sh
[ -e "${mark}" ] || exec criu "$@"
target=$(cat "${mark}")
criu "$@" & pid=$!
while kill -0 $pid 2>/dev/null; do
  if grep -Eq 'TracerPid:[[:space:]]+[1-9]' "/proc/$target/status" 2>/dev/null; then
    rm -f "${mark}"; kill -9 $pid; wait $pid; exit 137
  fi
done
wait $pid
`,
    );
    await chmod(wrapper, 0o755);
    t = await TestServer.start({ env: { HANGAR_CRIU: wrapper } });
  });
  after(async () => {
    await t.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('leaves the machine running with its processes and data', async () => {
    const id = await createWithCounter(t);
    await execIn(t.server, id, ['sh', '-c', 'echo data > /root/data']);
    await writeFile(mark, String((await t.server.runtime.inspect(id))!.pid));
    const r = await t.request('POST', `/v1/machines/${id}/pause`);
    assert.equal(r.status, 500, r.text);
    assert.equal(r.body.code, 'SNAPSHOT_FAILED');
    const m = await t.request('GET', `/v1/machines/${id}`);
    assert.equal(m.body.status, 'running', r.body.message);
    const c = await count(t, id);
    await sleep(300);
    assert.ok((await count(t, id)) > c, 'processes keep running (not left frozen)');
    assert.equal((await execIn(t.server, id, ['cat', '/root/data'])).out.trim(), 'data');
    assert.deepEqual((await t.request('GET', '/v1/snapshots')).body.items, [], 'no half snapshot listed');
    // And the next pause, with CRIU left alone, works.
    assert.equal((await t.request('POST', `/v1/machines/${id}/pause`)).body.status, 'paused');
    assert.equal((await t.request('POST', `/v1/machines/${id}/resume`)).body.status, 'running');
  });

  it('a timed hibernate whose memory dump fails still pauses, keeping the filesystem', async () => {
    const r = await t.request('POST', '/v1/machines', { body: { timeout_ms: 1500, timeout_action: 'hibernate' } });
    const id = r.body.id as string;
    await execIn(t.server, id, ['sh', '-c', 'echo disk > /root/disk']);
    await writeFile(mark, String((await t.server.runtime.inspect(id))!.pid));
    await waitFor(async () => (await t.request('GET', `/v1/machines/${id}`)).body.status === 'paused', 10_000);
    const m = await t.request('GET', `/v1/machines/${id}`);
    assert.equal((await t.request('GET', `/v1/snapshots/${m.body.snapshot_id}`)).body.memory, false);
    assert.equal((await t.request('POST', `/v1/machines/${id}/resume`)).body.status, 'running');
    assert.equal((await execIn(t.server, id, ['cat', '/root/disk'])).out.trim(), 'disk');
  });
});

describe('hibernate timers, auto-delete and restarts', () => {
  let t: TestServer;
  before(async () => {
    t = await TestServer.start();
  });
  after(async () => {
    await t.dispose();
  });

  it('timeout_action hibernate pauses at the deadline; auto-delete destroys the paused machine', async () => {
    const r = await t.request('POST', '/v1/machines', { body: { timeout_ms: 1000, timeout_action: 'hibernate', auto_delete_after_ms: 1500 } });
    assert.equal(r.status, 201, r.text);
    const id = r.body.id as string;
    await waitFor(async () => (await t.request('GET', `/v1/machines/${id}`)).body.status === 'paused', 8_000);
    await waitFor(async () => (await t.request('GET', `/v1/machines/${id}`)).body.status === 'destroyed', 8_000);
  });

  it('inactivity hibernates a non-ephemeral machine', async () => {
    const r = await t.request('POST', '/v1/machines', { body: { inactivity_timeout_ms: 1000 } });
    assert.equal(r.status, 201, r.text);
    await waitFor(async () => (await t.request('GET', `/v1/machines/${r.body.id}`)).body.status === 'paused', 8_000);
  });

  it('a paused machine is resumed by a new server process on the same data dir', async () => {
    const id = await createWithCounter(t);
    const p = await t.request('POST', `/v1/machines/${id}/pause`);
    assert.equal(p.body.status, 'paused');
    await t.restart();
    assert.equal((await t.request('GET', `/v1/machines/${id}`)).body.status, 'paused');
    const r = await t.request('POST', `/v1/machines/${id}/resume`);
    assert.equal(r.status, 200, r.text);
    const c = await count(t, id);
    await sleep(300);
    assert.ok((await count(t, id)) > c);
  });
});

describe('without CRIU', () => {
  let t: TestServer;
  before(async () => {
    t = await TestServer.start({ env: { HANGAR_CRIU: '/nonexistent/criu' } });
  });
  after(async () => {
    await t.dispose();
  });

  it('says so in /v1/info and falls back to filesystem-only snapshots', async () => {
    const info = await t.request('GET', '/v1/info');
    assert.equal(info.body.snapshots.memory, false);
    assert.match(info.body.snapshots.reason, /not found/);
    const id = await createWithCounter(t);
    await execIn(t.server, id, ['sh', '-c', 'echo fs > /root/fs']);
    const p = await t.request('POST', `/v1/machines/${id}/pause`);
    assert.equal(p.body.status, 'paused');
    assert.equal((await t.request('GET', `/v1/snapshots/${p.body.snapshot_id}`)).body.memory, false);
    const r = await t.request('POST', `/v1/machines/${id}/resume`);
    assert.equal(r.body.status, 'running');
    assert.equal((await execIn(t.server, id, ['cat', '/root/fs'])).out.trim(), 'fs', 'files survive');
    const ps = (await execIn(t.server, id, ['ps', '-o', 'comm'])).out;
    assert.doesNotMatch(ps, /sleep/, 'init was restarted: the counter is gone');
  });
});
