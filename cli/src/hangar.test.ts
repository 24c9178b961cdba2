/** The real `hangar` binary (dist/cli/src/hangar.js, run as a child process) against a real server. */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { ADMIN_KEY, leftovers, TestServer, waitFor } from '../../src/testing/harness.js';
import { program } from './hangar.js';
import { relative, table } from './output.js';

const BIN = fileURLToPath(new URL('./hangar.js', import.meta.url));

describe('hangar CLI', () => {
  let t: TestServer;
  let home: string;
  const cli = (args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      execFile(BIN, args, { env: { PATH: process.env.PATH ?? '', XDG_CONFIG_HOME: home, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });

  before(async () => {
    t = await TestServer.start();
    home = await mkdtemp(join(tmpdir(), 'hangar-cli-'));
  });
  after(async () => {
    await t?.dispose();
    await rm(home, { recursive: true, force: true });
  });

  it('login stores the key 0600; create, ls, exec with its exit code, cp both ways, rm', async () => {
    const none = await cli(['ls']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /hangar login/);
    const login = await cli(['login', '--url', t.url, '--key', ADMIN_KEY]);
    assert.equal(login.code, 0, login.stderr);
    assert.equal((await stat(join(home, 'hangar', 'config.json'))).mode & 0o777, 0o600);

    const created = await cli(['create', '--memory', '256', '--metadata', '{"by":"cli"}', '--json']);
    assert.equal(created.code, 0, created.stderr);
    const m = JSON.parse(created.stdout) as { id: string; status: string; metadata: Record<string, unknown> };
    assert.equal(m.status, 'running');
    assert.deepEqual(m.metadata, { by: 'cli' });

    const ls = await cli(['ls']);
    assert.match(ls.stdout.split('\n')[0]!, /^ID\s+STATUS\s+TEMPLATE\s+SIZE\s+CREATED\s+TIMEOUT$/);
    assert.match(ls.stdout, new RegExp(`${m.id}\\s+running\\s+base\\s+1 vCPU 256 MiB\\s+\\d+ s ago\\s+in \\d+ min`));

    const ex = await cli(['exec', m.id, '--', 'sh', '-c', 'echo to-out; echo to-err >&2; exit 7']);
    assert.deepEqual([ex.code, ex.stdout, ex.stderr], [7, 'to-out\n', 'to-err\n']);

    const local = join(home, 'up.txt');
    await writeFile(local, 'from the host\n');
    assert.equal((await cli(['cp', local, `${m.id}:/root/up.txt`])).code, 0);
    assert.equal((await cli(['exec', m.id, '--', 'cat', '/root/up.txt'])).stdout, 'from the host\n');
    const back = join(home, 'down.txt');
    assert.equal((await cli(['cp', `${m.id}:/root/up.txt`, back])).code, 0);
    assert.equal(await readFile(back, 'utf8'), 'from the host\n');
    const named = join(home, 'named.txt');
    await writeFile(named, 'kept its name\n');
    assert.equal((await cli(['cp', named, `${m.id}:/root`])).code, 0);
    assert.equal((await cli(['exec', m.id, '--', 'cat', '/root/named.txt'])).stdout, 'kept its name\n', 'into an existing directory a file keeps its name');
    assert.equal((await cli(['cp', local, back])).code, 2, 'two local paths are a usage error');

    assert.equal((await cli(['open', m.id])).stdout, `${t.url}/console/machines/${m.id}\n`);
    const gone = await cli(['rm', m.id, '--json']);
    assert.equal(JSON.parse(gone.stdout).status, 'destroyed');
  });

  it('errors: one line and stable exit codes (1 refused, 2 usage, 3 unreachable)', async () => {
    const missing = await cli(['get', 'mch_nosuchmachine']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^hangar: Machine mch_nosuchmachine does not exist.*\(NOT_FOUND\)\n$/);
    const bad = await cli(['create', '--template', 'no-such']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /UNKNOWN_TEMPLATE/);
    const noShell = await cli(['shell', 'mch_nosuchmachine'], { HANGAR_URL: t.url, HANGAR_API_KEY: ADMIN_KEY });
    assert.equal(noShell.code, 1);
    assert.match(noShell.stderr, /^hangar: Machine mch_nosuchmachine does not exist.*\(NOT_FOUND\)\n$/);
    assert.equal((await cli(['frobnicate'])).code, 2);
    assert.equal((await cli(['create', '--metadata', 'not json'])).code, 2);
    const away = await cli(['ls'], { HANGAR_URL: 'http://127.0.0.1:9' });
    assert.equal(away.code, 3);
    const help = await cli(['exec', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Examples?:\n {2}hangar exec/);
  });

  it('serve, agent and api run the server as that role: a fleet role says what it lacks; serve starts, and stops on SIGTERM with 0', async () => {
    const agent = await cli(['agent'], { HANGAR_DATA_DIR: home });
    assert.equal(agent.code, 1);
    assert.match(agent.stderr, /hangar agent is part of a fleet: set HANGAR_DATABASE_URL/);
    const api = await cli(['api'], { HANGAR_DATA_DIR: home, HANGAR_DATABASE_URL: 'postgresql://nobody@localhost/none?host=/nonexistent', HANGAR_HOST_CAPACITY: '4' });
    assert.equal(api.code, 1);
    assert.match(api.stderr, /hangar api runs no machine/);
    const dataDir = await mkdtemp(join(tmpdir(), 'hangar-cli-serve-'));
    try {
      const child = spawn(BIN, ['serve'], {
        env: { PATH: process.env.PATH ?? '', HANGAR_DATA_DIR: dataDir, HANGAR_LISTEN: '127.0.0.1:0', HANGAR_BOOTSTRAP_KEY: ADMIN_KEY, HANGAR_LOG_LEVEL: 'silent' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const url = await waitFor(async () => /\(server\) listening on (http:\/\/\S+)/.exec(out)?.[1], 60_000);
      const info = await fetch(`${url}/v1/info`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
      assert.equal(info.status, 200);
      const prefix = ((await info.json()) as { runtime: { instance_prefix: string } }).runtime.instance_prefix;
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      assert.equal(await exited, 0, out);
      assert.deepEqual(await leftovers(dataDir, prefix), []);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('tables and relative times', () => {
    assert.equal(table(['A', 'BB'], [['xyz', '1'], ['q', '22']]), 'A    BB\nxyz  1\nq    22');
    assert.equal(relative(new Date(1_000_000).toISOString(), 1_000_000 + 120_000), '2 min ago');
    assert.equal(relative(new Date(1_000_000 + 7_200_000).toISOString(), 1_000_000), 'in 2 h');
    assert.equal(relative(null), '-');
  });
});

describe('hangar CLI: directories, processes, watch, pools, completion', () => {
  let t: TestServer;
  let home: string;
  let id: string;
  const env = (): Record<string, string> => ({ PATH: process.env.PATH ?? '', XDG_CONFIG_HOME: home, HANGAR_URL: t.url, HANGAR_API_KEY: ADMIN_KEY });
  const cli = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      execFile(BIN, args, { env: env(), timeout: 120_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });

  before(async () => {
    t = await TestServer.start();
    home = await mkdtemp(join(tmpdir(), 'hangar-cli2-'));
    const created = await cli(['create', '--env', 'GREETING=hello', '--idle-timeout', '600000', '--wait', '--json']);
    assert.equal(created.code, 0, created.stderr);
    id = (JSON.parse(created.stdout) as { id: string }).id;
  });
  after(async () => {
    await t?.dispose();
    await rm(home, { recursive: true, force: true });
  });

  it('cp -r copies a directory tree both ways (tar)', async () => {
    const src = join(home, 'tree');
    await mkdir(join(src, 'sub', 'deeper'), { recursive: true });
    await writeFile(join(src, 'a.txt'), 'A\n');
    await writeFile(join(src, 'sub', 'deeper', 'b.bin'), Buffer.from([0, 1, 2, 255]));
    const up = await cli(['cp', '-r', src, `${id}:/root/tree`]);
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stderr, /^copied \d+ bytes of tar from /);
    assert.equal((await cli(['exec', id, '--', 'sh', '-c', 'cd /root/tree && find . -type f | sort && cat a.txt'])).stdout, './a.txt\n./sub/deeper/b.bin\nA\n');
    const back = join(home, 'back');
    const down = await cli(['cp', '-r', `${id}:/root/tree`, back, '--json']);
    assert.equal(down.code, 0, down.stderr);
    assert.equal((JSON.parse(down.stdout) as { recursive: boolean }).recursive, true);
    assert.equal(await readFile(join(back, 'a.txt'), 'utf8'), 'A\n');
    assert.deepEqual([...(await readFile(join(back, 'sub', 'deeper', 'b.bin')))], [0, 1, 2, 255]);
    const noR = await cli(['cp', `${id}:/root/tree`, join(home, 'x')]);
    assert.equal(noR.code, 2);
    assert.match(noR.stderr, /is a directory: use cp -r/);
  });

  it('exec -d starts a process; ps lists it; logs prints and follows its output', async () => {
    assert.equal((await cli(['exec', id, '--', 'sh', '-c', 'echo $GREETING'])).stdout, 'hello\n', 'create --env');
    const started = await cli(['exec', '-d', id, '--', 'sh', '-c', 'echo one; echo two >&2; sleep 1; echo three']);
    assert.equal(started.code, 0, started.stderr);
    const pid = started.stdout.trim();
    assert.match(pid, /^\d+$/);
    const followed = await cli(['logs', id, pid, '--follow']);
    assert.deepEqual([followed.code, followed.stdout, followed.stderr], [0, 'one\nthree\n', 'two\n']);
    const whole = await cli(['logs', id, pid, '--json']);
    assert.equal((JSON.parse(whole.stdout) as { stdout: string }).stdout, 'one\nthree\n');
    const ps = await cli(['ps', id]);
    assert.match(ps.stdout, /^PID\s+STATUS\s+EXIT\s+STARTED\s+COMMAND\n/);
    assert.match(ps.stdout, new RegExp(`^${pid}\\s+exited\\s+0\\s+`, 'm'));
    assert.equal((await cli(['logs', id, 'abc'])).code, 2);
  });

  it('ls --watch prints the list again when it changes; ls -q prints ids', async () => {
    assert.equal((await cli(['ls', '-q'])).stdout, `${id}\n`);
    const child = spawn(BIN, ['ls', '--watch', '--interval', '200', '--quiet'], { env: env() });
    let text = '';
    child.stdout.on('data', (b: Buffer) => (text += b.toString()));
    try {
      await waitFor(async () => text.includes(id), 20_000);
      const second = JSON.parse((await cli(['create', '--json'])).stdout) as { id: string };
      await waitFor(async () => text.includes(`${id}\n${second.id}`) || text.includes(`${second.id}\n${id}`), 20_000);
      assert.equal((await cli(['rm', second.id])).code, 0);
      // A copy per change: the last one, once the removal is seen, lists only the first machine again.
      const copies = (): string[] => text.split('\n\n').filter(Boolean);
      await waitFor(async () => copies().length >= 3 && copies().at(-1)!.trim() === id, 20_000);
    } finally {
      child.kill('SIGINT');
    }
  });

  it('pools: set, ls, rm (--json)', async () => {
    const set = await cli(['pools', 'set', 'cli-pool', '--template', 'base', '--size', '1', '--json']);
    assert.equal(set.code, 0, set.stderr);
    assert.equal((JSON.parse(set.stdout) as { size: number }).size, 1);
    const ls = await cli(['pools']);
    assert.match(ls.stdout, /^NAME\s+TEMPLATE\s+SIZE\s+READY/);
    assert.match(ls.stdout, /^cli-pool\s+base\s+1\s+\d/m);
    await waitFor(async () => (JSON.parse((await cli(['pools', 'ls', '--json'])).stdout) as { name: string; ready: number }[]).some((p) => p.name === 'cli-pool' && p.ready === 1), 60_000);
    assert.equal((await cli(['pools', 'rm', 'cli-pool'])).code, 0);
    assert.deepEqual(JSON.parse((await cli(['pools', '--json'])).stdout), []);
  });

  it('hosts: ls, drain and undrain this server (its id holds a "/"), an unknown host is an error', async () => {
    const ls = await cli(['hosts']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /^ID\s+STATE\s+MACHINES\s+CAPACITY\s+HEARTBEAT\s+URL/);
    const [self] = JSON.parse((await cli(['hosts', 'ls', '--json'])).stdout) as { id: string; state: string }[];
    assert.equal(self!.state, 'up');
    assert.match(self!.id, /\/hangar-[0-9a-f]{8}$/);
    const drained = await cli(['hosts', 'drain', self!.id]);
    assert.equal(drained.code, 0, drained.stderr);
    assert.equal(drained.stdout.trim(), `host ${self!.id} is draining`);
    assert.equal((JSON.parse((await cli(['hosts', 'undrain', self!.id, '--json'])).stdout) as { state: string }).state, 'up');
    const unknown = await cli(['hosts', 'drain', 'no-such-host']);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /No host no-such-host/);
  });

  it('templates build prints its log and the build; volumes create, ls, rm', async () => {
    const b = await cli(['templates', 'build', 'cli-tpl', '--from', 'base', '--run', 'echo built-by-cli > /etc/cli']);
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stderr, /built-by-cli/);
    assert.match(b.stdout, /^TEMPLATE\s+BUILD\s+STATUS\s+VERSION\ncli-tpl\s+\S+\s+ready\s+1$/m);
    assert.match((await cli(['templates'])).stdout, /^cli-tpl\s+team\s+ready/m);
    const failed = await cli(['templates', 'build', 'cli-bad', '--from', 'base', '--run', 'exit 3']);
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /the build of cli-bad failed/);
    assert.equal((await cli(['templates', 'rm', 'cli-tpl'])).code, 0);
    const v = JSON.parse((await cli(['volumes', 'create', 'cli-vol', '--size', '16', '--json'])).stdout) as { id: string };
    assert.match((await cli(['volumes'])).stdout, new RegExp(`^${v.id}\\s+cli-vol\\s+16 MiB`, 'm'));
    assert.equal((await cli(['volumes', 'rm', v.id])).code, 0);
  });

  it('scripts and networks: create, ls, show, rm; create --script --network runs the script on the network', async () => {
    const s = JSON.parse((await cli(['scripts', 'create', 'cli-setup', '--run', 'echo from-cli-script > /root/marker', '--once', '--json'])).stdout) as { id: string };
    assert.match((await cli(['scripts'])).stdout, new RegExp(`^${s.id}\\s+cli-setup\\s+first start`, 'm'));
    assert.equal((await cli(['scripts', 'show', s.id])).stdout, 'echo from-cli-script > /root/marker\n');
    const bad = await cli(['scripts', 'create', 'neither']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /exactly one of --file or --run/);
    const n = JSON.parse((await cli(['networks', 'create', 'cli-net', '--json'])).stdout) as { id: string };
    const m = JSON.parse((await cli(['create', '--script', s.id, '--network', n.id, '--json'])).stdout) as { id: string; network_id: string; startup_script_id: string };
    assert.deepEqual([m.network_id, m.startup_script_id], [n.id, s.id]);
    assert.match((await cli(['networks'])).stdout, new RegExp(`^${n.id}\\s+cli-net\\s+1\\s`, 'm'));
    await waitFor(async () => ((await cli(['exec', m.id, '--', 'cat', '/root/marker'])).stdout === 'from-cli-script\n' ? true : null), 60_000, 200);
    const busy = await cli(['networks', 'rm', n.id]);
    assert.equal(busy.code, 1, busy.stderr);
    assert.match(busy.stderr, /NETWORK_IN_USE|machines? (are|is) on it|still/i);
    assert.equal((await cli(['rm', m.id])).code, 0);
    assert.equal((await cli(['networks', 'rm', n.id])).code, 0);
    assert.equal((await cli(['scripts', 'rm', s.id])).code, 0);
    assert.deepEqual(JSON.parse((await cli(['scripts', '--json'])).stdout), []);
  });

  it('create --isolation gvisor makes a gvisor machine; another tier is a usage error', async () => {
    const bad = await cli(['create', '--isolation', 'vm']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /--isolation is container or gvisor/);
    const m = JSON.parse((await cli(['create', '--isolation', 'gvisor', '--json'])).stdout) as { id: string; isolation: string; status: string };
    assert.deepEqual([m.isolation, m.status], ['gvisor', 'running']);
    assert.equal((await cli(['exec', m.id, '--', 'uname', '-r'])).stdout, '4.4.0\n', "gVisor's kernel answers");
    assert.equal((await cli(['rm', m.id])).code, 0);
  });

  it('every verb has --help with an example, and --json unless it is interactive or runs a server; completion from the tree', async () => {
    const verbs: string[][] = [];
    for (const c of program().commands) {
      if (c.commands.length) for (const s of c.commands) verbs.push([c.name(), s.name()]);
      verbs.push([c.name()]);
    }
    for (const v of verbs) {
      const h = await cli([...v, '--help']);
      assert.equal(h.code, 0, v.join(' '));
      assert.match(h.stdout, /Examples?:\n {2}\S/, `${v.join(' ')} --help has an example`);
      const leaf = v.length === 2 || !program().commands.find((c) => c.name() === v[0])!.commands.length;
      if (leaf && !['shell', 'completion', 'serve', 'agent', 'api'].includes(v[0]!)) assert.match(h.stdout, /--json/, `${v.join(' ')} takes --json`);
    }
    const script = join(home, 'completion.bash');
    await writeFile(script, (await cli(['completion', 'bash'])).stdout);
    const complete = (words: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const sh = spawn('bash', ['--norc', '-c', `source ${script}; COMP_WORDS=(${words}); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); _hangar; echo "\${COMPREPLY[*]}"`], { env: env() });
        let o = '';
        sh.stdout.on('data', (b: Buffer) => (o += b.toString()));
        sh.on('close', (code) => (code === 0 ? resolve(o.trim()) : reject(new Error(`bash exited ${code}`))));
      });
    assert.equal(await complete('hangar p'), 'pause ps pools');
    assert.equal(await complete('hangar cp --r'), '--recursive');
    assert.equal(await complete('hangar templates b'), 'build');
    const zsh = await cli(['completion', 'zsh']);
    assert.match(zsh.stdout, /^autoload -U \+X bashcompinit && bashcompinit\n/);
    assert.equal((await cli(['completion', 'fish'])).code, 2);
  });
});
