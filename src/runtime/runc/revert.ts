import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { RuntimeError, type SnapshotResult } from '../runtime.js';
import { bestEffort, errorMessage } from './best-effort.js';
import { run } from './command.js';
import { copyAgentMark } from './agent-mounts.js';
import type { RuncContext } from './runc-context.js';
import { allocatedBytes, exists, manifestProblem, snapshotPaths } from './snapshot-files.js';

/** Suffix of the checked copy being built beside a snapshot; names with a dot are no snapshot id. */
const NEXT = '.revert';
/** Suffix of the snapshot's replaced files between the two renames of a revert. */
const OLD = '.old';

/**
 * Replace snapshot `targetId`'s files with copies of snapshot `sourceId`'s disk image,
 * CRIU images and manifest. The copies are built and checked beside the target, then
 * swapped in with two renames, so a failure before the swap leaves the target untouched
 * and a crash between the renames is finished by `snapshotsOnDisk`.
 */
export async function revertSnapshot(ctx: RuncContext, targetId: string, sourceId: string): Promise<SnapshotResult> {
  const source = snapshotPaths(ctx.snapshotsDir, sourceId);
  const target = snapshotPaths(ctx.snapshotsDir, targetId);
  const damage = (await exists(source.image)) ? await manifestProblem(source) : 'its disk image is missing';
  if (damage) throw new RuntimeError(`snapshot ${sourceId} cannot be reverted to: ${damage}`, targetId, 'check snapshot');
  // A start after a crash removes leftover `.revert` and `.old` directories as orphans.
  const next = `${target.dir}${NEXT}`;
  const old = `${target.dir}${OLD}`;
  await rm(next, { recursive: true, force: true });
  try {
    await mkdir(next, { recursive: true });
    await run('cp', ['--sparse=always', source.image, join(next, 'disk.img')], 300_000);
    if (await exists(source.criu)) await run('cp', ['-a', source.criu, join(next, 'criu')], 300_000);
    await copyAgentMark(source.dir, next);
    // The same files under the same names: the source's manifest describes the copy.
    await run('cp', [join(source.dir, 'manifest.json'), join(next, 'manifest.json')]);
    const copied = snapshotPaths(ctx.snapshotsDir, `${targetId}${NEXT}`);
    const problem = await manifestProblem(copied);
    if (problem) throw new Error(`the copy does not match: ${problem}`);
    await rm(old, { recursive: true, force: true });
    await rename(target.dir, old);
    await rename(next, target.dir);
  } catch (err) {
    // Leftovers of the copy are orphans the next start removes; the target must come back.
    await bestEffort(ctx.log, targetId, 'remove the copy of a failed revert', rm(next, { recursive: true, force: true }));
    if (!(await exists(target.dir)) && (await exists(old))) {
      await bestEffort(ctx.log, targetId, 'put a snapshot back after a failed revert', rename(old, target.dir));
    }
    throw new RuntimeError(`could not revert to snapshot ${sourceId}: ${errorMessage(err)}`, targetId, 'revert');
  }
  await rm(old, { recursive: true, force: true });
  return { memory: await exists(target.inventory), sizeBytes: await allocatedBytes(target.dir) };
}

/**
 * Ids of snapshots with files on disk, after finishing any revert a crash interrupted
 * between its two renames (so the start-up sweep does not delete the checked copy as an orphan).
 */
export async function snapshotsOnDisk(ctx: RuncContext): Promise<string[]> {
  // No snapshots directory yet: no snapshots.
  const names = await readdir(ctx.snapshotsDir).catch(() => [] as string[]);
  for (const name of names.filter((n) => n.endsWith(NEXT))) {
    const id = name.slice(0, -NEXT.length);
    if (names.includes(id) || !names.includes(`${id}${OLD}`)) continue;
    await rename(join(ctx.snapshotsDir, name), join(ctx.snapshotsDir, id));
    names.push(id);
  }
  // Dot files (the directory's store id) are no snapshots.
  return (await readdir(ctx.snapshotsDir).catch(() => [] as string[])).filter((n) => !n.startsWith('.'));
}
