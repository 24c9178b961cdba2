/**
 * Lifecycle on real machines: deadlines destroy for real, fire after a restart,
 * destroyed records are purged after retention, and a restarted server re-adopts
 * the same processes or marks vanished ones `error`.
 */
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { run } from '../runtime/runc/command.js';
import { layerPaths } from '../runtime/runc/writable-layer.js';
import { execIn, TestServer, waitFor } from '../testing/harness.js';

async function statusOf(t: TestServer, id: string): Promise<string | undefined> {
  const r = await t.request('GET', `/v1/machines/${id}`);
  return r.status === 200 ? r.body.status : `http ${r.status}`;
}

describe('lifecycle timers on real machines', () => {
  let t: TestServer;
  before(async () => {
    t = await TestServer.start({ env: { HANGAR_RETENTION_MS: '1500' } });
  });
  after(async () => {
    await t.dispose();
  });

  it('destroys a machine at its hard deadline, removing its container', async () => {
    const r = await t.request('POST', '/v1/machines', { body: { timeout_ms: 1000 } });
    assert.equal(r.status, 201);
    const id = r.body.id as string;
    await waitFor(async () => (await statusOf(t, id)) === 'destroyed', 5_000);
    assert.equal(await t.server.runtime.inspect(id), null);
    assert.equal(await stat(layerPaths(t.server.settings.machinesDir, id).dir).catch(() => null), null);
  });

  it('a refreshed timeout postpones the deadline', async () => {
    const r = await t.request('POST', '/v1/machines', { body: { timeout_ms: 1000 } });
    const id = r.body.id as string;
    const refreshed = await t.request('POST', `/v1/machines/${id}/timeout`, { body: { timeout_ms: 60_000 } });
    assert.equal(refreshed.status, 200);
    assert.equal(refreshed.body.timeout_ms, 60_000);
    await new Promise((res) => setTimeout(res, 1_500));
    assert.equal(await statusOf(t, id), 'running');
  });

  it('destroys an idle ephemeral machine at its inactivity timeout', async () => {
    const r = await t.request('POST', '/v1/machines', { body: { ephemeral: true, inactivity_timeout_ms: 1000, timeout_ms: 600_000 } });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.body.inactivity_timeout_ms, 1000);
    await waitFor(async () => (await statusOf(t, r.body.id)) === 'destroyed', 5_000);
  });

  it('purges destroyed records after the retention period', async () => {
    const r = await t.request('POST', '/v1/machines', { body: {} });
    const id = r.body.id as string;
    await t.request('DELETE', `/v1/machines/${id}`);
    const listed = await t.request('GET', '/v1/machines?state=destroyed');
    assert.ok(listed.body.items.some((m: { id: string }) => m.id === id), 'destroyed machine listed during retention');
    await waitFor(async () => (await statusOf(t, id)) === 'http 404', 6_000);
  });
});

describe('server restart', () => {
  let t: TestServer;
  before(async () => {
    t = await TestServer.start();
  });
  after(async () => {
    await t.dispose();
  });

  it('re-adopts running machines: same init process, same files', async () => {
    const r = await t.request('POST', '/v1/machines', { body: { metadata: { keep: true } } });
    const id = r.body.id as string;
    await execIn(t.server, id, ['sh', '-c', 'echo before-restart > /root/note']);
    // A background process started before the restart must still be the same process after it.
    await execIn(t.server, id, ['sh', '-c', 'sleep 1000 > /dev/null 2>&1 & echo $! > /root/sleeper']);
    const before = await t.server.runtime.inspect(id);
    const sleeper = (await execIn(t.server, id, ['cat', '/root/sleeper'])).out.trim();

    await t.restart();

    assert.equal(await statusOf(t, id), 'running');
    const after = await t.server.runtime.inspect(id);
    assert.equal(after?.pid, before?.pid, 'init was restarted');
    assert.equal((await execIn(t.server, id, ['cat', '/root/note'])).out.trim(), 'before-restart');
    assert.equal((await execIn(t.server, id, ['sh', '-c', `kill -0 ${sleeper} && echo alive`])).out.trim(), 'alive');
  });

  it('marks a machine whose container vanished as error, with the reason, keeping its data', async () => {
    const r = await t.request('POST', '/v1/machines', { body: {} });
    const id = r.body.id as string;
    await t.server.close();
    // Simulate a host-level loss of the container while the server is down.
    await run(t.server.settings.runcPath, ['--root', t.server.settings.runcStateDir, 'delete', '--force', id]);
    await t.restart();
    const got = await t.request('GET', `/v1/machines/${id}`);
    assert.equal(got.body.status, 'error');
    assert.match(got.body.error_reason, /vanished/);
    const image = layerPaths(t.server.settings.machinesDir, id).image;
    assert.ok(await stat(image), 'the writable layer image was kept');
    const mounts = await readFile('/proc/self/mounts', 'utf8');
    assert.ok(!mounts.includes(layerPaths(t.server.settings.machinesDir, id).rootfs), 'overlay still mounted');
    const del = await t.request('DELETE', `/v1/machines/${id}`);
    assert.equal(del.body.status, 'destroyed');
    assert.equal(await stat(image).catch(() => null), null);
  });

  it('fires deadlines that passed while the server was down', async () => {
    const r = await t.request('POST', '/v1/machines', { body: { timeout_ms: 1000 } });
    const id = r.body.id as string;
    await t.server.close();
    await new Promise((res) => setTimeout(res, 1_300));
    await t.restart();
    // startServer runs one sweep before answering: the machine is already destroyed.
    assert.equal(await statusOf(t, id), 'destroyed');
    assert.equal(await t.server.runtime.inspect(id), null);
  });

  it('removes containers and files that belong to no machine it knows', async () => {
    const r = await t.request('POST', '/v1/machines', { body: {} });
    const id = r.body.id as string;
    // Forget the machine in the store, as if its record were lost.
    const m = (await t.server.store.getMachine(id))!;
    await t.server.store.updateMachine({ ...m, status: 'destroyed', destroyedAt: Date.now(), deadlineAt: null });
    await t.restart();
    assert.equal(await t.server.runtime.inspect(id), null);
    assert.equal(await stat(layerPaths(t.server.settings.machinesDir, id).dir).catch(() => null), null);
  });
});
