import { seesWholeTeam, type Caller } from '../domain/team.js';
import type { MachineRecord } from '../domain/machine.js';
import type { Store } from '../store/store.js';

/**
 * Who reaches which machine: team keys and team admins reach every machine of their
 * team; a member reaches the machines it created and those it is an accessor of.
 * Everything else is reported as missing (404), never as forbidden.
 */
export async function callerReaches(store: Store, caller: Caller, m: Pick<MachineRecord, 'id' | 'teamId' | 'createdBy'>): Promise<boolean> {
  if (m.teamId !== caller.team.id) return false;
  if (seesWholeTeam(caller) || m.createdBy === caller.user!.id) return true;
  const a = await store.getAccessor(m.id, caller.user!.id);
  return a !== null && a.deletedAt === null;
}

/** The user a listing must be narrowed to, or undefined when the caller sees the whole team. */
export function listingNarrowedTo(caller: Caller): string | undefined {
  return seesWholeTeam(caller) ? undefined : caller.user!.id;
}
