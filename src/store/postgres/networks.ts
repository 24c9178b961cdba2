import type pg from 'pg';
import type { MachineRecord, MachineStatus } from '../../domain/machine.js';
import { NetworkConflictError, type NetworkMember, type NetworkRecord } from '../../domain/private-network.js';
import type { NetworkInsertOutcome, NetworkStore } from '../store.js';
import { inTransaction, LOCK_CLASS, lockName, rowsOf, type Queryable } from './connection.js';

interface NetworkRow {
  id: string;
  team_id: string;
  name: string;
  created_at: number;
}

interface MemberRow {
  id: string;
  status: string;
  private_ip: string | null;
}

const fromRow = (r: NetworkRow): NetworkRecord => ({ id: r.id, teamId: r.team_id, name: r.name, createdAt: r.created_at });

/**
 * Who is on a network: the live machines whose `network_id` is it (`machines_network`
 * indexes it). Shared by the network queries and the machine insert that checks them.
 */
export const NetworkMembers = {
  /** The live machines on the network, oldest first. */
  async of(db: Queryable, networkId: string): Promise<NetworkMember[]> {
    const rows = await rowsOf<MemberRow>(
      db,
      "SELECT id, status, private_ip FROM machines WHERE network_id = $1 AND status IN ('creating', 'running', 'paused', 'error') ORDER BY created_at, id",
      [networkId],
    );
    return rows.map((r) => ({ machineId: r.id, status: r.status as MachineStatus, privateIp: r.private_ip }));
  },

  /**
   * Throw `NetworkConflictError` unless machine `m`'s network exists in its team. Run inside
   * the insert's transaction: the network's row stays share-locked until the commit, so a
   * concurrent delete of the network waits for the insert (and then sees the new member).
   */
  async assertJoinable(db: Queryable, m: MachineRecord): Promise<void> {
    if (m.networkId === null) return;
    const [row] = await rowsOf<{ team_id: string }>(db, 'SELECT team_id FROM networks WHERE id = $1 FOR SHARE', [m.networkId]);
    if (row?.team_id !== m.teamId) throw new NetworkConflictError(m.networkId);
  },
};

/** Private networks in `networks`; who is on one is read from the machines' `network_id`. */
export class PostgresNetworks implements NetworkStore {
  constructor(private readonly pool: pg.Pool) {}

  async insertNetwork(n: NetworkRecord, maxPerTeam: number): Promise<NetworkInsertOutcome> {
    return inTransaction(this.pool, async (tx): Promise<NetworkInsertOutcome> => {
      // One insert per team at a time, so the name and count checks hold until the commit.
      await lockName(tx, LOCK_CLASS.teamNetworks, n.teamId);
      if ((await rowsOf(tx, 'SELECT 1 FROM networks WHERE team_id = $1 AND name = $2', [n.teamId, n.name])).length > 0) return 'name_taken';
      const [count] = await rowsOf<{ n: number }>(tx, 'SELECT count(*) AS n FROM networks WHERE team_id = $1', [n.teamId]);
      if (count!.n >= maxPerTeam) return 'team_full';
      await tx.query('INSERT INTO networks (id, team_id, name, created_at) VALUES ($1, $2, $3, $4)', [n.id, n.teamId, n.name, n.createdAt]);
      return 'inserted';
    });
  }

  async getNetwork(id: string): Promise<NetworkRecord | null> {
    const [r] = await rowsOf<NetworkRow>(this.pool, 'SELECT * FROM networks WHERE id = $1', [id]);
    return r ? fromRow(r) : null;
  }

  async listNetworks(teamId: string): Promise<NetworkRecord[]> {
    return (await rowsOf<NetworkRow>(this.pool, 'SELECT * FROM networks WHERE team_id = $1 ORDER BY created_at DESC, id DESC', [teamId])).map(fromRow);
  }

  async networkMembers(networkId: string): Promise<NetworkMember[]> {
    return NetworkMembers.of(this.pool, networkId);
  }

  async deleteNetwork(id: string): Promise<{ deleted: boolean; members: NetworkMember[] }> {
    return inTransaction(this.pool, async (tx) => {
      // The row lock makes a machine insert joining this network wait (or wait for it).
      const locked = await rowsOf(tx, 'SELECT 1 FROM networks WHERE id = $1 FOR UPDATE', [id]);
      if (locked.length === 0) return { deleted: false, members: [] };
      const members = await NetworkMembers.of(tx, id);
      if (members.length > 0) return { deleted: false, members };
      await tx.query('DELETE FROM networks WHERE id = $1', [id]);
      return { deleted: true, members };
    });
  }
}
