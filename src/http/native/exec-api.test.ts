/**
 * Exec on real machines through the HTTP API: commands, output, users, timeouts,
 * streaming, errors, and activity (last_active_at and the inactivity timer).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN_KEY, TestServer, waitFor, type TestResponse } from '../../testing/harness.js';

interface SseEvent {
  event: string;
  data: any;
}

/** Parse a complete text/event-stream body into its events (comment lines skipped). */
function parseEvents(text: string): SseEvent[] {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '' && !block.startsWith(':'))
    .map((block) => {
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
      const data = /^data: (.*)$/m.exec(block)?.[1] ?? 'null';
      return { event, data: JSON.parse(data) };
    });
}

describe('POST /v1/machines/{id}/exec', () => {
  let t: TestServer;
  let id: string;
  const exec = (body: unknown, machine = id, key?: string | null): Promise<TestResponse> =>
    t.request('POST', `/v1/machines/${machine}/exec`, { body, key });
  const stream = (body: unknown, machine = id, signal?: AbortSignal): Promise<Response> =>
    fetch(`${t.url}/v1/machines/${machine}/exec/stream`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal,
    });
  /** Command lines of the processes in the machine, init and ps itself left out. */
  const processes = async (machine = id): Promise<string[]> => {
    const r = await exec({ cmd: ['ps', '-o', 'args'] }, machine);
    // init and the in-machine agent are the machine's own; anything else was left by a command.
    return r.body.stdout.split('\n').slice(1).filter((l: string) => l && l !== 'init' && !l.includes('ps -o args') && !l.startsWith('/.hangar/bin/hangar-agent'));
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

  it('runs an argv command without a shell', async () => {
    const r = await exec({ cmd: ['echo', 'a  b', '$HOME'] });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.body).sort(), ['duration_ms', 'exit_code', 'stderr', 'stderr_truncated', 'stdout', 'stdout_truncated']);
    assert.equal(r.body.exit_code, 0);
    assert.equal(r.body.stdout, 'a  b $HOME\n');
    assert.equal(r.body.stdout_truncated, false);
    assert.ok(Number.isInteger(r.body.duration_ms) && r.body.duration_ms >= 0);
  });

  it('runs a string command under /bin/sh -c', async () => {
    const r = await exec({ cmd: 'echo one && echo two | tr a-z A-Z; echo "$0"' });
    assert.equal(r.body.stdout, 'one\nTWO\n/bin/sh\n');
  });

  it('reports exit codes, 127 for a missing command and 126 for a missing cwd', async () => {
    assert.equal((await exec({ cmd: 'exit 3' })).body.exit_code, 3);
    assert.equal((await exec({ cmd: ['false'] })).body.exit_code, 1);
    assert.equal((await exec({ cmd: 'exit 255' })).body.exit_code, 255);
    const missing = await exec({ cmd: ['no-such-command'] });
    assert.equal(missing.body.exit_code, 127);
    assert.match(missing.body.stderr, /no-such-command.*not found/);
    const noCwd = await exec({ cmd: ['pwd'], cwd: '/does/not/exist' });
    assert.equal(noCwd.body.exit_code, 126);
    assert.match(noCwd.body.stderr, /cannot change directory to \/does\/not\/exist: no such file or directory/);
  });

  it('keeps stdout and stderr apart', async () => {
    const r = await exec({ cmd: 'echo out; echo err >&2; echo out2' });
    assert.equal(r.body.stdout, 'out\nout2\n');
    assert.equal(r.body.stderr, 'err\n');
  });

  it('feeds stdin as UTF-8', async () => {
    const r = await exec({ cmd: ['cat'], stdin: 'hello\nwörld' });
    assert.equal(r.body.stdout, 'hello\nwörld');
    assert.equal((await exec({ cmd: ['wc', '-c'], stdin: 'é' })).body.stdout.trim(), '2');
    // Without stdin the command reads end-of-file at once instead of hanging.
    assert.equal((await exec({ cmd: ['cat'] })).body.stdout, '');
  });

  it("sets env over the machine's environment", async () => {
    assert.equal((await exec({ cmd: 'echo "$FOO/$BAR"' })).body.stdout, 'machine/\n');
    assert.equal((await exec({ cmd: 'echo "$FOO/$BAR"', env: { FOO: 'exec', BAR: 'b' } })).body.stdout, 'exec/b\n');
    assert.match((await exec({ cmd: 'echo $PATH' })).body.stdout, /\/bin/);
  });

  it("defaults cwd to the machine's, else the template's, and takes an explicit one", async () => {
    assert.equal((await exec({ cmd: ['pwd'] })).body.stdout, '/root\n');
    assert.equal((await exec({ cmd: ['pwd'], cwd: '/tmp' })).body.stdout, '/tmp\n');
    assert.equal((await exec({ cmd: ['pwd'], cwd: '/tmp/../etc/' })).body.stdout, '/etc\n');
    const withCwd = await t.request('POST', '/v1/machines', { body: { cwd: '/srv/app' } });
    assert.equal((await exec({ cmd: ['pwd'] }, withCwd.body.id)).body.stdout, '/srv/app\n');
    await t.request('DELETE', `/v1/machines/${withCwd.body.id}`);
  });

  it('runs as a user given by name (looked up inside) or by uid[:gid]', async () => {
    assert.equal((await exec({ cmd: 'id -u; id -g' })).body.stdout, '0\n0\n');
    assert.equal((await exec({ cmd: 'id -u; id -g', user: 'nobody' })).body.stdout, '65534\n65534\n');
    assert.equal((await exec({ cmd: 'id -u; id -g', user: '1000:1001' })).body.stdout, '1000\n1001\n');
    assert.equal((await exec({ cmd: 'id -u; id -g', user: '1234' })).body.stdout, '1234\n0\n');
    const unknown = await exec({ cmd: ['true'], user: 'no-such-user' });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.code, 'VALIDATION_FAILED');
    assert.match(unknown.body.message, /user: .*no-such-user/);
  });

  it('caps stdout and stderr at 1 MiB each, reading the rest so the command finishes', async () => {
    const out = await exec({ cmd: 'head -c 2000000 /dev/zero' });
    assert.equal(out.body.exit_code, 0);
    assert.equal(out.body.stdout.length, 1024 * 1024);
    assert.equal(out.body.stdout_truncated, true);
    assert.equal(out.body.stderr_truncated, false);
    const err = await exec({ cmd: 'head -c 2000000 /dev/zero >&2; echo done' });
    assert.equal(err.body.stderr.length, 1024 * 1024);
    assert.equal(err.body.stderr_truncated, true);
    assert.equal(err.body.stdout, 'done\n');
    assert.equal(err.body.stdout_truncated, false);
    const exact = await exec({ cmd: 'head -c 1048576 /dev/zero' });
    assert.equal(exact.body.stdout_truncated, false);
  });

  it('kills a command at its timeout, children included, and answers 124', async () => {
    const started = Date.now();
    const r = await exec({ cmd: 'sleep 30 & sleep 31; echo never', timeout_ms: 500 });
    const took = Date.now() - started;
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.exit_code, 124);
    assert.equal(r.body.timed_out, true);
    assert.equal(r.body.stdout, '');
    assert.ok(took >= 450 && took < 5_000, `took ${took} ms`);
    // Killed children are reaped by the machine's init, an instant later: an unreaped one shows as "[sleep]".
    await waitFor(async () => (await processes()).length === 0, 10_000).catch(() => undefined);
    assert.deepEqual(await processes(), []);
  });

  it('streams stdout and stderr events in order, then exit', async () => {
    const res = await stream({ cmd: 'echo a; sleep 0.2; echo b >&2; sleep 0.2; printf c; exit 2' });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const events = parseEvents(await res.text());
    assert.deepEqual(events.slice(0, 3), [
      { event: 'stdout', data: 'a\n' },
      { event: 'stderr', data: 'b\n' },
      { event: 'stdout', data: 'c' },
    ]);
    assert.equal(events.length, 4);
    assert.equal(events[3]!.event, 'exit');
    assert.equal(events[3]!.data.exit_code, 2);
    assert.equal(events[3]!.data.timed_out, false);
    assert.ok(events[3]!.data.duration_ms >= 400);
  });

  it('streams a timeout as exit 124 with timed_out true', async () => {
    const events = parseEvents(await (await stream({ cmd: 'echo go; sleep 30', timeout_ms: 300 })).text());
    assert.deepEqual(events[0], { event: 'stdout', data: 'go\n' });
    assert.equal(events.at(-1)!.event, 'exit');
    assert.equal(events.at(-1)!.data.exit_code, 124);
    assert.equal(events.at(-1)!.data.timed_out, true);
  });

  it('kills a streamed command when the client disconnects', async () => {
    const ac = new AbortController();
    const res = await stream({ cmd: 'echo started; sleep 29' }, id, ac.signal);
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert.match(new TextDecoder().decode(first.value), /started/);
    ac.abort();
    await waitFor(async () => (await processes()).length === 0, 5_000);
  });

  it('answers errors before a stream starts as JSON', async () => {
    const bad = await stream({ cmd: [] });
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).code, 'VALIDATION_FAILED');
    const missing = await stream({ cmd: ['true'] }, 'mch_doesnotexist');
    assert.equal(missing.status, 404);
  });

  it('rejects bad bodies with 400 VALIDATION_FAILED', async () => {
    const bodies: Array<[unknown, string]> = [
      [{}, 'cmd'],
      [{ cmd: 42 }, 'cmd'],
      [{ cmd: [] }, 'cmd'],
      [{ cmd: [''] }, 'cmd'],
      [{ cmd: '' }, 'cmd'],
      [{ cmd: ['ls', 1] }, 'cmd'],
      [{ cmd: ['ls'], extra: true }, 'extra'],
      [{ cmd: ['ls'], timeout_ms: 0 }, 'timeout_ms'],
      [{ cmd: ['ls'], timeout_ms: 3_600_001 }, 'timeout_ms'],
      [{ cmd: ['ls'], timeout_ms: 1.5 }, 'timeout_ms'],
      [{ cmd: ['ls'], cwd: 'relative' }, 'cwd'],
      [{ cmd: ['ls'], env: { '1BAD': 'x' } }, 'env'],
      [{ cmd: ['ls'], env: { A: 1 } }, 'env.A'],
      [{ cmd: ['ls'], user: 'two words' }, 'user'],
      [{ cmd: ['ls'], user: '-u' }, 'user'],
      [{ cmd: ['ls'], user: '99999999999' }, 'user'],
      [{ cmd: ['ls'], stdin: 5 }, 'stdin'],
      [{ cmd: ['a\u0000b'] }, 'cmd'],
    ];
    for (const [body, field] of bodies) {
      const r = await exec(body);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
      assert.equal(r.body.code, 'VALIDATION_FAILED');
      assert.ok(
        r.body.details.fields.some((f: { field: string }) => f.field.startsWith(field)),
        `${JSON.stringify(body)} should name ${field}: ${r.text}`,
      );
    }
  });

  it("answers 404 for another team's machine and for an unknown id", async () => {
    const other = await t.newTeamKey('other');
    const r = await exec({ cmd: ['true'] }, id, other.key);
    assert.equal(r.status, 404);
    assert.equal(r.body.code, 'NOT_FOUND');
    assert.equal((await exec({ cmd: ['true'] }, 'mch_doesnotexist')).status, 404);
    assert.equal((await exec({ cmd: ['true'] }, id, null)).status, 401);
  });

  it('answers 409 STATE_CONFLICT for a paused machine', async () => {
    const m = await t.request('POST', '/v1/machines', { body: {} });
    const paused = await t.request('POST', `/v1/machines/${m.body.id}/pause`);
    assert.equal(paused.status, 200, paused.text);
    const r = await exec({ cmd: ['true'] }, m.body.id);
    assert.equal(r.status, 409);
    assert.equal(r.body.code, 'STATE_CONFLICT');
    assert.match(r.body.message, /paused/);
    assert.equal((await stream({ cmd: ['true'] }, m.body.id)).status, 409);
  });
});

describe('exec as activity', () => {
  let t: TestServer;
  before(async () => {
    t = await TestServer.start();
  });
  after(async () => {
    await t.dispose();
  });

  it('sets last_active_at: absent before the first exec, present soon after', async () => {
    const m = await t.request('POST', '/v1/machines', { body: {} });
    const id = m.body.id as string;
    assert.equal('last_active_at' in (await t.request('GET', `/v1/machines/${id}`)).body, false);
    const before = Date.now();
    assert.equal((await t.request('POST', `/v1/machines/${id}/exec`, { body: { cmd: ['true'] } })).status, 200);
    const got: string = await waitFor(async () => (await t.request('GET', `/v1/machines/${id}`)).body.last_active_at, 2_000);
    const at = Date.parse(got);
    assert.ok(at >= before - 5 && at <= Date.now(), got);
  });

  it('keeps an ephemeral machine alive while it gets execs, and destroys it once they stop', async () => {
    const m = await t.request('POST', '/v1/machines', { body: { ephemeral: true, inactivity_timeout_ms: 2000, timeout_ms: 600_000 } });
    const id = m.body.id as string;
    const until = Date.now() + 3_000;
    while (Date.now() < until) {
      const r = await t.request('POST', `/v1/machines/${id}/exec`, { body: { cmd: ['true'] } });
      assert.equal(r.status, 200, `exec failed while the machine should be kept alive: ${r.text}`);
      await new Promise((res) => setTimeout(res, 500));
    }
    assert.equal((await t.request('GET', `/v1/machines/${id}`)).body.status, 'running');
    const stoppedAt = Date.now();
    await waitFor(async () => (await t.request('GET', `/v1/machines/${id}`)).body.status === 'destroyed', 6_000);
    assert.ok(Date.now() - stoppedAt >= 1_000, 'destroyed too soon after the last exec');
  });
});
