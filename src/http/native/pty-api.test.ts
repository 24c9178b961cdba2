/**
 * Terminals over WebSockets on real machines: bytes both ways, resize (stty size), vi and
 * top, keep=false/true, auth, errors before the upgrade, and activity.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { ADMIN_KEY, TestServer, execIn, waitFor } from '../../testing/harness.js';

interface Terminal {
  ws: WebSocket;
  /** Everything received so far, as text. */
  screen(): string;
  /** Text frames received. */
  messages: any[];
  type(text: string): void;
  resize(cols: number, rows: number): void;
  /** Resolves once the screen (from `from` on) matches. */
  expect(pattern: RegExp, from?: number): Promise<void>;
  closed: Promise<number>;
}

interface Refused {
  status: number;
  body: any;
}

describe('GET /v1/machines/{id}/pty (WebSocket)', () => {
  let t: TestServer;
  let id: string;

  const wsUrl = (machine: string, query = ''): string => `${t.url.replace(/^http/, 'ws')}/v1/machines/${machine}/pty${query}`;

  const connect = (machine: string, query = '', headers: Record<string, string> = { authorization: `Bearer ${ADMIN_KEY}` }): Promise<Terminal | Refused> =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(wsUrl(machine, query), { headers });
      let text = '';
      const messages: any[] = [];
      const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (isBinary) text += data.toString('utf8');
        else messages.push(JSON.parse(data.toString('utf8')));
      });
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: body ? JSON.parse(body) : null }));
      });
      ws.once('error', (err) => reject(err));
      ws.once('open', () =>
        resolve({
          ws,
          screen: () => text,
          messages,
          type: (s) => ws.send(Buffer.from(s, 'utf8'), { binary: true }),
          resize: (cols, rows) => ws.send(JSON.stringify({ type: 'resize', cols, rows })),
          expect: (pattern, from = 0) => waitFor(async () => pattern.test(text.slice(from)), 15_000).then(() => undefined),
          closed,
        }),
      );
    });

  const open = async (machine: string, query = ''): Promise<Terminal> => {
    const r = await connect(machine, query);
    if (!('ws' in r)) assert.fail(`refused: ${r.status} ${JSON.stringify(r.body)}`);
    return r;
  };

  const running = async (pattern: RegExp, machine = id): Promise<boolean> => {
    const ps = await execIn(t.server, machine, ['ps', '-o', 'args']);
    return ps.out.split('\n').some((l) => pattern.test(l));
  };

  before(async () => {
    t = await TestServer.start();
    const r = await t.request('POST', '/v1/machines', { body: {} });
    assert.equal(r.status, 201, r.text);
    id = r.body.id;
  });
  after(async () => {
    await t.dispose();
  });

  it('runs a shell on a terminal of the asked size; resize changes it (stty size)', async () => {
    const term = await open(id, '?cols=100&rows=30');
    term.type('stty size; tty\r');
    await term.expect(/30 100\r\n\/dev\/pts\/\d+/);
    const mark = term.screen().length;
    term.resize(132, 43);
    term.type('stty size\r');
    await term.expect(/43 132/, mark);
    term.type('echo "$TERM"; exit 3\r');
    await term.expect(/xterm-256color/);
    assert.equal(await term.closed, 1000);
    assert.deepEqual(term.messages, [{ type: 'exit', exit_code: 3 }]);
  });

  it('runs vi: keys in, screen bytes out, file written', async () => {
    const term = await open(id, '?cols=80&rows=24');
    term.type('vi /tmp/from-vi.txt\r');
    // vi paints its screen with escape sequences and marks the empty lines with ~.
    await term.expect(/\x1b\[[0-9;]*H[\s\S]*~/);
    term.type('ihello from vi\x1b');
    await term.expect(/hello from vi/);
    term.type(':wq\r');
    const mark = term.screen().length;
    term.type('echo vi-done-$((40+2))\r');
    await term.expect(/vi-done-42/, mark);
    const file = await execIn(t.server, id, ['cat', '/tmp/from-vi.txt']);
    assert.equal(file.out, 'hello from vi\n');
    term.ws.close();
    await term.closed;
  });

  it('runs top and quits it with q', async () => {
    const term = await open(id, '?cols=120&rows=30');
    term.type('top\r');
    await term.expect(/PID[\s\S]*USER[\s\S]*COMMAND/);
    await term.expect(/Mem:/);
    term.type('q');
    const mark = term.screen().length;
    term.type('echo top-done-$((1+1))\r');
    await term.expect(/top-done-2/, mark);
    term.ws.close();
    await term.closed;
  });

  it('runs a given command as a given user in a given cwd', async () => {
    const term = await open(id, `?cmd=${encodeURIComponent('id -u; pwd; stty size')}&user=nobody&cwd=/tmp&cols=50&rows=10`);
    await term.expect(/65534\r\n\/tmp\r\n10 50/);
    assert.equal(await term.closed, 1000);
    assert.deepEqual(term.messages, [{ type: 'exit', exit_code: 0 }]);
  });

  it('keep=false (the default): closing the socket ends the command', async () => {
    const term = await open(id, `?cmd=${encodeURIComponent('echo started; exec sleep 1201')}`);
    await term.expect(/started/);
    await waitFor(() => running(/^sleep 1201$/), 10_000);
    term.ws.close();
    await term.closed;
    await waitFor(async () => !(await running(/^sleep 1201$/)), 10_000);
  });

  it('reaps the command when it ends: no zombie is left in the machine', async () => {
    const term = await open(id, `?cmd=${encodeURIComponent('exec sleep 0.2')}`);
    assert.equal(await term.closed, 1000);
    assert.deepEqual(term.messages, [{ type: 'exit', exit_code: 0 }]);
    const ps = await execIn(t.server, id, ['ps', '-o', 'stat,args']);
    assert.doesNotMatch(ps.out, /^Z/m, ps.out);
  });

  it('keep=true: the command outlives the socket', async () => {
    const term = await open(id, `?keep=true&cmd=${encodeURIComponent('echo started; exec sleep 1202')}`);
    await term.expect(/started/);
    term.ws.close();
    await term.closed;
    // Still there well after the close was handled (a killed one is gone within milliseconds).
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await running(/^sleep 1202$/), true);
    await execIn(t.server, id, ['sh', '-c', 'kill $(pidof sleep)']);
  });

  it('answers a text frame that is not a resize with an error frame', async () => {
    const term = await open(id);
    term.ws.send('{"type":"nope"}');
    await waitFor(async () => term.messages.length > 0, 10_000);
    assert.equal(term.messages[0].type, 'error');
    term.ws.close();
    await term.closed;
  });

  it('takes the key as access_token in the query; refuses without one (401)', async () => {
    const term = await connect(id, `?access_token=${ADMIN_KEY}`, {});
    assert.ok('ws' in term);
    term.ws.close();
    await term.closed;
    const none = await connect(id, '', {});
    assert.ok(!('ws' in none));
    assert.equal(none.status, 401);
    assert.equal(none.body.code, 'UNAUTHORIZED');
  });

  it('refuses before the upgrade: unknown machine 404, bad query 400, bad cwd 422, paused machine 409', async () => {
    const missing = (await connect('mch_doesnotexist')) as Refused;
    assert.equal(missing.status, 404);
    assert.equal(missing.body.code, 'NOT_FOUND');
    const bad = (await connect(id, '?cols=0')) as Refused;
    assert.equal(bad.status, 400);
    assert.equal(bad.body.details.fields[0].field, 'query.cols');
    const noCwd = (await connect(id, '?cwd=/does/not/exist')) as Refused;
    assert.equal(noCwd.status, 422);
    assert.equal(noCwd.body.code, 'COMMAND_NOT_STARTED');
    assert.match(noCwd.body.message, /cannot change directory to \/does\/not\/exist/);
    const noCmd = (await connect(id, `?cmd=${encodeURIComponent('exec no-such-command')}`)) as Terminal;
    // A shell string starts /bin/sh, which then reports the missing command on the terminal.
    await noCmd.expect(/no-such-command/);
    assert.equal(await noCmd.closed, 1000);
    assert.deepEqual(noCmd.messages, [{ type: 'exit', exit_code: 127 }]);
    const m = await t.request('POST', '/v1/machines', { body: {} });
    assert.equal((await t.request('POST', `/v1/machines/${m.body.id}/pause`)).status, 200);
    const paused = (await connect(m.body.id)) as Refused;
    assert.equal(paused.status, 409);
    assert.equal(paused.body.code, 'STATE_CONFLICT');
    assert.match(paused.body.message, /paused.*Resume it first/);
    await t.request('DELETE', `/v1/machines/${m.body.id}`);
  });

  it('a pause ends an open terminal (exit frame, close 1000) and succeeds', async () => {
    const m = await t.request('POST', '/v1/machines', { body: {} });
    const machine = m.body.id as string;
    const term = await open(machine);
    term.type('echo ready-$((2+3))\r');
    await term.expect(/ready-5/);
    const paused = await t.request('POST', `/v1/machines/${machine}/pause`);
    assert.equal(paused.status, 200, paused.text);
    assert.equal(await term.closed, 1000);
    assert.deepEqual(term.messages, [{ type: 'exit', exit_code: 137 }]);
    assert.equal((await t.request('POST', `/v1/machines/${machine}/resume`)).status, 200);
    await t.request('DELETE', `/v1/machines/${machine}`);
  });

  it('a plain GET (no upgrade) is 426', async () => {
    const r = await t.request('GET', `/v1/machines/${id}/pty`);
    assert.equal(r.status, 426);
    assert.equal(r.body.code, 'UPGRADE_REQUIRED');
  });

  it('counts as activity (last_active_at)', async () => {
    const m = await t.request('POST', '/v1/machines', { body: {} });
    const other = m.body.id as string;
    assert.equal('last_active_at' in (await t.request('GET', `/v1/machines/${other}`)).body, false);
    const term = await open(other);
    term.type('exit\r');
    await term.closed;
    await waitFor(async () => (await t.request('GET', `/v1/machines/${other}`)).body.last_active_at, 5_000);
    await t.request('DELETE', `/v1/machines/${other}`);
  });
});
