import { createHash, randomBytes } from 'node:crypto';
import { link, lstat, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './command.js';

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

/** What a snapshot held when it was taken: every file's size, and a hash of the small ones. */
interface SnapshotManifest {
  files: Record<string, { size: number; sha256?: string }>;
}

const HASH_LIMIT = 4 * 1024 * 1024;

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(join(dir, prefix), { withFileTypes: true }).catch(() => [])) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await listFiles(dir, rel)));
    else if (entry.isFile()) out.push(rel);
  }
  return out;
}

/**
 * Record the snapshot's files (CRIU images and the disk image), so a damaged or
 * missing file is reported before CRIU is asked to restore it: CRIU can spin forever
 * on a truncated page image.
 */
export async function writeManifest(s: SnapshotPaths): Promise<void> {
  const files: SnapshotManifest['files'] = {};
  for (const rel of await listFiles(s.dir)) {
    if (rel.startsWith('work/') || rel === 'manifest.json') continue;
    const path = join(s.dir, rel);
    const size = (await stat(path)).size;
    files[rel] = size <= HASH_LIMIT && rel !== 'disk.img' ? { size, sha256: await sha256(path) } : { size };
  }
  await writeFile(join(s.dir, 'manifest.json'), JSON.stringify({ files } satisfies SnapshotManifest));
}

/** The first problem with a snapshot's files, or null when they match the manifest. */
export async function manifestProblem(s: SnapshotPaths, image: string = s.image): Promise<string | null> {
  const raw = await readFile(join(s.dir, 'manifest.json'), 'utf8').catch(() => null);
  if (raw === null) return 'its manifest.json is missing';
  let manifest: SnapshotManifest;
  try {
    manifest = JSON.parse(raw) as SnapshotManifest;
  } catch {
    return 'its manifest.json is not valid JSON';
  }
  for (const [rel, want] of Object.entries(manifest.files)) {
    const path = rel === 'disk.img' ? image : join(s.dir, rel);
    const st = await stat(path).catch(() => null);
    if (!st) return `${rel} is missing`;
    if (st.size !== want.size) return `${rel} has ${st.size} bytes, ${want.size} expected`;
    if (want.sha256 && (await sha256(path)) !== want.sha256) return `${rel} does not match its checksum`;
  }
  return null;
}

async function sha256(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/**
 * Move a file (a disk image between a machine's directory and its snapshot). A rename when
 * both are on one file system; across file systems (a snapshots directory on shared
 * storage) a sparse copy beside the target, renamed into place, then the source removed:
 * a failure leaves the source whole and no partial target.
 */
export async function moveFile(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
  }
  const partial = `${to}.partial`;
  try {
    await run('cp', ['--sparse=always', from, partial], 600_000);
    await rename(partial, to);
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  }
  await rm(from, { force: true });
}

/** The file in a snapshots directory that names it; a dot file, so it is never taken for a snapshot. */
const STORE_ID_FILE = '.store-id';

/**
 * The identity of a snapshots directory: a random id written into it the first time any
 * host asks. Hosts that read the same id read the same snapshot files (one shared
 * directory), so a paused machine of one can resume on another.
 */
export async function snapshotStoreId(snapshotsDir: string): Promise<string> {
  const path = join(snapshotsDir, STORE_ID_FILE);
  const found = (await readFile(path, 'utf8').catch(() => '')).trim();
  if (found !== '') return found;
  await mkdir(snapshotsDir, { recursive: true });
  const id = `store_${randomBytes(12).toString('hex')}`;
  // Written whole beside it, then linked into place: of two hosts starting at once over one
  // directory, the first link wins for both, and no reader ever sees a half-written id.
  const tmp = `${path}.${id}`;
  await writeFile(tmp, `${id}\n`);
  await link(tmp, path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  await rm(tmp, { force: true });
  return (await readFile(path, 'utf8')).trim();
}
