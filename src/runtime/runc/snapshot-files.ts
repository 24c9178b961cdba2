import { lstat, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** Paths of one snapshot's files. */
export interface SnapshotPaths {
  dir: string;
  /** The machine's writable layer (sparse ext4 image). */
  image: string;
  /** CRIU images (absent for a filesystem-only snapshot). */
  criu: string;
  /** CRIU's first image: its presence marks a memory snapshot. */
  inventory: string;
  /** CRIU's logs of the dump. */
  work: string;
}

/** The layout of a snapshot's directory. */
export function snapshotPaths(snapshotsDir: string, id: string): SnapshotPaths {
  const dir = join(snapshotsDir, id);
  const criu = join(dir, 'criu');
  return { dir, image: join(dir, 'disk.img'), criu, inventory: join(criu, 'inventory.img'), work: join(dir, 'work') };
}

/** True when the path exists. */
export async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null)) !== null;
}

/** Bytes allocated on disk under a path (holes of sparse files not counted). */
export async function allocatedBytes(path: string): Promise<number> {
  const st = await lstat(path).catch(() => null);
  if (!st) return 0;
  if (!st.isDirectory()) return st.blocks * 512;
  let total = 0;
  for (const name of await readdir(path)) total += await allocatedBytes(join(path, name));
  return total;
}
