/**
 * Background processes on real machines through the HTTP API: start, output kept while
 * nobody reads, live following, stdin, signals, wait, list, errors, pause/destroy/restart,
 * and activity.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN_KEY, TestServer, execIn, waitFor, type TestResponse } from '../../testing/harness.js';

interface SseEvent {
  event: string;
  id: string | null;
  data: any;
}

function parseEvents(text: string): SseEvent[] {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '' && !block.startsWith(':'))
    .map((block) => ({
      event: /^event: (.*)$/m.exec(block)?.[1] ?? 'message',
      id: /^id: (.*)$/m.exec(block)?.[1] ?? null,
      data: JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null'),
    }));
}

describe('background processes', () => {
  let t: TestServer;
  let id: string;
  const start = (body: unknown, machine = id, key?: string | null): Promise<TestResponse> =>
    t.request('POST', `/v1/machines/${machine}/processes`, { body, key });
  const get = (pid: number, query = '', machine = id): Promise<TestResponse> => t.request('GET', `/v1/machines/${machine}/processes/${pid}${query}`);
  const waitExit = async (pid: number, machine = id): Promise<any> => {
    const r = await get(pid, '?wait=true&timeout_ms=20000', machine);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.status, 'exited', r.text);
    return r.body;
  };
  const output = (pid: number, query = '', machine = id): Promise<TestResponse> =>
    t.request('GET', `/v1/machines/${machine}/processes/${pid}/output${query}`);
  const follow = (pid: number, query = '', signal?: AbortSignal): Promise<Response> =>
    fetch(`${t.url}/v1/machines/${id}/processes/${pid}/output?follow=true${query}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` }, signal });
  /** Pids of the machine's processes whose command line matches. */
  const pidsOf = async (pattern: RegExp, machine = id): Promise<number[]> => {
    const r = await execIn(t.server, machine, ['ps', '-o', 'pid,args']);
    return r.out
      .split('\n')
      .slice(1)
      .filter((l) => pattern.test(l) && !/ps -o/.test(l))
      .map((l) => Number(l.trim().split(/\s+/)[0]));
  };

  before(async () => {
    t = await TestServer.start();
    const r = await t.request('POST', '/v1/machines', { body: { env: { FOO: 'machine' } } });
    assert.equal(r.status, 201, r.text);
    id = r.body.id;
  });
  after(async () => {
    await t.dispose();
  });

  it('starts a process and answers 201 with its pid inside the machine', async () => {
    const r = await start({ cmd: ['sleep', '1000'], cwd: '/tmp' });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(Object.keys(r.body).sort(), [
      'cmd', 'cwd', 'ended_at', 'exit_code', 'output_bytes', 'pid', 'signal', 'started_at', 'status', 'stdin_open', 'timed_out', 'user',
    ]);
    assert.equal(r.body.status, 'running');
    assert.deepEqual(r.body.cmd, ['sleep', '1000']);
    assert.equal(r.body.cwd, '/tmp');
    assert.equal(r.body.user, 'root');
    assert.equal(r.body.exit_code, null);
    assert.equal(r.body.ended_at, null);
    assert.deepEqual(await pidsOf(/sleep 1000/), [r.body.pid]);
    assert.equal((await t.request('POST', `/v1/machines/${id}/processes/${r.body.pid}/signal`, { body: { signal: 'KILL' } })).status, 200);
    const ended = await waitExit(r.body.pid);
    assert.equal(ended.exit_code, 137);
    assert.equal(ended.signal, 'KILL');
  });

  it('keeps the output of a process nobody reads, stdout and stderr apart, from an offset', async () => {
    const r = await start({ cmd: 'echo out; echo err >&2; echo "$FOO/$BAR"; printf wörld', env: { BAR: 'b' } });
    assert.equal(r.status, 201, r.text);
    const exited = await waitExit(r.body.pid);
    assert.equal(exited.exit_code, 0);
    assert.equal(exited.signal, null);
    const all = await output(r.body.pid);
    assert.equal(all.status, 200, all.text);
    assert.equal(all.body.stdout, 'out\nmachine/b\nwörld');
    assert.equal(all.body.stderr, 'err\n');
    assert.equal(all.body.offset, 0);
    assert.equal(all.body.missed_bytes, 0);
    assert.equal(all.body.next_offset, Buffer.byteLength('out\nerr\nmachine/b\nwörld'));
    assert.equal(all.body.next_offset, exited.output_bytes);
    assert.equal(all.body.status, 'exited');
    // Offsets count both streams in arrival order; a process writing only stdout makes them plain.
    const only = await start({ cmd: "printf abc; sleep 0.1; printf 'défg'" });
    await waitExit(only.body.pid);
    const tail = await output(only.body.pid, '?offset=3');
    assert.equal(tail.body.stdout, 'défg');
    assert.equal(tail.body.offset, 3);
    assert.equal(tail.body.next_offset, 8);
    const end = await output(r.body.pid, `?offset=${all.body.next_offset}`);
    assert.equal(end.body.stdout, '');
    assert.equal(end.body.next_offset, all.body.next_offset);
    const past = await output(r.body.pid, `?offset=${all.body.next_offset + 1}`);
    assert.equal(past.status, 400);
    assert.equal(past.body.code, 'VALIDATION_FAILED');
  });

  it('keeps running and collecting output after a follower disconnects', async () => {
    const r = await start({ cmd: 'echo first; sleep 1; echo second; sleep 1; echo third' });
    const ac = new AbortController();
    const res = await follow(r.body.pid, '', ac.signal);
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert.match(new TextDecoder().decode(first.value), /first/);
    ac.abort();
    const exited = await waitExit(r.body.pid);
    assert.equal(exited.exit_code, 0);
    assert.equal((await output(r.body.pid)).body.stdout, 'first\nsecond\nthird\n');
  });

  it('follows output live as server-sent events, ending with the exit', async () => {
    const r = await start({ cmd: 'echo a; sleep 0.3; echo b >&2; sleep 0.3; printf c; exit 3' });
    const res = await follow(r.body.pid);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const events = parseEvents(await res.text());
    const chunks = events.filter((e) => e.event === 'stdout' || e.event === 'stderr');
    assert.deepEqual(chunks.map((e) => [e.event, e.data]), [['stdout', 'a\n'], ['stderr', 'b\n'], ['stdout', 'c']]);
    assert.deepEqual(chunks.map((e) => e.id), ['2', '4', '5']);
    const exit = events.at(-1)!;
    assert.equal(exit.event, 'exit');
    assert.equal(exit.data.exit_code, 3);
    assert.equal(exit.data.status, 'exited');
    // Following an exited process replays from the offset (or Last-Event-ID) and ends at once.
    const again = parseEvents(await (await follow(r.body.pid, '&offset=2')).text());
    assert.deepEqual(again.map((e) => e.event), ['stderr', 'stdout', 'exit']);
    const resumed = await fetch(`${t.url}/v1/machines/${id}/processes/${r.body.pid}/output?follow=true`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'last-event-id': '4' },
    });
    assert.deepEqual(parseEvents(await resumed.text()).map((e) => [e.event, e.data.exit_code ?? e.data]), [['stdout', 'c'], ['exit', 3]]);
  });

  it('writes stdin as JSON or raw bytes and closes it', async () => {
    const r = await start({ cmd: ['cat'], stdin: 'start\n' });
    const pid = r.body.pid as number;
    const json = await t.request('POST', `/v1/machines/${id}/processes/${pid}/stdin`, { body: { data: 'wörld\n' } });
    assert.equal(json.status, 200, json.text);
    assert.equal(json.body.stdin_open, true);
    const raw = await t.request('POST', `/v1/machines/${id}/processes/${pid}/stdin`, {
      rawBody: 'raw\n',
      headers: { 'content-type': 'application/octet-stream' },
    });
    assert.equal(raw.status, 200, raw.text);
    await waitFor(async () => (await output(pid)).body.stdout === 'start\nwörld\nraw\n', 10_000);
    assert.equal((await get(pid)).body.status, 'running');
    const close = await t.request('POST', `/v1/machines/${id}/processes/${pid}/stdin`, { body: { close: true } });
    assert.equal(close.body.stdin_open, false);
    assert.equal((await waitExit(pid)).exit_code, 0);
    const late = await t.request('POST', `/v1/machines/${id}/processes/${pid}/stdin`, { body: { data: 'x' } });
    assert.equal(late.status, 409);
    // close_stdin at start: the command reads end-of-file after the given stdin.
    const wc = await start({ cmd: ['wc', '-c'], stdin: 'é', close_stdin: true });
    await waitExit(wc.body.pid);
    assert.equal((await output(wc.body.pid)).body.stdout.trim(), '2');
    const raw2 = await start({ cmd: ['cat'] });
    const closeRaw = await t.request('POST', `/v1/machines/${id}/processes/${raw2.body.pid}/stdin?close=true`, {
      rawBody: 'bytes',
      headers: { 'content-type': 'application/octet-stream' },
    });
    assert.equal(closeRaw.status, 200, closeRaw.text);
    await waitExit(raw2.body.pid);
    assert.equal((await output(raw2.body.pid)).body.stdout, 'bytes');
    const nothing = await t.request('POST', `/v1/machines/${id}/processes/${raw2.body.pid}/stdin`, { body: {} });
    assert.equal(nothing.status, 400);
  });

  it('refuses stdin once 4 MiB wait for a process that does not read (409)', async () => {
    const r = await start({ cmd: ['sleep', '1008'] });
    const chunk = 'x'.repeat(1_000_000);
    let last: TestResponse | undefined;
    for (let i = 0; i < 10 && last?.status !== 409; i++) {
      last = await t.request('POST', `/v1/machines/${id}/processes/${r.body.pid}/stdin`, {
        rawBody: chunk,
        headers: { 'content-type': 'application/octet-stream' },
      });
      assert.ok(last.status === 200 || last.status === 409, last.text);
    }
    assert.equal(last!.status, 409);
    assert.equal(last!.body.details.status, 'stdin_full');
    await t.request('POST', `/v1/machines/${id}/processes/${r.body.pid}/signal`, { body: { signal: 'KILL' } });
    await waitExit(r.body.pid);
  });

  it('sends signals to the process group: TERM ends it and is reported', async () => {
    const r = await start({ cmd: 'sleep 1001 & sleep 1002; echo never' });
    await waitFor(async () => (await pidsOf(/\d sleep 100[12]$/)).length === 2, 10_000);
    const sent = await t.request('POST', `/v1/machines/${id}/processes/${r.body.pid}/signal`, { body: { signal: 'SIGTERM' } });
    assert.equal(sent.status, 200, sent.text);
    const exited = await waitExit(r.body.pid);
    assert.equal(exited.exit_code, 143);
    assert.equal(exited.signal, 'TERM');
    assert.ok(Date.parse(exited.ended_at) >= Date.parse(exited.started_at));
    await waitFor(async () => (await pidsOf(/\d sleep 100[12]$/)).length === 0, 10_000);
    const again = await t.request('POST', `/v1/machines/${id}/processes/${r.body.pid}/signal`, { body: { signal: 'TERM' } });
    assert.equal(again.status, 409);
    assert.match(again.body.message, /exited/);
  });

  it('STOP and CONT pause and continue a process', async () => {
    const r = await start({ cmd: ['sleep', '1003'] });
    const sig = (signal: string): Promise<TestResponse> => t.request('POST', `/v1/machines/${id}/processes/${r.body.pid}/signal`, { body: { signal } });
    assert.equal((await sig('STOP')).status, 200);
    const state = async (): Promise<string> => (await execIn(t.server, id, ['cat', `/proc/${r.body.pid}/stat`])).out.split(') ')[1]?.[0] ?? '';
    await waitFor(async () => (await state()) === 'T', 10_000);
    assert.equal((await sig('CONT')).status, 200);
    await waitFor(async () => (await state()) === 'S', 10_000);
    await sig('KILL');
    await waitExit(r.body.pid);
  });

  it('waits with a timeout: still running after it, exited once done', async () => {
    const r = await start({ cmd: 'sleep 1.5; exit 4' });
    const early = await get(r.body.pid, '?wait=true&timeout_ms=100');
    assert.equal(early.status, 200);
    assert.equal(early.body.status, 'running');
    const late = await waitExit(r.body.pid);
    assert.equal(late.exit_code, 4);
  });

  it('kills a process at timeout_ms with exit code 124', async () => {
    const r = await start({ cmd: 'echo go; sleep 1004', timeout_ms: 300 });
    const exited = await waitExit(r.body.pid);
    assert.equal(exited.exit_code, 124);
    assert.equal(exited.timed_out, true);
    assert.equal((await output(r.body.pid)).body.stdout, 'go\n');
    assert.deepEqual(await pidsOf(/\d sleep 1004$/), []);
  });

  it('keeps only the last 1 MiB of output and says how much was dropped', async () => {
    const r = await start({ cmd: 'head -c 1500000 /dev/zero | tr "\\0" x; echo; echo end' });
    const exited = await waitExit(r.body.pid);
    assert.equal(exited.output_bytes, 1_500_005);
    const o = await output(r.body.pid);
    assert.equal(o.body.missed_bytes, 1_500_005 - 1024 * 1024);
    assert.equal(o.body.offset, o.body.missed_bytes);
    assert.equal(o.body.stdout.length, 1024 * 1024);
    assert.ok(o.body.stdout.endsWith('x\nend\n'));
  });

  it('lists running and exited processes, oldest first', async () => {
    const m = await t.request('POST', '/v1/machines', { body: {} });
    const other = m.body.id as string;
    assert.deepEqual((await t.request('GET', `/v1/machines/${other}/processes`)).body, { items: [] });
    const a = await start({ cmd: ['true'] }, other);
    await waitExit(a.body.pid, other);
    const b = await start({ cmd: ['sleep', '1005'] }, other);
    const list = await t.request('GET', `/v1/machines/${other}/processes`);
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.items.map((p: any) => [p.pid, p.status]), [[a.body.pid, 'exited'], [b.body.pid, 'running']]);
    await t.request('DELETE', `/v1/machines/${other}`);
  });

  it('answers errors: unknown pid 404, bad signal 400, not started 422, bad bodies 400, other team 404', async () => {
    assert.equal((await get(999_999)).status, 404);
    assert.equal((await get(999_999)).body.code, 'NOT_FOUND');
    assert.equal((await output(999_999)).status, 404);
    assert.equal((await get(0)).status, 400);
    const r = await start({ cmd: ['sleep', '1006'] });
    const bad = await t.request('POST', `/v1/machines/${id}/processes/${r.body.pid}/signal`, { body: { signal: 'BOGUS' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.code, 'VALIDATION_FAILED');
    assert.match(bad.body.message, /TERM.*KILL|KILL.*TERM/);
    await t.request('POST', `/v1/machines/${id}/processes/${r.body.pid}/signal`, { body: { signal: 'KILL' } });
    const missing = await start({ cmd: ['no-such-command'] });
    assert.equal(missing.status, 422, missing.text);
    assert.equal(missing.body.code, 'COMMAND_NOT_STARTED');
    assert.match(missing.body.message, /no-such-command.*not found/);
    const noCwd = await start({ cmd: ['pwd'], cwd: '/does/not/exist' });
    assert.equal(noCwd.status, 422);
    assert.match(noCwd.body.message, /cannot change directory/);
    for (const body of [{}, { cmd: [] }, { cmd: ['ls'], timeout_ms: 0 }, { cmd: ['ls'], close_stdin: 'yes' }, { cmd: ['ls'], extra: 1 }]) {
      assert.equal((await start(body)).status, 400, JSON.stringify(body));
    }
    const other = await t.newTeamKey('other');
    assert.equal((await start({ cmd: ['true'] }, id, other.key)).status, 404);
    assert.equal((await t.request('GET', `/v1/machines/${id}/processes`, { key: other.key })).status, 404);
    assert.equal((await start({ cmd: ['true'] }, id, null)).status, 401);
  });

  it('runs as another user', async () => {
    const r = await start({ cmd: 'id -u', user: 'nobody' });
    await waitExit(r.body.pid);
    assert.equal((await output(r.body.pid)).body.stdout, '65534\n');
  });
});

describe('background processes and the machine lifecycle', () => {
  let t: TestServer;
  before(async () => {
    t = await TestServer.start();
  });
  after(async () => {
    await t.dispose();
  });

  it('a pause ends running processes (137); a paused machine takes no new ones (409)', async () => {
    const m = await t.request('POST', '/v1/machines', { body: {} });
    const id = m.body.id as string;
    const p = await t.request('POST', `/v1/machines/${id}/processes`, { body: { cmd: 'echo up; sleep 1000' } });
    assert.equal(p.status, 201);
    await waitFor(async () => (await t.request('GET', `/v1/machines/${id}/processes/${p.body.pid}/output`)).body.stdout === 'up\n', 10_000);
    const paused = await t.request('POST', `/v1/machines/${id}/pause`);
    assert.equal(paused.status, 200, paused.text);
    const got = await waitFor(async () => {
      const r = await t.request('GET', `/v1/machines/${id}/processes/${p.body.pid}`);
      return r.body.status === 'exited' ? r.body : null;
    }, 10_000);
    assert.equal(got.exit_code, 137);
    assert.equal((await t.request('GET', `/v1/machines/${id}/processes/${p.body.pid}/output`)).body.stdout, 'up\n');
    const again = await t.request('POST', `/v1/machines/${id}/processes`, { body: { cmd: ['true'] } });
    assert.equal(again.status, 409);
    assert.equal(again.body.code, 'STATE_CONFLICT');
    assert.match(again.body.message, /paused/);
    assert.equal((await t.request('GET', `/v1/machines/${id}/processes`)).status, 200);
    await t.request('DELETE', `/v1/machines/${id}`);
  });

  it('destroy kills processes and their list is gone (404)', async () => {
    const m = await t.request('POST', '/v1/machines', { body: {} });
    const id = m.body.id as string;
    const p = await t.request('POST', `/v1/machines/${id}/processes`, { body: { cmd: ['sleep', '1000'] } });
    assert.equal((await t.request('DELETE', `/v1/machines/${id}`)).status, 200);
    for (const path of ['/processes', `/processes/${p.body.pid}`, `/processes/${p.body.pid}/output`]) {
      const r = await t.request('GET', `/v1/machines/${id}${path}`);
      assert.equal(r.status, 404, path);
      assert.equal(r.body.code, 'NOT_FOUND');
    }
    assert.equal((await t.request('POST', `/v1/machines/${id}/processes`, { body: { cmd: ['true'] } })).status, 409);
  });

  it('a server restart kills the processes; the machine keeps running', async () => {
    const m = await t.request('POST', '/v1/machines', { body: {} });
    const id = m.body.id as string;
    const p = await t.request('POST', `/v1/machines/${id}/processes`, { body: { cmd: ['sleep', '1007'] } });
    assert.equal(p.status, 201);
    await t.restart();
    assert.equal((await t.request('GET', `/v1/machines/${id}`)).body.status, 'running');
    assert.equal((await t.request('GET', `/v1/machines/${id}/processes/${p.body.pid}`)).status, 404);
    const ps = await execIn(t.server, id, ['ps', '-o', 'args']);
    assert.doesNotMatch(ps.out, /sleep 1007/);
  });

  it('counts as activity: last_active_at is set, and a running process keeps the machine alive', async () => {
    const m = await t.request('POST', '/v1/machines', { body: { ephemeral: true, inactivity_timeout_ms: 1500, timeout_ms: 600_000 } });
    const id = m.body.id as string;
    assert.equal('last_active_at' in (await t.request('GET', `/v1/machines/${id}`)).body, false);
    const before = Date.now();
    const p = await t.request('POST', `/v1/machines/${id}/processes`, { body: { cmd: ['sleep', '6'] } });
    assert.equal(p.status, 201);
    const at = Date.parse(await waitFor(async () => (await t.request('GET', `/v1/machines/${id}`)).body.last_active_at, 5_000));
    assert.ok(at >= before - 5, `${at} < ${before}`);
    // Outlives its 1.5 s inactivity timeout while the process runs (no other calls meanwhile).
    await new Promise((r) => setTimeout(r, 3_000));
    assert.equal((await t.request('GET', `/v1/machines/${id}`)).body.status, 'running');
    await waitFor(async () => (await t.request('GET', `/v1/machines/${id}`)).body.status === 'destroyed', 15_000);
  });
});
