import { mkdir, readdir, rename, rm, stat, open } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './command.js';

/**
 * Where `npm run build` puts the disk tool (`disk-tool.c`: a machine's image cloned,
 * loop-attached and mounted, and its overlay mounted, by system calls in one process;
 * its header says why): beside this module in dist/.
 */
export const DEFAULT_DISK_TOOL_PATH: string = fileURLToPath(new URL('./disk-tool', import.meta.url));

/** Blank images being made, by path: concurrent creates of one size wait for one mkfs. */
const making = new Map<string, Promise<string>>();

/**
 * A formatted, sparse ext4 image of `diskMb` MiB in `dir`, made once per size (mkfs
 * into a temporary name, then renamed, so a crash never leaves a half-made blank under
 * the real name). Machines' disks are clones of it: a create runs no mkfs.
 */
export function blankImage(dir: string, diskMb: number): Promise<string> {
  const path = join(dir, `ext4-${diskMb}M.img`);
  let p = making.get(path);
  if (p === undefined) {
    p = makeBlank(dir, path, diskMb);
    making.set(path, p);
    // A failed attempt is not cached: the next create tries again.
    p.catch(() => making.delete(path));
  }
  return p;
}

async function makeBlank(dir: string, path: string, diskMb: number): Promise<string> {
  if (await stat(path).then(() => true, () => false)) return path;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Left by a server that died while formatting.
  for (const name of await readdir(dir)) if (name.startsWith(`ext4-${diskMb}M.img.`)) await rm(join(dir, name), { force: true });
  const tmp = `${path}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.truncate(diskMb * 1024 * 1024);
  } finally {
    await fh.close();
  }
  try {
    // -m 0: no blocks reserved for root, so the user gets all of disk_mb; lazy init keeps the image small.
    await run('mkfs.ext4', ['-q', '-F', '-m', '0', '-E', 'lazy_itable_init=1,lazy_journal_init=1,nodiscard', tmp]);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return path;
}
