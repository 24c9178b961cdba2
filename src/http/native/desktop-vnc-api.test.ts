/**
 * The desktop WebSocket (`GET /v1/machines/{id}/desktop/vnc`) on real machines: a real RFB
 * client authenticates with the machine's VNC server through the proxy; another team's
 * key, a missing key, a machine without a desktop, a paused one and a plain GET are refused
 * before any upgrade.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket, { createWebSocketStream } from 'ws';
import { TestServer, waitFor } from '../../testing/harness.js';
import { rfbHandshake, type RfbHandshakeResult } from '../../testing/rfb-client.js';

interface Refused {
  status: number;
  body: any;
}

describe('GET /v1/machines/{id}/desktop/vnc (WebSocket)', () => {
  let t: TestServer;
  let key: string;
  let otherKey: string;
  let desktop: string;
  let headless: string;

  const url = (id: string, query = ''): string => `${t.url.replace(/^http/, 'ws')}/v1/machines/${id}/desktop/vnc${query}`;

  /** Open the socket; a refusal before the upgrade resolves with its status and JSON body. */
  const open = (id: string, opts: { key?: string | null; query?: string } = {}): Promise<WebSocket | Refused> =>
    new Promise((resolve, reject) => {
      const k = opts.key === undefined ? key : opts.key;
      const ws = new WebSocket(url(id, opts.query), { headers: k === null ? {} : { authorization: `Bearer ${k}` } });
      ws.once('open', () => resolve(ws));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: body ? JSON.parse(body) : null }));
      });
      ws.once('error', reject);
    });

  const refused = async (id: string, opts: { key?: string | null; query?: string } = {}): Promise<Refused> => {
    const r = await open(id, opts);
    if (r instanceof WebSocket) {
      r.terminate();
      assert.fail('the upgrade was accepted');
    }
    return r;
  };

  /** A full RFB handshake through the proxy; the VNC server starts a moment after the machine, so a 502 is retried. */
  const handshakeThroughProxy = (password: string, opts: { key?: string | null; query?: string } = {}): Promise<RfbHandshakeResult> =>
    waitFor<RfbHandshakeResult | null>(async () => {
      const ws = await open(desktop, opts);
      if (!(ws instanceof WebSocket)) {
        if (ws.status === 502) return null;
        assert.fail(`refused: ${ws.status} ${JSON.stringify(ws.body)}`);
      }
      try {
        return await rfbHandshake({ host: 'proxy', port: 0, password, stream: createWebSocketStream(ws) });
      } catch (err) {
        // x11vnc accepted, then closed: it was still starting.
        if (/closed the connection|ECONNRESET/.test(String(err))) return null;
        throw err;
      }
    }, 30_000) as Promise<RfbHandshakeResult>;

  before(async () => {
    t = await TestServer.start();
    ({ key } = await t.newTeamKey('desk'));
    ({ key: otherKey } = await t.newTeamKey('other'));
    const d = await t.request('POST', '/v1/machines', { body: { template: 'desktop' }, key });
    assert.equal(d.status, 201, d.text);
    desktop = d.body.id;
    const b = await t.request('POST', '/v1/machines', { body: {}, key });
    assert.equal(b.status, 201, b.text);
    headless = b.body.id;
  });
  after(async () => {
    await t.dispose();
  });

  it('joins a real RFB client to the machine\'s VNC server: VNC Authentication with its password, ServerInit named after the machine', async () => {
    const settings = await t.request('GET', `/paperspace/v1/machines/${desktop}/desktop`, { key });
    assert.equal(settings.status, 200, settings.text);
    const r = await handshakeThroughProxy(settings.body.vnc.password);
    assert.match(r.serverVersion, /^RFB 003\.00[378]$/);
    assert.ok(r.securityTypes.includes(2), `VNC Authentication offered: ${r.securityTypes.join(',')}`);
    assert.equal(r.securityResult, 0, `authenticated: ${r.failureReason}`);
    assert.equal(r.serverInit?.name, desktop);
    assert.ok((r.serverInit?.width ?? 0) > 0 && (r.serverInit?.height ?? 0) > 0);
  });

  it('takes the key as access_token (browsers cannot set headers on a WebSocket); the VNC server still wants its password', async () => {
    const r = await handshakeThroughProxy('wrongpw0', { key: null, query: `?access_token=${encodeURIComponent(key)}` });
    assert.notEqual(r.securityResult, 0, 'a wrong VNC password fails at the VNC server');
    assert.equal(r.serverInit, null);
  });

  it('refuses before the upgrade: another team 404, no key 401, no desktop 422, unknown 404, plain GET 426', async () => {
    const other = await refused(desktop, { key: otherKey });
    assert.equal(other.status, 404);
    assert.equal(other.body.code, 'NOT_FOUND');
    const otherToken = await refused(desktop, { key: null, query: `?access_token=${encodeURIComponent(otherKey)}` });
    assert.equal(otherToken.status, 404);
    const none = await refused(desktop, { key: null });
    assert.equal(none.status, 401);
    assert.equal(none.body.code, 'UNAUTHORIZED');
    const plain = await refused(headless);
    assert.equal(plain.status, 422);
    assert.equal(plain.body.code, 'NO_DESKTOP');
    assert.match(plain.body.message, /desktop/);
    assert.equal((await refused('mch_doesnotexist00')).status, 404);
    const get = await t.request('GET', `/v1/machines/${desktop}/desktop/vnc`, { key });
    assert.equal(get.status, 426);
    assert.equal(get.body.code, 'UPGRADE_REQUIRED');
  });

  it('a paused desktop machine is a 409 that says to resume it', async () => {
    const p = await t.request('POST', `/v1/machines/${desktop}/pause`, { key });
    assert.equal(p.status, 200, p.text);
    const r = await refused(desktop);
    assert.equal(r.status, 409);
    assert.equal(r.body.code, 'STATE_CONFLICT');
    assert.match(r.body.message, /Resume it/);
  });
});
