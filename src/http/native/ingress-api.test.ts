/**
 * Ingress on real machines: `ANY /v1/machines/{id}/ports/{port}/…` reaches a server
 * inside the machine with its traffic access token (header or query), or without one
 * for a public machine, and counts as activity.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { execIn, TestServer, waitFor } from '../../testing/harness.js';

describe('ingress: /v1/machines/{id}/ports/{port}/…', () => {
  let t: TestServer;
  let id: string;
  let token: string;
  let publicId: string;

  /** A busybox httpd on 8080 serving /srv, with a CGI script that echoes the method, query and body. */
  async function serve(machine: string): Promise<void> {
    const cgi = '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n"\necho "$REQUEST_METHOD $QUERY_STRING"\nhead -c "${CONTENT_LENGTH:-0}"\n';
    const script = [
      'mkdir -p /srv/cgi-bin',
      'echo "hello-$(hostname)" > /srv/index.html',
      `echo ${Buffer.from(cgi).toString('base64')} | base64 -d > /srv/cgi-bin/echo`,
      'chmod +x /srv/cgi-bin/echo',
      'httpd -p 8080 -h /srv',
    ].join(' && ');
    const r = await execIn(t.server, machine, ['sh', '-c', script]);
    assert.equal(r.code, 0, r.out);
  }

  before(async () => {
    t = await TestServer.start();
    const created = await t.request('POST', '/v1/machines', { body: {} });
    assert.equal(created.status, 201, created.text);
    id = created.body.id;
    token = created.body.traffic_access_token;
    await serve(id);
    const pub = await t.request('POST', '/v1/machines', { body: { public: true } });
    assert.equal(pub.status, 201, pub.text);
    assert.equal(pub.body.public, true);
    publicId = pub.body.id;
    await serve(publicId);
    await waitFor(async () => (await fetch(`${t.url}/v1/machines/${id}/ports/8080/`, { headers: { 'x-traffic-access-token': token } })).status === 200);
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

  it('answers 502 when nothing listens, 400 for a bad port, 409 when paused', async () => {
    const closed = await fetch(`${t.url}/v1/machines/${id}/ports/9/`, { headers: { 'x-traffic-access-token': token } });
    assert.equal(closed.status, 502);
    assert.equal(((await closed.json()) as { code: string }).code, 'UPSTREAM_UNREACHABLE');
    const bad = await fetch(`${t.url}/v1/machines/${id}/ports/70000/`, { headers: { 'x-traffic-access-token': token } });
    assert.equal(bad.status, 400);
    assert.equal((await t.request('POST', `/v1/machines/${publicId}/pause`)).status, 200);
    const paused = await fetch(`${t.url}/v1/machines/${publicId}/ports/8080/`);
    assert.equal(paused.status, 409);
  });

  it('counts as activity: last_active_at moves', async () => {
    const before = (await t.request('GET', `/v1/machines/${id}`)).body.last_active_at as string | undefined;
    await new Promise((r) => setTimeout(r, 1_100));
    const r = await fetch(`${t.url}/v1/machines/${id}/ports/8080/`, { headers: { 'x-traffic-access-token': token } });
    assert.equal(r.status, 200);
    await r.text();
    const now = await waitFor(async () => {
      const at = (await t.request('GET', `/v1/machines/${id}`)).body.last_active_at as string | undefined;
      return at !== undefined && at !== before ? at : null;
    }, 5_000);
    assert.ok(now !== null && Date.parse(now) > Date.now() - 10_000);
  });
});
