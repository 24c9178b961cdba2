import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BACKGROUND_NICENESS, CommandError, inBackground, ORPHANED_WAIT_MS, runDetached, runWithInput } from './command.js';

// `read` waits for the input, which is written only after the priority was set: no race.
const niceness = (): Promise<string> => runWithInput('sh', ['-c', 'read go; nice'], 'go\n');

describe('background host commands', () => {
  it('run at the background niceness inside inBackground', async () => {
    assert.equal((await inBackground(niceness)).trim(), String(BACKGROUND_NICENESS));
  });
  it('keep the server\'s priority outside it, also after background work', async () => {
    const base = (await niceness()).trim();
    await inBackground(niceness);
    assert.equal((await niceness()).trim(), base);
  });
});

describe('runDetached', () => {
  it('kills a command that leaves a dead child unreaped (runc restore whose CRIU died), long before its timeout', async () => {
    // sh forks a child that exits at once, then becomes sleep, which never reaps it.
    const started = performance.now();
    await assert.rejects(
      runDetached('sh', ['-c', 'true & exec sleep 30'], '/dev/null', 30_000),
      (err: unknown) => err instanceof CommandError && /its child \S+ \(pid \d+\) died and it did not notice; killed/.test(err.stderr),
    );
    const took = performance.now() - started;
    assert.ok(took >= ORPHANED_WAIT_MS && took < 10_000, `${took} ms`);
  });

  it('lets a command that reaps its children run to the end', async () => {
    await runDetached('sh', ['-c', 'for i in 1 2 3 4 5 6 7 8; do true & wait; sleep 0.25; done'], '/dev/null', 30_000);
  });
});
