import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startFailure } from './exec.js';

describe('startFailure', () => {
  it('tells a machine that is not running from a command that is not found', () => {
    assert.equal(startFailure('container does not exist'), 'not_running');
    assert.equal(startFailure('loading sandbox: file does not exist'), 'not_running');
    // A stopped user-namespaced machine: its namespace, which runc runs in, is gone.
    assert.equal(startFailure('nsenter: cannot open /run/netns/hangar-0123abcd-mch_x: No such file or directory'), 'not_running');
    assert.equal(startFailure('exec failed: unable to start container process: exec: "nope": executable file not found in $PATH'), 'not_found');
    assert.equal(startFailure('exec failed: chdir to cwd ("/nope") set in config.json failed: no such file or directory'), 'cannot_start');
  });
});
