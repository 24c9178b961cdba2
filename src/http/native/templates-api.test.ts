/**
 * Templates through the HTTP API on real machines: builds layered on `base` and on each
 * other, an OCI image the test makes itself, a start_cmd template whose service is up
 * (same pid) right after create, failed builds, versions, deletion, team scoping and
 * bad input. Debian sources (mmdebstrap, slow) are in templates-debian.test.ts.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { ADMIN_KEY, TestServer, waitFor } from '../../testing/harness.js';

const execFileP = promisify(execFile);

/** Start a build and wait until it ends; returns the build. */
async function built(t: TestServer, body: Record<string, unknown>, key?: string): Promise<any> {
  const r = await t.request('POST', '/v1/templates', { body, key });
  assert.equal(r.status, 202, r.text);
  assert.equal(r.body.status, 'building');
  return waitFor(async () => {
    const b = await t.request('GET', `/v1/templates/${body.name}/builds/${r.body.id}`, { key });
    return b.body.status === 'building' ? null : b.body;
  }, 240_000, 100);
}

async function exec(t: TestServer, id: string, cmd: string, key?: string): Promise<{ exit_code: number; stdout: string; stderr: string }> {
  const r = await t.request('POST', `/v1/machines/${id}/exec`, { body: { cmd }, key });
  assert.equal(r.status, 200, r.text);
  return r.body;
}

async function create(t: TestServer, template: string, key?: string): Promise<string> {
  const r = await t.request('POST', '/v1/machines', { body: { template }, key });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.body.status, 'running');
  return r.body.id;
}

describe('templates API', () => {
  let t: TestServer;
  let other: { teamId: string; key: string };
  const layersDir = (): string => t.server.settings.layersDir;

  before(async () => {
    t = await TestServer.start();
    other = await t.newTeamKey('other');
  });
  after(async () => {
    await t?.dispose();
  });

  it('builds a template on base whose machines see the steps: files, a removed file, env, workdir, user', async () => {
    const b = await built(t, {
      name: 'tools',
      description: 'base with a file',
      source: { template: 'base' },
      steps: [
        { run: 'mkdir -p /opt/tools && echo one > /opt/tools/version && rm /etc/profile && echo worker:x:1234:1234::/tmp:/bin/sh >> /etc/passwd && echo worker:x:1234: >> /etc/group' },
        { env: { TOOLS_HOME: '/opt/tools' } },
        { workdir: '/srv/work' },
        { run: 'echo "$TOOLS_HOME" > /srv/work/seen-env && pwd > /srv/work/seen-cwd' },
        { user: 'worker' },
        { run: 'id -u > /tmp/seen-uid' },
      ],
    });
    assert.equal(b.status, 'ready', JSON.stringify(b.error));
    assert.equal(b.version, 1);
    const tpl = await t.request('GET', '/v1/templates/tools');
    assert.equal(tpl.status, 200);
    assert.equal(tpl.body.kind, 'built');
    assert.equal(tpl.body.scope, 'team');
    assert.equal(tpl.body.version, 1);
    assert.equal(tpl.body.layers, 2, 'base copied in as a layer, and the steps\' layer');

    const id = await create(t, 'tools');
    const m = await t.request('GET', `/v1/machines/${id}`);
    assert.equal(m.body.template, 'tools');
    const r = await exec(t, id, 'cat /opt/tools/version /srv/work/seen-env /srv/work/seen-cwd /tmp/seen-uid; echo "$TOOLS_HOME"; pwd; id -u; test -e /etc/profile || echo profile-gone');
    assert.equal(r.stdout, 'one\n/opt/tools\n/srv/work\n1234\n/opt/tools\n/srv/work\n1234\nprofile-gone\n');
    // An explicit user still wins over the template's.
    const root = await t.request('POST', `/v1/machines/${id}/exec`, { body: { cmd: 'id -u', user: 'root' } });
    assert.equal(root.body.stdout, '0\n');
    // The build machine is gone: only this machine's container runs.
    const containers = await execFileP(t.server.settings.runcPath, ['--root', t.server.settings.runcStateDir, 'list', '-q']);
    assert.deepEqual(containers.stdout.trim().split('\n'), [id]);
    await t.request('DELETE', `/v1/machines/${id}`);
  });

  it("follows a build's log as SSE (resumable) and downloads it whole", async () => {
    const start = await t.request('POST', '/v1/templates', {
      body: { name: 'chatty', source: { template: 'base' }, steps: [{ run: 'for i in 1 2 3; do echo line-$i; sleep 0.2; done' }] },
    });
    assert.equal(start.status, 202);
    const logUrl = `${t.url}${start.body.logs_url}`;
    const res = await fetch(logUrl, { headers: { authorization: `Bearer ${ADMIN_KEY}`, accept: 'text/event-stream' } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const text = await res.text();
    assert.match(text, /event: log\nid: 1\n/);
    for (const l of ['line-1', 'line-2', 'line-3']) assert.ok(text.includes(`"line":"${l}"`), `${l} in ${text}`);
    assert.match(text, /event: end\ndata: \{"status":"ready","error":null\}/);
    const plain = await t.request('GET', start.body.logs_url);
    assert.match(plain.headers.get('content-type') ?? '', /text\/plain/);
    const lines = plain.text.split('\n');
    const n = lines.findIndex((l) => l === 'line-2');
    assert.ok(n > 0, plain.text);
    // Resume after line n (line-2 is line n+1): the next event is line-3's.
    const resumed = await fetch(logUrl, { headers: { authorization: `Bearer ${ADMIN_KEY}`, accept: 'text/event-stream', 'last-event-id': String(n + 1) } });
    const rest = await resumed.text();
    assert.ok(!rest.includes('line-2') && rest.includes('line-3'), rest);
    assert.match(rest, new RegExp(`id: ${n + 2}\\n`));
  });

  it('layers a template on a built one; a rebuild makes version 2 and running machines keep version 1', async () => {
    const b = await built(t, { name: 'tools-plus', source: { template: 'tools' }, steps: [{ user: 'root' }, { run: 'echo two > /opt/tools/extra' }, { user: 'worker' }] });
    assert.equal(b.status, 'ready', JSON.stringify(b.error));
    const plus = await t.request('GET', '/v1/templates/tools-plus');
    assert.equal(plus.body.layers, 3, 'its own layer over the two of tools, which are shared, not copied');
    const id = await create(t, 'tools-plus');
    const r = await exec(t, id, 'cat /opt/tools/version /opt/tools/extra; pwd; id -u');
    assert.equal(r.stdout, 'one\ntwo\n/srv/work\n1234\n', 'the parent\'s files, workdir and user come along');

    const old = await create(t, 'tools');
    const v2 = await built(t, { name: 'tools', source: { template: 'base' }, steps: [{ run: 'mkdir -p /opt/tools && echo v2 > /opt/tools/version' }] });
    assert.equal(v2.status, 'ready');
    assert.equal(v2.version, 2);
    const fresh = await create(t, 'tools');
    assert.equal((await exec(t, fresh, 'cat /opt/tools/version')).stdout, 'v2\n');
    assert.equal((await exec(t, old, 'cat /opt/tools/version')).stdout, 'one\n', 'a running machine keeps its version');
    // Its version survives a pause and resume (the layers are found by the machine's build).
    if ((await t.request('GET', '/v1/info')).body.snapshots.memory) {
      assert.equal((await t.request('POST', `/v1/machines/${old}/pause`)).status, 200);
      assert.equal((await t.request('POST', `/v1/machines/${old}/resume`)).status, 200);
      assert.equal((await exec(t, old, 'cat /opt/tools/version')).stdout, 'one\n');
    }
    for (const m of [id, old, fresh]) await t.request('DELETE', `/v1/machines/${m}`);
  });

  it('a failed build ends in error with its step and log, and the name keeps its previous version', async () => {
    const bad = await built(t, { name: 'tools', source: { template: 'base' }, steps: [{ run: 'echo about to fail; exit 3' }] });
    assert.equal(bad.status, 'error');
    assert.equal(bad.error.step, 'step 1 (run)');
    assert.match(bad.error.message, /exited with 3/);
    const log = await t.request('GET', bad.logs_url);
    assert.match(log.text, /about to fail/);
    const tpl = await t.request('GET', '/v1/templates/tools');
    assert.equal(tpl.body.status, 'error', 'the newest build failed');
    assert.equal(tpl.body.version, 2, 'creates still get version 2');
    const id = await create(t, 'tools');
    assert.equal((await exec(t, id, 'cat /opt/tools/version')).stdout, 'v2\n');
    await t.request('DELETE', `/v1/machines/${id}`);

    const never = await built(t, { name: 'never', source: { template: 'base' }, steps: [{ run: 'false' }] });
    assert.equal(never.status, 'error');
    const c = await t.request('POST', '/v1/machines', { body: { template: 'never' } });
    assert.equal(c.status, 422);
    assert.equal(c.body.code, 'UNKNOWN_TEMPLATE');
    const containers = await execFileP(t.server.settings.runcPath, ['--root', t.server.settings.runcStateDir, 'list', '-q']);
    assert.equal(containers.stdout.trim(), '', 'no build machine is left');
    assert.deepEqual((await readdir(layersDir())).filter((n) => n.startsWith('.staging-')), [], 'no staging is left');
  });

  it('imports an OCI image the test made itself, with its env and working directory', async () => {
    const work = await mkdtemp(join(tmpdir(), 'hangar-oci-'));
    try {
      const layout = join(work, 'layout');
      await execFileP('umoci', ['init', '--layout', layout]);
      await execFileP('umoci', ['new', '--image', `${layout}:img`]);
      await execFileP('umoci', ['unpack', '--image', `${layout}:img`, join(work, 'bundle')]);
      const rootfs = join(work, 'bundle', 'rootfs');
      for (const d of ['bin', 'srv', 'tmp', 'etc']) await mkdir(join(rootfs, d), { recursive: true });
      await execFileP('cp', ['/bin/busybox', join(rootfs, 'bin/busybox')]);
      await execFileP('ln', ['-s', 'busybox', join(rootfs, 'bin/sh')]);
      await writeFile(join(rootfs, 'srv/hello.txt'), 'from the image\n');
      await execFileP('umoci', ['repack', '--image', `${layout}:img`, join(work, 'bundle')]);
      await execFileP('umoci', ['config', '--image', `${layout}:img`, '--config.env', 'IMAGE_VAR=set-by-image', '--config.workingdir', '/srv']);
      await execFileP('tar', ['-C', layout, '-cf', join(work, 'image.tar'), '.']);
      const archive = await import('node:fs').then((fs) => fs.readFileSync(join(work, 'image.tar')));
      const up = await fetch(`${t.url}/v1/uploads`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/x-tar' }, body: archive });
      assert.equal(up.status, 201);
      const upload = (await up.json()) as { upload_id: string; size_bytes: number };
      assert.equal(upload.size_bytes, archive.length);
      // Another team cannot use it.
      const stolen = await t.request('POST', '/v1/templates', { key: other.key, body: { name: 'stolen', source: { image: { upload_id: upload.upload_id } } } });
      assert.equal(stolen.status, 422);
      assert.equal(stolen.body.code, 'UNKNOWN_UPLOAD');

      const b = await built(t, { name: 'from-oci', source: { image: { upload_id: upload.upload_id } } });
      assert.equal(b.status, 'ready', JSON.stringify(b.error));
      const id = await create(t, 'from-oci');
      const r = await exec(t, id, ['/bin/busybox', 'sh', '-c', 'cat hello.txt; echo "$IMAGE_VAR"; /bin/busybox pwd'] as never);
      assert.equal(r.stdout, 'from the image\nset-by-image\n/srv\n');
      await t.request('DELETE', `/v1/machines/${id}`);

      const junk = await fetch(`${t.url}/v1/uploads`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}` }, body: 'not an archive' });
      const junkId = ((await junk.json()) as { upload_id: string }).upload_id;
      const bad = await built(t, { name: 'junk', source: { image: { upload_id: junkId } } });
      assert.equal(bad.status, 'error');
      assert.equal(bad.error.step, 'source');
      assert.match(bad.error.message, /neither an OCI image/);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  it('a start_cmd template: every create resumes the running service, with the pid it had at build time', async (ctx) => {
    if (!(await t.request('GET', '/v1/info')).body.snapshots.memory) return ctx.skip('CRIU memory snapshots are not available here');
    const b = await built(t, {
      name: 'web',
      source: { template: 'base' },
      steps: [{ run: 'mkdir -p /www && echo served-by-template > /www/index.html' }],
      start_cmd: 'exec httpd -f -p 8080 -h /www',
      ready_cmd: 'wget -q -O- http://127.0.0.1:8080/ | grep -q served',
    });
    assert.equal(b.status, 'ready', JSON.stringify(b.error));
    const tpl = await t.request('GET', '/v1/templates/web');
    assert.equal(tpl.body.start_snapshot, true);
    const pid = tpl.body.start_pid;
    assert.ok(Number.isInteger(pid) && pid > 1, `start pid ${pid}`);
    const ids = [await create(t, 'web'), await create(t, 'web')];
    for (const id of ids) {
      const r = await exec(t, id, `wget -q -O- http://127.0.0.1:8080/; tr '\\0' ' ' < /proc/${pid}/cmdline; echo; hostname`);
      assert.equal(r.stdout, `served-by-template\nhttpd -f -p 8080 -h /www \n${id}\n`);
    }
    // The two machines are separate: a file written in one is not in the other.
    await exec(t, ids[0]!, 'echo mine > /www/index.html');
    assert.equal((await exec(t, ids[1]!, 'wget -q -O- http://127.0.0.1:8080/')).stdout, 'served-by-template\n');
    const disk = await t.request('POST', '/v1/machines', { body: { template: 'web', config: { disk_mb: 2048 } } });
    assert.equal(disk.status, 422);
    assert.equal(disk.body.code, 'UNSUPPORTED_OPERATION');
    for (const id of ids) await t.request('DELETE', `/v1/machines/${id}`);
    // The service snapshot is no machine's: a restarted server keeps it, and creates still resume it.
    await t.restart();
    const again = await create(t, 'web');
    assert.equal((await exec(t, again, 'wget -q -O- http://127.0.0.1:8080/')).stdout, 'served-by-template\n');
    await t.request('DELETE', `/v1/machines/${again}`);

    const never = await built(t, { name: 'never-ready', source: { template: 'base' }, start_cmd: 'sleep 1000', ready_cmd: 'false', ready_timeout_ms: 500 });
    assert.equal(never.status, 'error');
    assert.equal(never.error.step, 'ready');
  });

  it('a server-wide built template: every team uses it, from a warm pool too, and its machines snapshot, fork and resize', async () => {
    const b = await built(t, { name: 'shared-tools', server_wide: true, source: { template: 'base' }, steps: [{ run: 'echo shared > /etc/shared' }] });
    assert.equal(b.status, 'ready', JSON.stringify(b.error));
    const seen = await t.request('GET', '/v1/templates/shared-tools', { key: other.key });
    assert.equal(seen.body.scope, 'server');
    const taken = await t.request('POST', '/v1/templates', { key: other.key, body: { name: 'shared-tools', source: { template: 'base' } } });
    assert.equal(taken.body.code, 'TEMPLATE_NAME_TAKEN');
    assert.equal((await t.request('DELETE', '/v1/templates/shared-tools', { key: other.key })).status, 403);

    assert.equal((await t.request('PUT', '/v1/warm-pools/st', { body: { template: 'shared-tools', size: 1 } })).status, 200);
    await waitFor(async () => (await t.request('GET', '/v1/warm-pools/st')).body.ready === 1, 60_000);
    const m = await t.request('POST', '/v1/machines', { key: other.key, body: { template: 'shared-tools' } });
    assert.equal(m.status, 201, m.text);
    assert.deepEqual(m.body.warm_pool_checkout, { hit: true, id: 'st' });
    const id = m.body.id;
    assert.equal((await exec(t, id, 'cat /etc/shared; echo before-snapshot > /root/mark', other.key)).stdout, 'shared\n');
    assert.equal((await t.request('DELETE', '/v1/warm-pools/st')).status, 204);

    const snap = await t.request('POST', `/v1/machines/${id}/snapshots`, { key: other.key });
    assert.equal(snap.status, 201, snap.text);
    const fork = await t.request('POST', '/v1/machines', { key: other.key, body: { snapshot_id: snap.body.id } });
    assert.equal(fork.status, 201, fork.text);
    assert.equal(fork.body.template, 'shared-tools');
    assert.equal((await exec(t, fork.body.id, 'cat /etc/shared /root/mark', other.key)).stdout, 'shared\nbefore-snapshot\n');
    const resized = await t.request('PATCH', `/v1/machines/${id}`, { key: other.key, body: { config: { memory_mb: 1024 } } });
    assert.equal(resized.status, 200, resized.text);
    assert.equal(resized.body.config.memory_mb, 1024);
    assert.equal((await exec(t, id, 'cat /etc/shared', other.key)).stdout, 'shared\n');
    // A snapshot holds the version: the template cannot go while it exists.
    for (const x of [id, fork.body.id]) await t.request('DELETE', `/v1/machines/${x}`, { key: other.key });
    const held = await t.request('DELETE', '/v1/templates/shared-tools');
    assert.equal(held.status, 409);
    assert.equal(held.body.code, 'TEMPLATE_IN_USE');
    assert.equal((await t.request('DELETE', `/v1/snapshots/${snap.body.id}`, { key: other.key })).status, 204);
    assert.equal((await t.request('DELETE', '/v1/templates/shared-tools')).status, 204);
  });

  it('templates are per team: another team neither sees nor uses them', async () => {
    assert.equal((await t.request('GET', '/v1/templates/tools', { key: other.key })).status, 404);
    const c = await t.request('POST', '/v1/machines', { key: other.key, body: { template: 'tools' } });
    assert.equal(c.status, 422);
    assert.equal(c.body.code, 'UNKNOWN_TEMPLATE');
    const list = await t.request('GET', '/v1/templates', { key: other.key });
    const names = list.body.items.map((i: any) => i.name);
    assert.ok(names.includes('base') && !names.includes('tools'), names.join(','));
    assert.equal((await t.request('DELETE', '/v1/templates/tools', { key: other.key })).status, 404);
  });

  it('lists templates by name in pages', async () => {
    const first = await t.request('GET', '/v1/templates?limit=2');
    assert.equal(first.status, 200);
    assert.equal(first.body.items.length, 2);
    const seen: string[] = first.body.items.map((i: any) => i.name);
    let token = first.body.next_token;
    while (token) {
      const page = await t.request('GET', `/v1/templates?limit=2&next_token=${encodeURIComponent(token)}`);
      seen.push(...page.body.items.map((i: any) => i.name));
      token = page.body.next_token;
    }
    assert.deepEqual(seen, [...seen].sort());
    assert.ok(seen.includes('base') && seen.includes('tools') && seen.includes('tools-plus'), seen.join(','));
    const base = (await t.request('GET', '/v1/templates/base')).body;
    assert.equal(base.kind, 'directory');
    assert.equal(base.scope, 'server');
    const bad = await t.request('GET', `/v1/templates?next_token=${encodeURIComponent(token ?? 'x.y')}`, { key: other.key });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.code, 'INVALID_NEXT_TOKEN');
  });

  it('the Paperspace-style surface lists OS templates and templates, and creates from a built templateId', async () => {
    const base = t.server.settings.paperspace.basePath;
    const os = await t.request('GET', `${base}/os-templates`);
    assert.equal(os.status, 200);
    const osNames = os.body.items.map((i: any) => i.id);
    assert.ok(osNames.includes('base') && !osNames.includes('tools'), osNames.join(','));
    const all: any[] = [];
    let after: string | null = null;
    do {
      const page: any = await t.request('GET', `${base}/templates?limit=2${after ? `&after=${encodeURIComponent(after)}` : ''}`);
      assert.equal(page.status, 200, page.text);
      assert.equal(page.body.hasMore, page.body.nextPage !== null);
      all.push(...page.body.items);
      after = page.body.nextPage;
    } while (after);
    const tools = all.find((i) => i.id === 'tools');
    assert.deepEqual({ agentType: tools.agentType, isServerWide: tools.isServerWide, status: tools.status, os: tools.operatingSystemLabel }, { agentType: 'LinuxHeadless', isServerWide: false, status: 'error', os: 'Linux' });
    const c = await t.request('POST', `${base}/machines`, { body: { name: 'ps-tools', machineType: 'C1', templateId: 'tools', region: t.server.settings.regions[0], diskSize: 1 } });
    assert.equal(c.status, 200, c.text);
    const done = await t.finishedEvent(c.body.event.id);
    assert.equal(done.state, 'done', JSON.stringify(done));
    assert.equal((await exec(t, c.body.data.id, 'cat /opt/tools/version')).stdout, 'v2\n');
    await t.request('DELETE', `/v1/machines/${c.body.data.id}`);
    const bad = await t.request('GET', `${base}/templates?after=${encodeURIComponent('x.y')}`);
    assert.equal(bad.status, 400);
  });

  it('deleting is refused while a machine runs on a version, then removes the name and its unshared layers', async () => {
    const id = await create(t, 'tools-plus');
    const refused = await t.request('DELETE', '/v1/templates/tools-plus');
    assert.equal(refused.status, 409);
    assert.equal(refused.body.code, 'TEMPLATE_IN_USE');
    await t.request('DELETE', `/v1/machines/${id}`);
    const layersOf = async (name: string): Promise<string[]> => {
      const latest = (await t.request('GET', `/v1/templates/${name}`)).body;
      const b = await t.server.store.getTemplateBuild(latest.latest_build.id);
      const current = await t.server.store.currentTemplate(b!.teamId, name);
      return current!.result!.layers;
    };
    const [own, ...shared] = await layersOf('tools-plus');
    const tools = await layersOf('tools');
    assert.equal((await t.request('DELETE', '/v1/templates/tools-plus')).status, 204);
    assert.equal((await t.request('GET', '/v1/templates/tools-plus')).status, 404);
    const left = new Set(await readdir(layersDir()));
    assert.ok(!left.has(own!), 'its own layer is removed');
    for (const d of tools) assert.ok(left.has(d), 'the layers of tools (the current version) stay');
    assert.ok(shared.length === 2);
    assert.equal((await t.request('DELETE', '/v1/templates/base')).status, 403);
  });

  it('bad input gets a 4xx with a stable code and creates nothing', async () => {
    const cases: [Record<string, unknown>, number, string, string?][] = [
      [{ name: 'Bad Name', source: { template: 'base' } }, 400, 'VALIDATION_FAILED'],
      [{ name: 'x' }, 400, 'VALIDATION_FAILED'],
      [{ name: 'x', source: { template: 'base', debian: { suite: 'trixie' } } }, 400, 'VALIDATION_FAILED'],
      [{ name: 'x', source: { debian: { suite: 'hamm' } } }, 400, 'VALIDATION_FAILED'],
      [{ name: 'x', source: { debian: { suite: 'trixie', packages: ['bad;name'] } } }, 400, 'VALIDATION_FAILED'],
      [{ name: 'x', source: { template: 'base' }, steps: [{ run: 'true', env: {} }] }, 400, 'VALIDATION_FAILED'],
      [{ name: 'x', source: { template: 'base' }, steps: [{ workdir: 'relative' }] }, 400, 'VALIDATION_FAILED'],
      [{ name: 'x', source: { template: 'base' }, steps: [{ copy: { upload_id: 'nope', dest: '/x' } }] }, 400, 'VALIDATION_FAILED'],
      [{ name: 'x', source: { template: 'base' }, ready_cmd: 'true' }, 400, 'VALIDATION_FAILED'],
      [{ name: 'x', source: { template: 'base' }, timeout_ms: 5 }, 400, 'VALIDATION_FAILED'],
      [{ name: 'x', source: { template: 'no-such' } }, 422, 'UNKNOWN_TEMPLATE'],
      [{ name: 'x', source: { image: { upload_id: 'upl_0000000000000000' } } }, 422, 'UNKNOWN_UPLOAD'],
      [{ name: 'x', source: { template: 'base' }, steps: [{ copy: { upload_id: 'upl_0000000000000000', dest: '/x' } }] }, 422, 'UNKNOWN_UPLOAD'],
      [{ name: 'base', source: { template: 'base' } }, 409, 'TEMPLATE_NAME_TAKEN'],
      [{ name: 'python', source: { template: 'base' } }, 409, 'TEMPLATE_NAME_TAKEN'],
      [{ name: 'x', source: { template: 'base' }, server_wide: true }, 403, 'FORBIDDEN', other.key],
      [{ name: 'x', source: { image: { path: '/etc' } } }, 403, 'FORBIDDEN', other.key],
    ];
    for (const [body, status, code, key] of cases) {
      const r = await t.request('POST', '/v1/templates', { body, key });
      assert.equal(r.status, status, `${JSON.stringify(body)}: ${r.text}`);
      assert.equal(r.body.code, code, JSON.stringify(body));
      assert.ok(r.body.message.length > 10);
    }
    assert.equal((await t.request('GET', '/v1/templates/x')).status, 404, 'nothing was made');
    assert.equal((await t.request('GET', '/v1/templates/x', { key: other.key })).status, 404);
    assert.equal((await t.request('GET', '/v1/templates/tools/builds/bld_0000000000000000')).status, 404);
  });
});
