import type Database from 'better-sqlite3';
import type { MachineRecord, MachineStatus } from '../../domain/machine.js';
import { VolumeConflictError, type VolumeAttachment, type VolumeHolder, type VolumeRecord } from '../../domain/volume.js';
import type { VolumeInsertOutcome, VolumeStore } from '../store.js';

interface VolumeRow {
  id: string;
  team_id: string;
  name: string;
  size_mb: number;
  created_at: number;
}

interface HolderRow {
  machine_id: string;
  status: string;
  attachment: string;
}

const fromRow = (r: VolumeRow): VolumeRecord => ({ id: r.id, teamId: r.team_id, name: r.name, sizeMb: r.size_mb, createdAt: r.created_at });

/**
 * Who holds a volume: a scan of the attachments (JSON) of the live machines that have
 * any, which `machines_with_volumes` indexes. Shared by the volume queries and the
 * machine insert that checks them.
 */
export class VolumeHolders {
  private readonly stmts;

  constructor(db: Database.Database) {
    this.stmts = {
      holders: db.prepare<[string], HolderRow>(
        'SELECT m.id AS machine_id, m.status AS status, j.value AS attachment FROM machines m, json_each(m.volumes) j ' +
          "WHERE m.volumes IS NOT NULL AND m.status IN ('creating', 'running', 'paused', 'error') " +
          "AND json_extract(j.value, '$.volumeId') = ? ORDER BY m.created_at, m.id",
      ),
      team: db.prepare<[string], { team_id: string }>('SELECT team_id FROM volumes WHERE id = ?'),
    };
  }

  /** The live machines the volume is attached to, oldest first. */
  of(volumeId: string): VolumeHolder[] {
    return this.stmts.holders.all(volumeId).map((r) => {
      const a = JSON.parse(r.attachment) as VolumeAttachment;
      return { machineId: r.machine_id, status: r.status as MachineStatus, mountPath: a.mountPath, readOnly: a.readOnly };
    });
  }

  /**
   * Throw `VolumeConflictError` unless machine `m` may take its attachments: each volume
   * exists in its team, and no other live machine holds a read-write one read-write
   * (read-only attachments share a volume with anyone). Run inside the insert's transaction.
   */
  assertAttachable(m: MachineRecord): void {
    for (const a of m.volumes) {
      if (this.stmts.team.get(a.volumeId)?.team_id !== m.teamId) throw new VolumeConflictError(a.volumeId, 'missing', null);
      if (a.readOnly) continue;
      const writer = this.of(a.volumeId).find((h) => h.machineId !== m.id && !h.readOnly);
      if (writer) throw new VolumeConflictError(a.volumeId, 'held', writer.machineId);
    }
  }
}

/** Volumes in `volumes`; who holds one is read from the machines' attachments. */
export class SqliteVolumes implements VolumeStore {
  private readonly stmts;
  private readonly holders: VolumeHolders;

  constructor(private readonly db: Database.Database) {
    this.holders = new VolumeHolders(db);
    this.stmts = {
      insert: db.prepare('INSERT INTO volumes (id, team_id, name, size_mb, created_at) VALUES (@id, @team_id, @name, @size_mb, @created_at)'),
      byName: db.prepare<[string, string], { id: string }>('SELECT id FROM volumes WHERE team_id = ? AND name = ?'),
      count: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM volumes WHERE team_id = ?'),
      get: db.prepare<[string], VolumeRow>('SELECT * FROM volumes WHERE id = ?'),
      list: db.prepare<[string], VolumeRow>('SELECT * FROM volumes WHERE team_id = ? ORDER BY created_at DESC, id DESC'),
      allIds: db.prepare<[], { id: string }>('SELECT id FROM volumes'),
      delete: db.prepare('DELETE FROM volumes WHERE id = ?'),
    };
  }

  async insertVolume(v: VolumeRecord, maxPerTeam: number): Promise<VolumeInsertOutcome> {
    return this.db.transaction((): VolumeInsertOutcome => {
      if (this.stmts.byName.get(v.teamId, v.name)) return 'name_taken';
      if (this.stmts.count.get(v.teamId)!.n >= maxPerTeam) return 'team_full';
      this.stmts.insert.run({ id: v.id, team_id: v.teamId, name: v.name, size_mb: v.sizeMb, created_at: v.createdAt });
      return 'inserted';
    })();
  }

  async getVolume(id: string): Promise<VolumeRecord | null> {
    const r = this.stmts.get.get(id);
    return r ? fromRow(r) : null;
  }

  async listVolumes(teamId: string): Promise<VolumeRecord[]> {
    return this.stmts.list.all(teamId).map(fromRow);
  }

  async allVolumeIds(): Promise<string[]> {
    return this.stmts.allIds.all().map((r) => r.id);
  }

  async volumeHolders(volumeId: string): Promise<VolumeHolder[]> {
    return this.holders.of(volumeId);
  }

  async deleteVolume(id: string): Promise<{ deleted: boolean; holders: VolumeHolder[] }> {
    return this.db.transaction(() => {
      const holders = this.holders.of(id);
      if (holders.length > 0) return { deleted: false, holders };
      return { deleted: this.stmts.delete.run(id).changes > 0, holders };
    })();
  }
}
