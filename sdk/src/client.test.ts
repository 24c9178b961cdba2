/** The SDK against a real Hangar server and real machines (no mocks). */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN_KEY, TestServer } from '../../src/testing/harness.js';
import { example } from './example.js';
import { HangarApiError, HangarClient, HangarConnectionError, type ExecEvent } from './index.js';

describe('SDK', () => {
  let t: TestServer;
  let c: HangarClient;
  before(async () => {
    t = await TestServer.start();
    c = new HangarClient({ baseUrl: t.url, apiKey: ADMIN_KEY });
  });
  after(async () => {
    await t?.dispose();
  });

  it('creates, lists by pages, execs (result and stream), files, snapshot and fork, deletes', async () => {
    const m = await c.createMachine({ metadata: { sdk: 'yes' } });
    assert.equal(m.status, 'running');
    const second = await c.createMachine({ metadata: { sdk: 'yes' } });
    const seen: string[] = [];
    for await (const x of c.listMachines({ metadata: { sdk: 'yes' }, pageSize: 1 })) seen.push(x.id);
    assert.deepEqual(seen.sort(), [m.id, second.id].sort());

    const r = await c.exec(m.id, { cmd: 'echo out; echo err >&2; exit 3' });
    assert.deepEqual([r.exit_code, r.stdout, r.stderr], [3, 'out\n', 'err\n']);
    const events: ExecEvent[] = [];
    for await (const e of c.execStream(m.id, { cmd: ['sh', '-c', 'echo one; sleep 0.1; echo two'] })) events.push(e);
    assert.equal(events.filter((e) => e.type === 'stdout').map((e) => (e as { data: string }).data).join(''), 'one\ntwo\n');
    assert.deepEqual(events.at(-1) && { type: events.at(-1)!.type, code: (events.at(-1) as { exitCode: number }).exitCode }, { type: 'exit', code: 0 });

    await c.writeFile(m.id, '/root/dir/hello.txt', 'hi from the sdk');
    assert.equal(new TextDecoder().decode(await c.readFile(m.id, '/root/dir/hello.txt')), 'hi from the sdk');
    assert.deepEqual((await c.listFiles(m.id, '/root/dir')).entries.map((e) => e.path), ['/root/dir/hello.txt']);
    await c.move(m.id, '/root/dir/hello.txt', '/root/dir/moved.txt');
    assert.equal((await c.stat(m.id, '/root/dir/moved.txt')).type, 'file');

    if ((await (await c.raw('GET', '/v1/info')).json()).snapshots.memory) {
      const snap = await c.snapshot(m.id);
      const fork = await c.fork(snap.id);
      assert.equal(new TextDecoder().decode(await c.readFile(fork.id, '/root/dir/moved.txt')), 'hi from the sdk');
      await c.deleteMachine(fork.id);
      await c.deleteSnapshot(snap.id);
    }
    for (const id of [m.id, second.id]) assert.equal((await c.deleteMachine(id)).status, 'destroyed');
  });

  it('errors are typed with the server\'s code; a create retried with its key returns the same machine', async () => {
    await assert.rejects(c.getMachine('mch_nosuchmachine'), (e: unknown) => e instanceof HangarApiError && e.status === 404 && e.code === 'NOT_FOUND');
    await assert.rejects(c.createMachine({ template: 'no-such' }), (e: unknown) => e instanceof HangarApiError && e.code === 'UNKNOWN_TEMPLATE' && /does not exist/.test(e.message));
    const a = await c.createMachine({}, { idempotencyKey: 'sdk-key-1' });
    const b = await c.createMachine({}, { idempotencyKey: 'sdk-key-1' });
    assert.equal(a.id, b.id);
    await c.deleteMachine(a.id);
    const nowhere = new HangarClient({ baseUrl: 'http://127.0.0.1:9', apiKey: 'x', retries: 1 });
    await assert.rejects(nowhere.getMachine('mch_x'), HangarConnectionError);
    const aborted = new AbortController();
    aborted.abort(new Error('stopped by the caller'));
    await assert.rejects(c.getMachine('mch_x', { signal: aborted.signal }), /stopped by the caller/);
  });

  it('startup scripts: create, list, get, a machine that runs one (its process), delete', async () => {
    const s = await c.createStartupScript({ name: 'sdk', script: 'echo from-startup' });
    assert.equal(s.run_once, false);
    assert.deepEqual(await c.getStartupScript(s.id), s);
    assert.ok((await c.listStartupScripts()).items.some((x) => x.id === s.id));
    const m = await c.createMachine({ startup_script_id: s.id });
    assert.equal(m.startup_script_id, s.id);
    const [run] = (await c.listProcesses(m.id)).items;
    assert.ok(run, 'the script runs as a background process');
    assert.equal((await c.waitProcess(m.id, run.pid)).exit_code, 0);
    assert.equal((await c.processOutput(m.id, run.pid)).stdout, 'from-startup\n');
    await c.deleteStartupScript(s.id);
    await assert.rejects(c.getStartupScript(s.id), (e: unknown) => e instanceof HangarApiError && e.status === 404);
    await assert.rejects(c.createMachine({ startup_script_id: s.id }), (e: unknown) => e instanceof HangarApiError && e.code === 'UNKNOWN_STARTUP_SCRIPT');
    await c.deleteMachine(m.id);
  });

  it("the README's example runs", async () => {
    const lines: string[] = [];
    await example(t.url, ADMIN_KEY, (l) => lines.push(l));
    assert.match(lines[0]!, /^machine mch_\w+ is running$/);
    const out = lines.filter((l) => l.startsWith('stdout: ')).map((l) => l.slice(8)).join('\n');
    assert.equal(out, 'tick 1\ntick 2\ntick 3');
    assert.deepEqual(lines.slice(-2), ['exit code 0', 'written by the SDK']);
  });

  it('templates: build with wait, list, use', async () => {
    const b = await c.buildTemplate({ name: 'sdk-tpl', source: { template: 'base' }, steps: [{ run: 'echo sdk > /etc/sdk' }] }, { wait: true });
    assert.equal(b.status, 'ready');
    const names: string[] = [];
    for await (const x of c.listTemplates()) names.push(x.name);
    assert.ok(names.includes('sdk-tpl') && names.includes('base'));
    const m = await c.createMachine({ template: 'sdk-tpl' });
    assert.equal((await c.exec(m.id, { cmd: 'cat /etc/sdk' })).stdout, 'sdk\n');
    await c.deleteMachine(m.id);
    await c.deleteTemplate('sdk-tpl');
  });
});
