/**
 * Volumes on the host: one sparse ext4 image per volume (`<volumes>/<id>/volume.img`,
 * its size the hard limit, so a full volume is ENOSPC inside the machine), loop-mounted
 * once at `<volumes>/mounts/<prefix>-<id>` while at least one running machine uses it
 * and bind-mounted from there into each (read-only binds for read-only attachments).
 * runc hands bind mounts to CRIU as external mounts, so checkpoints never dump the
 * volume and restores bind it again from the host mount.
 */
import { mkdir, open, readdir, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { VolumeMountSpec } from '../runtime.js';
import { errorMessage, type RuntimeLogger } from './best-effort.js';
import { CommandError, run } from './command.js';
import type { VolumeBind } from './oci-spec.js';
import { mountPoints } from './writable-layer.js';

const MIB = 1024 * 1024;

/** Options of the host side of volumes. */
export interface HostVolumesOptions {
  /** Directory holding one sub-directory per volume, and `mounts/`. */
  volumesDir: string;
  /** Carried by every mount point: two servers never touch each other's mounts. */
  instancePrefix: string;
  log: RuntimeLogger;
}

/**
 * The volumes of one instance on the host, and which running machines use each host
 * mount (a count kept in memory, rebuilt by `reconcile` at start). Mounts and unmounts
 * of one volume run one at a time.
 */
export class HostVolumes {
  /** Volume id → machines whose running container binds its host mount. */
  private readonly users = new Map<string, Set<string>>();
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(private readonly o: HostVolumesOptions) {}

  /** The directory of a volume's files. */
  dir(id: string): string {
    return join(this.o.volumesDir, id);
  }

  /** A volume's image. */
  image(id: string): string {
    return join(this.dir(id), 'volume.img');
  }

  private get mountsDir(): string {
    return join(this.o.volumesDir, 'mounts');
  }

  /** Where a volume is mounted on the host while a machine uses it. */
  mountPoint(id: string): string {
    return join(this.mountsDir, `${this.o.instancePrefix}-${id}`);
  }

  /** The bind mounts of a machine's volumes, for its OCI spec. */
  binds(specs: readonly VolumeMountSpec[]): VolumeBind[] {
    return specs.map((s) => ({ source: this.mountPoint(s.id), destination: s.mountPath, readOnly: s.readOnly }));
  }

  /** Create a volume's sparse image and its file system; on failure its directory is removed. */
  async create(id: string, sizeMb: number): Promise<void> {
    const dir = this.dir(id);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    try {
      const fh = await open(this.image(id), 'wx', 0o600);
      try {
        await fh.truncate(sizeMb * MIB);
      } finally {
        await fh.close();
      }
      // As a machine's disk (writable-layer.ts): -m 0 gives the user every block; lazy init keeps mkfs fast.
      await run('mkfs.ext4', ['-q', '-F', '-m', '0', '-E', 'lazy_itable_init=1,lazy_journal_init=1,nodiscard', this.image(id)], 120_000);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** Delete a volume's files, refused while a running machine uses it; a stale host mount is removed first. */
  async delete(id: string): Promise<void> {
    await this.serial(id, async () => {
      const users = this.users.get(id);
      if (users && users.size > 0) throw new Error(`volume ${id} is mounted by running machine(s) ${[...users].join(', ')}`);
      await this.unmount(id, await mountPoints());
      await rm(this.dir(id), { recursive: true, force: true });
    });
  }

  /** Ids of volumes with a directory. */
  async onDisk(): Promise<string[]> {
    const names = await readdir(this.o.volumesDir).catch(() => [] as string[]);
    return names.filter((n) => n.startsWith('vol_'));
  }

  /**
   * Machine `machineId` is about to run with these volumes: mount each that is not yet
   * mounted and count the machine as a user. On failure the machine uses none of them.
   */
  async acquire(machineId: string, specs: readonly VolumeMountSpec[]): Promise<void> {
    try {
      for (const s of specs) {
        await this.serial(s.id, async () => {
          const users = this.users.get(s.id) ?? new Set<string>();
          if (users.size === 0) await this.mount(s);
          users.add(machineId);
          this.users.set(s.id, users);
        });
      }
    } catch (err) {
      await this.release(machineId);
      throw err;
    }
  }

  /** Machine `machineId` no longer runs: it stops using its volumes, and a host mount nobody uses goes. */
  async release(machineId: string): Promise<void> {
    const held = [...this.users].filter(([, users]) => users.has(machineId)).map(([id]) => id);
    for (const id of held) {
      await this.serial(id, async () => {
        // Read again under the volume's turn: an earlier turn may have replaced the set.
        const users = this.users.get(id);
        if (!users?.delete(machineId) || users.size > 0) return;
        this.users.delete(id);
        await this.unmount(id, await mountPoints());
      });
    }
  }

  /**
   * At server start: these machines run with these volumes (their containers kept their
   * binds), so their host mounts stay or are made again; every other mount of this
   * instance's volumes is removed (left by a crash).
   */
  async reconcile(running: ReadonlyMap<string, readonly VolumeMountSpec[]>): Promise<void> {
    this.users.clear();
    const mounted = await mountPoints();
    for (const [machineId, specs] of running) {
      for (const s of specs) {
        const users = this.users.get(s.id) ?? new Set<string>();
        if (users.size === 0 && !mounted.has(this.mountPoint(s.id))) await this.mount(s);
        users.add(machineId);
        this.users.set(s.id, users);
      }
    }
    for (const id of this.mountedIds(mounted)) {
      if (!this.users.has(id)) await this.unmount(id, mounted);
    }
  }

  /** At server close: unmount every host mount no running machine uses (the ones in use stay for the next start). */
  async teardown(): Promise<void> {
    const mounted = await mountPoints();
    for (const id of this.mountedIds(mounted)) {
      if (!this.users.get(id)?.size) await this.serial(id, () => this.unmount(id, mounted));
    }
    // Empty once nothing is mounted; ENOENT or ENOTEMPTY are both fine.
    await rmdir(this.mountsDir).catch(() => undefined);
  }

  /** Ids of this instance's volumes mounted on the host. */
  private mountedIds(mounted: ReadonlySet<string>): string[] {
    const prefix = join(this.mountsDir, `${this.o.instancePrefix}-`);
    return [...mounted].filter((p) => p.startsWith(prefix)).map((p) => p.slice(prefix.length));
  }

  private async mount(s: VolumeMountSpec): Promise<void> {
    const at = this.mountPoint(s.id);
    await mkdir(at, { recursive: true, mode: 0o700 });
    // Read-write on the host whatever the attachments: one mount serves a writer and its
    // readers, and read-only ones are read-only binds. nosuid, nodev: what a machine wrote
    // there means nothing to the host.
    await run('mount', ['-o', 'loop,noatime,nosuid,nodev', s.image, at]);
  }

  private async unmount(id: string, mounted: ReadonlySet<string>): Promise<void> {
    const at = this.mountPoint(id);
    if (mounted.has(at)) {
      try {
        await run('umount', [at]);
      } catch (err) {
        // Busy (a process still holds it open): detach now; the kernel frees it (and the loop device) when released.
        if (!(err instanceof CommandError)) throw err;
        this.o.log.warn({ volumeId: id, err: errorMessage(err) }, 'volume busy at unmount; detached lazily');
        await run('umount', ['-l', at]);
      }
    }
    await rmdir(at).catch(() => undefined);
  }

  /** Run `fn` after every earlier mount or unmount of this volume. */
  private serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.queues.set(id, tail);
    void tail.then(() => {
      if (this.queues.get(id) === tail) this.queues.delete(id);
    });
    return next;
  }
}
