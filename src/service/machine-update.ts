import { HangarError, validationError } from '../domain/errors.js';
import { configProblems, type MachineConfig, type MachineRecord } from '../domain/machine.js';
import type { Caller } from '../domain/team.js';
import { assertTierAllows } from '../domain/isolation.js';
import { allows, assertAllows } from '../domain/transitions.js';
import { ResizeRefusedError, RuntimeError } from '../runtime/runtime.js';
import type { RestorePointRequest, UpdateMachineInput } from './machine-inputs.js';
import { reasonOf, type MachineCore } from './machine-core.js';
import type { MachineSnapshots } from './machine-snapshots.js';

/** Changing an existing machine: name, timers, auto snapshots, restore point and resources. */
export class MachineUpdates {
  constructor(
    private readonly core: MachineCore,
    private readonly snapshots: MachineSnapshots,
  ) {}

  /** Move the hard deadline to now + timeoutMs. */
  async refreshTimeout(caller: Caller, id: string, timeoutMs: number): Promise<MachineRecord> {
    const { core } = this;
    return core.locked(caller, id, 'timeout refresh', async (m) => {
      assertAllows(m, 'timeout_refresh');
      return core.recorded(m, 'update', async () => {
        m.timeoutMs = timeoutMs;
        m.timeoutAt = core.now() + timeoutMs;
        m.updatedAt = core.now();
        return core.save(m);
      });
    });
  }

  /**
   * Change a machine's name, timers or resources; a destroyed machine is a 409. A
   * resize applies to the running machine first and is saved only once it took effect,
   * so a refused or failed resize changes nothing (the other fields included).
   */
  async update(caller: Caller, id: string, input: UpdateMachineInput): Promise<MachineRecord> {
    const { core } = this;
    const wanted = input.config ?? {};
    const problems = configProblems(wanted);
    if (problems.length) throw validationError(problems);
    return core.locked(caller, id, 'update', async (m) => {
      assertAllows(m, 'update');
      // Refused before the event: a refused update records nothing.
      if (input.timeoutAction === 'hibernate') assertTierAllows(m, 'hibernate');
      if (input.autoSnapshot) assertTierAllows(m, 'auto_snapshot');
      if (input.restorePoint) assertTierAllows(m, 'restore_point');
      if (input.restorePoint) await this.restorePointProblem(m, input.restorePoint);
      const next: MachineConfig = { ...m.config, ...wanted };
      const resize = next.vcpus !== m.config.vcpus || next.memory_mb !== m.config.memory_mb || next.disk_mb !== m.config.disk_mb;
      if (resize) {
        if (next.disk_mb < m.config.disk_mb) {
          throw new HangarError(
            'UNSUPPORTED_OPERATION',
            `Shrinking the disk is not supported (machine ${m.id} has config.disk_mb ${m.config.disk_mb}, ${next.disk_mb} was asked); create a new machine with the smaller disk and copy the files over.`,
            { field: 'config.disk_mb', disk_mb: m.config.disk_mb },
          );
        }
        // Paused: the new limits could go into the bundle its restore reads, but a memory
        // limit below what its processes held would only fail at the resume (see docs).
        assertAllows(m, 'resize');
        assertTierAllows(m, 'resize');
      }
      // Only growth counts against the team's quotas (resize needs a running machine).
      const grow = (from: number, to: number): number => Math.max(0, to - from);
      const release = resize
        ? await core.quotas.reserve(m.teamId, {
            vcpus: grow(m.config.vcpus, next.vcpus),
            memory_mb: grow(m.config.memory_mb, next.memory_mb),
            disk_mb: grow(m.config.disk_mb, next.disk_mb),
          })
        : () => undefined;
      try {
        return await this.updateRecorded(m, input, resize, next);
      } finally {
        release();
      }
    });
  }

  private async updateRecorded(m: MachineRecord, input: UpdateMachineInput, resize: boolean, next: MachineConfig): Promise<MachineRecord> {
    const { core } = this;
    return core.recorded(m, 'update', async () => {
      if (resize) await this.resizeLocked(m, next);
      const now = core.now();
      if (input.name !== undefined) m.name = input.name;
      if (input.timeoutAction !== undefined) m.timeoutAction = input.timeoutAction;
      if (input.timeoutMs !== undefined) {
        m.timeoutMs = input.timeoutMs;
        // A paused machine's deadline restarts from its resume, which reads timeoutMs then.
        if (allows(m.status, 'timeout_refresh')) m.timeoutAt = now + input.timeoutMs;
      }
      if (input.restorePoint !== undefined) await this.setRestorePointLocked(m, input.restorePoint);
      if (input.autoSnapshot !== undefined) {
        const current = m.autoSnapshot;
        m.autoSnapshot =
          input.autoSnapshot === null
            ? null
            : {
                ...input.autoSnapshot,
                // The same frequency keeps its schedule; a new one starts its first period now.
                since: current?.frequency === input.autoSnapshot.frequency ? current.since : now,
                lastAt: current?.lastAt ?? null,
              };
        if (m.autoSnapshot) await this.snapshots.rotate(m);
      }
      m.updatedAt = now;
      return core.save(m);
    });
  }

  /** Apply new resources to a running machine, then set them on the record (saved by the caller). */
  private async resizeLocked(m: MachineRecord, next: MachineConfig): Promise<void> {
    const { core } = this;
    const template = await core.templateOf(m);
    const previous = m.config;
    try {
      await core.runtime.resize(core.spec({ ...m, config: next }, template), previous);
    } catch (err) {
      if (err instanceof ResizeRefusedError) throw refusedResize(m, next, err);
      core.log.error({ machine: m.id, err }, 'resize failed');
      if (err instanceof RuntimeError && !err.stillRunning) {
        await core.failStopped(m, `resize failed after its processes stopped: ${reasonOf(err)}; the writable layer is kept`);
        throw new HangarError('RUNTIME_FAILED', `Machine ${m.id} could not be resized: ${m.errorReason}.`, { machine_id: m.id });
      }
      throw new HangarError('RUNTIME_FAILED', `Machine ${m.id} could not be resized (${reasonOf(err)}); it is still running with its old resources.`, {
        machine_id: m.id,
      });
    }
    m.config = next;
  }

  /**
   * Refuse a restore point request that cannot be applied to the caller's machine as it
   * is now (a surface checks before it records an event); the update checks again.
   */
  async checkRestorePoint(caller: Caller, id: string, request: RestorePointRequest): Promise<void> {
    await this.restorePointProblem(await this.core.get(caller, id), request);
  }

  private async restorePointProblem(m: MachineRecord, request: RestorePointRequest): Promise<void> {
    if (request.snapshotId === undefined) {
      if (m.restorePoint === null && !allows(m.status, 'snapshot')) {
        throw new HangarError(
          'STATE_CONFLICT',
          `Machine ${m.id} is ${m.status}; a restore point without a snapshot id is taken from a running machine. Start it first, or name one of its snapshots.`,
          { status: m.status },
        );
      }
      return;
    }
    const snap = await this.core.store.getSnapshot(request.snapshotId);
    if (!snap || snap.teamId !== m.teamId || snap.machineId !== m.id || snap.kind === 'pause') {
      throw new HangarError(
        'UNKNOWN_SNAPSHOT',
        `Snapshot ${request.snapshotId} is not a snapshot of machine ${m.id}; a restore point must be one (list them with GET /v1/snapshots?machine_id=${m.id}), or omit the id to take one now.`,
        { snapshot_id: request.snapshotId, machine_id: m.id },
      );
    }
  }

  /** Point the machine's restore point at a snapshot of it (taken now without an id), or clear it (lock held, request checked). */
  private async setRestorePointLocked(m: MachineRecord, request: RestorePointRequest | null): Promise<void> {
    if (request === null) {
      m.restorePoint = null;
      return;
    }
    if (request.snapshotId !== undefined) {
      m.restorePoint = { frequency: 'shutdown', snapshotId: request.snapshotId };
      return;
    }
    if (m.restorePoint !== null) return;
    const snap = await this.snapshots.takeLocked(m, 'restore_point', 'its restore point');
    m.restorePoint = { frequency: 'shutdown', snapshotId: snap.id };
  }
}

/** The client's error for a resize the runtime refused before changing anything. */
function refusedResize(m: MachineRecord, next: MachineConfig, err: ResizeRefusedError): HangarError {
  switch (err.refusal) {
    case 'memory_in_use': {
      const usedMb = Math.ceil((err.usedBytes ?? 0) / (1024 * 1024));
      return new HangarError(
        'STATE_CONFLICT',
        `Machine ${m.id} uses ${usedMb} MiB of memory now, more than the ${next.memory_mb} MiB asked; the kernel refused to lower the limit. Free memory inside the machine (end processes) or ask for at least ${usedMb} MiB. Nothing was changed.`,
        { field: 'config.memory_mb', used_mb: usedMb, memory_mb: m.config.memory_mb },
      );
    }
    case 'mixed_time_namespaces':
      return new HangarError(
        'STATE_CONFLICT',
        `The disk of machine ${m.id} cannot grow while it runs: ${err.message}. Restart the machine (its files are kept), then grow the disk. Nothing was changed.`,
        { field: 'config.disk_mb' },
      );
    case 'disk_unsupported':
      return new HangarError('UNSUPPORTED_OPERATION', `Growing the disk of machine ${m.id} is not possible on this server: ${err.message}. Nothing was changed.`, {
        field: 'config.disk_mb',
      });
  }
}
