import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BACKGROUND_NICENESS, inBackground, runWithInput } from './command.js';

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
