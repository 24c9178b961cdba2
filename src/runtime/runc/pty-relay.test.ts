/** The terminal relay is built with the project and found beside its module; a missing one says how to build it. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { DEFAULT_PTY_RELAY_PATH, ptyRelayProblem } from './pty-relay.js';

describe('pty relay binary', () => {
  it('is built by npm run build beside pty-relay.js', async () => {
    assert.equal(dirname(DEFAULT_PTY_RELAY_PATH), dirname(fileURLToPath(import.meta.url)));
    assert.equal(await ptyRelayProblem(DEFAULT_PTY_RELAY_PATH), null);
  });

  it('names the fix when the binary is missing or not executable', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hangar-relay-'));
    try {
      const missing = join(dir, 'pty-relay');
      assert.match((await ptyRelayProblem(missing)) ?? '', /pty-relay is missing: run `npm run build`/);
      await writeFile(missing, 'not a program', { mode: 0o644 });
      assert.match((await ptyRelayProblem(missing)) ?? '', /cannot be run \(EACCES\).*npm run build/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
