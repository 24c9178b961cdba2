/**
 * Template layers: read-only directory trees, each stored once under `<data>/layers/<digest>`
 * by its content, and stacked as overlayfs lower layers (a layer may hold overlay
 * whiteouts: what a build step removed from the layers below).
 *
 * The digest is the SHA-256 of a canonical tar of the tree (sorted names, numeric owners,
 * extended attributes, mtimes zeroed), so two builds that made the same files share one
 * directory whatever time they ran at.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

export const LAYER_DIGEST_PATTERN = /^[0-9a-f]{64}$/;

/** Run a host command to its end; reject with its stderr when it fails. */
function tool(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (err = (err + c.toString('utf8')).slice(-2000)));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} failed (exit ${code}): ${err.trim()}`))));
  });
}

/** The content digest of a directory tree (see the module comment). */
export function digestTree(dir: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    const child = spawn(
      'tar',
      [
        '--create', '--file=-', '--format=posix', '--sort=name', '--numeric-owner', '--mtime=@0',
        '--xattrs', '--xattrs-include=*', '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
        '--directory', dir, '.',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    child.stdout.on('data', (c: Buffer) => hash.update(c));
    child.stderr.on('data', (c: Buffer) => (err = (err + c.toString('utf8')).slice(-2000)));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(hash.digest('hex')) : reject(new Error(`tar of ${dir} failed (exit ${code}): ${err.trim()}`))));
  });
}

/** Bytes a tree takes on disk. */
export async function treeBytes(dir: string): Promise<number> {
  const out = await tool('du', ['--summarize', '--block-size=1', dir]);
  return Number(out.split(/\s/)[0]) || 0;
}

/** The layer directories of one data dir. */
export class LayerStore {
  constructor(readonly dir: string) {}

  /** The directory of a stored layer. */
  path(digest: string): string {
    if (!LAYER_DIGEST_PATTERN.test(digest)) throw new Error(`not a layer digest: ${digest}`);
    return join(this.dir, digest);
  }

  /** A new empty directory, on the layers' file system, to build a layer in. */
  async staging(): Promise<string> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    return mkdtemp(join(this.dir, '.staging-'));
  }

  /**
   * Store a staged tree as a layer: moved in under its digest, or dropped when that layer
   * is stored already. Returns the digest.
   */
  async commit(staged: string): Promise<string> {
    const digest = await digestTree(staged);
    const target = this.path(digest);
    if (await stat(target).catch(() => null)) {
      await rm(staged, { recursive: true, force: true });
      return digest;
    }
    await rename(staged, target);
    return digest;
  }

  /** A copy of a directory (a directory template's root filesystem) as a layer. */
  async importTree(src: string): Promise<string> {
    const staged = await this.staging();
    try {
      await tool('cp', ['-a', '--reflink=auto', `${src}/.`, staged]);
      return await this.commit(staged);
    } catch (err) {
      await rm(staged, { recursive: true, force: true });
      throw err;
    }
  }

  /** Digests of every stored layer. */
  async list(): Promise<string[]> {
    return (await readdir(this.dir).catch(() => [] as string[])).filter((n) => LAYER_DIGEST_PATTERN.test(n));
  }

  /** Remove a layer (nothing may use it) and any staging leftovers of a crashed build. */
  async remove(digest: string): Promise<void> {
    await rm(this.path(digest), { recursive: true, force: true });
  }

  /** Staging directories left by builds that did not finish (a crash): removed at start-up. */
  async removeStaging(): Promise<void> {
    for (const n of await readdir(this.dir).catch(() => [] as string[])) {
      if (n.startsWith('.staging-')) await rm(join(this.dir, n), { recursive: true, force: true });
    }
  }
}
