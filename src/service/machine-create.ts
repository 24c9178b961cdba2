import { createHash } from 'node:crypto';
import { HangarError, validationError, type FieldProblem } from '../domain/errors.js';
import { newMachineId } from '../domain/ids.js';
import { tierRefusal, type TierOperation } from '../domain/isolation.js';
import { DEFAULT_CONFIG, DEFAULT_ISOLATION, DEFAULT_TIMEOUT_MS, newMachineRecord, type Isolation, type MachineRecord, type WarmPoolCheckout } from '../domain/machine.js';
import { DEFAULT_OUTBOUND, isDefaultOutbound } from '../domain/network.js';
import type { SnapshotRecord } from '../domain/snapshot.js';
import type { Caller } from '../domain/team.js';
import type { IdempotencyRecord } from '../store/store.js';
import { transition } from '../domain/transitions.js';
import { NetworkConflictError } from '../domain/private-network.js';
import { VolumeConflictError, type VolumeAttachment } from '../domain/volume.js';
import { desktopEnv } from '../templates/desktop.js';
import { cwdProblem, type Template } from '../templates/templates.js';
import { autoSnapshotSettings, type CreateMachineInput, type CreateOptions } from './machine-inputs.js';
import { reasonOf, type MachineCore } from './machine-core.js';
import type { MachineSnapshots } from './machine-snapshots.js';
import { startupScriptCopy } from './startup-script-service.js';
import { unknownNetwork, type NetworkService } from './network-service.js';
import { attachRefusal, type VolumeService } from './volume-service.js';
import type { WarmPoolService } from './warm-pools.js';

/** Creating machines: idempotency, forks from snapshots, warm-pool checkout, cold starts. */
export class MachineCreator {
  private readonly inflight = new Map<string, Promise<MachineRecord>>();

  constructor(
    private readonly core: MachineCore,
    private readonly snapshots: MachineSnapshots,
    private readonly pools: WarmPoolService,
    private readonly volumes: VolumeService,
    private readonly networks: NetworkService,
  ) {}

  /**
   * Create and start a machine; with an idempotency key, a retry returns the first result.
   * Concurrent creates with one key on one server wait for the first. On servers sharing a
   * store (a fleet) each may start one: the first to record the key wins, and every other
   * removes its own machine (recorded, never started) and answers with the winner's once it
   * is out of `creating`.
   */
  async create(caller: Caller, input: CreateMachineInput, idempotencyKey?: string, options: CreateOptions = {}): Promise<MachineRecord> {
    const { store } = this.core;
    const notify = options.onRecorded;
    if (idempotencyKey === undefined) return this.createNow(caller, input, notify && (async (m) => notify({ ...m })));
    const requestHash = createHash('sha256').update(JSON.stringify(input)).digest('hex');
    // Each user has its own keys: one member's retry never returns another member's machine.
    const key = caller.user ? `${caller.user.id}\0${idempotencyKey}` : idempotencyKey;
    const slot = `${caller.team.id}\0${key}`;
    const inflight = this.inflight.get(slot);
    // Only its outcome in the store matters here: the first caller gets its error.
    if (inflight) await inflight.catch(() => undefined);
    const first = async (prior: IdempotencyRecord): Promise<MachineRecord | null> => {
      if (prior.requestHash !== requestHash) {
        throw new HangarError('IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was used with a different request body; use a new key for a new machine.');
      }
      const m = await this.settled(prior.machineId);
      if (m) notify?.({ ...m });
      return m;
    };
    const prior = await store.getIdempotency(caller.team.id, key);
    if (prior) {
      const m = await first(prior);
      if (m) return m;
    }
    const p = this.createNow(caller, input, async (m) => {
      try {
        await store.insertIdempotency({ teamId: caller.team.id, key, requestHash, machineId: m.id, createdAt: m.createdAt });
      } catch (err) {
        // Another server recorded this key first: this machine goes (createWithin removes it), the winner's is the answer.
        const winner = await store.getIdempotency(caller.team.id, key);
        if (winner && winner.machineId !== m.id) throw new LostIdempotencyRace(winner);
        throw err;
      }
      notify?.({ ...m });
    });
    this.inflight.set(slot, p);
    try {
      return await p;
    } catch (err) {
      if (!(err instanceof LostIdempotencyRace)) throw err;
      const m = await first(err.winner);
      if (!m) throw new HangarError('IDEMPOTENCY_KEY_REUSED', `The machine this Idempotency-Key created (${err.winner.machineId}) no longer exists; use a new key for a new machine.`);
      return m;
    } finally {
      this.inflight.delete(slot);
    }
  }

  /** A machine once it is out of `creating` (another server may be starting it), or as it is after `waitMs`; null when gone. */
  private async settled(id: string, waitMs = 120_000): Promise<MachineRecord | null> {
    const until = Date.now() + waitMs;
    for (;;) {
      const m = await this.core.store.getMachine(id);
      if (!m || m.status !== 'creating' || Date.now() > until) return m;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The snapshot a create starts from, checked against the request. */
  private async forkSource(caller: Caller, input: CreateMachineInput): Promise<SnapshotRecord | null> {
    if (input.snapshotId === undefined) return null;
    const snap = await this.core.store.getSnapshot(input.snapshotId);
    if (!snap || !(await this.snapshots.reachable(caller, snap))) {
      throw new HangarError('UNKNOWN_SNAPSHOT', `Snapshot ${input.snapshotId} does not exist for this team; list yours with GET /v1/snapshots.`, {
        snapshot_id: input.snapshotId,
      });
    }
    const fixed: string[] = [];
    if (input.template !== undefined && input.template !== snap.template) fixed.push(`template (the snapshot's is "${snap.template}")`);
    if (input.config?.disk_mb !== undefined && input.config.disk_mb !== snap.config.disk_mb) fixed.push(`config.disk_mb (the snapshot's is ${snap.config.disk_mb})`);
    if (input.env !== undefined) fixed.push('env (the processes keep the environment they had)');
    if (input.cwd !== undefined) fixed.push('cwd (the processes keep the working directory they had)');
    if (input.volumes !== undefined) fixed.push("volumes (the processes keep the mounts they had: a fork has its snapshot's read-only volumes)");
    if (fixed.length) {
      throw new HangarError('UNSUPPORTED_OPERATION', `A machine started from a snapshot takes these from the snapshot; omit them: ${fixed.join('; ')}.`, {
        snapshot_id: snap.id,
      });
    }
    // Two machines never write one volume: the fork would be a second writer of its source's.
    const writable = snap.volumes.find((v) => !v.readOnly);
    if (writable) {
      throw new HangarError(
        'VOLUME_IN_USE',
        `Snapshot ${snap.id} is of a machine with volume ${writable.volumeId} attached read-write at ${writable.mountPath}, and a fork cannot share a read-write volume ` +
          '(it would be a second writer). Fork a snapshot of a machine whose volumes are read-only, or create a new machine and attach the volume to it.',
        { snapshot_id: snap.id, volume_id: writable.volumeId, machine_id: snap.machineId },
      );
    }
    return snap;
  }

  /** The volumes a create attaches, checked: a fork's come from its snapshot (read-only ones only, checked above). */
  private async attachments(caller: Caller, input: CreateMachineInput, source: SnapshotRecord | null): Promise<VolumeAttachment[]> {
    // A fork's volumes must still exist: its restored processes had them mounted.
    const requests = source ? source.volumes : (input.volumes ?? []);
    return requests.length === 0 ? [] : this.volumes.attachments(caller, requests);
  }

  private async createNow(caller: Caller, input: CreateMachineInput, onRecorded?: (m: MachineRecord) => Promise<void>): Promise<MachineRecord> {
    const source = await this.forkSource(caller, input);
    // The team's quotas hold what it runs: checked and reserved before anything starts, released once the machine is stored (or failed).
    const config = { ...DEFAULT_CONFIG, ...source?.config, ...input.config };
    const release = await this.core.quotas.reserve(caller.team.id, { machines: 1, vcpus: config.vcpus, memory_mb: config.memory_mb, disk_mb: config.disk_mb });
    try {
      return await this.createWithin(caller, input, source, onRecorded);
    } finally {
      release();
    }
  }

  /** Tell `onRecorded` of a machine just stored (the caller holds its lock); when it throws, the machine is destroyed first. */
  private async recordedOrUndone(m: MachineRecord, onRecorded?: (m: MachineRecord) => Promise<void>): Promise<void> {
    try {
      await onRecorded?.(m);
    } catch (err) {
      await this.core.destroyLocked(m).catch((e: unknown) => this.core.log.error({ machine: m.id, err: e }, 'removing a machine whose create was refused failed'));
      throw err;
    }
  }

  private async createWithin(caller: Caller, input: CreateMachineInput, source: SnapshotRecord | null, onRecorded?: (m: MachineRecord) => Promise<void>): Promise<MachineRecord> {
    const { core } = this;
    const templateName = source?.template ?? input.template ?? 'base';
    const template = source ? await core.templateOf({ id: source.id, template: source.template, templateBuild: source.templateBuild }) : await core.template(caller.team.id, templateName);
    // A template with a running service: its machines fork from the service's snapshot, whose disk size is fixed.
    const serviceSnapshot = source ? null : template.startSnapshotId;
    const isolation = input.isolation ?? template.isolation ?? DEFAULT_ISOLATION;
    assertTierFits(isolation, input, source !== null || serviceSnapshot !== null);
    if (serviceSnapshot !== null && input.config?.disk_mb !== undefined && input.config.disk_mb !== DEFAULT_CONFIG.disk_mb) {
      throw new HangarError('UNSUPPORTED_OPERATION', `Template "${template.name}" starts from a snapshot of its running service, whose disk is ${DEFAULT_CONFIG.disk_mb} MB; omit config.disk_mb.`);
    }
    if (input.cwd !== undefined) {
      const problem = await cwdProblem(template, input.cwd);
      if (problem) throw validationError([{ field: 'cwd', message: problem }]);
    }
    const startupScript = input.startupScriptId === undefined ? null : await startupScriptCopy(core.store, caller.team.id, input.startupScriptId);
    const volumes = await this.attachments(caller, input, source);
    // A mount point runc could not make (a file or a symbolic link in the template) would only fail at the start.
    const misplaced: FieldProblem[] = [];
    for (const [i, v] of volumes.entries()) {
      const problem = source ? null : await cwdProblem(template, v.mountPath);
      if (problem) misplaced.push({ field: `volumes.${i}.mount_path`, message: problem });
    }
    if (misplaced.length) throw validationError(misplaced);
    // A fork joins the network its create names (none by default), not its source's: the network is the host's rules, not the snapshot's.
    const networkId = input.networkId === undefined ? null : await this.networks.joinable(caller, input.networkId, input.networkField);
    let warmPoolCheckout: WarmPoolCheckout | null = null;
    const outbound = input.outbound ?? DEFAULT_OUTBOUND;
    // Pool machines run the default policy without volumes or a network (they run already, unmounted and on none),
    // and not a service snapshot: a create asking for others starts cold.
    if (!source && serviceSnapshot === null && isDefaultOutbound(outbound) && volumes.length === 0 && networkId === null && isolation === DEFAULT_ISOLATION) {
      const pool = await this.pools.matching(templateName, { ...DEFAULT_CONFIG, ...input.config });
      if (pool) {
        const taken = await this.pools.checkout(caller, pool, input, startupScript, (m) => this.initialSnapshotLocked(m, input));
        if (taken) {
          await core.locks.with(taken.id, 'create', () => this.recordedOrUndone(taken, onRecorded));
          return taken;
        }
        warmPoolCheckout = { hit: false, id: pool.name };
      }
    }
    core.ensureCapacity();

    const now = core.now();
    const timeoutMs = input.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const id = newMachineId();
    const m = newMachineRecord({
      warmPoolCheckout,
      id,
      hostId: core.hostId,
      privateIp: core.allocateIp(id),
      outbound,
      public: input.public ?? false,
      autoResume: input.autoResume ?? false,
      teamId: caller.team.id,
      createdBy: caller.user?.id ?? null,
      template: templateName,
      templateBuild: template.buildId,
      createdAt: now,
      config: { ...DEFAULT_CONFIG, ...source?.config, ...input.config },
      metadata: input.metadata ?? {},
      env: source?.env ?? input.env ?? {},
      cwd: source ? source.cwd : (input.cwd ?? null),
      ephemeral: input.ephemeral ?? false,
      timeoutMs,
      timeoutAction: input.timeoutAction ?? 'destroy',
      inactivityTimeoutMs: input.inactivityTimeoutMs ?? null,
      autoDeleteAfterMs: input.autoDeleteAfterMs ?? null,
      name: input.name ?? null,
      region: input.region ?? null,
      autoSnapshot: autoSnapshotSettings(input.autoSnapshot, now),
      volumes,
      startupScript,
      networkId,
      isolation,
    });
    core.hold(m.id);
    const createLocked = () =>
      core.locks.with(m.id, 'create', async () => {
        try {
          await core.store.insertMachine(m);
        } catch (err) {
          // Nothing was written (a volume or the network deleted, or a volume taken read-write, since the checks above).
          core.letGo(m);
          if (err instanceof NetworkConflictError) throw unknownNetwork(err.networkId, input.networkField);
          throw err instanceof VolumeConflictError ? attachRefusal(err) : err;
        }
        await this.recordedOrUndone(m, onRecorded);
        return core.recorded(m, 'create', async () => {
          try {
            if (source) {
              await core.runtime.fork(core.spec(m, template), source.id);
              await this.setDesktopPassword(m, template);
            } else if (serviceSnapshot !== null) {
              await core.runtime.fork(core.spec(m, template), serviceSnapshot);
              await this.setDesktopPassword(m, template);
            } else await core.runtime.start(core.spec(m, template));
          } catch (err) {
            core.letGo(m);
            core.log.error({ machine: m.id, err }, 'machine start failed');
            transition(m, 'failed');
            m.errorReason = reasonOf(err);
            await core.save(m);
            if (err instanceof HangarError) throw err;
            throw source
              ? new HangarError('RESTORE_FAILED', `Machine ${m.id} could not be started from snapshot ${source.id}: ${m.errorReason}.`, { machine_id: m.id })
              : new HangarError('RUNTIME_FAILED', `Machine ${m.id} could not be started: ${m.errorReason}.`, { machine_id: m.id });
          }
          const started = core.now();
          transition(m, 'started');
          m.startedAt = started;
          m.timeoutAt = started + timeoutMs;
          await core.save(m);
          return this.initialSnapshotLocked(m, input);
        });
      });
    if (source?.kind !== 'pause') return createLocked();
    // A pause snapshot's disk belongs to its paused machine: hold that machine still meanwhile.
    return core.locks.with(source.machineId, 'a fork from its snapshot', createLocked).catch((err: unknown) => {
      // The source was busy (the record was never inserted): nothing was created.
      if (m.status === 'creating') core.letGo(m);
      throw err;
    });
  }

  /**
   * Give a fork of a desktop machine its own VNC password: the restored VNC server still
   * checks its source's, which is not the one derived from the fork's id.
   */
  private async setDesktopPassword(m: MachineRecord, template: Template): Promise<void> {
    const argv = template.desktop?.set_password;
    if (!template.desktop || !argv) return;
    const env = desktopEnv(template.desktop, this.core.o.secret.vncPassword(m.id));
    let output = '';
    const keep = (chunk: Buffer): void => {
      if (output.length < 2000) output += chunk.toString('utf8');
    };
    const r = await this.core.runtime.exec(m.id, { argv, cwd: '/', env, uid: 0, gid: 0, timeoutMs: 10_000 }, { stdout: keep, stderr: keep });
    if (r.exitCode !== 0) throw new Error(`setting the fork's VNC password failed (exit ${r.exitCode}): ${output.trim()}`);
  }

  /**
   * The snapshot a create asked for, once the machine runs (part of the create): a
   * failure leaves the machine running and fails the create with SNAPSHOT_FAILED.
   */
  private async initialSnapshotLocked(m: MachineRecord, input: CreateMachineInput): Promise<MachineRecord> {
    if (!input.takeInitialSnapshot && !input.restorePointFromInitial) return m;
    const snap = await this.snapshots.takeLocked(m, 'initial', 'its initial snapshot');
    if (input.restorePointFromInitial) {
      m.restorePoint = { frequency: 'shutdown', snapshotId: snap.id };
      await this.core.save(m);
    }
    return m;
  }
}

/**
 * Refuse, before anything is made, a create whose options need what the machine's tier
 * lacks (a gVisor machine has no snapshots): 422 UNSUPPORTED_OPERATION naming the option.
 */
function assertTierFits(isolation: Isolation, input: CreateMachineInput, fromSnapshot: boolean): void {
  const wanted: Array<[boolean, TierOperation, string]> = [
    [fromSnapshot, 'fork', input.snapshotId === undefined ? 'its template starts from a snapshot' : 'snapshot_id'],
    [input.timeoutAction === 'hibernate', 'hibernate', 'timeout_action "hibernate"'],
    [input.inactivityTimeoutMs != null && input.ephemeral !== true, 'hibernate', 'inactivity_timeout_ms without ephemeral: true (which hibernates)'],
    [input.autoSnapshot !== undefined, 'auto_snapshot', 'auto_snapshot'],
    [input.takeInitialSnapshot === true || input.restorePointFromInitial === true, 'snapshot', 'an initial snapshot'],
  ];
  for (const [asked, op, what] of wanted) {
    const why = asked ? tierRefusal(isolation, op) : null;
    if (why !== null) throw new HangarError('UNSUPPORTED_OPERATION', `A machine with isolation "${isolation}" cannot have ${what}: ${why}.`, { isolation });
  }
}

/** This server's create lost the race for an Idempotency-Key to another's (which recorded it first). */
class LostIdempotencyRace extends Error {
  constructor(readonly winner: IdempotencyRecord) {
    super(`another create recorded this Idempotency-Key first (machine ${winner.machineId})`);
  }
}
