/**
 * Startup scripts on real machines (real runc, CRIU, SQLite): the team's scripts through
 * /v1/startup-scripts, a machine created with one (native and Paperspace-style) running it
 * as a background process, its output and exit code on a startup-script event, run-once
 * against every start, a failing script, the copy a machine keeps, and refused requests
 * that create nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { STARTUP_SCRIPT_LIMITS } from '../../domain/startup-script.js';
import { execIn, TestServer, waitFor } from '../../testing/harness.js';
import { StartupScriptSchema } from './schemas.js';
import { PaperspaceEventSchema } from '../paperspace/schemas.js';

type Json = any;

const BASE = '/paperspace/v1';
const LONG = 120_000;
const CREATE = { name: 'scripted', machineType: 'C1', templateId: 'base', region: 'local', diskSize: 1 };

describe('startup scripts', () => {
  let t: TestServer;
  let key: string;
  let otherKey: string;

  const native = (method: string, path: string, body?: unknown, k: string = key) => t.request(method, path, { body, key: k });
  const ps = (method: string, path: string, body?: unknown, k: string = key) => t.request(method, `${BASE}${path}`, { body, key: k });
  const sh = async (id: string, script: string): Promise<string> => {
    const r = await execIn(t.server, id, ['sh', '-c', script]);
    assert.equal(r.code, 0, r.out);
    return r.out;
  };

  async function newScript(body: Record<string, unknown>, k: string = key): Promise<Json> {
    const r = await native('POST', '/v1/startup-scripts', body, k);
    assert.equal(r.status, 201, r.text);
    return r.body;
  }

  /** The machine's startup-script events, oldest first. */
  async function runs(machineId: string): Promise<Json[]> {
    const r = await ps('GET', `/machine-events?machineId=${machineId}&order=asc&limit=100`);
    assert.equal(r.status, 200, r.text);
    return r.body.items.filter((e: Json) => e.name === 'startup-script');
  }

  /** Wait until the machine has `count` startup-script runs and the last one has finished; return them. */
  async function finishedRuns(machineId: string, count: number): Promise<Json[]> {
    return (await waitFor(async (): Promise<Json[] | null> => {
      const all = await runs(machineId);
      return all.length === count && ['done', 'error'].includes(all[count - 1].state) ? all : null;
    }, LONG, 100)) as Json[];
  }

  /** A Paperspace-style create; waits for its create event. */
  async function psCreate(body: Record<string, unknown>): Promise<string> {
    const r = await ps('POST', '/machines', { ...CREATE, ...body });
    assert.equal(r.status, 200, r.text);
    assert.equal((await t.finishedEvent(r.body.event.id, key, LONG)).state, 'done');
    return r.body.data.id as string;
  }

  /** A Paperspace-style operation (stop, start, restart) to its end. */
  async function psOp(machineId: string, op: 'stop' | 'start' | 'restart'): Promise<void> {
    const r = await t.request('PATCH', `${BASE}/machines/${machineId}/${op}`, { key, headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 200, r.text);
    const e = await t.finishedEvent(r.body.event.id, key, LONG);
    assert.equal(e.state, 'done', JSON.stringify(e));
  }

  const machineIds = async (k: string = key): Promise<string[]> => ((await native('GET', '/v1/machines', undefined, k)).body as Json[]).map((m) => m.id).sort();

  before(async () => {
    t = await TestServer.start();
    key = (await t.newTeamKey('scripts')).key;
    otherKey = (await t.newTeamKey('scripts-other')).key;
  });
  after(async () => {
    await t.dispose();
  });

  it('create, list, get and delete a script; another team sees none of it', async () => {
    const s = await newScript({ name: ' setup ', script: 'echo hi' });
    StartupScriptSchema.strict().parse(s);
    assert.match(s.id, /^scr_[a-z0-9]{16}$/);
    assert.deepEqual({ ...s, created_at: undefined }, { id: s.id, name: 'setup', script: 'echo hi', run_once: false, created_at: undefined });
    assert.ok(Math.abs(Date.parse(s.created_at) - Date.now()) < 60_000);
    assert.deepEqual((await native('GET', `/v1/startup-scripts/${s.id}`)).body, s);
    assert.ok((await native('GET', '/v1/startup-scripts')).body.items.some((x: Json) => x.id === s.id));

    const theirs = await native('GET', `/v1/startup-scripts/${s.id}`, undefined, otherKey);
    assert.equal(theirs.status, 404, theirs.text);
    assert.equal(theirs.body.code, 'NOT_FOUND');
    assert.deepEqual((await native('GET', '/v1/startup-scripts', undefined, otherKey)).body, { items: [] });
    assert.equal((await native('DELETE', `/v1/startup-scripts/${s.id}`, undefined, otherKey)).status, 404);

    assert.equal((await native('DELETE', `/v1/startup-scripts/${s.id}`)).status, 204);
    assert.equal((await native('GET', `/v1/startup-scripts/${s.id}`)).status, 404);
    assert.equal((await native('DELETE', `/v1/startup-scripts/${s.id}`)).status, 404);
  });

  it('bad scripts are a 400 naming the field, and nothing is kept', async () => {
    const before = (await native('GET', '/v1/startup-scripts')).body.items.length;
    const big = 'x'.repeat(STARTUP_SCRIPT_LIMITS.scriptBytes - 1) + 'é'; // one character over in bytes, not in characters
    for (const [body, field] of [
      [{ name: 'n', script: big }, 'script'],
      [{ name: 'n', script: '' }, 'script'],
      [{ name: 'n', script: 'echo \0' }, 'script'],
      [{ name: '  ', script: 'true' }, 'name'],
      [{ script: 'true' }, 'name'],
      [{ name: 'n', script: 'true', run_once: 'yes' }, 'run_once'],
      [{ name: 'n', script: 'true', extra: 1 }, 'extra'],
    ] as const) {
      const r = await native('POST', '/v1/startup-scripts', body);
      assert.equal(r.status, 400, `${JSON.stringify(body).slice(0, 80)}: ${r.text.slice(0, 300)}`);
      assert.equal(r.body.code, 'VALIDATION_FAILED');
      assert.ok(r.body.message.includes(field), r.body.message);
    }
    assert.equal((await native('GET', '/v1/startup-scripts')).body.items.length, before);
    // Exactly the limit is fine.
    await newScript({ name: 'max', script: 'x'.repeat(STARTUP_SCRIPT_LIMITS.scriptBytes) });
  });

  it('an unknown or another team\'s script is a 422 on both creates, and no machine is created', async () => {
    const theirs = await newScript({ name: 'theirs', script: 'true' }, otherKey);
    const mine = await machineIds();
    for (const id of ['scr_nosuchscript0000', theirs.id]) {
      const n = await native('POST', '/v1/machines', { startup_script_id: id });
      assert.equal(n.status, 422, n.text);
      assert.equal(n.body.code, 'UNKNOWN_STARTUP_SCRIPT');
      assert.ok(n.body.message.includes(id) && n.body.message.includes('GET /v1/startup-scripts'), n.body.message);
      const p = await ps('POST', '/machines', { ...CREATE, startupScriptId: id });
      assert.equal(p.status, 422, p.text);
      assert.equal(p.body.code, 'UNKNOWN_STARTUP_SCRIPT');
    }
    assert.deepEqual(await machineIds(), mine);
  });

  it('a native create runs the script: the file it writes, its output through the processes endpoints, a done event with exit code 0', async () => {
    const s = await newScript({ name: 'writes', script: 'echo "started $(hostname)" > /root/ran.txt; echo out-line; echo err-line >&2' });
    const r = await native('POST', '/v1/machines', { startup_script_id: s.id });
    assert.equal(r.status, 201, r.text);
    const m = r.body;
    assert.equal(m.startup_script_id, s.id);
    assert.equal(m.startup_script_run_once, false);
    assert.equal((await native('GET', `/v1/machines/${m.id}`)).body.startup_script_id, s.id);
    assert.equal((await ps('GET', `/machines/${m.id}`)).body.startupScriptId, s.id);

    const [run] = await finishedRuns(m.id, 1);
    PaperspaceEventSchema.parse(run);
    assert.equal(run.state, 'done', JSON.stringify(run));
    assert.equal(run.error, null);
    assert.equal(run.machineId, m.id);
    assert.equal(run.startupScript.exitCode, 0);
    assert.equal(run.startupScript.output, 'out-line\nerr-line\n');
    assert.equal(run.startupScript.outputBytes, 18);
    assert.equal(await sh(m.id, 'cat /root/ran.txt'), `started ${m.id}\n`);

    const pid = run.startupScript.pid as number;
    const proc = await native('GET', `/v1/machines/${m.id}/processes/${pid}`);
    assert.equal(proc.status, 200, proc.text);
    assert.equal(proc.body.exit_code, 0);
    assert.deepEqual(proc.body.cmd, ['/bin/sh', '-c', s.script]);
    const out = await native('GET', `/v1/machines/${m.id}/processes/${pid}/output`);
    assert.equal(out.status, 200, out.text);
    assert.equal(out.body.stdout, 'out-line\n');
    assert.equal(out.body.stderr, 'err-line\n');
    // The event is reachable by id too, and only by its team.
    assert.equal((await ps('GET', `/machine-events/${run.id}`)).body.startupScript.pid, pid);
    assert.equal((await ps('GET', `/machine-events/${run.id}`, undefined, otherKey)).status, 404);
    // Another team cannot use the machine's id to reach the script's process.
    assert.equal((await native('GET', `/v1/machines/${m.id}/processes/${pid}/output`, undefined, otherKey)).status, 404);
  });

  it('a failing script fails its event with the exit code; the machine keeps running', async () => {
    const s = await newScript({ name: 'fails', script: 'echo before-failing; exit 7' });
    const id = await psCreate({ startupScriptId: s.id });
    const [run] = await finishedRuns(id, 1);
    assert.equal(run.state, 'error');
    assert.equal(run.startupScript.exitCode, 7);
    assert.match(run.error, /exited with code 7/);
    assert.equal(run.startupScript.output, 'before-failing\n');
    const m = (await ps('GET', `/machines/${id}`)).body;
    assert.equal(m.state, 'ready');
    assert.equal((await native('GET', `/v1/machines/${id}`)).body.status, 'running');
  });

  it('run_once false runs again after a stop and start and after a restart; run_once true only after the first start', async () => {
    const every = await newScript({ name: 'every', script: 'echo run >> /root/runs.txt; echo every-start' });
    const once = await newScript({ name: 'once', script: 'echo run >> /root/runs.txt; echo first-start', run_once: true });
    const [a, b] = await Promise.all([psCreate({ name: 'every', startupScriptId: every.id }), psCreate({ name: 'once', startupScriptId: once.id })]);
    await finishedRuns(a, 1);
    await finishedRuns(b, 1);

    for (const id of [a, b]) {
      await psOp(id, 'stop');
      await psOp(id, 'start');
    }
    await finishedRuns(a, 2);
    for (const id of [a, b]) await psOp(id, 'restart');
    const everyRuns = await finishedRuns(a, 3);
    assert.deepEqual(everyRuns.map((e) => [e.state, e.startupScript.exitCode, e.startupScript.output]), Array(3).fill(['done', 0, 'every-start\n']));
    assert.equal(new Set(everyRuns.map((e) => e.id)).size, 3);
    assert.equal(await sh(a, 'cat /root/runs.txt'), 'run\nrun\nrun\n');

    // Give a wrongly started second run of the run-once script time to show up.
    await new Promise((r) => setTimeout(r, 1500));
    const onceRuns = await runs(b);
    assert.equal(onceRuns.length, 1, JSON.stringify(onceRuns));
    assert.equal(onceRuns[0].startupScript.output, 'first-start\n');
    assert.equal(await sh(b, 'cat /root/runs.txt'), 'run\n');
  });

  it('a native resume is not a start: the script does not run again', async () => {
    const s = await newScript({ name: 'resume', script: 'echo run >> /root/runs.txt' });
    const r = await native('POST', '/v1/machines', { startup_script_id: s.id });
    assert.equal(r.status, 201, r.text);
    await finishedRuns(r.body.id, 1);
    assert.equal((await native('POST', `/v1/machines/${r.body.id}/pause`)).status, 200);
    assert.equal((await native('POST', `/v1/machines/${r.body.id}/resume`)).status, 200);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal((await runs(r.body.id)).length, 1);
    assert.equal(await sh(r.body.id, 'cat /root/runs.txt'), 'run\n');
  });

  it('a restart while the script runs ends its event with the output so far; the next run gets its own event', async () => {
    const s = await newScript({ name: 'slow', script: 'echo begun; sleep 600; echo never' });
    const id = await psCreate({ startupScriptId: s.id });
    await waitFor(async () => (await runs(id))[0]?.startupScript?.pid, LONG);
    const first = (await runs(id))[0];
    assert.equal(first.state, 'in progress');
    assert.equal(first.startupScript.exitCode, null);
    await waitFor(async () => (await native('GET', `/v1/machines/${id}/processes/${first.startupScript.pid}/output`)).body.stdout === 'begun\n', LONG);
    await psOp(id, 'restart');
    const [ended, second] = await waitFor(async (): Promise<Json[] | null> => {
      const all = await runs(id);
      return all.length === 2 && all[0].state !== 'in progress' ? all : null;
    }, LONG) as Json[];
    assert.equal(ended.state, 'error', JSON.stringify(ended));
    assert.notEqual(ended.startupScript.exitCode, 0);
    assert.equal(ended.startupScript.output, 'begun\n');
    assert.ok(ended.dtFinished);
    assert.equal(second.state, 'in progress');
    assert.notEqual(second.id, ended.id);
  });

  it('the machine keeps its copy: deleting the script changes nothing, it still runs at the next start', async () => {
    const s = await newScript({ name: 'copied', script: 'echo copy-ran' });
    const id = await psCreate({ startupScriptId: s.id });
    await finishedRuns(id, 1);
    assert.equal((await native('DELETE', `/v1/startup-scripts/${s.id}`)).status, 204);
    await psOp(id, 'restart');
    const [, again] = await finishedRuns(id, 2);
    assert.equal(again.state, 'done');
    assert.equal(again.startupScript.output, 'copy-ran\n');
    assert.equal((await ps('GET', `/machines/${id}`)).body.startupScriptId, s.id);
    // A new machine cannot name the deleted script.
    const r = await native('POST', '/v1/machines', { startup_script_id: s.id });
    assert.equal(r.status, 422, r.text);
    assert.equal(r.body.code, 'UNKNOWN_STARTUP_SCRIPT');
  });

  it('a machine created stopped runs a run-once script at its first start', async () => {
    const s = await newScript({ name: 'later', script: 'echo at-first-start', run_once: true });
    const id = await psCreate({ startupScriptId: s.id, startOnCreate: false });
    assert.deepEqual(await runs(id), []);
    await psOp(id, 'start');
    const [run] = await finishedRuns(id, 1);
    assert.equal(run.startupScript.output, 'at-first-start\n');
  });

  it('a machine checked out of a warm pool keeps the copy and runs the script', async () => {
    // An odd size of its own, so that no other create in this file takes from the pool.
    const config = { memory_mb: 200 };
    assert.equal((await t.request('PUT', '/v1/warm-pools/scripts', { body: { template: 'base', config, size: 1 } })).status, 200);
    try {
      await waitFor(async () => (await t.request('GET', '/v1/warm-pools/scripts')).body.ready >= 1, LONG, 100);
      const s = await newScript({ name: 'pooled', script: 'echo from-pool', run_once: true });
      const r = await native('POST', '/v1/machines', { config, startup_script_id: s.id });
      assert.equal(r.status, 201, r.text);
      assert.deepEqual(r.body.warm_pool_checkout, { hit: true, id: 'scripts' });
      assert.equal(r.body.startup_script_run_once, true);
      const [run] = await finishedRuns(r.body.id, 1);
      assert.equal(run.startupScript.output, 'from-pool\n');
    } finally {
      assert.equal((await t.request('DELETE', '/v1/warm-pools/scripts')).status, 204);
    }
  });

  it('a retried native create (same Idempotency-Key) does not run the script again', async () => {
    const s = await newScript({ name: 'idem', script: 'echo once-per-machine' });
    const headers = { 'idempotency-key': 'startup-idem-1' };
    const first = await t.request('POST', '/v1/machines', { body: { startup_script_id: s.id }, key, headers });
    assert.equal(first.status, 201, first.text);
    await finishedRuns(first.body.id, 1);
    const again = await t.request('POST', '/v1/machines', { body: { startup_script_id: s.id }, key, headers });
    assert.equal(again.body.id, first.body.id);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await runs(first.body.id)).length, 1);
  });
});
