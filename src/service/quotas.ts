import { quotaExceeded, type QuotaAsk, type TeamQuotas, type TeamUsage } from '../domain/quota.js';
import type { Store } from '../store/store.js';

const RUNNING = ['creating', 'running'] as const;
const NOT_DESTROYED = ['creating', 'running', 'paused', 'error'] as const;

/**
 * Per-team quotas: what a team holds, and reservations that keep concurrent operations
 * from passing a ceiling together. An operation reserves what it adds before it starts
 * and releases the reservation once its result is in the store (or it failed); while
 * both count, a near-full team may be refused early, never let past its ceiling.
 */
export class QuotaService {
  /** Reserved and not yet released, per team. */
  private readonly pending = new Map<string, QuotaAsk[]>();
  /** One check-and-reserve at a time per team. */
  private readonly gates = new Map<string, Promise<unknown>>();

  constructor(private readonly store: Store) {}

  quotas(teamId: string): Promise<TeamQuotas> {
    return this.store.getTeamQuotas(teamId);
  }

  setQuotas(teamId: string, quotas: TeamQuotas): Promise<void> {
    return this.store.setTeamQuotas(teamId, quotas);
  }

  /** What the team holds now, from the store (reservations aside). */
  async usage(teamId: string): Promise<TeamUsage> {
    const held = await this.store.listMachines({ teamId, statuses: NOT_DESTROYED });
    const running = held.filter((m) => (RUNNING as readonly string[]).includes(m.status));
    const snapshots = await this.store.listSnapshots(teamId);
    const volumes = await this.store.listVolumes(teamId);
    const names = new Set<string>();
    for (let after: string | null = null; ; ) {
      const page = await this.store.pageTemplates(teamId, after, 500);
      for (const b of page) if (b.teamId === teamId) names.add(b.name);
      if (page.length < 500) break;
      after = page[page.length - 1]!.name;
    }
    return {
      machines: running.length,
      vcpus: running.reduce((n, m) => n + m.config.vcpus, 0),
      memory_mb: running.reduce((n, m) => n + m.config.memory_mb, 0),
      disk_mb: held.reduce((n, m) => n + m.config.disk_mb, 0),
      snapshot_bytes: snapshots.reduce((n, s) => n + s.sizeBytes, 0),
      volume_mb: volumes.reduce((n, v) => n + v.sizeMb, 0),
      templates: names.size,
    };
  }

  /**
   * Check that `ask` fits the team's quotas, counting reservations in flight, and reserve
   * it: 429 QUOTA_EXCEEDED otherwise. Returns the release, to call once the operation's
   * result is stored or it failed (calling it twice is harmless).
   */
  async reserve(teamId: string, ask: QuotaAsk): Promise<() => void> {
    return this.gated(teamId, async () => {
      const quotas = await this.store.getTeamQuotas(teamId);
      if (!Object.keys(quotas).some((k) => (ask[k as keyof QuotaAsk] ?? 0) > 0)) return () => undefined;
      const usage = await this.usage(teamId);
      for (const r of this.pending.get(teamId) ?? []) for (const [k, v] of Object.entries(r)) usage[k as keyof TeamUsage] += v;
      const refusal = quotaExceeded(quotas, usage, ask);
      if (refusal) throw refusal;
      const list = this.pending.get(teamId) ?? [];
      const entry = { ...ask };
      list.push(entry);
      this.pending.set(teamId, list);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const now = (this.pending.get(teamId) ?? []).filter((r) => r !== entry);
        if (now.length) this.pending.set(teamId, now);
        else this.pending.delete(teamId);
      };
    });
  }

  /** Run `fn` after every earlier call for the team has finished. */
  private async gated<T>(teamId: string, fn: () => Promise<T>): Promise<T> {
    const before = this.gates.get(teamId) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const settled = run.catch(() => undefined);
    this.gates.set(teamId, settled);
    try {
      return await run;
    } finally {
      if (this.gates.get(teamId) === settled) this.gates.delete(teamId);
    }
  }
}
