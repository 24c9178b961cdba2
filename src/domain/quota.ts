import { HangarError } from './errors.js';

/**
 * Per-team quotas an admin sets. Each is a ceiling on what the team holds at once;
 * absent means no ceiling. Machines, vCPUs and memory count the machines that run
 * (creating or running); disk counts every machine not destroyed (a paused machine keeps
 * its disk); snapshots count their bytes; volumes their size; templates their names.
 */
export const QUOTA_NAMES = ['machines', 'vcpus', 'memory_mb', 'disk_mb', 'snapshot_bytes', 'volume_mb', 'templates'] as const;
export type QuotaName = (typeof QUOTA_NAMES)[number];

/** A team's ceilings; a missing name is unlimited. */
export type TeamQuotas = Partial<Record<QuotaName, number>>;

/** What a team holds now, in the units of its quotas. */
export type TeamUsage = Record<QuotaName, number>;

/** What an operation would add to a team's usage. */
export type QuotaAsk = Partial<Record<QuotaName, number>>;

/** What fixing each quota takes, for the error's sentence. */
const REMEDY: Record<QuotaName, string> = {
  machines: 'pause or destroy a machine',
  vcpus: 'pause or destroy a machine, or ask for fewer vCPUs',
  memory_mb: 'pause or destroy a machine, or ask for less memory',
  disk_mb: 'destroy a machine, or ask for a smaller disk',
  snapshot_bytes: 'delete snapshots',
  volume_mb: 'delete a volume, or ask for a smaller one',
  templates: 'delete a template',
};

/**
 * The first quota `ask` would take past its ceiling, as the 429 QUOTA_EXCEEDED to throw;
 * null when everything fits. A quota whose ask is 0 is never exceeded by it, so an
 * operation that adds nothing to an already full quota still goes through.
 */
export function quotaExceeded(quotas: TeamQuotas, usage: TeamUsage, ask: QuotaAsk): HangarError | null {
  for (const name of QUOTA_NAMES) {
    const limit = quotas[name];
    const more = ask[name] ?? 0;
    if (limit === undefined || more <= 0) continue;
    if (usage[name] + more > limit) {
      return new HangarError(
        'QUOTA_EXCEEDED',
        `This team's ${name} quota is ${limit} and it holds ${usage[name]}; this needs ${more} more. ${REMEDY[name][0]!.toUpperCase()}${REMEDY[name].slice(1)}, or ask an admin to raise the quota.`,
        { quota: name, limit, used: usage[name], requested: more },
      );
    }
  }
  return null;
}
