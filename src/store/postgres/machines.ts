import type pg from 'pg';
import { MachineMovedError } from '../../domain/host.js';
import type { MachineRecord, MachineStatus } from '../../domain/machine.js';
import { metadataMatches } from '../../domain/metadata.js';
import type { ListCursor, MachineListQuery, MachinePageQuery, MachineStore } from '../store.js';
import { visibleMachine } from './access.js';
import { changesOf, inTransaction, Params, rowsOf } from './connection.js';
import { MachinePages } from './machine-pages.js';
import { MACHINE_COLUMNS, machineFromRow, machineValues, type MachineRow } from './machine-rows.js';
import { NetworkMembers } from './networks.js';
import { VolumeHolders } from './volumes.js';

const INSERT_SQL = `INSERT INTO machines (${MACHINE_COLUMNS.join(', ')}) VALUES (${MACHINE_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')})`;
// MACHINE_COLUMNS starts with the id: $1 of the update's values.
// Fenced by the host: a record whose stored host is another (it moved) is not overwritten.
const UPDATE_SQL = `UPDATE machines SET ${MACHINE_COLUMNS.slice(1).map((c, i) => `${c} = $${i + 2}`).join(', ')} WHERE id = $1 AND host_id IS NOT DISTINCT FROM $${MACHINE_COLUMNS.indexOf('host_id') + 1}`;

/** Rows read per round trip while a metadata filter, applied here, fills a page. */
const METADATA_BATCH = 200;

/** Machine records in `machines`: writes, look-ups, listings and the lifecycle queries. */
export class PostgresMachines implements MachineStore {
  private readonly pages: MachinePages;

  constructor(private readonly pool: pg.Pool) {
    this.pages = new MachinePages(pool);
  }

  async insertMachine(m: MachineRecord): Promise<void> {
    if (m.volumes.length === 0 && m.networkId === null) {
      await this.pool.query(INSERT_SQL, machineValues(m));
      return;
    }
    // One transaction holding the volumes' and the network's row locks: a concurrent insert,
    // volume delete or network delete sees this machine or nothing.
    await inTransaction(this.pool, async (tx) => {
      await VolumeHolders.assertAttachable(tx, m);
      await NetworkMembers.assertJoinable(tx, m);
      await tx.query(INSERT_SQL, machineValues(m));
    });
  }

  async updateMachine(m: MachineRecord): Promise<void> {
    if ((await changesOf(this.pool, UPDATE_SQL, machineValues(m))) > 0) return;
    const [now] = await rowsOf<{ host_id: string | null }>(this.pool, 'SELECT host_id FROM machines WHERE id = $1', [m.id]);
    if (now) throw new MachineMovedError(m.id, now.host_id);
  }

  async getMachine(id: string): Promise<MachineRecord | null> {
    const [r] = await rowsOf<MachineRow>(this.pool, 'SELECT * FROM machines WHERE id = $1', [id]);
    return r ? machineFromRow(r) : null;
  }

  /** One keyset page of the newest-first listing, before any metadata filter. */
  private async listRows(q: MachineListQuery, after: ListCursor | undefined, limit: number | undefined): Promise<MachineRow[]> {
    const p = new Params();
    const where = [`team_id = ${p.add(q.teamId)}`, `status = ANY(${p.add(q.statuses)}::text[])`];
    if (q.template !== undefined) where.push(`template = ${p.add(q.template)}`);
    if (q.visibleTo !== undefined) where.push(visibleMachine(p, q.visibleTo));
    if (after) where.push(`(created_at, id) < (${p.add(after.createdAt)}::bigint, ${p.add(after.id)}::text)`);
    let sql = `SELECT * FROM machines WHERE ${where.join(' AND ')} ORDER BY created_at DESC, id DESC`;
    if (limit !== undefined) sql += ` LIMIT ${p.add(limit)}`;
    return rowsOf<MachineRow>(this.pool, sql, p.values);
  }

  async listMachines(q: MachineListQuery): Promise<MachineRecord[]> {
    if (q.statuses.length === 0 || q.limit === 0) return [];
    const filter = q.metadata;
    if (filter === undefined) return (await this.listRows(q, q.after, q.limit)).map(machineFromRow);
    // Metadata equality is exact JSON equality as JavaScript sees it, which SQL cannot express
    // portably: rows come in keyset-ordered batches and stop as soon as the page is full.
    const out: MachineRecord[] = [];
    let after = q.after;
    for (;;) {
      const rows = await this.listRows(q, after, METADATA_BATCH);
      for (const row of rows) {
        const m = machineFromRow(row);
        if (!metadataMatches(m.metadata, filter)) continue;
        out.push(m);
        if (q.limit !== undefined && out.length >= q.limit) return out;
      }
      const last = rows[rows.length - 1];
      if (rows.length < METADATA_BATCH || !last) return out;
      after = { createdAt: last.created_at, id: last.id };
    }
  }

  async pageMachines(q: MachinePageQuery): Promise<MachineRecord[]> {
    return this.pages.page(q);
  }

  async machineCounts(): Promise<{ status: MachineStatus; template: string; count: number }[]> {
    const rows = await rowsOf<{ status: string; template: string; count: number }>(
      this.pool,
      'SELECT status, template, count(*) AS count FROM machines GROUP BY status, template ORDER BY status, template',
    );
    return rows.map((r) => ({ status: r.status as MachineStatus, template: r.template, count: r.count }));
  }

  async machineTemplates(teamId: string): Promise<string[]> {
    return (await rowsOf<{ template: string }>(this.pool, 'SELECT DISTINCT template FROM machines WHERE team_id = $1 ORDER BY template', [teamId])).map((r) => r.template);
  }

  async machinesInStatus(statuses: readonly MachineStatus[], hostId?: string): Promise<MachineRecord[]> {
    if (statuses.length === 0) return [];
    const rows =
      hostId === undefined
        ? await rowsOf<MachineRow>(this.pool, 'SELECT * FROM machines WHERE status = ANY($1::text[]) ORDER BY created_at, id', [statuses])
        : await rowsOf<MachineRow>(this.pool, 'SELECT * FROM machines WHERE status = ANY($1::text[]) AND host_id = $2 ORDER BY created_at, id', [statuses, hostId]);
    return rows.map(machineFromRow);
  }

  async dueMachines(now: number, limit: number, hostId?: string): Promise<MachineRecord[]> {
    const rows =
      hostId === undefined
        ? await rowsOf<MachineRow>(this.pool, 'SELECT * FROM machines WHERE deadline_at IS NOT NULL AND deadline_at <= $1 ORDER BY deadline_at LIMIT $2', [now, limit])
        : await rowsOf<MachineRow>(
            this.pool,
            'SELECT * FROM machines WHERE deadline_at IS NOT NULL AND deadline_at <= $1 AND host_id = $3 ORDER BY deadline_at LIMIT $2',
            [now, limit, hostId],
          );
    return rows.map(machineFromRow);
  }

  async adoptUnhostedMachines(hostId: string): Promise<number> {
    return changesOf(this.pool, 'UPDATE machines SET host_id = $1 WHERE host_id IS NULL', [hostId]);
  }

  async purgeDestroyed(before: number): Promise<number> {
    return inTransaction(this.pool, async (tx) => {
      const n = await changesOf(tx, "DELETE FROM machines WHERE status = 'destroyed' AND destroyed_at <= $1", [before]);
      if (n > 0) {
        // A key whose machine is purged has nothing left to return: it goes too, with the events and accessors.
        await tx.query('DELETE FROM idempotency_keys WHERE machine_id NOT IN (SELECT id FROM machines)');
        await tx.query('DELETE FROM machine_events WHERE machine_id NOT IN (SELECT id FROM machines)');
        await tx.query('DELETE FROM machine_accessors WHERE machine_id NOT IN (SELECT id FROM machines)');
      }
      return n;
    });
  }
}
