import { HangarError } from '../domain/errors.js';
import { newSnapshotId } from '../domain/ids.js';
import type { MachineRecord } from '../domain/machine.js';
import type { SnapshotRecord } from '../domain/snapshot.js';
import type { Caller } from '../domain/team.js';
import { assertTierAllows } from '../domain/isolation.js';
import { allows, assertAllows, isLive, stateConflict, transition } from '../domain/transitions.js';
import { NoSpaceError, RuntimeError } from '../runtime/runtime.js';
import { reasonOf, type MachineCore } from './machine-core.js';
import type { Template } from '../templates/templates.js';

/**
 * Pause (a snapshot of memory and disk), resume (the same processes), the revert to a
 * restore point after each pause, and restart (init again on the same files).
 */
export class PauseResume {
  /** Resumes in flight (from the API or from ingress), which ingress traffic waits for instead of a 409. */
  private readonly resuming = new Map<string, Promise<MachineRecord>>();

  constructor(private readonly core: MachineCore) {}

  /** Pause a running machine to a snapshot of its memory and disk. */
  async pause(caller: Caller, id: string): Promise<MachineRecord> {
    return this.core.locked(caller, id, 'pause', async (m) => {
      assertAllows(m, 'pause');
      assertTierAllows(m, 'pause');
      return this.core.recorded(m, 'stop', () => this.pauseLocked(m));
    });
  }

  /** Pause under the machine's lock; `memory: false` keeps the filesystem only. */
  async pauseLocked(m: MachineRecord, options: { memory?: boolean } = {}): Promise<MachineRecord> {
    const { core } = this;
    // Every pause comes here (the API's, hibernation, a Paperspace-style stop): one refusal covers them.
    assertTierAllows(m, 'pause');
    // The record exists before the files, so a crash mid-pause never orphans the moved disk image.
    const snap: SnapshotRecord = {
      id: newSnapshotId(),
      teamId: m.teamId,
      machineId: m.id,
      kind: 'pause',
      createdAt: core.now(),
      sizeBytes: 0,
      memory: false,
      template: m.template,
      templateBuild: m.templateBuild,
      config: m.config,
      env: m.env,
      cwd: m.cwd,
      volumes: m.volumes,
    };
    await core.store.insertSnapshot(snap);
    try {
      const result = await core.runtime.pause(m.id, snap.id, options);
      snap.memory = result.memory;
      snap.sizeBytes = result.sizeBytes;
      await core.store.updateSnapshot(snap);
    } catch (err) {
      core.log.error({ machine: m.id, err }, 'pause failed');
      if (err instanceof RuntimeError && err.stillRunning) {
        await core.store.deleteSnapshot(snap.id);
        if (err instanceof NoSpaceError) {
          throw new HangarError('STORAGE_FULL', `Machine ${m.id} could not be paused: the server's data dir is full (${err.message}); it is still running, and the partial snapshot was removed.`, { machine_id: m.id });
        }
        throw new HangarError('SNAPSHOT_FAILED', `Machine ${m.id} could not be paused (${err.message}); it is still running.`, { machine_id: m.id });
      }
      await core.failStopped(m, `pause failed after its processes stopped: ${reasonOf(err)}; the writable layer is kept`);
      throw new HangarError('SNAPSHOT_FAILED', `Machine ${m.id} could not be paused: ${m.errorReason}.`, { machine_id: m.id });
    }
    // A paused machine keeps its address (its network namespace stays); only capacity is freed.
    core.unhold(m.id);
    transition(m, 'paused');
    m.pausedAt = core.now();
    m.snapshotId = snap.id;
    await core.save(m);
    if (m.restorePoint !== null) await this.revertLocked(m, snap, m.restorePoint.snapshotId);
    return m;
  }

  /**
   * Replace a paused machine's state (memory and disk) with a copy of one of its
   * snapshots: the next resume continues from there. A failure leaves the pause
   * snapshot as it was (the machine resumes from its state at the stop).
   */
  private async revertLocked(m: MachineRecord, pauseSnap: SnapshotRecord, sourceId: string): Promise<void> {
    const { core } = this;
    const started = performance.now();
    try {
      const result = await core.runtime.revertSnapshot(pauseSnap.id, sourceId);
      pauseSnap.memory = result.memory;
      pauseSnap.sizeBytes = result.sizeBytes;
      await core.store.updateSnapshot(pauseSnap);
    } catch (err) {
      core.log.error({ machine: m.id, err }, 'revert to the restore point failed');
      throw new HangarError(
        'RESTORE_FAILED',
        `Machine ${m.id} is stopped, but could not be reverted to its restore point ${sourceId} (${reasonOf(err)}); a start resumes it as it was at the stop.`,
        { machine_id: m.id, snapshot_id: sourceId },
      );
    }
    // The restore point's disk image comes back with its size, and its memory was taken
    // under its limits: the machine's resources are the restore point's again.
    const source = await core.store.getSnapshot(sourceId);
    if (source && JSON.stringify(source.config) !== JSON.stringify(m.config)) {
      m.config = { ...source.config };
      pauseSnap.config = { ...source.config };
      await core.store.updateSnapshot(pauseSnap);
      await core.save(m);
    }
    core.log.info({ machine: m.id, snapshot: sourceId, ms: Math.round(performance.now() - started) }, 'machine reverted to its restore point');
  }

  /** Resume a paused machine from its snapshot: same processes, timers restarted. */
  async resume(caller: Caller, id: string): Promise<MachineRecord> {
    await this.core.assertHere(await this.core.get(caller, id));
    // A second API resume still gets the lock's 409; ingress traffic waits for this one.
    return this.track(id, this.core.locks.with(id, 'resume', async () => this.resumeLocked((await this.core.store.getMachine(id))!)));
  }

  /**
   * Resume a paused machine created with auto_resume because ingress traffic reached it.
   * Concurrent callers share one resume, and one already in flight (from the API too) is
   * waited for. A machine that is running by then is returned as it is.
   */
  resumeForTraffic(id: string): Promise<MachineRecord> {
    const inFlight = this.resuming.get(id);
    if (inFlight) return inFlight;
    return this.track(
      id,
      this.core.locks.with(id, 'resume', async () => {
        const m = await this.core.store.getMachine(id);
        if (!m || !isLive(m.status)) throw new HangarError('NOT_FOUND', `Machine ${id} does not exist.`);
        await this.core.assertHere(m);
        if (allows(m.status, 'traffic')) return m;
        if (!m.autoResume) throw stateConflict(m, 'traffic', 'running (it was not created with auto_resume)');
        return this.resumeLocked(m);
      }),
    );
  }

  private track(id: string, resume: Promise<MachineRecord>): Promise<MachineRecord> {
    if (this.resuming.has(id)) return resume;
    this.resuming.set(id, resume);
    const done = () => {
      if (this.resuming.get(id) === resume) this.resuming.delete(id);
    };
    resume.then(done, done);
    return resume;
  }

  private async resumeLocked(m: MachineRecord): Promise<MachineRecord> {
    const { core } = this;
    if (!allows(m.status, 'resume') || m.snapshotId === null) throw stateConflict(m, 'resume');
    const template = await core.templateOf(m);
    core.ensureCapacity();
    const snapshotId = m.snapshotId;
    // A paused machine keeps its disk in the team's quota; running again takes its machine, vCPUs and memory.
    const release = await core.quotas.reserve(m.teamId, { machines: 1, vcpus: m.config.vcpus, memory_mb: m.config.memory_mb });
    try {
      return await core.recorded(m, 'start', () => this.resumeRecorded(m, template, snapshotId));
    } finally {
      release();
    }
  }

  private async resumeRecorded(m: MachineRecord, template: Template, snapshotId: string): Promise<MachineRecord> {
    const { core } = this;
    // A machine paused before networking existed gets its address now.
    const assigned = m.privateIp === null;
    if (assigned) m.privateIp = core.allocateIp(m.id);
    try {
      await core.runtime.resume(core.spec(m, template), snapshotId);
    } catch (err) {
      if (assigned) {
        core.releaseIp(m);
        m.privateIp = null;
      }
      core.log.error({ machine: m.id, err }, 'resume failed');
      throw new HangarError(
        'RESTORE_FAILED',
        `Machine ${m.id} could not be resumed (${reasonOf(err)}); it stays paused with snapshot ${snapshotId} intact.`,
        { machine_id: m.id, snapshot_id: snapshotId },
      );
    }
    await core.store.deleteSnapshot(snapshotId);
    core.hold(m.id);
    const now = core.now();
    transition(m, 'resumed');
    m.snapshotId = null;
    m.pausedAt = null;
    m.resumedAt = now;
    m.timeoutAt = now + m.timeoutMs;
    return core.save(m);
  }

  /**
   * Restart a running machine's processes from its template's init, its files kept:
   * every process is killed and init starts again on the same writable layer.
   */
  async restart(caller: Caller, id: string): Promise<MachineRecord> {
    const { core } = this;
    return core.locked(caller, id, 'restart', async (m) => {
      assertAllows(m, 'restart');
      return core.recorded(m, 'restart', async () => {
        const template = await core.templateOf(m);
        try {
          await core.runtime.restart(core.spec(m, template));
        } catch (err) {
          core.log.error({ machine: m.id, err }, 'restart failed');
          await core.failStopped(m, `restart failed: ${reasonOf(err)}; the writable layer is kept`);
          throw new HangarError('RUNTIME_FAILED', `Machine ${m.id} could not be restarted: ${m.errorReason}.`, { machine_id: m.id });
        }
        m.updatedAt = core.now();
        return core.save(m);
      });
    });
  }
}
