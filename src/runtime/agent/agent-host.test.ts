/**
 * The server's side of the agent against clients that are not a well-behaved agent, on
 * a real unix socket: what a hostile process inside a machine can do with the socket it
 * sees (connect, stay silent, send garbage, pretend to be the agent) stays bounded.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AgentHost } from './agent-host.js';
import { encodeFrame, FRAME, FrameDecoder, strings } from './protocol.js';

const ID = 'mch_agenthosttest0001';

describe('AgentHost', () => {
  let dir: string;
  let host: AgentHost;
  const lost: string[] = [];
  const socketPath = (): string => join(host.runDir(ID), 'agent.sock');

  const dial = (): Promise<Socket> =>
    new Promise((resolve, reject) => {
      const s = connect(socketPath(), () => resolve(s));
      s.once('error', reject);
    });
  const closed = (s: Socket): Promise<void> => new Promise((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));
  const hello = async (): Promise<Socket> => {
    const s = await dial();
    s.on('error', () => undefined);
    s.write(encodeFrame(FRAME.hello, strings('1')));
    return s;
  };
  const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 50));

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hangar-agent-host-'));
    host = new AgentHost(dir, { warn: () => undefined }, async () => [], (id) => lost.push(id));
    await host.open(ID);
  });

  after(async () => {
    await host.closeAll();
    await rm(dir, { recursive: true, force: true });
  });

  it('holds at most 8 connections that never say hello', async () => {
    const silent = await Promise.all(Array.from({ length: 20 }, () => dial().catch(() => null)));
    const open = silent.filter((s): s is Socket => s !== null);
    for (const s of open) s.on('error', () => undefined);
    await settle();
    const alive = open.filter((s) => !s.destroyed && s.readyState === 'open');
    let stillOpen = 0;
    await Promise.all(
      alive.map(
        (s) =>
          new Promise<void>((resolve) => {
            // A closed one reads end-of-file at once; an open one stays quiet.
            const t = setTimeout(() => {
              stillOpen++;
              resolve();
            }, 100);
            s.once('end', () => {
              clearTimeout(t);
              resolve();
            });
            s.once('close', () => {
              clearTimeout(t);
              resolve();
            });
          }),
      ),
    );
    assert.ok(stillOpen <= 8, `${stillOpen} silent connections held`);
    for (const s of open) s.destroy();
    await settle();
  });

  it('closes a connection that sends garbage or an oversized frame', async () => {
    const garbage = await dial();
    garbage.on('error', () => undefined);
    garbage.write(encodeFrame(FRAME.stdout, 'not a hello'));
    await closed(garbage);
    const huge = await dial();
    huge.on('error', () => undefined);
    const head = Buffer.alloc(5);
    head.writeUInt32LE(64 * 1024 * 1024, 0);
    head.write('H', 4);
    huge.write(head);
    await closed(huge);
  });

  it('hands a greeted connection to a request, keeps at most 4 idle, and reports a lost agent', async () => {
    const agents = await Promise.all(Array.from({ length: 6 }, () => hello()));
    await settle();
    const kept = agents.filter((s) => !s.destroyed);
    const taken = await host.connect(ID, 1_000);
    assert.ok(taken, 'no connection handed out');
    // The request reaches whoever said hello: inside a machine, that machine's own business.
    const got = new Promise<string>((resolve) => {
      for (const a of agents) {
        const d = new FrameDecoder(
          (f) => resolve(f.type),
          () => undefined,
        );
        a.on('data', (c: Buffer) => d.push(c));
      }
    });
    taken.socket.write(encodeFrame(FRAME.exec, strings('p', '/', 24, 80, 1, 'true', 0)));
    assert.equal(await got, FRAME.exec);
    taken.socket.destroy();
    let open = 0;
    for (const a of kept) if (!a.destroyed) open++;
    assert.ok(open <= 5, `${open} greeted connections kept`);
    for (const a of agents) a.destroy();
    await settle();
    assert.deepEqual(lost, [ID]);
  });

  it('a connection given back serves the next request before the older idle one', async () => {
    const older = await hello();
    await settle();
    const first = await host.connect(ID, 1_000);
    assert.ok(first);
    const newer = await hello();
    await settle();
    // The agent's side of whichever connection `first` is: frames it receives.
    const frames = (s: Socket): string[] => {
      const seen: string[] = [];
      const d = new FrameDecoder(
        (f) => seen.push(f.type),
        () => undefined,
      );
      s.on('data', (c: Buffer) => d.push(c));
      return seen;
    };
    const seenOlder = frames(older);
    const seenNewer = frames(newer);
    first.socket.write(encodeFrame(FRAME.exec, strings('p', '/', 24, 80, 1, 'true', 0)));
    first.giveBack();
    const second = await host.connect(ID, 1_000);
    assert.ok(second);
    second.socket.write(encodeFrame(FRAME.exec, strings('p', '/', 24, 80, 1, 'true', 0)));
    await settle();
    // `older` was taken first; given back, it is the one taken again (the newer idle one waits).
    assert.deepEqual(seenOlder, [FRAME.exec, FRAME.exec]);
    assert.deepEqual(seenNewer, []);
    second.socket.destroy();
    // After a quiesce a connection given back is closed, not kept.
    const third = await host.connect(ID, 1_000);
    assert.ok(third);
    await host.quiesce(ID);
    third.giveBack();
    assert.ok(third.socket.destroyed);
    for (const s of [older, newer]) s.destroy();
    await host.reopen(ID);
  });

  it('quiesce closes the socket and every connection; reopen listens again', async () => {
    const a = await hello();
    await settle();
    await host.quiesce(ID);
    await closed(a);
    await assert.rejects(stat(socketPath()));
    await assert.rejects(dial());
    await host.reopen(ID);
    const b = await hello();
    await settle();
    assert.ok(await host.connect(ID, 1_000));
    b.destroy();
  });

  it('a machine without an agent directory has none: connect answers null at once', async () => {
    assert.equal(await host.has('mch_noagenthere000001'), false);
    assert.equal(await host.connect('mch_noagenthere000001', 1_000), null);
  });

  it('opens one socket for concurrent first uses, and none for a machine being stopped or destroyed', async () => {
    // A fresh host, as after a server restart: the socket is opened at first use, by every request at once.
    const other = 'mch_agenthosttest0002';
    const restarted = new AgentHost(dir, { warn: () => undefined }, async () => [], () => undefined);
    await restarted.open(other);
    await restarted.closeAll();
    const again = new AgentHost(dir, { warn: () => undefined }, async () => [], () => undefined);
    try {
      // Twelve requests find no endpoint at once: they share one listen (before: EADDRINUSE).
      const got = await Promise.all(Array.from({ length: 12 }, () => again.connect(other, 100)));
      assert.deepEqual(got, Array.from({ length: 12 }, () => null), 'no agent answers in this test');
      // The machine is stopped or destroyed: a request racing it must not listen again.
      await again.close(other);
      assert.equal(await again.connect(other, 100), null);
      await assert.rejects(stat(join(again.runDir(other), 'agent.sock')), { code: 'ENOENT' }, 'nothing listens for a closed machine');
      // Started again, it listens again.
      await again.open(other);
      await stat(join(again.runDir(other), 'agent.sock'));
    } finally {
      await again.closeAll();
    }
  });
});
