import type { MachineRecord } from '../domain/machine.js';
import { isAlive } from '../domain/host.js';
import { transition } from '../domain/transitions.js';
import type { MachineNetworkSpec, RuntimeMachineState, VolumeMountSpec } from '../runtime/runtime.js';
import type { MachineCore } from './machine-core.js';

/** What a start-up reconciliation found. */
export interface RecoveryReport {
  adopted: number;
  lost: number;
  orphans: number;
}

/** Start-up reconciliation of the store with the host, and the destroy-everything of tests. */
export class Recovery {
  constructor(private readonly core: MachineCore) {}

  /**
   * Reconcile the store with the host after a (re)start: keep machines whose container
   * still runs, finish pauses and resumes a crash interrupted, mark the others `error`
   * with the reason (their data kept), and remove containers, machine files, snapshot
   * files and volume files that belong to nothing the store knows.
   */
  async recover(): Promise<RecoveryReport> {
    const { store, runtime } = this.core;
    // Listing snapshots finishes any revert a crash interrupted, so pauses are settled against whole snapshots.
    await runtime.snapshotsOnDisk();
    const containers = await runtime.list();
    const report: RecoveryReport = { adopted: 0, lost: 0, orphans: 0 };
    // Machines no host holds (stored before hosts existed) become this host's; other hosts' machines are theirs to settle.
    const host = this.core.hostId ?? undefined;
    if (host !== undefined) await store.adoptUnhostedMachines(host);
    const known = new Set<string>();
    for (const m of await store.machinesInStatus(['creating', 'running', 'paused'], host)) {
      known.add(m.id);
      const outcome = await this.reconcile(m, containers.get(m.id));
      if (outcome !== 'kept') report[outcome]++;
    }
    const errorKept = new Set((await store.machinesInStatus(['error'], host)).map((m) => m.id));
    for (const id of new Set([...containers.keys(), ...(await runtime.machinesOnDisk())])) {
      if (known.has(id)) continue;
      if (errorKept.has(id)) {
        if (containers.has(id)) await runtime.stop(id);
        continue;
      }
      await runtime.destroy(id);
      report.orphans++;
    }
    // Template versions' service snapshots belong to no machine record, and stay. In a
    // snapshots directory other live hosts share, a snapshot no record names yet may be one
    // they are writing (a live snapshot's record follows its files): the sweep waits for a
    // start when no other host uses the directory.
    if (!(await this.sharesSnapshots(true))) {
      const snapshots = new Set([...(await store.allSnapshotIds()), ...(await this.core.o.templates.snapshotIds())]);
      for (const id of await runtime.snapshotsOnDisk()) {
        if (snapshots.has(id)) continue;
        await runtime.deleteSnapshot(id);
        report.orphans++;
      }
    }
    // Running machines keep their volumes' host mounts; other mounts of this instance go, and
    // volume files no record has (a crash between a volume's files and its record) are removed.
    const running = new Map<string, VolumeMountSpec[]>();
    for (const m of await store.machinesInStatus(['running'], host)) {
      if (m.volumes.length > 0) running.set(m.id, this.core.volumeSpecs(m));
    }
    await runtime.reconcileVolumes(running);
    const volumes = new Set(await store.allVolumeIds());
    for (const id of await runtime.volumesOnDisk()) {
      if (volumes.has(id)) continue;
      await runtime.deleteVolume(id);
      report.orphans++;
    }
    // Running and paused machines keep their address and network; everything else of this instance goes.
    // Their private-network membership is rebuilt with them, so peers reach each other again.
    const live = new Map<string, MachineNetworkSpec>();
    for (const m of await store.machinesInStatus(['running', 'paused'], host)) {
      if (m.privateIp !== null) live.set(m.id, { ip: m.privateIp, outbound: m.outbound, networkId: m.networkId });
    }
    this.core.reserveIps([...live].map(([id, { ip }]) => ({ id, ip })));
    await runtime.reconcileNetwork(live);
    return report;
  }

  /** True when another host (one that is alive, with `aliveOnly`) keeps its snapshots in this host's snapshots directory. */
  private async sharesSnapshots(aliveOnly: boolean): Promise<boolean> {
    const { hostId, store, runtime } = this.core;
    if (hostId === null) return false;
    const mine = await runtime.snapshotStore();
    return (await store.listHosts()).some((h) => h.id !== hostId && (!aliveOnly || isAlive(h.state)) && h.snapshotStore === mine);
  }

  /** Bring one live record in line with its container (or its absence). */
  private async reconcile(m: MachineRecord, found: RuntimeMachineState | undefined): Promise<'adopted' | 'lost' | 'kept'> {
    const { core } = this;
    const { store, runtime } = core;
    let c = found;
    if (c?.status === 'paused' && m.status === 'running') {
      // Frozen by a live (e.g. automatic) snapshot the stop interrupted: its processes are intact.
      const thawed = await runtime.thaw(m.id).then(
        () => true,
        (err: unknown) => {
          core.log.warn({ machine: m.id, err }, 'could not thaw a machine frozen by an interrupted snapshot');
          return false;
        },
      );
      if (thawed) c = { ...c, status: 'running' };
    }
    if (c?.status === 'running' && m.status !== 'creating') {
      if (m.status === 'paused' && m.snapshotId !== null) {
        // Crashed after a resume restored the processes, before the record said so.
        await store.deleteSnapshot(m.snapshotId);
        transition(m, 'resumed');
        Object.assign(m, { snapshotId: null, pausedAt: null, resumedAt: core.now() });
        m.timeoutAt = core.now() + m.timeoutMs;
        await core.save(m);
      }
      core.hold(m.id);
      return 'adopted';
    }
    if (m.status === 'paused') {
      // A pause or resume the crash interrupted may have left the disk image outside the snapshot.
      if (m.snapshotId !== null && (await runtime.settlePause(m.id, m.snapshotId).catch(() => false))) return 'kept';
      m.errorReason = `its pause snapshot ${m.snapshotId ?? '(none)'} has no disk image after the server stopped mid-operation; its other snapshots are kept`;
      transition(m, 'failed');
      await core.save(m);
      return 'lost';
    }
    if (m.pool !== null) {
      // An idle pool machine holds no user data: replace it rather than keep an error.
      await runtime.destroy(m.id).catch((err: unknown) => core.log.warn({ machine: m.id, err }, 'cleanup of lost pool machine failed'));
      transition(m, 'destroyed');
      Object.assign(m, { destroyedAt: core.now(), pool: null });
      await core.save(m);
      return 'lost';
    }
    const pauseSnap = m.status === 'running' ? (await store.listSnapshots(m.teamId, m.id)).find((s) => s.kind === 'pause') : undefined;
    if (pauseSnap && (!c || c.status !== 'running') && (await runtime.snapshotsOnDisk()).includes(pauseSnap.id) && (await runtime.settlePause(m.id, pauseSnap.id).catch(() => false))) {
      // Crashed after a pause dumped the machine (its image now moved into the snapshot), before the record said so.
      transition(m, 'paused');
      Object.assign(m, { snapshotId: pauseSnap.id, pausedAt: pauseSnap.createdAt });
      await core.save(m);
      return 'kept';
    }
    await runtime.stop(m.id).catch((err: unknown) => core.log.warn({ machine: m.id, err }, 'cleanup of lost machine failed'));
    m.errorReason =
      m.status === 'creating'
        ? 'the server stopped while this machine was being created'
        : `its container ${c ? `was ${c.status}` : 'vanished'} while the server was down (host restart or killed); the writable layer is kept`;
    transition(m, 'failed');
    await core.save(m);
    return 'lost';
  }

  /** Destroy every machine and snapshot of this server (tests and `hangar clean`), then instance resources. */
  async destroyAll(): Promise<void> {
    const { core } = this;
    const { store, runtime } = core;
    for (const m of await store.machinesInStatus(['creating', 'running', 'paused', 'error'], core.hostId ?? undefined)) {
      await core.locks.with(m.id, 'destroy', () => core.destroyLocked(m)).catch((err: unknown) => core.log.error({ machine: m.id, err }, 'destroy failed'));
    }
    for (const id of [...(await runtime.list()).keys(), ...(await runtime.machinesOnDisk())]) {
      await runtime.destroy(id);
    }
    // Only this host's when other hosts share the store: they keep their snapshots, in the store and in a
    // shared directory (files no record names go only when no other host, even a stopped one, uses the directory).
    const alone = core.hostId === null || !(await store.listHosts()).some((h) => h.id !== core.hostId);
    const mine = await store.allSnapshotIds(alone ? undefined : core.hostId!);
    for (const id of mine) {
      await store.deleteSnapshot(id);
      await runtime.deleteSnapshot(id);
    }
    if (!(await this.sharesSnapshots(false))) for (const id of await runtime.snapshotsOnDisk()) await runtime.deleteSnapshot(id);
    await runtime.teardown();
  }
}
