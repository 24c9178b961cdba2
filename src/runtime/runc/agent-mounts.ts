/**
 * Which agent a machine runs, and from where on the host. The binary is installed once
 * per content (`<agents>/<sha256 prefix>/hangar-agent`) and never replaced in place: a
 * paused machine's memory maps the very file it started with, and CRIU restores it only
 * if that file is unchanged, so every machine and snapshot remembers its directory
 * (`agent-bin`) and is restored against it, whatever the server was rebuilt with since.
 */
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { AgentMounts } from './oci-spec.js';
import { copyUidBase } from '../user-namespace.js';
import { exists } from './snapshot-files.js';

/** The file beside a machine (and inside a snapshot) naming its agent's bin directory. */
const MARK = 'agent-bin';

/**
 * Install the built agent into `agentsDir` by its content and return the directory, or
 * null (with the reason) when there is no built agent: machines then run without one.
 */
export async function installAgent(builtPath: string, agentsDir: string): Promise<{ binDir: string | null; problem: string | null }> {
  const bytes = await readFile(builtPath).catch(() => null);
  if (bytes === null) return { binDir: null, problem: `${builtPath} is missing (run npm run build): machines run without the agent` };
  const binDir = join(agentsDir, createHash('sha256').update(bytes).digest('hex').slice(0, 16));
  const target = join(binDir, 'hangar-agent');
  if (!(await exists(target))) {
    await mkdir(binDir, { recursive: true, mode: 0o755 });
    const tmp = `${target}.${process.pid}.tmp`;
    await copyFile(builtPath, tmp);
    await chmod(tmp, 0o755);
    await rename(tmp, target);
  }
  return { binDir, problem: null };
}

/** The agent of a machine about to start for the first time: the current one, remembered beside it. */
export async function rememberAgent(machineDir: string, binDir: string | null, runDir: string): Promise<AgentMounts | null> {
  if (binDir === null) return null;
  await writeFile(join(machineDir, MARK), binDir);
  return { binDir, runDir };
}

/** The agent a machine started with (null: one from before the agent, or none was built). */
export async function machineAgent(machineDir: string, runDir: string): Promise<AgentMounts | null> {
  const binDir = await readFile(join(machineDir, MARK), 'utf8').catch(() => null);
  return binDir === null ? null : { binDir, runDir };
}

/** Record a machine's agent in a snapshot of it (a fork of the snapshot restores the same agent). */
export async function markSnapshot(machineDir: string, snapshotDir: string): Promise<void> {
  // Its user-namespace range: the snapshot's memory and disk hold that range's ids.
  await copyUidBase(machineDir, snapshotDir);
  const binDir = await readFile(join(machineDir, MARK), 'utf8').catch(() => null);
  if (binDir !== null) await writeFile(join(snapshotDir, MARK), binDir);
}

/** Copy a snapshot's agent mark into a copy of it (a revert), when it has one. */
export async function copyAgentMark(fromDir: string, toDir: string): Promise<void> {
  await copyUidBase(fromDir, toDir);
  const binDir = await readFile(join(fromDir, MARK), 'utf8').catch(() => null);
  if (binDir !== null) await writeFile(join(toDir, MARK), binDir);
}

/**
 * The agent a snapshot's restored processes run: the one they were dumped with, remembered
 * beside the machine. Agents are installed by content (`installAgent`), so the snapshot's is
 * looked for under this host's agents directory by its name: a snapshot taken on another
 * host sharing the snapshots directory finds the same binary here when both run one build.
 */
export async function snapshotAgent(snapshotDir: string, machineDir: string, runDir: string, currentBinDir: string | null): Promise<AgentMounts | null> {
  const dumped = await readFile(join(snapshotDir, MARK), 'utf8').catch(() => null);
  if (dumped === null) return null;
  const local = currentBinDir === null ? dumped : join(dirname(currentBinDir), basename(dumped));
  const binDir = (await exists(local)) ? local : dumped;
  if (!(await exists(binDir))) {
    throw new Error(`its processes run agent ${basename(dumped)}, which this host does not have (hosts sharing snapshots must run the same Hangar build)`);
  }
  await writeFile(join(machineDir, MARK), binDir);
  return { binDir, runDir };
}
