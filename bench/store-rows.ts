import { deadlineOf } from '../src/domain/lifecycle.js';
import { newMachineId } from '../src/domain/ids.js';
import { newMachineRecord } from '../src/domain/machine.js';
import type { HangarServer } from '../src/server.js';

/** One stored row in `MATCH_EVERY` carries the metadata the filter query selects. */
export const MATCH_EVERY = 100;
/** The metadata filter of the selective list query. */
export const MATCH_FILTER = { k: 'v' } as const;

const DAY_MS = 24 * 3_600_000;

/**
 * Insert `count` machine records straight into the store: rows only, no containers.
 * They are 'running' with a deadline a day away, so the scheduler leaves them alone.
 */
export async function insertStoreRows(server: HangarServer, teamId: string, count: number): Promise<string[]> {
  const now = Date.now();
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    // Older than the real machines, one second apart, so the list order is deterministic.
    const createdAt = now - (count - i) * 1_000;
    const m = newMachineRecord({
      id: newMachineId(),
      teamId,
      status: 'running',
      template: 'base',
      createdAt,
      metadata: i % MATCH_EVERY === 0 ? { ...MATCH_FILTER, row: i } : { k: 'other', row: i },
      timeoutMs: DAY_MS,
      startedAt: createdAt,
    });
    m.deadlineAt = deadlineOf(m);
    await server.store.insertMachine(m);
    ids.push(m.id);
  }
  return ids;
}

/**
 * Mark the inserted rows destroyed, so `destroyAll` does not try to tear down 1,000
 * containers that never existed. (The data dir is deleted afterwards in any case.)
 */
export async function retireStoreRows(server: HangarServer, ids: readonly string[]): Promise<void> {
  const now = Date.now();
  for (const id of ids) {
    const m = await server.store.getMachine(id);
    if (!m) continue;
    m.status = 'destroyed';
    m.destroyedAt = now;
    m.deadlineAt = null;
    await server.store.updateMachine(m);
  }
}
