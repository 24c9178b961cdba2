import type pg from 'pg';
import type { MachineRecord, MachineStatus } from '../../domain/machine.js';
import { VolumeConflictError, type VolumeAttachment, type VolumeHolder, type VolumeRecord } from '../../domain/volume.js';
import type { VolumeInsertOutcome, VolumeStore } from '../store.js';
import { inTransaction, LOCK_CLASS, lockName, rowsOf, type Queryable } from './connection.js';

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
 * Who holds a volume: a scan of the attachments (JSON text) of the live machines that
 * have any, which `machines_with_volumes` indexes. Shared by the volume queries and the
 * machine insert that checks them.
 */
export const VolumeHolders = {
  /** The live machines the volume is attached to, oldest first. */
  async of(db: Queryable, volumeId: string): Promise<VolumeHolder[]> {
    const rows = await rowsOf<HolderRow>(
      db,
      'SELECT m.id AS machine_id, m.status AS status, j.value AS attachment ' +
        'FROM machines m CROSS JOIN LATERAL json_array_elements_text(m.volumes::json) WITH ORDINALITY AS j(value, n) ' +
        "WHERE m.volumes IS NOT NULL AND m.status IN ('creating', 'running', 'paused', 'error') " +
        "AND j.value::json ->> 'volumeId' = $1 ORDER BY m.created_at, m.id, j.n",
      [volumeId],
    );
    return rows.map((r) => {
      const a = JSON.parse(r.attachment) as VolumeAttachment;
      return { machineId: r.machine_id, status: r.status as MachineStatus, mountPath: a.mountPath, readOnly: a.readOnly };
    });
  },

  /**
   * Throw `VolumeConflictError` unless machine `m` may take its attachments: each volume
   * exists in its team, and no other live machine holds a read-write one read-write
   * (read-only attachments share a volume with anyone). Run inside the insert's
   * transaction: it locks the volumes' rows (in id order, so two inserts never deadlock),
   * which makes concurrent attachers and deleters of one volume wait for each other.
   */
  async assertAttachable(db: Queryable, m: MachineRecord): Promise<void> {
    const ids = [...new Set(m.volumes.map((a) => a.volumeId))];
    const locked = await rowsOf<{ id: string; team_id: string }>(db, 'SELECT id, team_id FROM volumes WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE', [ids]);
    const teamOf = new Map(locked.map((r) => [r.id, r.team_id]));
    for (const a of m.volumes) {
      if (teamOf.get(a.volumeId) !== m.teamId) throw new VolumeConflictError(a.volumeId, 'missing', null);
      if (a.readOnly) continue;
      const writer = (await VolumeHolders.of(db, a.volumeId)).find((h) => h.machineId !== m.id && !h.readOnly);
      if (writer) throw new VolumeConflictError(a.volumeId, 'held', writer.machineId);
    }
  },
};

/** Volumes in `volumes`; who holds one is read from the machines' attachments. */
export class PostgresVolumes implements VolumeStore {
  constructor(private readonly pool: pg.Pool) {}

  async insertVolume(v: VolumeRecord, maxPerTeam: number): Promise<VolumeInsertOutcome> {
    return inTransaction(this.pool, async (tx): Promise<VolumeInsertOutcome> => {
      // One insert per team at a time, so the name and count checks hold until the commit.
      await lockName(tx, LOCK_CLASS.teamVolumes, v.teamId);
      if ((await rowsOf(tx, 'SELECT 1 FROM volumes WHERE team_id = $1 AND name = $2', [v.teamId, v.name])).length > 0) return 'name_taken';
      const [count] = await rowsOf<{ n: number }>(tx, 'SELECT count(*) AS n FROM volumes WHERE team_id = $1', [v.teamId]);
      if (count!.n >= maxPerTeam) return 'team_full';
      await tx.query('INSERT INTO volumes (id, team_id, name, size_mb, created_at) VALUES ($1, $2, $3, $4, $5)', [v.id, v.teamId, v.name, v.sizeMb, v.createdAt]);
      return 'inserted';
    });
  }

  async getVolume(id: string): Promise<VolumeRecord | null> {
    const [r] = await rowsOf<VolumeRow>(this.pool, 'SELECT * FROM volumes WHERE id = $1', [id]);
    return r ? fromRow(r) : null;
  }

  async listVolumes(teamId: string): Promise<VolumeRecord[]> {
    return (await rowsOf<VolumeRow>(this.pool, 'SELECT * FROM volumes WHERE team_id = $1 ORDER BY created_at DESC, id DESC', [teamId])).map(fromRow);
  }

  async allVolumeIds(): Promise<string[]> {
    return (await rowsOf<{ id: string }>(this.pool, 'SELECT id FROM volumes')).map((r) => r.id);
  }

  async volumeHolders(volumeId: string): Promise<VolumeHolder[]> {
    return VolumeHolders.of(this.pool, volumeId);
  }

  async deleteVolume(id: string): Promise<{ deleted: boolean; holders: VolumeHolder[] }> {
    return inTransaction(this.pool, async (tx) => {
      // The row lock makes a machine insert attaching this volume wait (or wait for it).
      const locked = await rowsOf(tx, 'SELECT 1 FROM volumes WHERE id = $1 FOR UPDATE', [id]);
      if (locked.length === 0) return { deleted: false, holders: [] };
      const holders = await VolumeHolders.of(tx, id);
      if (holders.length > 0) return { deleted: false, holders };
      await tx.query('DELETE FROM volumes WHERE id = $1', [id]);
      return { deleted: true, holders };
    });
  }
}
