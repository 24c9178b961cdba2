/** Volume rules without I/O: mount paths, the attachments of one create, attachment states. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MACHINE_STATUSES } from './machine.js';
import { attachmentState, checkAttachments, mountPathProblem, normaliseMountPath, pathWithin } from './volume.js';

const req = (mountPath: string, volumeId = `vol_${mountPath.replace(/\W/g, '')}`, readOnly = false) => ({ volumeId, mountPath, readOnly });

describe('volume rules', () => {
  it('mount paths are normalised like cwd, and must be absolute', () => {
    assert.equal(normaliseMountPath('/data/./x/../y/'), '/data/y');
    assert.equal(normaliseMountPath('/../..'), '/');
    assert.equal(normaliseMountPath('data'), null);
    assert.equal(normaliseMountPath('/da\0ta'), null);
  });

  it('/ and the system paths (and anything below them) are refused; lookalikes are not', () => {
    for (const p of ['/', '/proc', '/proc/1', '/sys', '/sys/fs/cgroup', '/dev', '/dev/shm', '/.hangar', '/.hangar/bin']) {
      assert.notEqual(mountPathProblem(p), null, p);
    }
    for (const p of ['/data', '/procfs', '/devices', '/.hangarx', '/srv/proc', '/root/.hangar']) assert.equal(mountPathProblem(p), null, p);
  });

  it('pathWithin is by whole segments', () => {
    assert.ok(pathWithin('/a/b', '/a'));
    assert.ok(pathWithin('/a', '/a'));
    assert.ok(!pathWithin('/ab', '/a'));
    assert.ok(pathWithin('/anything', '/'));
  });

  it('checkAttachments keeps the order and normalised paths, and names each problem by its index', () => {
    const ok = checkAttachments([req('/z/'), req('/a/../b', 'vol_b', true), req('/data/x'), req('/data/xy')]);
    assert.deepEqual(ok.problems, []);
    assert.deepEqual(
      ok.attachments.map((a) => [a.mountPath, a.readOnly]),
      [['/z', false], ['/b', true], ['/data/x', false], ['/data/xy', false]],
    );
    const bad = checkAttachments([req('/data', 'vol_1'), req('/data/', 'vol_2'), req('/data/in', 'vol_3'), req('/other', 'vol_1'), req('rel', 'vol_4'), req('/proc/x', 'vol_5')]);
    assert.deepEqual(
      bad.problems.map((p) => p.field),
      ['volumes.1.mount_path', 'volumes.2.mount_path', 'volumes.3.volume_id', 'volumes.4.mount_path', 'volumes.5.mount_path'],
    );
    assert.deepEqual(checkAttachments(Array.from({ length: 9 }, (_, i) => req(`/v${i}`))).problems.map((p) => p.field), ['volumes']);
  });

  it('every machine status has an attachment state', () => {
    assert.deepEqual(
      MACHINE_STATUSES.map((s) => [s, attachmentState(s)]),
      [['creating', 'detached'], ['running', 'attached'], ['paused', 'detached'], ['destroyed', 'released'], ['error', 'detached']],
    );
  });
});
