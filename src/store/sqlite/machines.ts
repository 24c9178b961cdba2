import type Database from 'better-sqlite3';
import { MachineMovedError } from '../../domain/host.js';
import type { MachineRecord, MachineStatus } from '../../domain/machine.js';
import { metadataMatches } from '../../domain/metadata.js';
import type { MachineListQuery, MachineStore, MachinePageQuery } from '../store.js';
import { VISIBLE_MACHINE } from './access.js';
import { MachinePages } from './machine-pages.js';
import { MACHINE_COLUMNS, machineFromRow, machineToRow, type MachineRow } from './machine-rows.js';
import { NetworkMembers } from './networks.js';
import { VolumeHolders } from './volumes.js';

const placeholders = (n: number): string => Array.from({ length: n }, () => '?').join(', ');

/** Machine records in `machines`: writes, look-ups, listings and the lifecycle queries. */
export class SqliteMachines implements MachineStore {
  private readonly stmts;
  private readonly pages: MachinePages;
  private readonly volumeHolders: VolumeHolders;
  private readonly networkMembers: NetworkMembers;

  constructor(private readonly db: Database.Database) {
    const cols = MACHINE_COLUMNS.join(', ');
    const params = MACHINE_COLUMNS.map((c) => `@${c}`).join(', ');
    const sets = MACHINE_COLUMNS.filter((c) => c !== 'id').map((c) => `${c} = @${c}`).join(', ');
    this.stmts = {
      insert: db.prepare(`INSERT INTO machines (${cols}) VALUES (${params})`),
      // Fenced by the host: a record whose stored host is another (it moved) is not overwritten.
      update: db.prepare(`UPDATE machines SET ${sets} WHERE id = @id AND host_id IS @host_id`),
      hostOf: db.prepare<[string], { host_id: string | null }>('SELECT host_id FROM machines WHERE id = ?'),
      get: db.prepare<[string], MachineRow>('SELECT * FROM machines WHERE id = ?'),
      counts: db.prepare<[], { status: string; template: string; count: number }>('SELECT status, template, COUNT(*) AS count FROM machines GROUP BY status, template ORDER BY status, template'),
      templates: db.prepare<[string], { template: string }>('SELECT DISTINCT template FROM machines WHERE team_id = ? ORDER BY template'),
      due: db.prepare<[number, number], MachineRow>(
        'SELECT * FROM machines WHERE deadline_at IS NOT NULL AND deadline_at <= ? ORDER BY deadline_at LIMIT ?',
      ),
      dueOnHost: db.prepare<[number, string, number], MachineRow>(
        'SELECT * FROM machines WHERE deadline_at IS NOT NULL AND deadline_at <= ? AND host_id = ? ORDER BY deadline_at LIMIT ?',
      ),
      adopt: db.prepare('UPDATE machines SET host_id = ? WHERE host_id IS NULL'),
      purgeDestroyed: db.prepare("DELETE FROM machines WHERE status = 'destroyed' AND destroyed_at <= ?"),
      // A key whose machine is purged has nothing left to return: it goes too.
      purgeOrphanIdem: db.prepare('DELETE FROM idempotency_keys WHERE machine_id NOT IN (SELECT id FROM machines)'),
      purgeOrphanEvents: db.prepare('DELETE FROM machine_events WHERE machine_id NOT IN (SELECT id FROM machines)'),
      purgeOrphanAccessors: db.prepare('DELETE FROM machine_accessors WHERE machine_id NOT IN (SELECT id FROM machines)'),
    };
    this.pages = new MachinePages(db);
    this.volumeHolders = new VolumeHolders(db);
    this.networkMembers = new NetworkMembers(db);
  }

  async insertMachine(m: MachineRecord): Promise<void> {
    if (m.volumes.length === 0 && m.networkId === null) {
      this.stmts.insert.run(machineToRow(m));
      return;
    }
    // One transaction: a concurrent insert, volume delete or network delete sees this machine or nothing.
    this.db.transaction(() => {
      this.volumeHolders.assertAttachable(m);
      this.networkMembers.assertJoinable(m);
      this.stmts.insert.run(machineToRow(m));
    })();
  }

  async updateMachine(m: MachineRecord): Promise<void> {
    if (this.stmts.update.run(machineToRow(m)).changes > 0) return;
    const now = this.stmts.hostOf.get(m.id);
    if (now) throw new MachineMovedError(m.id, now.host_id);
  }

  async getMachine(id: string): Promise<MachineRecord | null> {
    const r = this.stmts.get.get(id);
    return r ? machineFromRow(r) : null;
  }

  async listMachines(q: MachineListQuery): Promise<MachineRecord[]> {
    if (q.statuses.length === 0 || q.limit === 0) return [];
    const where = ['team_id = ?', `status IN (${placeholders(q.statuses.length)})`];
    const args: unknown[] = [q.teamId, ...q.statuses];
    if (q.template !== undefined) {
      where.push('template = ?');
      args.push(q.template);
    }
    if (q.visibleTo !== undefined) {
      where.push(VISIBLE_MACHINE);
      args.push(q.visibleTo, q.visibleTo);
    }
    if (q.after) {
      where.push('(created_at < ? OR (created_at = ? AND id < ?))');
      args.push(q.after.createdAt, q.after.createdAt, q.after.id);
    }
    const sql = `SELECT * FROM machines WHERE ${where.join(' AND ')} ORDER BY created_at DESC, id DESC`;
    const stmt = this.db.prepare<unknown[], MachineRow>(sql);
    const out: MachineRecord[] = [];
    // Metadata equality is exact JSON equality, which SQL cannot express portably:
    // rows stream in keyset order and stop as soon as the page is full.
    for (const row of stmt.iterate(...args)) {
      const m = machineFromRow(row);
      if (q.metadata && !metadataMatches(m.metadata, q.metadata)) continue;
      out.push(m);
      if (q.limit !== undefined && out.length >= q.limit) break;
    }
    return out;
  }

  async pageMachines(q: MachinePageQuery): Promise<MachineRecord[]> {
    return this.pages.page(q);
  }

  async machineCounts(): Promise<{ status: MachineStatus; template: string; count: number }[]> {
    return this.stmts.counts.all().map((r) => ({ status: r.status as MachineStatus, template: r.template, count: r.count }));
  }

  async machineTemplates(teamId: string): Promise<string[]> {
    return this.stmts.templates.all(teamId).map((r) => r.template);
  }

  async machinesInStatus(statuses: readonly MachineStatus[], hostId?: string): Promise<MachineRecord[]> {
    if (statuses.length === 0) return [];
    const onHost = hostId === undefined ? '' : ' AND host_id = ?';
    const sql = `SELECT * FROM machines WHERE status IN (${placeholders(statuses.length)})${onHost} ORDER BY created_at, id`;
    const params: unknown[] = hostId === undefined ? [...statuses] : [...statuses, hostId];
    return this.db.prepare<unknown[], MachineRow>(sql).all(...params).map(machineFromRow);
  }

  async dueMachines(now: number, limit: number, hostId?: string): Promise<MachineRecord[]> {
    const rows = hostId === undefined ? this.stmts.due.all(now, limit) : this.stmts.dueOnHost.all(now, hostId, limit);
    return rows.map(machineFromRow);
  }

  async adoptUnhostedMachines(hostId: string): Promise<number> {
    return this.stmts.adopt.run(hostId).changes;
  }

  async purgeDestroyed(before: number): Promise<number> {
    return this.db.transaction(() => {
      const n = this.stmts.purgeDestroyed.run(before).changes;
      if (n > 0) {
        this.stmts.purgeOrphanIdem.run();
        this.stmts.purgeOrphanEvents.run();
        this.stmts.purgeOrphanAccessors.run();
      }
      return n;
    })();
  }
}
