import { HangarError } from '../domain/errors.js';
import { newSnapshotId } from '../domain/ids.js';
import { MACHINE_STATUSES, type MachineRecord } from '../domain/machine.js';
import type { SnapshotKind, SnapshotRecord } from '../domain/snapshot.js';
import type { Caller } from '../domain/team.js';
import { assertTierAllows } from '../domain/isolation.js';
import { allows, assertAllows, isLive } from '../domain/transitions.js';
import { callerReaches, listingNarrowedTo } from './access.js';
import { reasonOf, type MachineCore } from './machine-core.js';
import { NoSpaceError } from '../runtime/runtime.js';

/**
 * Live snapshots of running machines (manual, initial, restore point, automatic), their
 * rotation, and who sees which snapshot. Pause snapshots belong to pause-resume.ts.
 */
export class MachineSnapshots {
  constructor(private readonly core: MachineCore) {}

  /** Snapshot a running machine without stopping it. */
  async snapshot(caller: Caller, id: string): Promise<SnapshotRecord> {
    return this.core.locked(caller, id, 'snapshot', async (m) => {
      assertAllows(m, 'snapshot');
      assertTierAllows(m, 'snapshot');
      // Its size is known only once taken: refused when the team's snapshots already fill the quota.
      const release = await this.core.quotas.reserve(m.teamId, { snapshot_bytes: 1 });
      try {
        return await this.takeLocked(m, 'manual', 'a snapshot');
      } finally {
        release();
      }
    });
  }

  /** Take a live snapshot of a running machine (lock held); SNAPSHOT_FAILED leaves it running. */
  async takeLocked(m: MachineRecord, kind: Exclude<SnapshotKind, 'pause'>, what: string): Promise<SnapshotRecord> {
    assertTierAllows(m, 'snapshot');
    const snapId = newSnapshotId();
    let result;
    try {
      result = await this.core.runtime.snapshot(m.id, snapId);
    } catch (err) {
      this.core.log.error({ machine: m.id, err, kind }, 'snapshot failed');
      if (err instanceof NoSpaceError) {
        throw new HangarError('STORAGE_FULL', `Machine ${m.id} could not take ${what}: the server's data dir is full (${err.message}); it is still running, and the partial snapshot was removed.`, { machine_id: m.id });
      }
      throw new HangarError('SNAPSHOT_FAILED', `Machine ${m.id} could not take ${what} (${reasonOf(err)}); it is still running.`, { machine_id: m.id });
    }
    const snap: SnapshotRecord = {
      id: snapId,
      teamId: m.teamId,
      machineId: m.id,
      kind,
      createdAt: this.core.now(),
      sizeBytes: result.sizeBytes,
      memory: result.memory,
      template: m.template,
      templateBuild: m.templateBuild,
      config: m.config,
      env: m.env,
      cwd: m.cwd,
      volumes: m.volumes,
    };
    await this.core.store.insertSnapshot(snap);
    return snap;
  }

  /**
   * The scheduled automatic snapshot (lock held): taken live, then the oldest automatic
   * ones beyond the machine's keep count are deleted. Taken or failed, the next one is
   * due a period later; a failure is the `snapshot` event's error and changes nothing else.
   */
  async autoLocked(m: MachineRecord): Promise<void> {
    if (m.autoSnapshot === null || !allows(m.status, 'snapshot')) return;
    m.autoSnapshot.lastAt = this.core.now();
    try {
      await this.takeLocked(m, 'auto', 'its automatic snapshot');
      await this.rotate(m);
    } finally {
      await this.core.save(m);
    }
  }

  /** Delete the machine's oldest automatic snapshots beyond its keep count (never its restore point). */
  async rotate(m: MachineRecord): Promise<void> {
    if (m.autoSnapshot === null) return;
    const autos = (await this.core.store.listSnapshots(m.teamId, m.id)).filter((s) => s.kind === 'auto' && s.id !== m.restorePoint?.snapshotId);
    for (const old of autos.slice(m.autoSnapshot.keep)) {
      await this.core.runtime.deleteSnapshot(old.id);
      await this.core.store.deleteSnapshot(old.id);
    }
  }

  /** The caller's snapshots, newest first: for a member, those of machines it reaches. */
  async list(caller: Caller, machineId?: string): Promise<SnapshotRecord[]> {
    const all = await this.core.store.listSnapshots(caller.team.id, machineId);
    const narrowed = listingNarrowedTo(caller);
    if (narrowed === undefined) return all;
    const reached = await this.core.store.listMachines({ teamId: caller.team.id, statuses: MACHINE_STATUSES, visibleTo: narrowed });
    const ids = new Set(reached.map((m) => m.id));
    return all.filter((s) => ids.has(s.machineId));
  }

  /** A snapshot is the caller's when the caller reaches the machine it was taken of. */
  async reachable(caller: Caller, s: SnapshotRecord): Promise<boolean> {
    if (s.teamId !== caller.team.id) return false;
    if (listingNarrowedTo(caller) === undefined) return true;
    const m = await this.core.store.getMachine(s.machineId);
    return m !== null && (await callerReaches(this.core.store, caller, m));
  }

  /** One of the caller's snapshots, or NOT_FOUND. */
  async get(caller: Caller, id: string): Promise<SnapshotRecord> {
    const s = await this.core.store.getSnapshot(id);
    if (!s || !(await this.reachable(caller, s))) throw new HangarError('NOT_FOUND', `Snapshot ${id} does not exist for this team.`);
    return s;
  }

  /** Delete a snapshot; one a paused machine needs to resume, or a restore point, is a 409. */
  async delete(caller: Caller, id: string): Promise<void> {
    const s = await this.get(caller, id);
    if (s.kind === 'pause') {
      throw new HangarError('STATE_CONFLICT', `Snapshot ${id} holds paused machine ${s.machineId}; resume or destroy that machine instead.`, {
        machine_id: s.machineId,
      });
    }
    const owner = await this.core.store.getMachine(s.machineId);
    if (owner && isLive(owner.status) && owner.restorePoint?.snapshotId === id) {
      throw new HangarError('STATE_CONFLICT', `Snapshot ${id} is the restore point of machine ${owner.id}; disable or change its restore point first.`, {
        machine_id: owner.id,
      });
    }
    await this.core.runtime.deleteSnapshot(id);
    await this.core.store.deleteSnapshot(id);
  }
}
