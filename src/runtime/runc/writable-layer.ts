import { chown, lchown, mkdir, readdir, readFile, lstat, rm, rmdir, stat, truncate } from 'node:fs/promises';
import { readUidBase, UID_RANGE_SIZE } from '../user-namespace.js';
import { join } from 'node:path';
import { CommandError, run } from './command.js';

/** Paths of one machine's files under the data dir. */
export interface LayerPaths {
  /** The machine's directory. */
  dir: string;
  /** Sparse ext4 image: the disk quota is its size. */
  image: string;
  /** Where the image is mounted; holds overlay's upper and work dirs. */
  layer: string;
  /** The overlay mount: the machine's root filesystem. */
  rootfs: string;
  /** The OCI bundle directory (config.json). */
  bundle: string;
}

/** The layout of a machine's directory. */
export function layerPaths(machinesDir: string, id: string): LayerPaths {
  const dir = join(machinesDir, id);
  return {
    dir,
    image: join(dir, 'disk.img'),
    layer: join(dir, 'layer'),
    rootfs: join(dir, 'rootfs'),
    bundle: join(dir, 'bundle'),
  };
}

function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Mount points currently in the host's mount table. */
export async function mountPoints(): Promise<Set<string>> {
  const text = await readFile('/proc/self/mounts', 'utf8');
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const field = line.split(' ')[1];
    if (field) out.add(unescapeMountField(field));
  }
  return out;
}

/**
 * Mount a machine's image and the overlay root filesystem over it: the template's
 * layers read-only below (topmost first), the image's upper dir above. With `blank`, the
 * image is first made as a clone of that formatted blank (a new machine's disk). One run
 * of the disk tool does it all; on failure it leaves nothing mounted (nor a cloned image).
 */
export async function mountLayer(
  tool: string,
  p: LayerPaths,
  templateLayers: readonly string[],
  mountSource: string,
  blank?: string,
  uidBase: number | null = null,
): Promise<void> {
  if (templateLayers.length === 0) throw new Error('a machine needs at least one template layer');
  for (const dir of templateLayers) {
    // overlayfs separates lower layers with ':' and options with ','.
    if (/[:,]/.test(dir)) throw new Error(`template layer path ${dir} holds ':' or ','`);
  }
  await mkdir(p.layer, { recursive: true });
  await mkdir(p.rootfs, { recursive: true });
  await mkdir(p.bundle, { recursive: true });
  const clone = blank === undefined ? [] : ['--clone', blank];
  // A user-namespaced machine sees its template through idmapped clones (disk-tool.c says how).
  const idmap = uidBase === null ? [] : ['--idmap', String(uidBase), join(p.dir, 'idmap-staging')];
  await run(tool, ['mount-layer', ...clone, ...idmap, p.image, p.layer, p.rootfs, mountSource, templateLayers.join(':')]);
}

/**
 * Make `cwd` exist inside the mounted root, refusing to follow any symlink on the
 * way so the host path can never leave the machine's root.
 */
export async function ensureDirInside(rootfs: string, cwd: string, uidBase: number | null = null): Promise<void> {
  let at = rootfs;
  for (const part of cwd.split('/').filter(Boolean)) {
    at = join(at, part);
    const st = await lstat(at).catch(() => null);
    if (st === null) {
      await mkdir(at, { mode: 0o755 });
      // Made by host root: in a user-namespaced machine it must be its root's.
      if (uidBase !== null) await chown(at, uidBase, uidBase);
    } else if (st.isSymbolicLink() || !st.isDirectory()) {
      throw new Error(`cwd component ${at.slice(rootfs.length)} exists and is not a directory`);
    }
  }
}

/**
 * Copy the upper directory of a stopped machine's writable layer (what it changed over
 * its template, overlay whiteouts and opaque-directory marks included) into `dest`: the
 * image is mounted read-only where the machine mounts it, and unmounted after.
 * Hangar's own mount points (`/.hangar`) are left out.
 */
export async function exportUpper(p: LayerPaths, dest: string): Promise<void> {
  if ((await mountPoints()).has(p.layer)) throw new Error('the machine still has its writable layer mounted; stop it first');
  await mkdir(p.layer, { recursive: true });
  await run('mount', ['-o', 'loop,ro,noatime', p.image, p.layer]);
  try {
    await mkdir(dest, { recursive: true });
    await run('cp', ['-a', `${join(p.layer, 'upper')}/.`, dest], 600_000);
  } finally {
    await run('umount', [p.layer]);
  }
  await rm(join(dest, '.hangar'), { recursive: true, force: true });
  // A user-namespaced machine wrote its files with host ids of its range: a layer holds the machine's own ids.
  const base = await readUidBase(p.dir);
  if (base !== null) await shiftIds(dest, base);
}

/** Map every entry under `dir` from host ids of the range at `base` back to the machine's ids (0..65535). */
async function shiftIds(dir: string, base: number): Promise<void> {
  const back = (id: number): number => (id >= base && id < base + UID_RANGE_SIZE ? id - base : id);
  const visit = async (path: string): Promise<void> => {
    const st = await lstat(path);
    if (back(st.uid) !== st.uid || back(st.gid) !== st.gid) await lchown(path, back(st.uid), back(st.gid));
    if (st.isDirectory()) for (const name of await readdir(path)) await visit(join(path, name));
  };
  await visit(dir);
}

/** Where a user-namespaced machine's volumes are attached, idmapped, for its bind mounts. */
export function idmappedVolumesDir(p: LayerPaths): string {
  return join(p.dir, 'volumes');
}

/** Unmount the overlay and the image (the loop device goes with it: the disk tool attaches with autoclear); a path not mounted is skipped. */
export async function unmountWritableLayer(tool: string, p: LayerPaths): Promise<void> {
  const volumes = (await readdir(idmappedVolumesDir(p)).catch(() => [] as string[])).map((n) => join(idmappedVolumesDir(p), n));
  await run(tool, ['umount', p.rootfs, p.layer, ...volumes]);
  // rmdir, never a recursive remove: should a mount point still hold a volume, it stays whole.
  for (const dir of [...volumes, idmappedVolumesDir(p)]) await rmdir(dir).catch(() => undefined);
}

const MIB = 1024 * 1024;
/** CAP_SYS_RESOURCE's bit in the capability sets of /proc/<pid>/status. */
const CAP_SYS_RESOURCE = 24n;

/**
 * True when this process may grow a mounted ext4 file system: the kernel's resize ioctl
 * wants CAP_SYS_RESOURCE, which some sandboxes (this project's test hosts) withhold even from root.
 */
export async function canGrowMounted(): Promise<boolean> {
  const status = await readFile('/proc/self/status', 'utf8');
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  return hex !== undefined && ((BigInt(`0x${hex}`) >> CAP_SYS_RESOURCE) & 1n) === 1n;
}

/** The loop device the image is mounted through. */
async function loopDeviceOf(image: string): Promise<string> {
  const out = await run('losetup', ['-j', image]);
  const dev = out.split('\n')[0]?.split(':')[0];
  if (!dev) throw new Error(`no loop device holds ${image}`);
  return dev;
}

/**
 * Grow a mounted image and its file system to `diskMb` while the machine uses it:
 * longer file, the loop device told (`losetup -c`), online `resize2fs`. On failure the
 * file system has its old size and the file is cut back to it.
 */
export async function growMountedImage(p: LayerPaths, diskMb: number): Promise<void> {
  const before = (await stat(p.image)).size;
  const dev = await loopDeviceOf(p.image);
  await truncate(p.image, diskMb * MIB);
  try {
    await run('losetup', ['-c', dev]);
    await run('resize2fs', [dev], 300_000);
  } catch (err) {
    // The resize error is the one to report. A (sparse) file left longer than its file
    // system costs nothing and is harmless: the next grow starts from the file system's size.
    await truncate(p.image, before).catch(() => undefined);
    await run('losetup', ['-c', dev]).catch(() => undefined);
    throw err;
  }
}

/**
 * Grow an image that is not mounted and its file system to `diskMb` (`e2fsck -f` first:
 * `resize2fs` refuses a file system mounted since its last check). On failure the file
 * is cut back to its old size.
 */
export async function growUnmountedImage(image: string, diskMb: number): Promise<void> {
  const before = (await stat(image)).size;
  await truncate(image, diskMb * MIB);
  try {
    // -p repairs only what is safe to repair unattended; exit 1 means it did.
    await run('e2fsck', ['-f', '-p', image], 300_000).catch((err: unknown) => {
      if (!(err instanceof CommandError && err.exitCode === 1)) throw err;
    });
    await run('resize2fs', [image], 300_000);
  } catch (err) {
    // As in growMountedImage: a file left longer than its file system is harmless.
    await truncate(image, before).catch(() => undefined);
    throw err;
  }
}
