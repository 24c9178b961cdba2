/**
 * Ingress on real machines: `ANY /v1/machines/{id}/ports/{port}/…` and any request to
 * `{port}-{id}.{domain}` reach a server inside the machine with its traffic access token
 * (header or query), or without one for a public machine, and count as activity;
 * WebSocket upgrades are piped through both ways; a paused machine created with
 * auto_resume is resumed by its traffic.
 */
import assert from 'node:assert/strict';
import { readdir, truncate } from 'node:fs/promises';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { snapshotPaths } from '../../runtime/runc/snapshot-files.js';
import { execIn, TestServer, waitFor } from '../../testing/harness.js';

const DOMAIN = 'machines.test';

/**
 * A stand-in for a WebSocket server, for busybox `nc -ll -e`: it reads the upgrade request,
 * answers 101 (saying which request line it got and whether it saw a traffic token header),
 * then echoes every byte.
 */
const UPGRADE_ECHO = [
  '#!/bin/sh',
  "cr=$(printf '\\r')",
  'IFS= read -r first',
  'first=${first%$cr}',
  'saw=no',
  'while IFS= read -r h; do',
  '  h=${h%$cr}',
  '  [ -z "$h" ] && break',
  '  case "$h" in [Xx]-[Tt][Rr][Aa][Ff][Ff][Ii][Cc]-*) saw=yes ;; esac',
  'done',
  "printf 'HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nX-Request-Line: %s\\r\\nX-Saw-Token: %s\\r\\n\\r\\n' \"$first\" \"$saw\"",
  'exec cat',
  '',
].join('\n');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('ingress: /v1/machines/{id}/ports/{port}/… and {port}-{id}.{domain}', () => {
  let t: TestServer;
  let port: number;
  let id: string;
  let token: string;
  let publicId: string;
  let autoId: string;
  let autoToken: string;

  /** A busybox httpd on 8080 serving /srv, with a CGI script that echoes the method, query and body; and the upgrade echo on 9000. */
  async function serve(machine: string): Promise<void> {
    const cgi = '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n"\necho "$REQUEST_METHOD $QUERY_STRING"\nhead -c "${CONTENT_LENGTH:-0}"\n';
    const script = [
      'mkdir -p /srv/cgi-bin',
      'echo "hello-$(hostname)" > /srv/index.html',
      `echo ${Buffer.from(cgi).toString('base64')} | base64 -d > /srv/cgi-bin/echo`,
      'chmod +x /srv/cgi-bin/echo',
      `echo ${Buffer.from(UPGRADE_ECHO).toString('base64')} | base64 -d > /srv/upgrade-echo`,
      'chmod +x /srv/upgrade-echo',
      'httpd -p 8080 -h /srv',
      '{ nc -ll -p 9000 -e /srv/upgrade-echo > /dev/null 2>&1 & }',
    ].join(' && ');
    const r = await execIn(t.server, machine, ['sh', '-c', script]);
    assert.equal(r.code, 0, r.out);
  }

  /** An HTTP request to the server's loopback address with the given Host header. */
  function viaHost(host: string, path: string, o: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; text: string; headers: IncomingHttpHeaders }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, method: o.method ?? 'GET', path, agent: false, headers: { host, ...o.headers } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, text, headers: res.headers }));
      });
      req.on('error', reject);
      req.end(o.body);
    });
  }

  /** Send an upgrade request by hand; resolves with the answer's head, the socket, and any bytes already read past the head. */
  function upgrade(path: string, headers: Record<string, string> = {}): Promise<{ head: string; socket: Socket; rest: Buffer }> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port });
      const timer = setTimeout(() => reject(new Error('no answer to the upgrade request')), 20_000);
      let buf = Buffer.alloc(0);
      socket.on('error', reject);
      const onData = (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        clearTimeout(timer);
        socket.off('data', onData);
        socket.pause();
        resolve({ head: buf.subarray(0, end).toString('latin1'), socket, rest: buf.subarray(end + 4) });
      };
      socket.on('data', onData);
      const all: Record<string, string> = {
        host: '127.0.0.1',
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        ...headers,
      };
      socket.write(`GET ${path} HTTP/1.1\r\n${Object.entries(all).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
    });
  }

  /** Write `bytes` and read until as many have come back (after `rest`, already read). */
  function roundTrip(socket: Socket, rest: Buffer, bytes: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      let got = rest;
      const timer = setTimeout(() => reject(new Error(`only ${got.length} of ${bytes.length} bytes came back`)), 10_000);
      const onData = (c: Buffer) => {
        got = Buffer.concat([got, c]);
        if (got.length < bytes.length) return;
        clearTimeout(timer);
        socket.off('data', onData);
        socket.pause();
        resolve(got);
      };
      socket.on('data', onData);
      socket.resume();
      socket.write(bytes);
    });
  }

  /** An upgrade the server refuses: its status and JSON body (the connection is closed after it). */
  async function refused(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: { code: string; message: string } }> {
    const { head, socket, rest } = await upgrade(path, headers);
    let body = rest;
    socket.on('data', (c: Buffer) => (body = Buffer.concat([body, c])));
    socket.resume();
    await new Promise((r) => socket.once('close', r));
    return { status: Number(head.split(' ')[1]), body: JSON.parse(body.toString('utf8')) };
  }

  /** Through an upgraded connection, bytes flow both ways: text and every byte value. */
  async function assertPiped(socket: Socket, rest: Buffer): Promise<void> {
    const text = Buffer.from('ping through the proxy\n');
    assert.deepEqual(await roundTrip(socket, rest, text), text);
    const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    assert.deepEqual(await roundTrip(socket, Buffer.alloc(0), binary), binary);
    socket.destroy();
  }

  async function status(machine: string): Promise<string> {
    return (await t.request('GET', `/v1/machines/${machine}`)).body.status as string;
  }

  before(async () => {
    t = await TestServer.start({ env: { HANGAR_INGRESS_DOMAIN: DOMAIN } });
    port = Number(new URL(t.url).port);
    const created = await t.request('POST', '/v1/machines', { body: {} });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.body.auto_resume, undefined, 'auto_resume is shown only when true');
    id = created.body.id;
    token = created.body.traffic_access_token;
    const pub = await t.request('POST', '/v1/machines', { body: { public: true } });
    assert.equal(pub.status, 201, pub.text);
    assert.equal(pub.body.public, true);
    publicId = pub.body.id;
    const auto = await t.request('POST', '/v1/machines', { body: { auto_resume: true } });
    assert.equal(auto.status, 201, auto.text);
    assert.equal(auto.body.auto_resume, true);
    autoId = auto.body.id;
    autoToken = auto.body.traffic_access_token;
    await Promise.all([serve(id), serve(publicId), serve(autoId)]);
    for (const [m, tok] of [[id, token], [autoId, autoToken]] as const) {
      await waitFor(async () => (await fetch(`${t.url}/v1/machines/${m}/ports/8080/`, { headers: { 'x-traffic-access-token': tok } })).status === 200);
    }
    await waitFor(async () => (await fetch(`${t.url}/v1/machines/${publicId}/ports/8080/`)).status === 200);
  });
  after(async () => {
    await t.dispose();
  });

  it('proxies with the token in the header or the query, which is not passed on', async () => {
    const byHeader = await fetch(`${t.url}/v1/machines/${id}/ports/8080/index.html`, { headers: { 'x-traffic-access-token': token } });
    assert.equal(byHeader.status, 200);
    assert.equal(await byHeader.text(), `hello-${id}\n`);
    const byQuery = await fetch(`${t.url}/v1/machines/${id}/ports/8080/cgi-bin/echo?a=1&traffic_access_token=${token}&b=2`);
    assert.equal(byQuery.status, 200);
    assert.equal(await byQuery.text(), 'GET a=1&b=2\n');
  });

  it('streams request bodies of any type and passes the method', async () => {
    const r = await fetch(`${t.url}/v1/machines/${id}/ports/8080/cgi-bin/echo?x=y`, {
      method: 'POST',
      headers: { 'x-traffic-access-token': token, 'content-type': 'application/octet-stream' },
      body: 'raw body bytes',
    });
    assert.equal(r.status, 200);
    assert.equal(await r.text(), 'POST x=y\nraw body bytes');
  });

  it('refuses a missing or wrong token with 401, the same for an unknown machine', async () => {
    const none = await t.request('GET', `/v1/machines/${id}/ports/8080/`, { key: null });
    assert.equal(none.status, 401);
    assert.equal(none.body.code, 'UNAUTHORIZED');
    const wrong = await fetch(`${t.url}/v1/machines/${id}/ports/8080/`, { headers: { 'x-traffic-access-token': `${token}x` } });
    assert.equal(wrong.status, 401);
    const apiKeyIsNotEnough = await t.request('GET', `/v1/machines/${id}/ports/8080/`);
    assert.equal(apiKeyIsNotEnough.status, 401);
    const unknown = await t.request('GET', '/v1/machines/mch_doesnotexist0000/ports/8080/', { key: null });
    assert.equal(unknown.status, 401);
  });

  it('a public machine needs no token', async () => {
    const r = await fetch(`${t.url}/v1/machines/${publicId}/ports/8080/`);
    assert.equal(r.status, 200);
    assert.equal(await r.text(), `hello-${publicId}\n`);
  });

  it('by host: {port}-{id}.{domain} (any case, any port) gets the whole path, token in the header or the query', async () => {
    const byHeader = await viaHost(`8080-${id}.${DOMAIN}`, '/index.html', { headers: { 'x-traffic-access-token': token } });
    assert.equal(byHeader.status, 200);
    assert.equal(byHeader.text, `hello-${id}\n`);
    const byQuery = await viaHost(`8080-${id.toUpperCase()}.${DOMAIN.toUpperCase()}:${port}`, `/cgi-bin/echo?a=1&traffic_access_token=${token}&b=2`);
    assert.equal(byQuery.status, 200);
    assert.equal(byQuery.text, 'GET a=1&b=2\n');
    const body = await viaHost(`8080-${id}.${DOMAIN}`, '/cgi-bin/echo?x=y', {
      method: 'POST',
      headers: { 'x-traffic-access-token': token, 'content-type': 'application/json' },
      body: '{"not":"parsed by the server"}',
    });
    assert.equal(body.status, 200);
    assert.equal(body.text, 'POST x=y\n{"not":"parsed by the server"}');
    const pub = await viaHost(`8080-${publicId}.${DOMAIN}`, '/');
    assert.equal(pub.status, 200);
    assert.equal(pub.text, `hello-${publicId}\n`);
  });

  it('by host: answers before any API routing, with the same token rules and errors', async () => {
    // An API path on an ingress host is the machine's path, and an API key is not a traffic token.
    const apiPath = await viaHost(`8080-${id}.${DOMAIN}`, '/v1/machines', { headers: { authorization: `Bearer ${'x'.repeat(20)}` } });
    assert.equal(apiPath.status, 401);
    assert.equal(JSON.parse(apiPath.text).code, 'UNAUTHORIZED');
    assert.match(JSON.parse(apiPath.text).message, /traffic access token/);
    const atMachine = await viaHost(`8080-${id}.${DOMAIN}`, '/v1/machines', { headers: { 'x-traffic-access-token': token } });
    assert.equal(atMachine.status, 404, 'busybox httpd has no such file');
    assert.equal((await viaHost(`8080-mch_doesnotexist0000.${DOMAIN}`, '/')).status, 401);
    const bad = await viaHost(`70000-${id}.${DOMAIN}`, '/', { headers: { 'x-traffic-access-token': token } });
    assert.equal(bad.status, 400);
    assert.equal(JSON.parse(bad.text).code, 'VALIDATION_FAILED');
    const closed = await viaHost(`9-${id}.${DOMAIN}`, '/', { headers: { 'x-traffic-access-token': token } });
    assert.equal(closed.status, 502);
    assert.equal(JSON.parse(closed.text).code, 'UPSTREAM_UNREACHABLE');
  });

  it('by host: other hosts (the domain itself, other names) get the API as usual', async () => {
    for (const host of [DOMAIN, `www.${DOMAIN}`, `8080-${id}.elsewhere.test`, `127.0.0.1:${port}`]) {
      const r = await viaHost(host, '/healthz');
      assert.equal(r.status, 200, host);
      assert.deepEqual(JSON.parse(r.text), { status: 'ok' });
    }
  });

  it('WebSocket by path: authenticated, forwarded without the token, then bytes flow both ways', async () => {
    const { head, socket, rest } = await upgrade(`/v1/machines/${id}/ports/9000/chat?x=1&traffic_access_token=${token}`, { 'x-traffic-access-token': token });
    assert.match(head, /^HTTP\/1\.1 101 /);
    assert.match(head, /\r\nX-Request-Line: GET \/chat\?x=1 HTTP\/1\.1\r\n/);
    assert.match(head, /\r\nX-Saw-Token: no(\r\n|$)/);
    await assertPiped(socket, rest);
  });

  it('WebSocket by host: the whole path, token in the query', async () => {
    const { head, socket, rest } = await upgrade(`/socket?traffic_access_token=${token}`, { host: `9000-${id}.${DOMAIN}` });
    assert.match(head, /^HTTP\/1\.1 101 /);
    assert.match(head, /\r\nX-Request-Line: GET \/socket HTTP\/1\.1\r\n/);
    await assertPiped(socket, rest);
    const pub = await upgrade('/', { host: `9000-${publicId}.${DOMAIN}` });
    assert.match(pub.head, /^HTTP\/1\.1 101 /);
    await assertPiped(pub.socket, pub.rest);
  });

  it('WebSocket: refused before the upgrade with catalogue errors; other upgrades still reach the terminal endpoint', async () => {
    const none = await refused(`/v1/machines/${id}/ports/9000/`);
    assert.equal(none.status, 401);
    assert.equal(none.body.code, 'UNAUTHORIZED');
    const byHost = await refused('/', { host: `9000-${id}.${DOMAIN}`, 'x-traffic-access-token': 'wrong' });
    assert.equal(byHost.status, 401);
    const closed = await refused(`/v1/machines/${id}/ports/9/`, { 'x-traffic-access-token': token });
    assert.equal(closed.status, 502);
    assert.equal(closed.body.code, 'UPSTREAM_UNREACHABLE');
    // Not ingress: the terminal endpoint's listener answers it (no API key: 401 from there).
    const pty = await refused(`/v1/machines/${id}/pty`);
    assert.equal(pty.status, 401);
    const elsewhere = await refused('/v1/nothing-here');
    assert.equal(elsewhere.status, 404);
    assert.equal(elsewhere.body.code, 'ROUTE_NOT_FOUND');
  });

  it('counts as activity: last_active_at moves', async () => {
    const before = (await t.request('GET', `/v1/machines/${id}`)).body.last_active_at as string | undefined;
    await sleep(1_100);
    const r = await fetch(`${t.url}/v1/machines/${id}/ports/8080/`, { headers: { 'x-traffic-access-token': token } });
    assert.equal(r.status, 200);
    await r.text();
    const now = await waitFor(async () => {
      const at = (await t.request('GET', `/v1/machines/${id}`)).body.last_active_at as string | undefined;
      return at !== undefined && at !== before ? at : null;
    }, 5_000);
    assert.ok(now !== null && Date.parse(now) > Date.now() - 10_000);
  });

  it('answers 502 when nothing listens, 400 for a bad port, 409 when paused without auto_resume', async () => {
    const closed = await fetch(`${t.url}/v1/machines/${id}/ports/9/`, { headers: { 'x-traffic-access-token': token } });
    assert.equal(closed.status, 502);
    assert.equal(((await closed.json()) as { code: string }).code, 'UPSTREAM_UNREACHABLE');
    const bad = await fetch(`${t.url}/v1/machines/${id}/ports/70000/`, { headers: { 'x-traffic-access-token': token } });
    assert.equal(bad.status, 400);
    assert.equal((await t.request('POST', `/v1/machines/${publicId}/pause`)).status, 200);
    const paused = await fetch(`${t.url}/v1/machines/${publicId}/ports/8080/`);
    assert.equal(paused.status, 409);
    assert.equal(((await paused.json()) as { code: string }).code, 'STATE_CONFLICT');
    assert.equal((await viaHost(`8080-${publicId}.${DOMAIN}`, '/')).status, 409);
    const ws = await refused('/', { host: `9000-${publicId}.${DOMAIN}` });
    assert.equal(ws.status, 409);
    assert.equal(await status(publicId), 'paused', 'traffic does not resume it');
  });

  it('auto_resume: traffic to the paused machine resumes it, concurrent requests sharing one resume', async (ctx) => {
    assert.equal((await t.request('POST', `/v1/machines/${autoId}/pause`)).status, 200);
    assert.equal(await status(autoId), 'paused');
    const started = Date.now();
    const answers = await Promise.all([
      fetch(`${t.url}/v1/machines/${autoId}/ports/8080/`, { headers: { 'x-traffic-access-token': autoToken } }).then(async (r) => ({ status: r.status, text: await r.text() })),
      fetch(`${t.url}/v1/machines/${autoId}/ports/8080/?traffic_access_token=${autoToken}`).then(async (r) => ({ status: r.status, text: await r.text() })),
      viaHost(`8080-${autoId}.${DOMAIN}`, '/', { headers: { 'x-traffic-access-token': autoToken } }),
      viaHost(`8080-${autoId}.${DOMAIN}`, '/index.html', { headers: { 'x-traffic-access-token': autoToken } }),
    ]);
    const ms = Date.now() - started;
    for (const a of answers) {
      assert.equal(a.status, 200, a.text);
      assert.equal(a.text, `hello-${autoId}\n`);
    }
    const m = await t.request('GET', `/v1/machines/${autoId}`);
    assert.equal(m.body.status, 'running');
    assert.equal(m.body.auto_resume, true);
    assert.equal(m.body.snapshot_id, undefined);
    const teamId = (await t.server.store.getMachine(autoId))!.teamId;
    const events = await t.server.store.listMachineEvents({ teamId, machineId: autoId, order: 'asc' });
    assert.deepEqual(events.filter((e) => e.name === 'start').map((e) => e.state), ['done'], 'one resume for four requests');
    ctx.diagnostic(`four requests to a paused machine answered in ${ms} ms (resume included)`);
  });

  it('auto_resume: an ingress request waits for a resume already in flight from the API', async () => {
    assert.equal((await t.request('POST', `/v1/machines/${autoId}/pause`)).status, 200);
    const api = t.request('POST', `/v1/machines/${autoId}/resume`);
    await sleep(20);
    const r = await fetch(`${t.url}/v1/machines/${autoId}/ports/8080/`, { headers: { 'x-traffic-access-token': autoToken } });
    assert.equal(r.status, 200);
    assert.equal(await r.text(), `hello-${autoId}\n`);
    // Whichever came first resumed it; the API call is then 200 or a 409 (busy, or no longer paused).
    assert.ok([200, 409].includes((await api).status));
    assert.equal(await status(autoId), 'running');
  });

  it('auto_resume: a WebSocket upgrade resumes the machine too, then bytes flow both ways', async () => {
    assert.equal((await t.request('POST', `/v1/machines/${autoId}/pause`)).status, 200);
    const { head, socket, rest } = await upgrade('/ws', { host: `9000-${autoId}.${DOMAIN}`, 'x-traffic-access-token': autoToken });
    assert.match(head, /^HTTP\/1\.1 101 /);
    await assertPiped(socket, rest);
    assert.equal(await status(autoId), 'running');
  });

  it('auto_resume: a resume that fails answers 500 RESTORE_FAILED and leaves the machine paused', async () => {
    const p = await t.request('POST', `/v1/machines/${autoId}/pause`);
    assert.equal(p.status, 200);
    const paths = snapshotPaths(t.server.settings.snapshotsDir, p.body.snapshot_id);
    const pages = (await readdir(paths.criu)).filter((f) => f.startsWith('pages-'));
    assert.ok(pages.length > 0);
    for (const f of pages) await truncate(join(paths.criu, f), 10);
    const r = await fetch(`${t.url}/v1/machines/${autoId}/ports/8080/`, { headers: { 'x-traffic-access-token': autoToken } });
    assert.equal(r.status, 500);
    const body = (await r.json()) as { code: string; message: string };
    assert.equal(body.code, 'RESTORE_FAILED');
    assert.match(body.message, /stays paused/);
    const m = await t.request('GET', `/v1/machines/${autoId}`);
    assert.equal(m.body.status, 'paused');
    assert.equal(m.body.snapshot_id, p.body.snapshot_id);
  });
});
