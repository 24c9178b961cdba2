/**
 * The file scripts and their parsers. The scripts run here with the host's busybox sh
 * in a temporary directory, as they run inside a machine with the machine's.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, symlink, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FILE_SCRIPTS, SCRIPT_EXIT, parseListing, parseStatLine, scriptFailure, type FileOperation } from './file-scripts.js';

const busybox = spawnSync('busybox', ['true']).status === 0;

function script(op: FileOperation, args: string[], input = ''): { code: number | null; out: Buffer; err: string } {
  const r = spawnSync('busybox', ['sh', '-c', FILE_SCRIPTS[op], 'hangar-files', ...args], { input, env: { TZ: 'UTC0', PATH: '/usr/bin:/bin' } });
  return { code: r.status, out: r.stdout, err: r.stderr.toString() };
}

describe('parseStatLine', () => {
  it('reads mode, size and mtime (nanoseconds cut to milliseconds, offset applied)', () => {
    assert.deepEqual(parseStatLine('81a4 12 2026-11-28 03:59:10.668901597 +0000', '/a'), {
      path: '/a',
      size: 12,
      mode: '0644',
      mtime: '2026-11-28T03:59:10.668Z',
      type: 'file',
    });
    assert.equal(parseStatLine('41ed 4096 2026-11-28 05:00:00 +0200', '/d')?.mtime, '2026-11-28T03:00:00.000Z');
    assert.equal(parseStatLine('43ff 4096 2026-11-28 05:00:00.5 +0000', '/t')?.mode, '1777');
    assert.equal(parseStatLine('a1ff 1 2026-11-28 05:00:00.5 +0000', '/l')?.type, 'symlink');
    assert.equal(parseStatLine('garbage', '/x'), null);
    assert.equal(parseStatLine('1a4 1 2026-11-28 05:00:00 +0000', '/x'), null, 'no type bits');
  });
});

describe('parseListing', () => {
  it('pairs each stat line with the NUL-terminated name after it, whatever the name holds', () => {
    const out = Buffer.from(
      '81a4 1 2026-11-28 00:00:00 +0000\nb\0' +
        '-\ngone\0' +
        '81a4 2 2026-11-28 00:00:00 +0000\nwe\nird\0' +
        '41ed 3 2026-11-28 00:00:00 +0000\na\0' +
        '81a4 4 2026-11-28 00:00:00 +0000\nx/y\0',
    );
    const entries = parseListing(out, '/d');
    assert.deepEqual(entries.map((e) => [e.path, e.size, e.type]), [
      ['/d/a', 3, 'directory'],
      ['/d/b', 1, 'file'],
      ['/d/we\nird', 2, 'file'],
    ]);
  });
});

describe('scriptFailure', () => {
  const c = { machineId: 'mch_x', action: 'write', path: '/a' };
  it('maps the scripts’ own exit codes and the tools’ messages onto the catalogue', () => {
    assert.equal(scriptFailure(SCRIPT_EXIT.notFound, '', c).code, 'PATH_NOT_FOUND');
    assert.equal(scriptFailure(SCRIPT_EXIT.isDirectory, '', c).code, 'IS_A_DIRECTORY');
    assert.equal(scriptFailure(SCRIPT_EXIT.notDirectory, '', c).code, 'NOT_A_DIRECTORY');
    assert.equal(scriptFailure(SCRIPT_EXIT.notRegularFile, '', c).code, 'NOT_A_REGULAR_FILE');
    assert.equal(scriptFailure(SCRIPT_EXIT.exists, '', { ...c, to: '/b' }).code, 'PATH_EXISTS');
    assert.equal(scriptFailure(SCRIPT_EXIT.parentMissing, '', { ...c, to: '/p/b' }).message.includes('/p'), true);
    const full = scriptFailure(9, 'cat: write error: No space left on device\n', { ...c, diskMb: 16 });
    assert.equal(full.code, 'DISK_FULL');
    assert.equal(full.status, 507);
    assert.match(full.message, /disk_mb is 16/);
    assert.equal(scriptFailure(9, "rm: can't remove '/proc/x': Read-only file system", c).code, 'PATH_PERMISSION_DENIED');
    assert.equal(scriptFailure(9, 'tar: invalid tar magic', { ...c, archiveInput: true }).code, 'INVALID_ARCHIVE');
    assert.equal(scriptFailure(9, 'tar: invalid tar magic', c).code, 'FILE_OPERATION_FAILED');
    assert.match(scriptFailure(9, 'mv: weird\n', c).message, /weird/);
  });
});

describe('file scripts under busybox sh', { skip: !busybox && 'busybox is not installed' }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hangar-file-scripts-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('write creates parents, replaces in one step, and keeps nothing when the body is short', async () => {
    const r = script('write', [`${dir}/a/b/f.txt`, '.tmp1', '5'], 'hello');
    assert.equal(r.code, 0, r.err);
    assert.equal(parseStatLine(r.out.toString(), `${dir}/a/b/f.txt`)?.size, 5);
    assert.equal(await readFile(`${dir}/a/b/f.txt`, 'utf8'), 'hello');
    const short = script('write', [`${dir}/new/dir/g.txt`, '.tmp2', '9'], 'abc');
    assert.equal(short.code, SCRIPT_EXIT.shortBody);
    assert.equal((await readdir(dir)).includes('new'), false, 'the parents it made are gone');
    assert.equal(script('write', [`${dir}/a/b/f.txt`, '.tmp3', '9'], 'abc').code, SCRIPT_EXIT.shortBody);
    assert.equal(await readFile(`${dir}/a/b/f.txt`, 'utf8'), 'hello');
    assert.deepEqual(await readdir(`${dir}/a/b`), ['f.txt']);
    assert.equal(script('write', [`${dir}/a`, '.tmp4', ''], 'x').code, SCRIPT_EXIT.isDirectory);
    assert.equal(script('write', [`${dir}/a/b/f.txt/under`, '.tmp5', ''], 'x').code, SCRIPT_EXIT.notDirectory);
  });

  it('a write replaces a symlink at the path instead of writing through it', async () => {
    await writeFile(`${dir}/target`, 'keep');
    await symlink(`${dir}/target`, `${dir}/link`);
    assert.equal(script('write', [`${dir}/link`, '.tmp6', ''], 'new').code, 0);
    assert.equal(await readFile(`${dir}/target`, 'utf8'), 'keep');
    assert.equal(await readFile(`${dir}/link`, 'utf8'), 'new');
  });

  it('read prints the size then the bytes', async () => {
    await writeFile(`${dir}/r.bin`, Buffer.from([0, 1, 2, 10, 255]));
    const r = script('read', [`${dir}/r.bin`]);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(r.out, Buffer.concat([Buffer.from('5\n'), Buffer.from([0, 1, 2, 10, 255])]));
    assert.equal(script('read', [`${dir}/missing`]).code, SCRIPT_EXIT.notFound);
    assert.equal(script('read', [dir]).code, SCRIPT_EXIT.isDirectory);
    assert.equal(script('read', ['/dev/null']).code, SCRIPT_EXIT.notRegularFile);
  });

  it('list, mkdir, move and remove', async () => {
    await mkdir(`${dir}/l`);
    await writeFile(`${dir}/l/.hidden`, '');
    await writeFile(`${dir}/l/-dash`, 'x');
    await symlink('/', `${dir}/l/root`);
    const listed = parseListing(script('list', [`${dir}/l`]).out, `${dir}/l`);
    assert.deepEqual(listed.map((e) => [e.path.slice(dir.length), e.type]), [
      ['/l/-dash', 'file'],
      ['/l/.hidden', 'file'],
      ['/l/root', 'symlink'],
    ]);
    assert.equal(script('list', [`${dir}/l/-dash`]).code, SCRIPT_EXIT.notDirectory);
    assert.equal(script('mkdir', [`${dir}/l/-dash`]).code, SCRIPT_EXIT.notDirectory);
    assert.equal(script('mkdir', [`${dir}/m/n`]).code, 0);
    assert.equal(script('move', [`${dir}/m`, `${dir}/l/-dash`]).code, SCRIPT_EXIT.exists);
    assert.equal(script('move', [`${dir}/m`, `${dir}/nope/m`]).code, SCRIPT_EXIT.parentMissing);
    assert.equal(script('move', [`${dir}/m`, `${dir}/l/-dash/m`]).code, SCRIPT_EXIT.parentNotDirectory);
    assert.equal(script('move', [`${dir}/m`, `${dir}/l/m`]).code, 0);
    assert.equal(script('remove', [`${dir}/l/root`]).code, 0, 'removes the link, not /');
    assert.equal(script('remove', [`${dir}/l`]).code, 0);
    assert.equal(script('remove', [`${dir}/l`]).code, SCRIPT_EXIT.notFound);
  });
});
