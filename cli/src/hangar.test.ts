/** The real `hangar` binary (dist/cli/src/hangar.js, run as a child process) against a real server. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { ADMIN_KEY, TestServer } from '../../src/testing/harness.js';
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
    assert.equal((await cli(['frobnicate'])).code, 2);
    assert.equal((await cli(['create', '--metadata', 'not json'])).code, 2);
    const away = await cli(['ls'], { HANGAR_URL: 'http://127.0.0.1:9' });
    assert.equal(away.code, 3);
    const help = await cli(['exec', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Examples?:\n {2}hangar exec/);
  });

  it('tables and relative times', () => {
    assert.equal(table(['A', 'BB'], [['xyz', '1'], ['q', '22']]), 'A    BB\nxyz  1\nq    22');
    assert.equal(relative(new Date(1_000_000).toISOString(), 1_000_000 + 120_000), '2 min ago');
    assert.equal(relative(new Date(1_000_000 + 7_200_000).toISOString(), 1_000_000), 'in 2 h');
    assert.equal(relative(null), '-');
  });
});
