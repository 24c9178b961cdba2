/**
 * Machine networking on real runc: addresses, isolation between machines and from the
 * host, outbound policies against an "outside" host this test makes (its own network
 * namespace: no traffic leaves the host), pause/resume/fork, restart and cleanup.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { formatIpv4, gatewayOf } from '../../domain/network.js';
import { execIn, networkLeftovers, TestServer, waitFor } from '../../testing/harness.js';
import { hostGet, makeOutside, type Outside } from '../../testing/outside-host.js';
import { run, runWithInput } from './command.js';

describe('machine network: addresses, isolation and outbound policies', () => {
  let t: TestServer;
  let outside: Outside;
  let gateway: string;
  let hostListener: Server;
  let hostListenerPort: number;

  before(async () => {
    t = await TestServer.start();
    gateway = formatIpv4(gatewayOf(t.server.settings.subnet));
    outside = await makeOutside();
  });
  after(async () => {
    hostListener?.close();
    await outside?.close();
    await t.dispose();
  });

  async function create(body: Record<string, unknown> = {}): Promise<{ id: string; ip: string }> {
    const r = await t.request('POST', '/v1/machines', { body });
    assert.equal(r.status, 201, r.text);
    assert.match(r.body.private_ip, /^\d+\.\d+\.\d+\.\d+$/);
    return { id: r.body.id as string, ip: r.body.private_ip as string };
  }

  /** Serve `hello-<id>` on port 8080 inside the machine (busybox httpd, daemonised under init). */
  async function serve(id: string): Promise<void> {
    const r = await execIn(t.server, id, ['sh', '-c', 'mkdir -p /srv && echo "hello-$(hostname)" > /srv/index.html && httpd -p 8080 -h /srv']);
    assert.equal(r.code, 0, r.out);
  }

  /**
   * An HTTP GET from inside a machine with `nc` (this busybox's wget crashes): the body,
   * or null when it could not connect or got no answer within 2 s.
   */
  async function machineGet(id: string, url: string): Promise<string | null> {
    const u = new URL(url);
    const r = await execIn(t.server, id, ['sh', '-c', `printf 'GET ${u.pathname} HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${u.hostname} ${u.port || '80'}`]);
    const split = r.out.indexOf('\r\n\r\n');
    if (r.code !== 0 || !r.out.startsWith('HTTP/') || split < 0) return null;
    return r.out.slice(split + 4);
  }

  it('gives each machine an address of the subnet, shown by the API and on eth0, with a default route via the host', async () => {
    const a = await create();
    const b = await create();
    assert.notEqual(a.ip, b.ip);
    const got = await t.request('GET', `/v1/machines/${a.id}`);
    assert.equal(got.body.private_ip, a.ip);
    assert.deepEqual(got.body.network, { outbound: 'allow' });
    const addr = (await execIn(t.server, a.id, ['ip', '-o', '-4', 'addr', 'show', 'eth0'])).out;
    assert.match(addr, new RegExp(`inet ${a.ip.replace(/\./g, '\\.')}/${t.server.settings.subnet.prefix}`));
    const route = (await execIn(t.server, a.id, ['ip', 'route'])).out;
    assert.match(route, new RegExp(`default via ${gateway.replace(/\./g, '\\.')} dev eth0`));
    // The sandbox view keeps the seed's field set.
    const sandbox = await t.request('GET', `/v1/sandboxes/${a.id}`);
    assert.equal(sandbox.body.private_ip, undefined);
  });

  it('the server reaches a machine\'s port; another machine cannot', async () => {
    const a = await create();
    const b = await create();
    await serve(a.id);
    assert.equal((await waitFor(() => hostGet(`http://${a.ip}:8080/`)))?.trim(), `hello-${a.id}`);
    assert.equal(await machineGet(b.id, `http://${a.ip}:8080/`), null, 'machine B reached machine A');
    assert.equal(await machineGet(a.id, `http://${a.ip}:8080/`), `hello-${a.id}\n`, 'a machine reaches itself');
  });

  it('a machine cannot reach the host: not the API, not a listener on the bridge address, not ping', async () => {
    const a = await create();
    const apiPort = new URL(t.url).port;
    // 127.0.0.1 inside is the machine's own loopback; the API is not there.
    assert.equal(await machineGet(a.id, `http://127.0.0.1:${apiPort}/healthz`), null);
    assert.equal(await machineGet(a.id, `http://${gateway}:${apiPort}/healthz`), null);
    hostListener = createServer((_req, res) => res.end('host\n'));
    await new Promise<void>((resolve) => hostListener.listen(0, '0.0.0.0', resolve));
    hostListenerPort = (hostListener.address() as { port: number }).port;
    assert.equal(await hostGet(`http://${gateway}:${hostListenerPort}/`), 'host\n', 'the listener answers the host itself');
    assert.equal(await machineGet(a.id, `http://${gateway}:${hostListenerPort}/`), null, 'a machine reached a host listener on the bridge address');
    assert.equal(await machineGet(a.id, `http://${outside.near.replace(/\.2$/, '.1')}:${hostListenerPort}/`), null, 'a machine reached the host by another of its addresses');
    const ping = await execIn(t.server, a.id, ['ping', '-c', '1', '-W', '1', gateway]);
    assert.notEqual(ping.code, 0, 'the host answered a ping');
  });

  it('outbound "allow" (the default) reaches the outside; "deny" does not', async () => {
    const open = await create();
    const closed = await create({ network: { outbound: 'deny' } });
    assert.equal(await machineGet(open.id, `http://${outside.near}/`), 'outside\n');
    assert.equal(await machineGet(open.id, `http://${outside.far}/`), 'outside\n');
    assert.equal(await machineGet(closed.id, `http://${outside.near}/`), null);
    assert.equal(await machineGet(closed.id, `http://${outside.far}/`), null);
    assert.deepEqual((await t.request('GET', `/v1/machines/${closed.id}`)).body.network, { outbound: 'deny' });
  });

  it('an allow-list reaches only the listed networks; a deny-list all but those', async () => {
    const listed = await create({ network: { outbound: 'deny', allow: [`${outside.far}/32`] } });
    assert.equal(await machineGet(listed.id, `http://${outside.far}/`), 'outside\n');
    assert.equal(await machineGet(listed.id, `http://${outside.near}/`), null);
    const except = await create({ network: { outbound: 'allow', deny: [`${outside.far}/32`] } });
    assert.equal(await machineGet(except.id, `http://${outside.near}/`), 'outside\n');
    assert.equal(await machineGet(except.id, `http://${outside.far}/`), null);
    // Destroy removes the machine's own chain and nothing else.
    const hex = t.server.settings.instancePrefix.replace(/^hangar-/, '');
    const chain = `HANGAR-${hex}-${listed.id.slice(-10)}`;
    assert.match(await run('iptables-save', ['-t', 'filter']), new RegExp(chain));
    assert.equal((await t.request('DELETE', `/v1/machines/${listed.id}`)).status, 200);
    assert.doesNotMatch(await run('iptables-save', ['-t', 'filter']), new RegExp(chain));
    assert.equal(await machineGet(except.id, `http://${outside.near}/`), 'outside\n');
  });

  it('refuses a bad network body naming the field and the value', async () => {
    const bad = await t.request('POST', '/v1/machines', { body: { network: { outbound: 'deny', allow: ['10.0.0.1/8'] } } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.code, 'VALIDATION_FAILED');
    assert.equal(bad.body.details.fields[0].field, 'network.allow.0');
    assert.match(bad.body.details.fields[0].message, /"10\.0\.0\.1\/8" has host bits set/);
    const junk = await t.request('POST', '/v1/machines', { body: { network: { outbound: 'deny', allow: ['example.com'] } } });
    assert.equal(junk.status, 400);
    assert.match(junk.text, /example\.com/);
    const mixed = await t.request('POST', '/v1/machines', { body: { network: { allow: ['10.0.0.0/8'] } } });
    assert.equal(mixed.status, 400);
    assert.equal(mixed.body.details.fields[0].field, 'network.allow');
    const mode = await t.request('POST', '/v1/machines', { body: { network: { outbound: 'sometimes' } } });
    assert.equal(mode.status, 400);
  });

  it('pause and resume keep the address and the listening server; a fork gets its own', async () => {
    const a = await create({ network: { outbound: 'deny', allow: [`${outside.near}/32`] } });
    await serve(a.id);
    await waitFor(() => hostGet(`http://${a.ip}:8080/`));
    assert.equal((await t.request('POST', `/v1/machines/${a.id}/pause`)).status, 200);
    assert.equal(await hostGet(`http://${a.ip}:8080/`), null, 'a paused machine answered');
    const resumed = await t.request('POST', `/v1/machines/${a.id}/resume`);
    assert.equal(resumed.status, 200, resumed.text);
    assert.equal(resumed.body.private_ip, a.ip);
    assert.equal((await hostGet(`http://${a.ip}:8080/`))?.trim(), `hello-${a.id}`, 'the restored httpd answers at the same address');
    assert.equal(await machineGet(a.id, `http://${outside.near}/`), 'outside\n', 'the policy survives a pause');
    assert.equal(await machineGet(a.id, `http://${outside.far}/`), null);

    const snap = await t.request('POST', `/v1/machines/${a.id}/snapshots`);
    assert.equal(snap.status, 201, snap.text);
    assert.equal((await hostGet(`http://${a.ip}:8080/`))?.trim(), `hello-${a.id}`, 'the source still answers after a live snapshot');
    const fork = await t.request('POST', '/v1/machines', { body: { snapshot_id: snap.body.id } });
    assert.equal(fork.status, 201, fork.text);
    assert.notEqual(fork.body.private_ip, a.ip);
    // The fork's httpd is the source's process, restored: it still serves the source's page.
    assert.equal((await hostGet(`http://${fork.body.private_ip}:8080/`))?.trim(), `hello-${a.id}`);
    assert.equal(await machineGet(fork.body.id, `http://${outside.near}/`), 'outside\n', 'a fork has the default policy');
  });

  it('a running machine keeps its network over a server restart; a removed host link comes back', async () => {
    const a = await create();
    await serve(a.id);
    await waitFor(() => hostGet(`http://${a.ip}:8080/`));
    const veth = (await readdir('/sys/class/net')).find((l) => l.endsWith(a.id.slice(-6)) && l.startsWith('h'));
    assert.ok(veth, 'host end of the veth pair');
    await t.server.close();
    await run('ip', ['link', 'del', veth]);
    await t.restart();
    assert.equal((await hostGet(`http://${a.ip}:8080/`))?.trim(), `hello-${a.id}`);
    assert.equal(await machineGet(a.id, `http://${outside.near}/`), 'outside\n');
    const b = await create();
    assert.notEqual(b.ip, a.ip, 'a restarted server does not hand out a live address again');
  });

  it('destroy removes the machine\'s namespace and link', async () => {
    const a = await create();
    const prefix = t.server.settings.instancePrefix;
    assert.ok((await readdir('/run/netns')).includes(`${prefix}-${a.id}`));
    assert.equal((await t.request('DELETE', `/v1/machines/${a.id}`)).status, 200);
    assert.ok(!(await readdir('/run/netns')).includes(`${prefix}-${a.id}`));
    assert.ok(!(await readdir('/sys/class/net')).some((l) => l.startsWith('h') && l.endsWith(a.id.slice(-6))));
  });

  it('leaves no bridge, link, namespace or chain after the last machine and the server are gone', async () => {
    const other = await TestServer.start();
    const prefix = other.server.settings.instancePrefix;
    await other.request('POST', '/v1/machines', { body: { network: { outbound: 'deny' } } });
    assert.ok((await networkLeftovers(prefix)).length > 0, 'a running machine has network pieces');
    await other.dispose();
    assert.deepEqual(await networkLeftovers(prefix), []);
  });
});
