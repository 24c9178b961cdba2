/**
 * User namespaces of container-tier machines: a machine's uids and gids 0..65535 are a
 * range of unprivileged ids on the host (`base`..`base + 65535`), so its root is no
 * host root. Each machine gets a range of its own when it is created; a fork of one of
 * its snapshots keeps it (the snapshot's memory and disk were written with those ids).
 *
 * The range is written beside the machine (`uid-base`), copied into its snapshots and
 * into forks of them, as the agent's mark is (agent-mounts.ts): a machine without the
 * file has no user namespace (made before they existed, or with them switched off),
 * and keeps running as it always did.
 */
import { createHash } from 'node:crypto';
import { chmod, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** Ids in each machine's range. */
export const UID_RANGE_SIZE = 65_536;
/** The first range starts here: above the ranges `useradd` hands out in /etc/subuid (100000 up) and any login's uid. */
export const FIRST_UID_BASE = 2 ** 30;
/** Ranges that fit below 2^32 - 1 (the kernel's invalid id). */
const RANGE_COUNT = Math.floor((2 ** 32 - 1 - FIRST_UID_BASE) / UID_RANGE_SIZE);

const MARK = 'uid-base';

/** The range a machine (or snapshot) directory records, or null: it has no user namespace. */
export async function readUidBase(dir: string): Promise<number | null> {
  const text = await readFile(join(dir, MARK), 'utf8').catch(() => null);
  if (text === null) return null;
  const base = Number(text.trim());
  return Number.isSafeInteger(base) && base >= FIRST_UID_BASE ? base : null;
}

/** Record a range in a machine's (or snapshot's) directory. */
export async function writeUidBase(dir: string, base: number): Promise<void> {
  await writeFile(join(dir, MARK), `${base}\n`);
}

/** Copy a directory's range into another (a snapshot of a machine, a fork of a snapshot), when it has one. */
export async function copyUidBase(fromDir: string, toDir: string): Promise<number | null> {
  const base = await readUidBase(fromDir);
  if (base !== null) await writeUidBase(toDir, base);
  return base;
}

/** The machine in `machinesDir` (other than `except`) whose range is `base`, or null. */
export async function rangeHolder(machinesDir: string, base: number, except: string): Promise<string | null> {
  for (const name of await readdir(machinesDir).catch(() => [] as string[])) {
    if (name !== except && (await readUidBase(join(machinesDir, name))) === base) return name;
  }
  return null;
}

/**
 * Where a server's cursor starts, from something that differs between servers (its
 * instance prefix): servers that keep snapshots in one shared directory hand out ranges
 * from different places, so a paused machine that moves to another host rarely finds its
 * range held there (`rangeHolder` finds the machine holding it, and the runtime refuses the move).
 */
export function firstRangeFor(seed: string): number {
  return parseInt(createHash('sha256').update(seed).digest('hex').slice(0, 8), 16) % RANGE_COUNT;
}

/**
 * Hands out ranges no machine or snapshot on this host holds. The ranges in use are read
 * from the machines' and snapshots' directories once, then a cursor moves on through the
 * free ones; when it comes round, the directories are read again (ranges of machines
 * and snapshots deleted since are free again).
 */
export class UidRanges {
  private used: Set<number> | null = null;
  private cursor: number;
  private serial: Promise<unknown> = Promise.resolve();

  /** `firstRange`: where the cursor starts (`firstRangeFor`). */
  constructor(
    private readonly dirs: readonly string[],
    firstRange = 0,
  ) {
    this.cursor = firstRange % RANGE_COUNT;
  }

  /** A range taken by a machine that arrived from another host: never handed out while it is held. */
  claim(base: number): void {
    this.used?.add(base);
  }


  /** A range for a new machine. */
  allocate(): Promise<number> {
    const next = this.serial.then(() => this.pick());
    this.serial = next.catch(() => undefined);
    return next;
  }

  private async pick(): Promise<number> {
    this.used ??= await this.scan();
    for (let pass = 0; pass < 2; pass++) {
      for (; this.cursor < RANGE_COUNT; this.cursor++) {
        const base = FIRST_UID_BASE + this.cursor * UID_RANGE_SIZE;
        if (this.used.has(base)) continue;
        this.used.add(base);
        this.cursor++;
        return base;
      }
      this.cursor = 0;
      this.used = await this.scan();
    }
    throw new Error(`every one of the host's ${RANGE_COUNT} uid ranges is held by a machine or snapshot`);
  }

  private async scan(): Promise<Set<number>> {
    const used = new Set<number>();
    for (const dir of this.dirs) {
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        const base = await readUidBase(join(dir, name));
        if (base !== null) used.add(base);
      }
    }
    return used;
  }
}

/**
 * runc mounts a user-namespaced machine's root, agent and volumes from inside its user
 * namespace, as the machine's root, which must be able to pass through every directory
 * above them: each from `dir` up to / is given search permission for others (only search:
 * names inside are not listed, and files keep their own modes).
 */
export async function allowTraversal(dir: string): Promise<void> {
  for (let at = dir; ; at = dirname(at)) {
    const st = await stat(at);
    if ((st.mode & 0o001) === 0) await chmod(at, (st.mode & 0o7777) | 0o001);
    if (dirname(at) === at) return;
  }
}
