/**
 * The real `e2b` npm SDK, unchanged, against a real Hangar server with real machines:
 * control API (create, getInfo, list with a metadata filter, setTimeout, kill) and envd
 * (commands, files, watches, terminals). Traffic stays on loopback: `apiUrl` and
 * `sandboxUrl` are the test server's own URL, so no sandbox host name is ever resolved.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { CommandExitError, FileNotFoundError, Sandbox, SandboxNotFoundError } from 'e2b';
import { TestServer, waitFor } from '../../testing/harness.js';

describe('the e2b SDK against Hangar', () => {
  let t: TestServer;
  let key: string;
  let sbx: Sandbox;
  const opts = (): { apiKey: string; apiUrl: string; sandboxUrl: string; requestTimeoutMs: number } => ({ apiKey: key, apiUrl: t.url, sandboxUrl: t.url, requestTimeoutMs: 60_000 });

  before(async () => {
    t = await TestServer.start({ env: { HANGAR_INGRESS_DOMAIN: 'e2b.test' } });
    key = (await t.newTeamKey('e2b')).key;
    sbx = await Sandbox.create('base', { ...opts(), timeoutMs: 120_000, metadata: { suite: 'e2b', run: 'one' }, envs: { GREETING: 'hello from env' } });
  });
  after(async () => {
    await t?.dispose();
  });

  it('creates a sandbox that is a Hangar machine, with its info, list filter and timeout', async () => {
    assert.match(sbx.sandboxId, /^mch_/);
    const info = await sbx.getInfo();
    assert.equal(info.sandboxId, sbx.sandboxId);
    assert.equal(info.templateId, 'base');
    assert.equal(info.state, 'running');
    assert.deepEqual(info.metadata, { suite: 'e2b', run: 'one' });
    assert.ok(info.endAt.getTime() - Date.now() > 60_000 && info.endAt.getTime() - Date.now() <= 120_000, `endAt ${info.endAt.toISOString()}`);
    // The same machine on the native surface.
    const native = await t.request('GET', `/v1/machines/${sbx.sandboxId}`, { key });
    assert.equal(native.status, 200, native.text);
    assert.deepEqual(native.body.metadata, { suite: 'e2b', run: 'one' });

    const other = await Sandbox.create('base', { ...opts(), metadata: { suite: 'other' } });
    try {
      const page = await Sandbox.list({ ...opts(), query: { metadata: { suite: 'e2b' } } }).nextItems();
      assert.deepEqual(page.map((s) => s.sandboxId), [sbx.sandboxId]);
      const all = await Sandbox.list({ ...opts(), query: { state: ['running'] } }).nextItems();
      assert.deepEqual(new Set(all.map((s) => s.sandboxId)), new Set([sbx.sandboxId, other.sandboxId]));
    } finally {
      assert.equal(await Sandbox.kill(other.sandboxId, opts()), true);
    }
    await assert.rejects(Sandbox.getInfo(other.sandboxId, opts()), SandboxNotFoundError);
    assert.equal(await Sandbox.kill(other.sandboxId, opts()), false);

    const [metric] = await sbx.getMetrics();
    assert.ok(metric, 'one sample');
    assert.equal(metric.cpuCount, 1);
    assert.equal(metric.memTotal, 512 * 1024 * 1024);
    assert.ok(metric.memUsed > 0 && metric.memUsed < metric.memTotal, `memUsed ${metric.memUsed}`);
    assert.ok(metric.cpuUsedPct >= 0 && metric.cpuUsedPct <= 100, `cpuUsedPct ${metric.cpuUsedPct}`);
    assert.ok(metric.diskUsed > 0 && metric.diskTotal === 1024 * 1024 * 1024, `disk ${metric.diskUsed}/${metric.diskTotal}`);
    assert.ok(Math.abs(metric.timestamp.getTime() - Date.now()) < 60_000);

    await sbx.setTimeout(600_000);
    const later = await sbx.getInfo();
    assert.ok(later.endAt.getTime() - Date.now() > 500_000, `endAt after setTimeout ${later.endAt.toISOString()}`);
  });

  it('refuses a wrong API key and a wrong envd token in E2B\'s error shapes', async () => {
    await assert.rejects(Sandbox.list({ ...opts(), apiKey: 'not-a-hangar-key-at-all' }).nextItems(), /Unauthorized/);
    const bad = await fetch(`${t.url}/filesystem.Filesystem/Stat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'e2b-sandbox-id': sbx.sandboxId, 'x-access-token': 'wrong' },
      body: JSON.stringify({ path: '/' }),
    });
    assert.equal(bad.status, 401);
    assert.equal(((await bad.json()) as { code: string }).code, 'unauthenticated');
    const create = await fetch(`${t.url}/v2/sandboxes`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: JSON.stringify({ templateID: 'base', mcp: { x: 1 } }) });
    assert.equal(create.status, 422);
    const body = (await create.json()) as { code: number; message: string };
    assert.equal(body.code, 422);
    assert.match(body.message, /mcp/);
  });

  it('serves envd by host name too ({port}-{id}.{domain}), as the SDK calls it behind a TLS proxy with E2B_DOMAIN', async () => {
    const info = await Sandbox.getInfo(sbx.sandboxId, opts());
    const detail = (await (await fetch(`${t.url}/sandboxes/${sbx.sandboxId}`, { headers: { 'x-api-key': key } })).json()) as { envdAccessToken: string };
    const token = detail.envdAccessToken;
    const call = (path: string, body: string | null, accessToken: string): Promise<{ status: number; text: string }> =>
      new Promise((resolve, reject) => {
        const u = new URL(t.url);
        const req = httpRequest(
          { host: u.hostname, port: u.port, path, method: body === null ? 'GET' : 'POST', headers: { host: `49983-${info.sandboxId}.e2b.test`, 'x-access-token': accessToken, 'content-type': 'application/json' } },
          (res) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          },
        );
        req.on('error', reject);
        req.end(body ?? undefined);
      });
    assert.equal((await call('/health', null, token)).status, 204);
    const stat = await call('/filesystem.Filesystem/Stat', JSON.stringify({ path: '/etc' }), token);
    assert.equal(stat.status, 200, stat.text);
    assert.equal(JSON.parse(stat.text).entry.type, 'FILE_TYPE_DIRECTORY');
    assert.equal((await call('/health', null, 'wrong-token')).status, 401);
    // The traffic token opens the machine's ports only, never its commands and files.
    const traffic = (await t.request('GET', `/v1/machines/${sbx.sandboxId}?fields=id,traffic_access_token`, { key })).body.traffic_access_token as string;
    assert.match(traffic, /^tat_/);
    assert.equal((await call('/filesystem.Filesystem/Stat', JSON.stringify({ path: '/etc' }), traffic)).status, 401);
  });

  it('runs foreground commands with output callbacks, env, cwd and exit codes', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const r = await sbx.commands.run('echo "$GREETING"; echo "$EXTRA" >&2; pwd', {
      envs: { EXTRA: 'extra var' },
      cwd: '/tmp',
      onStdout: (d) => void out.push(d),
      onStderr: (d) => void err.push(d),
    });
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout, 'hello from env\n/tmp\n');
    assert.equal(r.stderr, 'extra var\n');
    assert.equal(out.join(''), r.stdout);
    assert.equal(err.join(''), r.stderr);

    await assert.rejects(sbx.commands.run('echo failing >&2; exit 3'), (e: unknown) => {
      assert.ok(e instanceof CommandExitError);
      assert.equal(e.exitCode, 3);
      assert.equal(e.stderr, 'failing\n');
      return true;
    });
  });

  it('writes, reads, lists, makes, renames and removes files', async () => {
    const w = await sbx.files.write('/work/a.txt', 'first file\n');
    assert.equal(w.path, '/work/a.txt');
    assert.equal(await sbx.files.read('/work/a.txt'), 'first file\n');
    const bytes = new Uint8Array([0, 1, 2, 250, 255]);
    await sbx.files.write('/work/b.bin', bytes.buffer);
    assert.deepEqual(await sbx.files.read('/work/b.bin', { format: 'bytes' }), bytes);
    // Relative paths are under the user's home (root's, here).
    await sbx.files.write('rel.txt', 'in home');
    assert.equal(await sbx.files.read('/root/rel.txt'), 'in home');

    assert.equal(await sbx.files.makeDir('/work/sub/deeper'), true);
    assert.equal(await sbx.files.makeDir('/work/sub/deeper'), false);
    const list = await sbx.files.list('/work');
    assert.deepEqual(list.map((e) => [e.name, e.type]).sort(), [['a.txt', 'file'], ['b.bin', 'file'], ['sub', 'dir']]);
    const deep = await sbx.files.list('/work', { depth: 2 });
    assert.ok(deep.some((e) => e.path === '/work/sub/deeper' && e.type === 'dir'));
    const a = list.find((e) => e.name === 'a.txt')!;
    assert.equal(a.size, 11);
    assert.ok(a.modifiedTime instanceof Date && Math.abs(a.modifiedTime.getTime() - Date.now()) < 120_000);

    const moved = await sbx.files.rename('/work/a.txt', '/work/sub/c.txt');
    assert.equal(moved.path, '/work/sub/c.txt');
    assert.equal(await sbx.files.exists('/work/a.txt'), false);
    assert.equal(await sbx.files.exists('/work/sub/c.txt'), true);
    await sbx.files.remove('/work/sub');
    assert.equal(await sbx.files.exists('/work/sub'), false);
    await assert.rejects(sbx.files.read('/work/missing.txt'), FileNotFoundError);
    // The files are the machine's, as the native surface sees them.
    const native = await t.request('GET', `/v1/machines/${sbx.sandboxId}/files/stat?path=/work/b.bin`, { key });
    assert.equal(native.status, 200, native.text);
    assert.equal(native.body.size, 5);
  });

  it('runs background commands with stdin, wait and kill', async () => {
    const lines: string[] = [];
    const cat = await sbx.commands.run('cat', { background: true, stdin: true, onStdout: (d) => void lines.push(d) });
    assert.ok(cat.pid > 0);
    const listed = await sbx.commands.list();
    assert.ok(listed.some((p) => p.pid === cat.pid));
    await sbx.commands.sendStdin(cat.pid, 'typed line\n');
    await waitFor(async () => (lines.join('') === 'typed line\n' ? true : null), 20_000);
    await cat.closeStdin();
    const done = await cat.wait();
    assert.equal(done.exitCode, 0);
    assert.equal(done.stdout, 'typed line\n');

    const sleeper = await sbx.commands.run('sleep 600', { background: true });
    assert.equal(await sleeper.kill(), true);
    await assert.rejects(sleeper.wait(), (e: unknown) => e instanceof CommandExitError && e.exitCode === -1);
    assert.equal(await sbx.commands.kill(sleeper.pid), false);
  });

  it('connects to running commands and terminals, and uploads files streamed', async () => {
    const ticker = await sbx.commands.run('i=0; while [ $i -lt 400 ]; do i=$((i+1)); echo tick $i; sleep 0.05; done', { background: true });
    let seen = '';
    const second = await sbx.commands.connect(ticker.pid, { onStdout: (d) => void (seen += d) });
    await waitFor(async () => (seen.includes('tick') ? true : null), 20_000);
    assert.equal(await sbx.commands.kill(ticker.pid), true);
    await assert.rejects(second.wait(), CommandExitError);

    let shown = '';
    const term = await sbx.pty.create({ cols: 80, rows: 24, onData: () => undefined });
    const again = await sbx.pty.connect(term.pid, { onData: (d) => void (shown += new TextDecoder().decode(d)) });
    await sbx.pty.sendInput(term.pid, new TextEncoder().encode('echo via-$((40+2))\n'));
    await waitFor(async () => (shown.includes('via-42') ? true : null), 20_000);
    assert.equal(await sbx.pty.kill(term.pid), true);
    await assert.rejects(again.wait(), CommandExitError);

    const big = Buffer.alloc(3 * 1024 * 1024, 'z');
    await sbx.files.write('/work/stream.bin', new Blob([big]).stream(), { useOctetStream: true } as never);
    assert.equal((await sbx.files.getInfo('/work/stream.bin')).size, big.length);
    const stream = await sbx.files.read('/work/stream.bin', { format: 'stream' });
    let got = 0;
    for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) got += chunk.length;
    assert.equal(got, big.length);
    const many = await sbx.files.writeFiles([{ path: '/work/m1.txt', data: 'one' }, { path: '/work/m2.txt', data: 'two' }]);
    assert.deepEqual(many.map((w) => w.path), ['/work/m1.txt', '/work/m2.txt']);
    assert.equal(await sbx.files.read('/work/m2.txt'), 'two');
  });

  it('watches a directory', async () => {
    await sbx.files.makeDir('/watched');
    const events: Array<{ name: string; type: string }> = [];
    const handle = await sbx.files.watchDir('/watched', (e) => void events.push({ name: e.name, type: e.type }));
    try {
      await sbx.files.write('/watched/new.txt', 'x');
      await waitFor(async () => (events.some((e) => e.name === 'new.txt') ? true : null), 20_000);
    } finally {
      await handle.stop();
    }
    assert.ok(events.every((e) => ['create', 'write', 'rename', 'remove', 'chmod'].includes(e.type)));
  });

  it('opens a terminal, types into it and resizes it', async () => {
    let output = '';
    const decoder = new TextDecoder();
    const term = await sbx.pty.create({ cols: 80, rows: 24, onData: (d) => void (output += decoder.decode(d, { stream: true })) });
    await sbx.pty.sendInput(term.pid, new TextEncoder().encode('stty size\n'));
    await waitFor(async () => (output.includes('24 80') ? true : null), 20_000);
    await sbx.pty.resize(term.pid, { cols: 100, rows: 30 });
    await sbx.pty.sendInput(term.pid, new TextEncoder().encode('stty size; exit 0\n'));
    await waitFor(async () => (output.includes('30 100') ? true : null), 20_000);
    const r = await term.wait();
    assert.equal(r.exitCode, 0);
  });

  it('kills the sandbox', async () => {
    await sbx.kill();
    assert.equal(await sbx.isRunning(), false);
    const page = await Sandbox.list(opts()).nextItems();
    assert.ok(!page.some((s) => s.sandboxId === sbx.sandboxId));
  });
});

describe('pause and resume through the e2b SDK', () => {
  let t: TestServer;
  let key: string;
  const opts = (): { apiKey: string; apiUrl: string; sandboxUrl: string; requestTimeoutMs: number } => ({ apiKey: key, apiUrl: t.url, sandboxUrl: t.url, requestTimeoutMs: 120_000 });

  before(async () => {
    t = await TestServer.start();
    key = (await t.newTeamKey('e2b-pause')).key;
  });
  after(async () => {
    await t?.dispose();
  });

  it('pauses a sandbox and connects to it again, a daemon process still running', async () => {
    const sbx = await Sandbox.create('base', { ...opts(), timeoutMs: 300_000 });
    // A daemon (its own session, no pipe to the API): envd commands' own sessions end with a pause (docs/e2b-compat.md).
    await sbx.commands.run('setsid sh -c \'i=0; while true; do i=$((i+1)); echo $i > /tmp/ticks; sleep 0.1; done\' </dev/null >/dev/null 2>&1 & echo $! > /tmp/ticker.pid');
    await waitFor(async () => ((await sbx.files.exists('/tmp/ticks')) ? true : null), 20_000);
    const pid = Number(await sbx.files.read('/tmp/ticker.pid'));
    assert.equal(await sbx.pause(), true);
    assert.equal((await Sandbox.getInfo(sbx.sandboxId, opts())).state, 'paused');
    assert.equal(await sbx.isRunning(), false);
    // Pausing again is a no-op the SDK reports as false.
    assert.equal(await Sandbox.pause(sbx.sandboxId, opts()), false);
    const listed = await Sandbox.list({ ...opts(), query: { state: ['paused'] } }).nextItems();
    assert.deepEqual(listed.map((s) => s.sandboxId), [sbx.sandboxId]);

    const again = await Sandbox.connect(sbx.sandboxId, opts());
    assert.equal(again.sandboxId, sbx.sandboxId);
    assert.equal((await again.getInfo()).state, 'running');
    const first = Number(await again.files.read('/tmp/ticks'));
    await waitFor(async () => (Number(await again.files.read('/tmp/ticks')) > first + 3 ? true : null), 20_000);
    const alive = await again.commands.run(`kill -0 ${pid} && echo alive`);
    assert.equal(alive.stdout, 'alive\n');
    // Connecting to a running sandbox answers it as it is.
    assert.equal((await Sandbox.connect(sbx.sandboxId, opts())).sandboxId, sbx.sandboxId);
    await again.kill();
  });

  it('resumes a paused autoResume sandbox on envd traffic', async () => {
    const sbx = await Sandbox.create('base', { ...opts(), lifecycle: { onTimeout: 'pause', autoResume: true } });
    const info = await sbx.getInfo();
    assert.deepEqual(info.lifecycle, { onTimeout: 'pause', autoResume: true });
    await sbx.files.write('/kept.txt', 'kept');
    assert.equal(await sbx.pause(), true);
    assert.equal(await sbx.files.read('/kept.txt'), 'kept');
    assert.equal((await sbx.getInfo()).state, 'running');
    await sbx.kill();
  });

  it('snapshots a sandbox, lists and starts sandboxes from the snapshot, forks and deletes it', async () => {
    const sbx = await Sandbox.create('base', { ...opts(), timeoutMs: 300_000, metadata: { role: 'source' } });
    await sbx.files.write('/state.txt', 'before snapshot');
    const snap = await sbx.createSnapshot();
    assert.match(snap.snapshotId, /^snap_/);
    await sbx.files.write('/state.txt', 'after snapshot');
    const listed = await Sandbox.listSnapshots({ ...opts(), sandboxId: sbx.sandboxId }).nextItems();
    assert.deepEqual(listed.map((s) => s.snapshotId), [snap.snapshotId]);

    const fromSnap = await Sandbox.create(snap.snapshotId, opts());
    assert.equal(await fromSnap.files.read('/state.txt'), 'before snapshot');
    const forks = await sbx.fork({ count: 2 });
    assert.equal(forks.length, 2);
    for (const f of forks) {
      assert.ok(!(f instanceof Error), String(f));
      assert.notEqual(f.sandboxId, sbx.sandboxId);
      assert.equal(await f.files.read('/state.txt'), 'after snapshot');
      await f.kill();
    }
    await fromSnap.kill();
    assert.equal(await Sandbox.deleteSnapshot(snap.snapshotId, opts()), true);
    assert.equal(await Sandbox.deleteSnapshot(snap.snapshotId, opts()), false);
    await sbx.kill();
  });
});
