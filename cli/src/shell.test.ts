/**
 * `hangar shell` through a real pseudo-terminal: the real binary runs in a detached tmux
 * session (its own tmux server, its socket in a temporary directory), keys are typed with
 * send-keys and the screen read back with capture-pane.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { HangarClient } from '../../sdk/src/index.js';
import { ADMIN_KEY, TestServer, waitFor } from '../../src/testing/harness.js';

const BIN = fileURLToPath(new URL('./hangar.js', import.meta.url));

/** The tmux server's socket lives in the test's temporary directory, so nothing stays behind. */
let socket = '';
const tmux = (...args: string[]): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile('tmux', ['-S', socket, ...args], (err, stdout, stderr) => (err ? reject(new Error(`tmux ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout)));
  });
const screen = (): Promise<string> => tmux('capture-pane', '-p', '-t', 'sh');
/** Wait until the screen matches; its text in the failure otherwise. */
const until = async (re: RegExp): Promise<string> => {
  let last = '';
  try {
    await waitFor(async () => re.test((last = await screen())), 20_000);
  } catch {
    assert.fail(`the screen never matched ${re}:\n${last}`);
  }
  return last;
};

describe('hangar shell in a real terminal (tmux)', () => {
  let t: TestServer;
  let home: string;
  let id: string;
  let sdk: HangarClient;
  before(async () => {
    t = await TestServer.start();
    home = await mkdtemp(join(tmpdir(), 'hangar-shell-'));
    socket = join(home, 'tmux.sock');
    sdk = new HangarClient({ baseUrl: t.url, apiKey: ADMIN_KEY });
    id = (await sdk.createMachine({})).id;
  });
  after(async () => {
    await tmux('kill-server').catch(() => undefined);
    await t?.dispose();
    await rm(home, { recursive: true, force: true });
  });

  it('types a command and reads it back, follows window resizes, sends Ctrl-C to the machine, passes the exit code', async (ctx) => {
    const env = `HANGAR_URL=${t.url} HANGAR_API_KEY=${ADMIN_KEY} XDG_CONFIG_HOME=${home}`;
    await tmux('new-session', '-d', '-s', 'sh', '-x', '100', '-y', '30', `env ${env} ${process.execPath} ${BIN} shell ${id}; echo "shell exited with $?"; sleep 600`);
    await until(/:~[#$]$/m);
    await tmux('send-keys', '-t', 'sh', 'echo hi-$((6*7))', 'Enter');
    await until(/^hi-42$/m);
    await tmux('send-keys', '-t', 'sh', 'stty size', 'Enter');
    await until(/^30 100$/m);

    await tmux('resize-window', '-t', 'sh', '-x', '120', '-y', '40');
    // The SIGWINCH reaches hangar on its own path, which keys typed right after may overtake: ask until it shows.
    await waitFor(async () => {
      await tmux('send-keys', '-t', 'sh', 'stty size', 'Enter');
      await new Promise((r) => setTimeout(r, 200));
      return /^40 120$/m.test(await screen());
    }, 20_000);

    // Ctrl-C stops the command in the machine; the session (and this client) goes on.
    await tmux('send-keys', '-t', 'sh', 'sleep 1000', 'Enter');
    // Ctrl-C before the shell has started sleep would hit the shell instead: wait until sleep runs.
    await waitFor(async () => /sleep 1000/.test((await sdk.exec(id, { cmd: 'ps -o args' })).stdout), 20_000);
    await tmux('send-keys', '-t', 'sh', 'C-c');
    await tmux('send-keys', '-t', 'sh', 'echo after-$((1+1))', 'Enter');
    await until(/^after-2$/m);

    await tmux('send-keys', '-t', 'sh', 'exit 7', 'Enter');
    const last = await until(/shell exited with \d+/);
    assert.match(last, /shell exited with 7/);
    ctx.diagnostic(`the screen at the end:\n${last.trimEnd()}`);
  });
});
