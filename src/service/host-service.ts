import { createHash } from 'node:crypto';
import { HangarError } from '../domain/errors.js';
import { uploadHostTag, uploadIdHostTag } from '../domain/template.js';
import { hostLostReason, isAlive, type HostRecord, type HostState } from '../domain/host.js';
import { transition } from '../domain/transitions.js';
import type { MachineCore, ServiceLogger } from './machine-core.js';

/** This host's place among the hosts sharing the store. */
export interface HostServiceOptions {
  core: MachineCore;
  hostId: string;
  capacityMachines: number;
  /** How often this host records that it is alive. */
  heartbeatMs: number;
  /** A host silent this long is marked down by another. */
  downAfterMs: number;
  /** A down or stopped host silent this long that no live machine names is removed from the hosts. @default a day */
  forgetAfterMs?: number;
  /** The identity of the directory this host keeps snapshots in (`SnapshotRuntime.snapshotStore`). */
  snapshotStore: string | null;
  log: ServiceLogger;
  /** Wall clock of heartbeats (never the machines' injectable clock). @default Date.now */
  clock?: () => number;
}

/** Where a request for a machine of another host goes. */
export interface HostTarget {
  hostId: string;
  url: string;
}

/**
 * Registers this host, heartbeats, and watches the others: a host whose heartbeat is older
 * than the down bound is marked down (by exactly one watcher: the store marks each host once),
 * and the machines it was creating or running are failed with `hostLostReason`. Its paused
 * machines move, still paused, to a live host that shares its snapshots directory (the
 * snapshot holds all of a paused machine), where a resume brings them back; a draining host
 * moves its own paused machines the same way. A host that finds itself marked down
 * while alive (a stall longer than the bound) stops the containers of its failed machines.
 * It also answers, from a copy refreshed every heartbeat, where another host's machines are
 * reached (placement and forwarding, see http/fleet-forward.ts). A change of any host (one
 * registered, draining, stopped or marked down) wakes every server at once through the store
 * (`watchHosts`: LISTEN/NOTIFY on PostgreSQL), which then beats and sweeps without waiting
 * for its next heartbeat.
 */
export class HostService {
  private timer: NodeJS.Timeout | null = null;
  private beating: Promise<void> | null = null;
  /** A change was announced while a beat ran (it may have read the hosts before it): one more beat follows. */
  private woken = false;
  private unwatch: (() => Promise<void>) | null = null;
  private url: string | null = null;
  private hosts = new Map<string, HostRecord>();
  private readonly clock: () => number;
  /** Beats so far (forgetting long-gone hosts runs on every 30th). */
  private beats = 0;
  /** Turns among hosts that tie for a create (`place`). */
  private turn = 0;
  /** Creates forwarded to a host and not answered yet: counted as its load until the store sees them. */
  private readonly placing = new Map<string, number>();

  constructor(private readonly o: HostServiceOptions) {
    this.clock = o.clock ?? Date.now;
  }

  /** Register (again) as up, with the URL other servers forward to; the next heartbeat reads the others. */
  async register(url: string | null): Promise<void> {
    this.url = url;
    const now = this.clock();
    await this.o.core.store.registerHost({
      id: this.o.hostId,
      state: 'up',
      url,
      capacityMachines: this.o.capacityMachines,
      startedAt: now,
      heartbeatAt: now,
      downReason: null,
      snapshotStore: this.o.snapshotStore,
    });
  }

  /** Heartbeat every `heartbeatMs` until `stop`. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.beat(), this.o.heartbeatMs);
    this.timer.unref();
    this.unwatch = this.o.core.store.watchHosts(
      () => this.wake(),
      (err) => this.o.log.warn({ err }, 'watching the hosts failed; heartbeats read them meanwhile'),
    );
  }

  /** One heartbeat and sweep now (or join the one in progress). */
  beat(): Promise<void> {
    this.beating ??= this.beatOnce()
      .catch((err: unknown) => this.o.log.error({ err }, 'host heartbeat failed'))
      .finally(() => {
        this.beating = null;
        if (this.woken && this.timer) {
          this.woken = false;
          void this.beat();
        }
      });
    return this.beating;
  }

  /** Another server changed a host: beat now (after the beat in progress, when one is). */
  private wake(): void {
    if (!this.timer) return;
    if (this.beating) this.woken = true;
    else void this.beat();
  }

  /** Stop heartbeating and record a clean stop: this host's machines are not lost, they wait for it. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.unwatch?.();
    this.unwatch = null;
    await this.beating;
    await this.o.core.store.stopHost(this.o.hostId, this.clock());
  }

  /** Every host, as the store has them now. */
  list(): Promise<HostRecord[]> {
    return this.o.core.store.listHosts();
  }

  /** Another host's state as of the last heartbeat (the store's when it is not known yet). */
  async stateOf(hostId: string): Promise<HostState | null> {
    const h = this.hosts.get(hostId) ?? (await this.o.core.store.getHost(hostId));
    return h?.state ?? null;
  }

  /** True when another host is up: only then can a request belong elsewhere. */
  hasPeers(): boolean {
    for (const h of this.hosts.values()) if (h.id !== this.o.hostId && this.reachable(h)) return true;
    return false;
  }

  /** Where a machine of `hostId` is reached: null when it is this host's, or its host is not up (it is answered here then). */
  targetOf(hostId: string | null): HostTarget | null {
    if (hostId === null || hostId === this.o.hostId) return null;
    const h = this.hosts.get(hostId);
    return h && this.reachable(h) ? { hostId: h.id, url: h.url! } : null;
  }

  /**
   * The host a new machine goes to: the up (not draining) host with the most free capacity
   * (machines it holds, plus creates sent to it and not yet answered, against its capacity);
   * null when that is this host. Ties with this host stay here, so a lone host never forwards;
   * ties among other hosts take turns (sequential creates of an API server spread).
   */
  async place(): Promise<HostTarget | null> {
    if (!this.hasPeers()) return null;
    const loads = await this.o.core.store.hostLoads();
    const self = this.hosts.get(this.o.hostId);
    const selfTakes = self?.state !== 'draining' && this.o.capacityMachines > 0;
    const selfFree = selfTakes ? this.freeOf(this.o.hostId, this.o.capacityMachines, loads) : -Infinity;
    let best: HostRecord[] = [];
    let bestFree = selfFree;
    for (const h of this.hosts.values()) {
      if (h.id === this.o.hostId || !this.takesMachines(h)) continue;
      const free = this.freeOf(h.id, h.capacityMachines, loads);
      if (free > bestFree) {
        best = [h];
        bestFree = free;
      } else if (free === bestFree && best.length > 0) best.push(h);
    }
    // No other host takes machines either, or none has more room than this one: it is made here (a draining host still can).
    if (best.length === 0) return null;
    const h = best[this.turn++ % best.length]!;
    return { hostId: h.id, url: h.url! };
  }

  /**
   * Of the hosts holding the idle pool machines `holders` (each one's host id), the one a create
   * goes to: the live host taking machines that holds the most, this one on a tie; null when none.
   */
  poolHost(holders: ReadonlyArray<string | null>): string | null {
    const selfTakes = this.hosts.get(this.o.hostId)?.state !== 'draining' && this.o.capacityMachines > 0;
    const takes = (id: string): boolean => (id === this.o.hostId ? selfTakes : this.hosts.has(id) && this.takesMachines(this.hosts.get(id)!));
    return mostHeld(holders, takes, this.o.hostId);
  }

  /** The host keeping an upload, from the tag its id carries (null: none known, or this one). */
  hostOfUpload(uploadId: string): string | null {
    const tag = uploadIdHostTag(uploadId);
    for (const h of this.hosts.values()) if (uploadHostTag(h.id) === tag) return h.id;
    return null;
  }

  /**
   * Where an API server (capacity 0) sends an upload: one of the up hosts that take
   * machines, the same one for the same `seed` (the caller's key) while they stay the same,
   * so one caller's uploads, and the build that uses them, meet on one host.
   */
  uploadTarget(seed: string): HostTarget | null {
    const takers = [...this.hosts.values()].filter((h) => h.id !== this.o.hostId && this.takesMachines(h)).sort((a, b) => (a.id < b.id ? -1 : 1));
    if (takers.length === 0) return null;
    const h = takers[createHash('sha256').update(seed).digest().readUInt32BE(0) % takers.length]!;
    return { hostId: h.id, url: h.url! };
  }

  /** Start or end draining a host (any host, from any server): it keeps its machines and gets no new ones. */
  async drain(hostId: string, draining: boolean): Promise<HostRecord> {
    const h = await this.o.core.store.setHostDraining(hostId, draining);
    if (!h) throw new HangarError('NOT_FOUND', `No host ${hostId}; GET /v1/admin/hosts lists them.`);
    if (!isAlive(h.state)) throw new HangarError('STATE_CONFLICT', `Host ${hostId} is ${h.state}; only a host that is up can drain.`, { state: h.state });
    await this.refresh();
    return h;
  }

  /** Count a create forwarded to a host until `done` is called (its answer came). */
  reserve(hostId: string): () => void {
    this.placing.set(hostId, (this.placing.get(hostId) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = (this.placing.get(hostId) ?? 1) - 1;
      if (n <= 0) this.placing.delete(hostId);
      else this.placing.set(hostId, n);
    };
  }

  private freeOf(hostId: string, capacity: number, loads: Map<string, number>): number {
    return (capacity - (loads.get(hostId) ?? 0) - (this.placing.get(hostId) ?? 0)) / Math.max(1, capacity);
  }

  /** Whether new machines (creates, uploads, moved paused machines) may go to `h`: up, not draining, answering, with capacity. */
  private takesMachines(h: HostRecord): boolean {
    return h.state === 'up' && this.reachable(h) && h.capacityMachines > 0;
  }

  private reachable(h: HostRecord): boolean {
    return isAlive(h.state) && h.url !== null && this.clock() - h.heartbeatAt < this.o.downAfterMs;
  }

  private async refresh(): Promise<void> {
    this.hosts = new Map((await this.o.core.store.listHosts()).map((h) => [h.id, h]));
  }

  private async beatOnce(): Promise<void> {
    const { store } = this.o.core;
    const now = this.clock();
    const was = await store.heartbeatHost(this.o.hostId, now);
    if (was === null) await this.register(this.url);
    if (was === 'down') await this.afterMarkedDown();
    const marked = await store.markHostsDown(now - this.o.downAfterMs, this.o.hostId, (h) => `no heartbeat for ${now - h.heartbeatAt} ms (the bound is ${this.o.downAfterMs} ms)`);
    for (const h of marked) {
      this.o.log.warn({ host: h.id, reason: h.downReason }, 'host marked down');
      await this.endOperationsOf(h);
    }
    // The bound is a day by default: every 30th beat is often enough to look.
    if (this.beats++ % 30 === 0) {
      const forgotten = await store.forgetHosts(now - (this.o.forgetAfterMs ?? 86_400_000));
      if (forgotten.length) this.o.log.info({ hosts: forgotten }, 'hosts long gone, with no machine, removed');
    }
    await this.refresh();
    // Every watcher settles every down host's machines: a watcher that died between marking and failing is covered by the next.
    for (const h of this.hosts.values()) {
      if (h.state !== 'down') continue;
      await this.failMachinesOf(h);
      await this.movePausedOf(h);
    }
    const self = this.hosts.get(this.o.hostId);
    if (self?.state === 'draining') await this.movePausedOf(self);
  }

  /**
   * Move the paused machines of `from` (a down host, or this one draining) to the live hosts
   * that share its snapshots directory, each to the one with the most free capacity. A
   * machine stays where it is when nothing of it may leave: it mounts volumes or is on a
   * private network (both are per host), or its template version was built on another host
   * (its layers are there). Of concurrent movers, the store lets one move each machine.
   */
  private async movePausedOf(from: HostRecord): Promise<void> {
    const { core } = this.o;
    if (from.snapshotStore === null) return;
    const paused = await core.store.machinesInStatus(['paused'], from.id);
    if (paused.length === 0) return;
    const targets = [...this.hosts.values()].filter(
      (h) => h.id !== from.id && this.takesMachines(h) && h.snapshotStore === from.snapshotStore,
    );
    if (targets.length === 0) return;
    const loads = await core.store.hostLoads();
    for (const m of paused) {
      if (m.volumes.length > 0 || m.networkId !== null) continue;
      const builtOn = m.templateBuild === null ? null : ((await core.store.getTemplateBuild(m.templateBuild))?.hostId ?? undefined);
      let best: { h: HostRecord; free: number } | null = null;
      for (const h of targets) {
        if (builtOn !== null && builtOn !== h.id) continue;
        const free = this.freeOf(h.id, h.capacityMachines, loads);
        if (free > 0 && (!best || free > best.free)) best = { h, free };
      }
      if (!best) continue;
      const to = best.h;
      const move = async (): Promise<void> => {
        if (!(await core.store.movePausedMachine(m.id, from.id, to.id, core.now()))) return;
        loads.set(to.id, (loads.get(to.id) ?? 0) + 1);
        this.o.log.info({ machine: m.id, from: from.id, to: to.id }, 'paused machine moved to another host');
        // What this host kept of it (its address, directory and network namespace) goes; its snapshot is shared.
        if (from.id !== this.o.hostId) return;
        core.letGo(m);
        await core.runtime.destroy(m.id).catch((err: unknown) => core.log.warn({ machine: m.id, err }, 'cleanup of a machine moved away failed'));
      };
      // This host's own machine moves under its lock (no resume of it runs meanwhile); a busy one goes at a later beat.
      if (from.id === this.o.hostId) await core.locks.with(m.id, 'move', move).catch(() => undefined);
      else await move();
    }
  }

  /** The machines a down host was creating or running turn `error` with why; paused ones stay paused. */
  private async failMachinesOf(h: HostRecord): Promise<void> {
    const { core } = this.o;
    const reason = hostLostReason(h.id, h.downReason ?? 'missed its heartbeats');
    for (const listed of await core.store.machinesInStatus(['creating', 'running'], h.id)) {
      const m = await core.store.getMachine(listed.id);
      if (!m || m.hostId !== h.id || (m.status !== 'creating' && m.status !== 'running')) continue;
      transition(m, 'failed');
      m.errorReason = reason;
      await core.save(m);
      core.log.warn({ machine: m.id, host: h.id }, 'machine of a lost host failed');
    }
  }

  /** What a host just marked down was doing ends with it: its machines' unfinished operations and its template builds (their layers were in its data dir). */
  private async endOperationsOf(h: HostRecord): Promise<void> {
    const { core } = this.o;
    const reason = hostLostReason(h.id, h.downReason ?? 'missed its heartbeats');
    await core.store.failUnfinishedMachineEvents(reason, this.clock(), { hostId: h.id, unhosted: false });
    for (const b of await core.store.allTemplateBuilds()) {
      if (b.status !== 'building' || b.hostId !== h.id) continue;
      b.status = 'error';
      b.error = { step: 'build', message: reason };
      b.finishedAt = core.now();
      await core.store.updateTemplateBuild(b);
    }
  }

  /**
   * Another host marked this one down while it was alive: the machines it ran were failed
   * and may be deleted elsewhere; their containers here are stopped (their files stay until deleted).
   */
  private async afterMarkedDown(): Promise<void> {
    const { core } = this.o;
    this.o.log.warn({ host: this.o.hostId }, 'this host was marked down while alive; stopping the containers of its failed machines');
    const containers = await core.runtime.list();
    for (const m of await core.store.machinesInStatus(['error'], this.o.hostId)) {
      if (!containers.has(m.id)) continue;
      await core.runtime.stop(m.id).catch((err: unknown) => core.log.warn({ machine: m.id, err }, 'stopping a failed machine failed'));
      core.letGo(m);
    }
  }
}

/** The id `holders` names most often among those `eligible`; `prefer` wins a tie it is in; null when none is eligible. */
export function mostHeld(holders: ReadonlyArray<string | null>, eligible: (id: string) => boolean, prefer: string): string | null {
  const counts = new Map<string, number>();
  for (const h of holders) if (h !== null && eligible(h)) counts.set(h, (counts.get(h) ?? 0) + 1);
  let best: string | null = null;
  for (const [id, n] of [...counts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const top = best === null ? 0 : counts.get(best)!;
    if (n > top || (n === top && id === prefer)) best = id;
  }
  return best;
}
