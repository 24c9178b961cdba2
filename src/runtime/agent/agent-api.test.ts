/**
 * The in-machine agent on real machines, through the HTTP API: commands go through it
 * (their parent is the agent inside the machine, where `runc exec`'s is outside, pid 0)
 * with the same isolation as `runc exec`; its socket cannot be touched from inside; it
 * survives pause/resume and forks; a killed agent is replaced while the machine answers
 * all along; and file watches report changes.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { AGENT_BINARY_IN_MACHINE } from './protocol.js';
import { ADMIN_KEY, execIn, TestServer, waitFor } from '../../testing/harness.js';

describe('in-machine agent', () => {
  let t: TestServer;
  let id: string;

  /** Run a command through the API (as root unless `user`); stdout, stderr and the exit code. */
  const exec = async (cmd: string | string[], machine = id, user?: string): Promise<{ code: number; out: string; err: string }> => {
    const r = await t.request('POST', `/v1/machines/${machine}/exec`, { body: { cmd, ...(user ? { user } : {}) } });
    assert.equal(r.status, 200, r.text);
    return { code: r.body.exit_code, out: r.body.stdout, err: r.body.stderr };
  };

  /** The parent pid, inside the machine, of a command run through the API. */
  const parentOf = async (machine = id, user?: string): Promise<number> => Number((await exec(['sh', '-c', 'echo $PPID'], machine, user)).out.trim());

  const agentPids = async (machine = id): Promise<number[]> => {
    const ps = await execIn(t.server, machine, ['ps', '-o', 'pid,args']);
    return ps.out
      .split('\n')
      .filter((l) => /\/\.hangar\/bin\/hangar-agent serve$/.test(l))
      .map((l) => Number(l.trim().split(/\s+/)[0]));
  };

  /** Host pids of the machine's agents (the processes in its pid namespace running the agent). */
  const agentHostPids = async (machine = id): Promise<number[]> => {
    const init = (await t.server.runtime.inspect(machine))!.pid;
    const ns = await readlink(`/proc/${init}/ns/pid`);
    const found: number[] = [];
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
      if (cmdline !== `${AGENT_BINARY_IN_MACHINE}\0serve\0`) continue;
      if ((await readlink(`/proc/${entry}/ns/pid`).catch(() => '')) === ns) found.push(Number(entry));
    }
    return found;
  };

  before(async () => {
    t = await TestServer.start();
    const r = await t.request('POST', '/v1/machines', { body: {} });
    assert.equal(r.status, 201, r.text);
    id = r.body.id;
  });

  after(async () => {
    await t?.dispose();
  });

  it('runs root commands through the agent, other users through runc exec', async () => {
    // Started by the agent's session process, inside the machine (runc exec serves until the agent has connected).
    await waitFor(async () => (await parentOf()) > 1, 10_000);
    // runc exec starts the process from outside the machine's pid namespace: its parent is 0.
    assert.equal(await parentOf(id, '0:1'), 0);
    assert.equal((await exec('exit 7')).code, 7);
  });

  it('gives agent commands the isolation of runc exec: capabilities, no_new_privs, seccomp, cgroup, namespaces', async () => {
    const probe = "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status; cat /proc/self/cgroup; for n in pid mnt net uts ipc; do readlink /proc/self/ns/$n; done";
    const viaAgent = await exec(probe);
    // gid 1 takes the runc exec path; everything printed is independent of the group.
    const viaRunc = await exec(probe, id, '0:1');
    assert.equal(viaAgent.code, 0, viaAgent.err);
    assert.equal(viaAgent.out, viaRunc.out);
    assert.match(viaAgent.out, /NoNewPrivs:\s+1/);
    assert.match(viaAgent.out, /Seccomp:\s+2/);
  });

  it('serves command after command on one connection, each starting as the first did', async () => {
    await waitFor(async () => (await parentOf()) > 1, 10_000);
    // One session process serves them all: the connection and its process are kept between commands.
    const parents = new Set<number>();
    for (let i = 0; i < 5; i++) parents.add(await parentOf());
    assert.equal(parents.size, 1, `commands were served by ${[...parents].join(', ')}`);
    // What one command was given (variables, directory) is not the next one's.
    const probe = 'echo "${HANGAR_REUSE_PROBE:-unset}:$(pwd)"';
    const ask = async (extra: object): Promise<string> => {
      const r = await t.request('POST', `/v1/machines/${id}/exec`, { body: { cmd: probe, ...extra } });
      assert.equal(r.status, 200, r.text);
      return r.body.stdout;
    };
    const before = await ask({});
    assert.equal(await ask({ env: { HANGAR_REUSE_PROBE: 'one' }, cwd: '/tmp' }), 'one:/tmp\n');
    assert.equal(await ask({}), before);
  });

  it('lets nothing meant for an ended command reach the next one on its connection', async () => {
    const rt = t.server.runtime;
    const base = { cwd: '/', env: {}, uid: 0, gid: 0 };
    const out: Buffer[] = [];
    const io = { stdout: (c: Buffer) => void out.push(c), stderr: () => undefined };
    // Stdin sent while a command ends is dropped with it: the next command (cat) reads none of it.
    const quick = await rt.startProcess(id, { ...base, argv: ['true'] }, { stdout: () => undefined, stderr: () => undefined });
    quick.write(Buffer.alloc(200_000, 0x61));
    await quick.exited;
    const cat = await rt.exec(id, { ...base, argv: ['cat'], timeoutMs: 10_000 }, io);
    assert.equal(cat.exitCode, 0);
    assert.equal(Buffer.concat(out).length, 0, 'the next command read stdin sent to the one before');
    // A late signal to an ended process does not reach the command now on its connection.
    const ended = await rt.startProcess(id, { ...base, argv: ['true'] }, { stdout: () => undefined, stderr: () => undefined });
    await ended.exited;
    const next = rt.exec(id, { ...base, argv: ['sh', '-c', 'sleep 0.5; echo survived'], timeoutMs: 10_000 }, io);
    await new Promise((r) => setTimeout(r, 150));
    ended.signal('TERM');
    ended.kill();
    const r = await next;
    assert.equal(r.exitCode, 0);
    assert.equal(Buffer.concat(out).toString(), 'survived\n');
  });

  it('keeps its socket out of reach: the run directory is read-only inside the machine', async () => {
    const r = await exec('rm -f /.hangar/run/agent.sock; echo x > /.hangar/run/other; ln -s /etc /.hangar/run/link; ls /.hangar/run');
    assert.match(r.err, /Read-only file system/);
    assert.equal(r.out.trim(), 'agent.sock');
    assert.equal((await exec('echo still')).out, 'still\n');
    const bin = await exec('echo x > /.hangar/bin/hangar-agent');
    assert.notEqual(bin.code, 0);
  });

  it('cannot be reached from another machine: each machine sees only its own run directory', async () => {
    const other = (await t.request('POST', '/v1/machines', { body: {} })).body.id as string;
    // The same path in the other machine is that machine's own socket, a different file.
    const inode = async (m: string): Promise<string> => (await exec('stat -c %i /.hangar/run/agent.sock', m)).out.trim();
    assert.notEqual(await inode(id), await inode(other));
    assert.equal((await exec(['ls', `/proc/1/root/../../${id}`], other)).code, 1);
    await t.request('DELETE', `/v1/machines/${other}`);
  });

  it('survives being killed: the machine answers meanwhile and a new agent takes over', async () => {
    const [first] = await agentPids();
    assert.ok(first, 'no agent process');
    assert.equal((await execIn(t.server, id, ['kill', '-9', String(first)])).code, 0);
    // Answered all along (by runc exec until the new agent connects).
    assert.equal((await exec('echo alive')).out, 'alive\n');
    await waitFor(async () => (await agentPids()).some((p) => p !== first), 15_000);
    await waitFor(async () => (await parentOf()) > 1, 15_000);
  });

  it('takes the runc exec path when the agent dies after the server took its connection', async () => {
    await waitFor(async () => (await parentOf()) > 1, 15_000);
    const host = await agentHostPids();
    assert.equal(host.length, 1, 'one agent, seen from the host');
    // Killed and sent a command in the same turn: the server has not yet seen the agent's
    // idle connection close, takes it, and finds it closed before the command started.
    process.kill(host[0]!, 'SIGKILL');
    const out: Buffer[] = [];
    const r = await t.server.runtime.exec(id, { argv: ['echo', 'answered'], cwd: '/', env: {}, uid: 0, gid: 0, timeoutMs: 10_000 }, { stdout: (c) => void out.push(c), stderr: () => undefined });
    assert.equal(r.exitCode, 0);
    assert.equal(Buffer.concat(out).toString(), 'answered\n');
    await waitFor(async () => (await parentOf()) > 1, 15_000);
  });

  it('comes back with the machine after pause/resume, and in a fork', async () => {
    await exec('echo kept > /root/f');
    assert.equal((await t.request('POST', `/v1/machines/${id}/pause`)).status, 200);
    assert.equal((await t.request('POST', `/v1/machines/${id}/resume`)).status, 200);
    assert.equal((await exec('cat /root/f')).out, 'kept\n');
    await waitFor(async () => (await parentOf()) > 1, 10_000).catch(() => assert.fail('after resume, commands no longer go through the agent'));
    const snap = await t.request('POST', `/v1/machines/${id}/snapshots`);
    assert.equal(snap.status, 201, snap.text);
    await waitFor(async () => (await parentOf()) > 1, 10_000).catch(() => assert.fail('after a live snapshot, commands no longer go through the agent'));
    const fork = await t.request('POST', '/v1/machines', { body: { snapshot_id: snap.body.id } });
    assert.equal(fork.status, 201, fork.text);
    assert.equal((await exec('cat /root/f', fork.body.id)).out, 'kept\n');
    await waitFor(async () => (await parentOf(fork.body.id)) > 1, 10_000).catch(() => assert.fail('in the fork, commands do not go through the agent'));
    await t.request('DELETE', `/v1/machines/${fork.body.id}`);
  });

  it('watches a directory: create, write, rename and remove, recursively, until the client leaves', async () => {
    await exec('mkdir -p /root/w');
    const ac = new AbortController();
    const res = await fetch(`${t.url}/v1/machines/${id}/files/watch?path=/root/w&recursive=true`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
      signal: ac.signal,
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    const seen = (): string[] =>
      text
        .split('\n\n')
        .filter((b) => b.startsWith('event: '))
        .map((b) => `${b.slice(7, b.indexOf('\n'))} ${(JSON.parse(b.slice(b.indexOf('data: ') + 6)) as { path: string }).path}`);
    const pump = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        text += new TextDecoder().decode(value);
      }
    })().catch(() => undefined);
    // The watch may take a moment to be in place: touch until it reports.
    await waitFor(async () => {
      await exec('touch /root/w/ping');
      return seen().some((e) => e === 'create /root/w/ping' || e === 'write /root/w/ping');
    }, 10_000);
    await exec('echo a > /root/w/f; mv /root/w/f /root/w/g; rm /root/w/g; mkdir /root/w/sub; sleep 0.2; echo x > /root/w/sub/x');
    await waitFor(async () => seen().includes('create /root/w/sub/x'), 10_000);
    const events = seen();
    for (const e of ['create /root/w/f', 'write /root/w/f', 'rename /root/w/f', 'rename /root/w/g', 'remove /root/w/g', 'create /root/w/sub']) {
      assert.ok(events.includes(e), `missing "${e}" in ${JSON.stringify(events)}`);
    }
    ac.abort();
    await pump;
    // The watcher inside the machine ends with the client.
    await waitFor(async () => !(await execIn(t.server, id, ['ps', '-o', 'args'])).out.includes('hangar-agent watch'), 10_000);
  });

  it('refuses to watch what is not a directory, and ends a watch when the machine pauses', async () => {
    const missing = await t.request('GET', `/v1/machines/${id}/files/watch?path=/no/such/dir`);
    assert.equal(missing.status, 404, missing.text);
    assert.equal(missing.body.code, 'PATH_NOT_FOUND');
    await exec('echo f > /root/plain');
    const file = await t.request('GET', `/v1/machines/${id}/files/watch?path=/root/plain`);
    assert.equal(file.status, 409, file.text);
    assert.equal(file.body.code, 'NOT_A_DIRECTORY');
    const bad = await t.request('GET', `/v1/machines/${id}/files/watch?path=relative`);
    assert.equal(bad.status, 400, bad.text);

    const res = await fetch(`${t.url}/v1/machines/${id}/files/watch?path=/root`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    assert.equal(res.status, 200);
    const body = res.text();
    assert.equal((await t.request('POST', `/v1/machines/${id}/pause`)).status, 200);
    assert.match(await body, /event: end\ndata: \{"reason":"machine_stopped"\}/);
    assert.equal((await t.request('POST', `/v1/machines/${id}/resume`)).status, 200);
  });
});
