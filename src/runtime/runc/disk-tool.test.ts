/**
 * The disk tool on real loop devices and mounts: a clone of a blank is a sparse, clean
 * ext4 file system under an overlay; failures leave nothing mounted and no image; blanks
 * are made once per size.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CommandError, run } from './command.js';
import { blankImage, DEFAULT_DISK_TOOL_PATH } from './disk-tool.js';
import { layerPaths, mountLayer, mountPoints, unmountWritableLayer } from './writable-layer.js';

const TOOL = DEFAULT_DISK_TOOL_PATH;

/** Loop devices whose backing file lies under `dir`. */
async function loopsUnder(dir: string): Promise<string[]> {
  const out = await run('losetup', ['-a', '-O', 'BACK-FILE', '-n']);
  return out.split('\n').map((l) => l.trim()).filter((l) => l.startsWith(dir));
}

async function mountsUnder(dir: string): Promise<string[]> {
  return [...(await mountPoints())].filter((m) => m.startsWith(dir));
}

describe('disk tool', () => {
  let dir: string;
  let lower: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hangar-disk-tool-'));
    lower = join(dir, 'template');
    await mkdir(lower);
    await writeFile(join(lower, 'from-template'), 'template file\n');
  });

  after(async () => {
    // Whatever a failed assertion left behind.
    for (const m of (await mountsUnder(dir)).sort().reverse()) await run(TOOL, ['umount', m]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it('makes one blank per size, formatted and sparse, even when asked twice at once', async () => {
    const blanks = join(dir, 'blanks');
    const [a, b] = await Promise.all([blankImage(blanks, 64), blankImage(blanks, 64)]);
    assert.equal(a, b);
    assert.deepEqual(await readdir(blanks), ['ext4-64M.img']);
    const st = await stat(a);
    assert.equal(st.size, 64 * 1024 * 1024);
    assert.ok(st.blocks * 512 < 4 * 1024 * 1024, `blank allocates ${st.blocks * 512} bytes`);
    await run('e2fsck', ['-fn', a]);
  });

  it('clones a blank into a new disk, mounts it under the overlay, and unmounts everything', async () => {
    const p = layerPaths(join(dir, 'machines'), 'mch_one');
    await mkdir(p.dir, { recursive: true });
    const blank = await blankImage(join(dir, 'blanks'), 64);
    await mountLayer(TOOL, p, [lower], 'hangar-test-mch_one', blank);
    try {
      assert.equal(await readFile(join(p.rootfs, 'from-template'), 'utf8'), 'template file\n');
      await writeFile(join(p.rootfs, 'written'), 'by the machine\n');
      assert.equal(await readFile(join(p.layer, 'upper', 'written'), 'utf8'), 'by the machine\n');
      assert.deepEqual((await mountsUnder(p.dir)).sort(), [p.layer, p.rootfs].sort());
      assert.equal((await loopsUnder(p.dir)).length, 1);
      const st = await stat(p.image);
      assert.equal(st.size, 64 * 1024 * 1024);
      assert.ok(st.blocks * 512 < 8 * 1024 * 1024, 'the clone stays sparse');
    } finally {
      await unmountWritableLayer(TOOL, p);
    }
    assert.deepEqual(await mountsUnder(p.dir), []);
    assert.deepEqual(await loopsUnder(p.dir), [], 'autoclear releases the loop device with the unmount');
    // The machine's write is on its own disk, which is a clean file system.
    await run('e2fsck', ['-fn', p.image]);
    // Mounted again without a clone (a resume), the file is still there.
    await mountLayer(TOOL, p, [lower], 'hangar-test-mch_one');
    try {
      assert.equal(await readFile(join(p.rootfs, 'written'), 'utf8'), 'by the machine\n');
    } finally {
      await unmountWritableLayer(TOOL, p);
    }
    // Unmounting what is not mounted is not an error.
    await unmountWritableLayer(TOOL, p);
  });

  it('leaves nothing mounted and no image when the overlay cannot be mounted', async () => {
    const p = layerPaths(join(dir, 'machines'), 'mch_bad');
    await mkdir(p.dir, { recursive: true });
    const blank = await blankImage(join(dir, 'blanks'), 64);
    await assert.rejects(mountLayer(TOOL, p, [join(dir, 'no-such-layer')], 'hangar-test-mch_bad', blank), (err: unknown) => {
      assert.ok(err instanceof CommandError);
      assert.match(err.stderr, /mount the overlay/);
      return true;
    });
    assert.deepEqual(await mountsUnder(p.dir), []);
    assert.deepEqual(await loopsUnder(p.dir), []);
    await assert.rejects(stat(p.image), { code: 'ENOENT' });
  });

  it('never overwrites an existing disk with a clone', async () => {
    const p = layerPaths(join(dir, 'machines'), 'mch_kept');
    await mkdir(p.dir, { recursive: true });
    await writeFile(p.image, 'existing disk');
    const blank = await blankImage(join(dir, 'blanks'), 64);
    await assert.rejects(mountLayer(TOOL, p, [lower], 'hangar-test-mch_kept', blank), /File exists/);
    assert.equal(await readFile(p.image, 'utf8'), 'existing disk');
  });

  it('gives machines mounted at once a loop device each', async () => {
    const blank = await blankImage(join(dir, 'blanks'), 64);
    const ps = ['mch_c1', 'mch_c2', 'mch_c3', 'mch_c4'].map((id) => layerPaths(join(dir, 'machines'), id));
    for (const p of ps) await mkdir(p.dir, { recursive: true });
    await Promise.all(ps.map((p, i) => mountLayer(TOOL, p, [lower], `hangar-test-c${i}`, blank)));
    try {
      const loops = await loopsUnder(join(dir, 'machines'));
      assert.equal(loops.length, 4);
      assert.equal(new Set(loops).size, 4);
    } finally {
      await Promise.all(ps.map((p) => unmountWritableLayer(TOOL, p)));
    }
    assert.deepEqual(await loopsUnder(join(dir, 'machines')), []);
  });
});
