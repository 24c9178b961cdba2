import type { MachineConfig } from './machine.js';

/** A warm pool: machines started ahead of time, handed out by creates that match them. */
export interface WarmPool {
  name: string;
  template: string;
  config: MachineConfig;
  /** How many idle machines to keep ready. */
  size: number;
  /** Creates served from the pool. */
  hits: number;
  /** Creates that matched the pool but found no machine ready. */
  misses: number;
  /** The last refill failure, null once a refill succeeds. */
  lastError: string | null;
  createdAt: number;
  updatedAt: number;
}

/** Pool machines belong to this team while idle: no API key has it, so no team sees them. */
export const POOL_TEAM_ID = 'team_warmpool';

/** True when a create of `template` with the full `config` may take a machine of `pool`. */
export function poolMatches(pool: WarmPool, template: string, config: MachineConfig): boolean {
  return (
    pool.template === template &&
    pool.config.vcpus === config.vcpus &&
    pool.config.memory_mb === config.memory_mb &&
    pool.config.disk_mb === config.disk_mb
  );
}
