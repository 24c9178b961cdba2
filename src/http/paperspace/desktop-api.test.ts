/**
 * Desktop machines through the Paperspace-style API, for real: a machine from the shared
 * `desktop` template (Xvfb, twm, x11vnc; built by scripts/setup.sh), its VNC settings,
 * and a real RFB handshake from the host with VNC Authentication, across stop/start,
 * restart and a server restart. A headless machine's /desktop is a 422.
 */
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestServer, waitFor, type TestResponse } from '../../testing/harness.js';
import { rfbHandshake, type RfbHandshakeResult } from '../../testing/rfb-client.js';
import { DesktopSettingsSchema, PaperspaceErrorSchema, PaperspaceMachineSchema } from './schemas.js';

type Json = Record<string, any>;
const BASE = '/paperspace/v1';
const LONG = 120_000;
/** The screen size in the desktop template's manifest. */
const SCREEN = { width: 1280, height: 800 };

function assertError(r: TestResponse, status: number, code: string, mentions?: string): void {
  assert.equal(r.status, status, r.text);
  PaperspaceErrorSchema.strict().parse(r.body);
  assert.equal(r.body.code, code, r.text);
  if (mentions) assert.ok(r.text.includes(mentions), `error mentions ${mentions}: ${r.text}`);
}

describe('Paperspace-style desktop (VNC)', () => {
  let t: TestServer;
  let key: string;
  let desktop: Json;
  let headless: Json;
  let settings: { vnc: { hostname: string; port: number; password: string } };

  const ps = (method: string, path: string, body?: unknown) => t.request(method, `${BASE}${path}`, { body, key });
  const finished = (eventId: string): Promise<Json> => t.finishedEvent(eventId, key, LONG);
  const createDone = async (body: Json): Promise<Json> => {
    const r = await ps('POST', '/machines', body);
    assert.equal(r.status, 200, r.text);
    const done = await finished(r.body.event.id);
    assert.equal(done.state, 'done', JSON.stringify(done));
    return (await ps('GET', `/machines/${r.body.data.id}`)).body;
  };
  const exec = async (id: string, cmd: string): Promise<string> => {
    const r = await t.request('POST', `/v1/machines/${id}/exec`, { body: { cmd }, key });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.exit_code, 0, r.text);
    return r.body.stdout as string;
  };
  /** Pid (inside the machine), name and state of every process of the desktop machine. */
  const processes = async (): Promise<{ pid: number; comm: string; state: string; ppid: number }[]> => {
    const out = await exec(desktop.id, 'for s in /proc/[0-9]*/stat; do cat "$s" 2>/dev/null; echo; done');
    return out
      .split('\n')
      .map((line) => /^(\d+) \((.*)\) (\S) (\d+)/.exec(line))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ pid: Number(m[1]), comm: m[2]!, state: m[3]!, ppid: Number(m[4]) }));
  };
  const desktopPids = async (): Promise<Record<string, number>> => {
    const ps = await processes();
    const pids: Record<string, number> = {};
    for (const name of ['tini', 'hangar-desktop', 'Xvfb', 'twm', 'x11vnc']) {
      const p = ps.find((x) => x.comm === name);
      assert.ok(p, `${name} runs: ${JSON.stringify(ps)}`);
      pids[name] = p.pid;
    }
    return pids;
  };
  const lifecycle = async (id: string, verb: 'stop' | 'start' | 'restart'): Promise<void> => {
    const r = await ps('PATCH', `/machines/${id}/${verb}`);
    assert.equal(r.status, 200, r.text);
    assert.equal((await finished(r.body.event.id)).state, 'done', verb);
  };
  /**
   * Handshake once the VNC server listens: x11vnc starts a moment after the machine's
   * init, so a refused connection is retried; any other outcome is returned.
   */
  const handshake = (password: string, host = settings.vnc.hostname): Promise<RfbHandshakeResult> =>
    waitFor<RfbHandshakeResult | null>(async () => {
      try {
        return await rfbHandshake({ host, port: settings.vnc.port, password });
      } catch (err) {
        if (/ECONNREFUSED|closed the connection|ECONNRESET/.test(String(err))) return null;
        throw err;
      }
    }, 30_000) as Promise<RfbHandshakeResult>;
  const assertDesktopUp = async (): Promise<void> => {
    const r = await handshake(settings.vnc.password);
    assert.match(r.serverVersion, /^RFB 003\.00[378]$/);
    assert.ok(r.securityTypes.includes(2), `VNC Authentication offered: ${r.securityTypes.join(',')}`);
    assert.equal(r.securityResult, 0, `authenticated: ${r.failureReason}`);
    assert.ok(r.serverInit);
    assert.equal(r.serverInit.width, SCREEN.width);
    assert.equal(r.serverInit.height, SCREEN.height);
    assert.equal(r.serverInit.name, desktop.id, 'the desktop is named after the machine');
  };

  before(async () => {
    t = await TestServer.start();
    ({ key } = await t.newTeamKey('desktop'));
    const templates = (await t.request('GET', '/v1/info')).body?.templates?.map((x: Json) => x.name) ?? [];
    assert.ok(templates.includes('desktop'), `the desktop template is installed (run scripts/setup.sh); templates: ${JSON.stringify(templates)}`);
  });
  after(async () => {
    await t.dispose();
  });

  it('a machine from the desktop template is a LinuxDesktop; a base one stays LinuxHeadless', async () => {
    desktop = await createDone({ name: 'desk', machineType: 'C2', templateId: 'desktop', region: 'local', diskSize: 1 });
    headless = await createDone({ name: 'plain', machineType: 'C1', templateId: 'base', region: 'local', diskSize: 1 });
    PaperspaceMachineSchema.parse(desktop);
    assert.equal(desktop.agentType, 'LinuxDesktop');
    assert.equal(desktop.os, 'desktop');
    assert.equal(desktop.state, 'ready');
    assert.equal(headless.agentType, 'LinuxHeadless');
  });

  it('the list filter by agentType follows the template', async () => {
    const ids = async (agentType: string): Promise<string[]> => {
      const r = await ps('GET', `/machines?agentType=${agentType}`);
      assert.equal(r.status, 200, r.text);
      return r.body.items.map((m: Json) => m.id);
    };
    assert.deepEqual(await ids('LinuxDesktop'), [desktop.id]);
    assert.deepEqual(await ids('LinuxHeadless'), [headless.id]);
    assert.deepEqual(await ids('WindowsDesktop'), []);
  });

  it('GET /desktop: the private address, port 5900 and an 8-character password, the same each time', async () => {
    const r = await ps('GET', `/machines/${desktop.id}/desktop`);
    assert.equal(r.status, 200, r.text);
    settings = DesktopSettingsSchema.parse(r.body);
    assert.deepEqual(Object.keys(r.body), ['vnc']);
    assert.equal(settings.vnc.hostname, desktop.privateIp);
    assert.equal(settings.vnc.port, 5900);
    assert.match(settings.vnc.password, /^[A-Za-z0-9_-]{8}$/);
    assert.deepEqual((await ps('GET', `/machines/${desktop.id}/desktop`)).body, r.body);
  });

  it('an RFB client on the host authenticates and gets the Xvfb screen', async () => {
    await assertDesktopUp();
  });

  it('init is tini (pid 1) running the supervisor, Xvfb, twm and x11vnc; orphans are reaped', async () => {
    const pids = await desktopPids();
    assert.equal(pids.tini, 1);
    // An orphan: its parent exits at once (and the exec with it), so pid 1 adopts it and must reap it.
    await exec(desktop.id, '(sleep 2 </dev/null >/dev/null 2>&1 &) ; true');
    const orphan = (await processes()).find((p) => p.comm === 'sleep');
    assert.equal(orphan?.ppid, 1, 'the orphan is adopted by pid 1');
    await waitFor(async () => !(await processes()).some((p) => p.pid === orphan.pid), 5000);
    assert.deepEqual((await processes()).filter((p) => p.state === 'Z'), [], 'no zombie is left');
  });

  it('the supervisor starts again a desktop process that dies', async () => {
    const before = await desktopPids();
    await exec(desktop.id, `kill ${before.x11vnc}`);
    await waitFor(async () => (await processes()).some((x) => x.comm === 'x11vnc' && x.pid !== before.x11vnc), 10_000);
    await assertDesktopUp();
  });

  it('a wrong password is refused by the VNC server', async () => {
    const wrong = settings.vnc.password.split('').reverse().join('') === settings.vnc.password ? 'x'.repeat(8) : settings.vnc.password.split('').reverse().join('');
    const r = await handshake(wrong);
    assert.notEqual(r.securityResult, 0);
    assert.equal(r.serverInit, null);
  });

  it('the password is not stored: neither the database nor its WAL holds it', async () => {
    for (const f of (await readdir(t.dataDir)).filter((n) => n.startsWith('hangar.db'))) {
      const bytes = await readFile(join(t.dataDir, f));
      assert.equal(bytes.includes(settings.vnc.password), false, `${f} holds the VNC password`);
    }
  });

  it('the native view of the machine does not show the password either', async () => {
    const r = await t.request('GET', `/v1/machines/${desktop.id}`, { key });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text.includes(settings.vnc.password), false);
  });

  it("a machine's own env cannot replace its VNC password", async () => {
    const m = await t.request('POST', '/v1/machines', { body: { template: 'desktop', env: { HANGAR_VNC_PASSWORD: 'chosen00' } }, key });
    assert.equal(m.status, 201, m.text);
    const d = await ps('GET', `/machines/${m.body.id}/desktop`);
    assert.equal(d.status, 200, d.text);
    assert.notEqual(d.body.vnc.password, 'chosen00');
    assert.equal((await handshake(d.body.vnc.password, d.body.vnc.hostname)).securityResult, 0);
    assert.notEqual((await handshake('chosen00', d.body.vnc.hostname)).securityResult, 0);
    assert.ok((await t.request('DELETE', `/v1/machines/${m.body.id}`, { key })).status < 300);
  });

  it('a headless machine has no desktop: 422 NO_DESKTOP; an unknown one is a 404', async () => {
    assertError(await ps('GET', `/machines/${headless.id}/desktop`), 422, 'NO_DESKTOP', 'which has no desktop');
    assertError(await ps('GET', '/machines/mch_doesnotexist000000/desktop'), 404, 'NOT_FOUND');
  });

  it('stopped: 409 saying to start it; after start the same password still opens the desktop', async () => {
    const memory = (await t.request('GET', '/v1/info')).body.snapshots.memory === true;
    const before = await desktopPids();
    await lifecycle(desktop.id, 'stop');
    assertError(await ps('GET', `/machines/${desktop.id}/desktop`), 409, 'STATE_CONFLICT', `/machines/${desktop.id}/start`);
    await lifecycle(desktop.id, 'start');
    const r = await ps('GET', `/machines/${desktop.id}/desktop`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, settings);
    await assertDesktopUp();
    // With memory snapshots (CRIU) the very same processes continue.
    if (memory) assert.deepEqual(await desktopPids(), before);
  });

  it('restart starts the desktop again from init, with the same password', async () => {
    await lifecycle(desktop.id, 'restart');
    await assertDesktopUp();
  });

  it('a fork (native snapshot_id) gets its own password; its source keeps its own', async () => {
    const snap = await t.request('POST', `/v1/machines/${desktop.id}/snapshots`, { key });
    assert.equal(snap.status, 201, snap.text);
    const fork = await t.request('POST', '/v1/machines', { body: { snapshot_id: snap.body.id }, key });
    assert.equal(fork.status, 201, fork.text);
    const r = await ps('GET', `/machines/${fork.body.id}/desktop`);
    assert.equal(r.status, 200, r.text);
    const forkVnc = DesktopSettingsSchema.parse(r.body).vnc;
    assert.equal(forkVnc.hostname, fork.body.private_ip);
    assert.notEqual(forkVnc.password, settings.vnc.password);
    const ok = await handshake(forkVnc.password, forkVnc.hostname);
    assert.equal(ok.securityResult, 0, `the fork's password opens the fork: ${ok.failureReason}`);
    assert.deepEqual([ok.serverInit?.width, ok.serverInit?.height], [SCREEN.width, SCREEN.height]);
    assert.notEqual((await handshake(settings.vnc.password, forkVnc.hostname)).securityResult, 0, "the source's password does not open the fork");
    await assertDesktopUp();
    assert.equal((await t.request('DELETE', `/v1/machines/${fork.body.id}`, { key })).status < 300, true);
  });

  it('after a server restart the machine keeps its desktop and password', async () => {
    await t.restart();
    const r = await ps('GET', `/machines/${desktop.id}/desktop`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, settings);
    await assertDesktopUp();
  });
});
