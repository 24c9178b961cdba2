/**
 * Private networks on real runc with real traffic: machines on one network reach each
 * other (TCP, UDP and ICMP, both ways); machines on another network or on none stay isolated;
 * the host stays out of reach and the outbound policy still applies (against an "outside"
 * host in a namespace of this test); membership survives pause/resume and a server
 * restart; destroy and teardown leave no rule behind.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { formatIpv4, gatewayOf } from '../../domain/network.js';
import { execIn, TestServer, waitFor } from '../../testing/harness.js';
import { hostGet, makeOutside, type Outside } from '../../testing/outside-host.js';
import { run } from './command.js';

describe('private networks: real traffic between machines', () => {
  let t: TestServer;
  let outside: Outside;
  let gateway: string;
  let hex: string;

  before(async () => {
    t = await TestServer.start();
    gateway = formatIpv4(gatewayOf(t.server.settings.subnet));
    hex = t.server.settings.instancePrefix.replace(/^hangar-/, '');
    outside = await makeOutside();
  });
  after(async () => {
    await outside?.close();
    await t?.dispose();
  });

  async function network(name: string): Promise<string> {
    const r = await t.request('POST', '/v1/networks', { body: { name } });
    assert.equal(r.status, 201, r.text);
    return r.body.id as string;
  }

  async function create(body: Record<string, unknown> = {}): Promise<{ id: string; ip: string }> {
    const r = await t.request('POST', '/v1/machines', { body: { timeout_ms: 600_000, ...body } });
    assert.equal(r.status, 201, r.text);
    return { id: r.body.id as string, ip: r.body.private_ip as string };
  }

  /** Serve `hello-<id>` on port 8080 inside the machine (busybox httpd, daemonised under init). */
  async function serve(id: string): Promise<void> {
    const r = await execIn(t.server, id, ['sh', '-c', 'mkdir -p /srv && echo "hello-$(hostname)" > /srv/index.html && httpd -p 8080 -h /srv']);
    assert.equal(r.code, 0, r.out);
  }

  /** An HTTP GET from inside a machine with busybox `nc`: the body, or null when nothing answered within 2 s. */
  async function machineGet(id: string, host: string, port = 8080): Promise<string | null> {
    const r = await execIn(t.server, id, ['sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${host} ${port}`]);
    const split = r.out.indexOf('\r\n\r\n');
    if (r.code !== 0 || !r.out.startsWith('HTTP/') || split < 0) return null;
    return r.out.slice(split + 4).trim();
  }

  /**
   * True when one ping from the machine's network namespace to `ip` is answered within 1 s.
   * Sent by the host's busybox inside that namespace: machines lack CAP_NET_RAW, so their own ping cannot run.
   */
  async function pings(id: string, ip: string): Promise<boolean> {
    const ns = `${t.server.settings.instancePrefix}-${id}`;
    return run('ip', ['netns', 'exec', ns, 'busybox', 'ping', '-c', '1', '-W', '1', ip]).then(
      () => true,
      () => false,
    );
  }

  /**
   * True when a UDP datagram sent from one machine's network namespace arrives at `ip` in the
   * other's within 2 s. Node runs on both ends inside the namespaces (busybox's nc has no UDP).
   */
  async function udpReaches(fromId: string, toId: string, ip: string): Promise<boolean> {
    const ns = (id: string): string => `${t.server.settings.instancePrefix}-${id}`;
    const receiver = spawn('ip', ['netns', 'exec', ns(toId), process.execPath, '-e',
      "const s=require('dgram').createSocket('udp4');s.on('message',(m)=>{console.log('got '+m);process.exit(0)});" +
        "s.bind(9999,()=>console.log('ready'));setTimeout(()=>process.exit(3),2000)"]);
    let out = '';
    receiver.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => receiver.on('exit', resolve));
    await waitFor(async () => out.includes('ready'), 5_000, 20);
    await run('ip', ['netns', 'exec', ns(fromId), process.execPath, '-e',
      `const s=require('dgram').createSocket('udp4');s.send('hello-udp',9999,'${ip}',()=>s.close())`]);
    return (await exited) === 0 && out.includes('got hello-udp');
  }

  /** Every filter rule and chain line of this instance that mentions `needle`. */
  async function rulesMentioning(needle: string): Promise<string[]> {
    const all = `${await run('iptables-save', ['-t', 'filter'])}\n${await run('iptables-save', ['-t', 'nat'])}`;
    return all.split('\n').filter((l) => l.includes(needle));
  }

  it('machines on one network reach each other (TCP, UDP, ICMP, both ways); other networks, no network and the host stay out', async () => {
    const netA = await network('alpha');
    const netB = await network('beta');
    const a1 = await create({ network_id: netA });
    const a2 = await create({ network_id: netA });
    const b1 = await create({ network_id: netB });
    const none = await create();
    for (const m of [a1, a2, b1, none]) await serve(m.id);

    // Same network: both ways, TCP and ICMP.
    assert.equal(await waitFor(() => machineGet(a1.id, a2.ip), 5_000), `hello-${a2.id}`, 'a1 → a2 over TCP');
    assert.equal(await machineGet(a2.id, a1.ip), `hello-${a1.id}`, 'a2 → a1 over TCP');
    assert.ok(await pings(a1.id, a2.ip), 'a1 pings a2');
    assert.ok(await pings(a2.id, a1.ip), 'a2 pings a1');
    assert.ok(await udpReaches(a1.id, a2.id, a2.ip), 'a1 → a2 over UDP');
    assert.ok(await udpReaches(a2.id, a1.id, a1.ip), 'a2 → a1 over UDP');

    // The host routed that traffic back out of the bridge, so the kernel tried to send ICMP redirects: none got out.
    const outChain = await run('iptables', ['-w', '-L', `HANGAR-${hex}-OUT`, '-v', '-x', '-n']);
    const dropped = outChain.split('\n').find((l) => /\bDROP\b/.test(l) && /icmptype 5|redirect/i.test(l));
    assert.ok(dropped, outChain);
    assert.ok(Number(dropped.trim().split(/\s+/)[0]) > 0, `no redirect was kept in: ${outChain}`);

    // Another network, or none: neither way.
    for (const [from, to, what] of [
      [b1, a1, 'beta → alpha'],
      [a1, b1, 'alpha → beta'],
      [none, a1, 'no network → alpha'],
      [a1, none, 'alpha → no network'],
      [none, b1, 'no network → beta'],
    ] as const) {
      assert.equal(await machineGet(from.id, to.ip), null, `${what} over TCP`);
      assert.equal(await pings(from.id, to.ip), false, `${what} over ICMP`);
    }
    assert.equal(await udpReaches(b1.id, a1.id, a1.ip), false, 'beta → alpha over UDP');
    assert.equal(await udpReaches(none.id, a2.id, a2.ip), false, 'no network → alpha over UDP');

    // The host is still out of reach from a network's machine, and the server still reaches every machine.
    assert.equal(await pings(a1.id, gateway), false, 'a machine on a network pinged the host');
    assert.equal(await machineGet(a1.id, gateway, Number(new URL(t.url).port)), null, 'a machine on a network reached the API on the bridge');
    for (const m of [a1, a2, b1, none]) assert.equal(await hostGet(`http://${m.ip}:8080/`), `hello-${m.id}\n`);

    // The rules name the network's chain and the members; nothing else of the network.
    const chain = `HANGAR-${hex}-N${netA.slice(-10)}`;
    assert.equal((await rulesMentioning(chain)).filter((l) => l.startsWith('-A ')).length, 4, 'two jumps and two accepts');

    // A destroyed member is out at once; the other keeps the network until it goes too.
    assert.equal((await t.request('DELETE', `/v1/machines/${a2.id}`)).status, 200);
    assert.deepEqual(await rulesMentioning(a2.id), [], 'rules of a destroyed member remain');
    assert.equal((await rulesMentioning(chain)).filter((l) => l.startsWith('-A ')).length, 2);
    assert.equal((await t.request('DELETE', `/v1/machines/${a1.id}`)).status, 200);
    assert.deepEqual(await rulesMentioning(chain), [], 'the chain of a network without members remains');
    assert.equal((await t.request('DELETE', `/v1/networks/${netA}`)).status, 204);
    for (const m of [b1, none]) assert.equal((await t.request('DELETE', `/v1/machines/${m.id}`)).status, 200);
    assert.deepEqual(await rulesMentioning(`-N${netB.slice(-10)}`), []);
  });

  it('the outbound policy still applies to a machine on a network; its peers stay reachable', async () => {
    const net = await network('policy');
    const closed = await create({ network_id: net, network: { outbound: 'deny' } });
    const open = await create({ network_id: net });
    await serve(closed.id);
    await serve(open.id);
    assert.equal(await machineGet(open.id, outside.near, 80), 'outside', 'a member with the default policy reaches the outside');
    assert.equal(await machineGet(closed.id, outside.near, 80), null, 'a member whose policy is deny reached the outside');
    assert.equal(await machineGet(closed.id, open.ip), `hello-${open.id}`, 'a member with deny reaches its peer');
    assert.equal(await machineGet(open.id, closed.ip), `hello-${closed.id}`);
    for (const m of [closed, open]) assert.equal((await t.request('DELETE', `/v1/machines/${m.id}`)).status, 200);
  });

  it('membership survives pause/resume and a server restart (re-applied at start-up), and goes with the server', async () => {
    const net = await network('durable');
    const a = await create({ network_id: net });
    const b = await create({ network_id: net });
    await serve(a.id);
    await serve(b.id);
    assert.equal(await waitFor(() => machineGet(a.id, b.ip), 5_000), `hello-${b.id}`);

    assert.equal((await t.request('POST', `/v1/machines/${b.id}/pause`)).status, 200);
    assert.equal(await machineGet(a.id, b.ip), null, 'a paused peer answered');
    const resumed = await t.request('POST', `/v1/machines/${b.id}/resume`);
    assert.equal(resumed.status, 200, resumed.text);
    assert.equal(await machineGet(a.id, b.ip), `hello-${b.id}`, 'the resumed peer is reachable at the same address');
    assert.equal(await machineGet(b.id, a.ip), `hello-${a.id}`);

    const chain = `HANGAR-${hex}-N${net.slice(-10)}`;
    const before = (await rulesMentioning(chain)).sort();
    await t.restart();
    assert.deepEqual((await rulesMentioning(chain)).sort(), before, 'the start-up reconciliation rebuilds the same rules');
    assert.equal(await machineGet(a.id, b.ip), `hello-${b.id}`, 'after a restart');
    assert.equal(await machineGet(b.id, a.ip), `hello-${a.id}`);
    const stranger = await create();
    assert.equal(await machineGet(stranger.id, a.ip), null, 'after a restart, a machine on no network stays out');

    // A fork joins the network its create names, not its source's: with it, it reaches b; without, not.
    const snap = await t.request('POST', `/v1/machines/${a.id}/snapshots`);
    assert.equal(snap.status, 201, snap.text);
    const joined = await create({ snapshot_id: snap.body.id, network_id: net });
    const alone = await create({ snapshot_id: snap.body.id });
    assert.equal(await machineGet(joined.id, b.ip), `hello-${b.id}`, 'a fork created on the network reaches its members');
    assert.equal(await machineGet(b.id, joined.ip), `hello-${a.id}`, 'and is reached by them (its httpd is the source\'s, restored)');
    assert.equal(await machineGet(alone.id, b.ip), null, 'a fork created on no network reached its source\'s network');

    // dispose() (in `after`) destroys everything and fails on any chain of the instance left; check the network's too.
    await t.server.machines.destroyAll();
    assert.deepEqual(await rulesMentioning(chain), []);
    assert.deepEqual(await rulesMentioning(a.id), []);
  });
});
