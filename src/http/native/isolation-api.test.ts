/**
 * Isolation tiers through the native API (issue 14): a create names its tier or takes its
 * template's, the machine shows it, a gvisor machine runs commands like any other, and
 * what gVisor cannot do is a 422 UNSUPPORTED_OPERATION that changes nothing.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestServer } from '../../testing/harness.js';

type Json = Record<string, any>;

describe('isolation tiers (native API)', () => {
  let t: TestServer;
  let key: string;
  let gv: Json;

  const create = (body: Json): ReturnType<TestServer['request']> =>
    t.request('POST', '/v1/machines', { key, body: { config: { memory_mb: 128, disk_mb: 64 }, ...body } });

  before(async () => {
    t = await TestServer.start();
    key = (await t.newTeamKey('tiers')).key;
    // A directory template that names the gvisor tier, on the base template's files.
    const templates = t.server.settings.templatesDir;
    const manifest = JSON.parse(await readFile(join(templates, 'base', 'template.json'), 'utf8')) as Json;
    await mkdir(join(templates, 'sandboxed'));
    await writeFile(join(templates, 'sandboxed', 'template.json'), JSON.stringify({ ...manifest, name: 'sandboxed', isolation: 'gvisor' }));
    await symlink(join(templates, 'base', 'rootfs'), join(templates, 'sandboxed', 'rootfs'));
    const r = await create({ isolation: 'gvisor' });
    assert.equal(r.status, 201, r.text);
    gv = r.body;
  });
  after(async () => {
    await t.dispose();
  });

  it('a gvisor machine shows its tier and runs commands on gVisor\'s kernel; the default is container', async () => {
    assert.equal(gv.isolation, 'gvisor');
    assert.equal((await t.request('GET', `/v1/machines/${gv.id}`, { key })).body.isolation, 'gvisor');
    const r = await t.request('POST', `/v1/machines/${gv.id}/exec`, { key, body: { cmd: ['sh', '-c', 'uname -r; echo hi > /root/f; cat /root/f'] } });
    assert.equal(r.status, 200, r.text);
    // gVisor reports its own kernel version, not the host's.
    assert.deepEqual(r.body.stdout.split('\n').slice(0, 2), ['4.4.0', 'hi']);
    const file = await t.request('GET', `/v1/machines/${gv.id}/files?path=/root/f`, { key });
    assert.equal(file.status, 200);
    const plain = await create({});
    assert.equal(plain.status, 201, plain.text);
    assert.equal(plain.body.isolation, 'container');
    const host = await t.request('POST', `/v1/machines/${plain.body.id}/exec`, { key, body: { cmd: ['uname', '-r'] } });
    assert.notEqual(host.body.stdout, '4.4.0\n');
    assert.equal((await t.request('DELETE', `/v1/machines/${plain.body.id}`, { key })).status, 200);
  });

  it('a template\'s isolation is its machines\' unless the create names one', async () => {
    const fromTemplate = await create({ template: 'sandboxed' });
    assert.equal(fromTemplate.status, 201, fromTemplate.text);
    assert.equal(fromTemplate.body.isolation, 'gvisor');
    const overridden = await create({ template: 'sandboxed', isolation: 'container' });
    assert.equal(overridden.status, 201, overridden.text);
    assert.equal(overridden.body.isolation, 'container');
    for (const m of [fromTemplate.body, overridden.body]) assert.equal((await t.request('DELETE', `/v1/machines/${m.id}`, { key })).status, 200);
  });

  it('pause, snapshot and resize of a gvisor machine are 422 UNSUPPORTED_OPERATION and change nothing', async () => {
    for (const [method, path, body] of [
      ['POST', `/v1/machines/${gv.id}/pause`, undefined],
      ['POST', `/v1/machines/${gv.id}/snapshots`, undefined],
      ['PATCH', `/v1/machines/${gv.id}`, { config: { memory_mb: 256 } }],
    ] as const) {
      const r = await t.request(method, path, { key, body });
      assert.equal(r.status, 422, `${method} ${path}: ${r.text}`);
      assert.equal(r.body.code, 'UNSUPPORTED_OPERATION');
      assert.match(r.body.message, /gvisor/);
    }
    const m = (await t.request('GET', `/v1/machines/${gv.id}`, { key })).body;
    assert.deepEqual([m.status, m.config.memory_mb], ['running', 128]);
    const still = await t.request('POST', `/v1/machines/${gv.id}/exec`, { key, body: { cmd: ['true'] } });
    assert.equal(still.body.exit_code, 0);
  });

  it('a gvisor create asking for hibernation, auto snapshots or a fork is refused before anything is made', async () => {
    const ids = async (): Promise<Set<string>> => new Set(((await t.request('GET', '/v1/machines', { key })).body as Json[]).map((m) => m.id as string));
    const before = await ids();
    for (const body of [
      { isolation: 'gvisor', timeout_action: 'hibernate' },
      { isolation: 'gvisor', inactivity_timeout_ms: 60_000 },
      { isolation: 'gvisor', auto_snapshot: { frequency: 'daily', keep: 1 } },
    ]) {
      const r = await create(body);
      assert.equal(r.status, 422, `${JSON.stringify(body)}: ${r.text}`);
      assert.equal(r.body.code, 'UNSUPPORTED_OPERATION');
    }
    // A fork into a gvisor machine, from a container machine's snapshot.
    const source = await create({});
    assert.equal(source.status, 201, source.text);
    const snap = await t.request('POST', `/v1/machines/${source.body.id}/snapshots`, { key });
    assert.equal(snap.status, 201, snap.text);
    const fork = await create({ isolation: 'gvisor', snapshot_id: snap.body.id, config: undefined });
    assert.equal(fork.status, 422, fork.text);
    assert.equal(fork.body.code, 'UNSUPPORTED_OPERATION');
    assert.equal((await t.request('DELETE', `/v1/machines/${source.body.id}`, { key })).status, 200);
    before.add(source.body.id);
    const ephemeral = await create({ isolation: 'gvisor', inactivity_timeout_ms: 60_000, ephemeral: true });
    assert.equal(ephemeral.status, 201, ephemeral.text);
    assert.equal((await t.request('DELETE', `/v1/machines/${ephemeral.body.id}`, { key })).status, 200);
    const made = [...(await ids())].filter((id) => !before.has(id) && id !== ephemeral.body.id);
    assert.deepEqual(made, [], 'a refused create left a machine');
    const bad = await create({ isolation: 'vm' });
    assert.equal(bad.status, 400);
  });
});
