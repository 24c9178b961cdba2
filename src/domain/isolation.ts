import { HangarError } from './errors.js';
import type { Isolation } from './machine.js';

/**
 * What the isolation tiers differ in, as the service asks before an operation: the
 * gVisor tier (runsc) has no CRIU checkpoints and no `update`, so every operation that
 * needs one is refused up front, never half done.
 */

/** Operations a tier may lack. */
export type TierOperation = 'pause' | 'snapshot' | 'fork' | 'resize' | 'hibernate' | 'auto_snapshot' | 'restore_point';

/** Why machines of `isolation` cannot do `op`; null when they can. */
export function tierRefusal(isolation: Isolation, op: TierOperation): string | null {
  switch (isolation) {
    case 'container':
      return null;
    case 'gvisor':
      return GVISOR_REFUSALS[op];
  }
}

const NO_CHECKPOINT =
  'gVisor machines have no snapshots: runc\'s checkpoints (CRIU) do not apply to runsc, and runsc\'s own checkpoint refuses host networking, the only networking it has on this host';
const GVISOR_REFUSALS: Record<TierOperation, string> = {
  pause: `${NO_CHECKPOINT}, so they cannot be paused; stop them by destroying them`,
  snapshot: `${NO_CHECKPOINT}`,
  fork: `${NO_CHECKPOINT}, so none can be forked into a gVisor machine; create it from a template`,
  resize: 'gVisor machines cannot be resized: runsc has no `update`; create a new machine with the resources you need',
  hibernate: `${NO_CHECKPOINT}, so they cannot hibernate; use timeout_action "destroy" (and ephemeral: true with inactivity_timeout_ms)`,
  auto_snapshot: `${NO_CHECKPOINT}, so auto_snapshot is not available`,
  restore_point: `${NO_CHECKPOINT}, so they have no restore point`,
};

/** Throw 422 UNSUPPORTED_OPERATION when the machine's tier cannot do `op`. */
export function assertTierAllows(m: { id: string; isolation: Isolation }, op: TierOperation): void {
  const why = tierRefusal(m.isolation, op);
  if (why !== null) throw new HangarError('UNSUPPORTED_OPERATION', `Machine ${m.id} is isolated with gvisor: ${why}.`, { machine_id: m.id, isolation: m.isolation });
}
