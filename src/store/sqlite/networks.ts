import type Database from 'better-sqlite3';
import type { MachineRecord, MachineStatus } from '../../domain/machine.js';
import { NetworkConflictError, type NetworkMember, type NetworkRecord } from '../../domain/private-network.js';
import type { NetworkInsertOutcome, NetworkStore } from '../store.js';

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
export class NetworkMembers {
  private readonly stmts;

  constructor(db: Database.Database) {
    this.stmts = {
      members: db.prepare<[string], MemberRow>(
        "SELECT id, status, private_ip FROM machines WHERE network_id = ? AND status IN ('creating', 'running', 'paused', 'error') ORDER BY created_at, id",
      ),
      team: db.prepare<[string], { team_id: string }>('SELECT team_id FROM networks WHERE id = ?'),
    };
  }

  /** The live machines on the network, oldest first. */
  of(networkId: string): NetworkMember[] {
    return this.stmts.members.all(networkId).map((r) => ({ machineId: r.id, status: r.status as MachineStatus, privateIp: r.private_ip }));
  }

  /** Throw `NetworkConflictError` unless machine `m`'s network exists in its team. Run inside the insert's transaction. */
  assertJoinable(m: MachineRecord): void {
    if (m.networkId !== null && this.stmts.team.get(m.networkId)?.team_id !== m.teamId) throw new NetworkConflictError(m.networkId);
  }
}

/** Private networks in `networks`; who is on one is read from the machines' `network_id`. */
export class SqliteNetworks implements NetworkStore {
  private readonly stmts;
  private readonly members: NetworkMembers;

  constructor(private readonly db: Database.Database) {
    this.members = new NetworkMembers(db);
    this.stmts = {
      insert: db.prepare('INSERT INTO networks (id, team_id, name, created_at) VALUES (@id, @team_id, @name, @created_at)'),
      byName: db.prepare<[string, string], { id: string }>('SELECT id FROM networks WHERE team_id = ? AND name = ?'),
      count: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM networks WHERE team_id = ?'),
      get: db.prepare<[string], NetworkRow>('SELECT * FROM networks WHERE id = ?'),
      list: db.prepare<[string], NetworkRow>('SELECT * FROM networks WHERE team_id = ? ORDER BY created_at DESC, id DESC'),
      delete: db.prepare('DELETE FROM networks WHERE id = ?'),
    };
  }

  async insertNetwork(n: NetworkRecord, maxPerTeam: number): Promise<NetworkInsertOutcome> {
    return this.db.transaction((): NetworkInsertOutcome => {
      if (this.stmts.byName.get(n.teamId, n.name)) return 'name_taken';
      if (this.stmts.count.get(n.teamId)!.n >= maxPerTeam) return 'team_full';
      this.stmts.insert.run({ id: n.id, team_id: n.teamId, name: n.name, created_at: n.createdAt });
      return 'inserted';
    })();
  }

  async getNetwork(id: string): Promise<NetworkRecord | null> {
    const r = this.stmts.get.get(id);
    return r ? fromRow(r) : null;
  }

  async listNetworks(teamId: string): Promise<NetworkRecord[]> {
    return this.stmts.list.all(teamId).map(fromRow);
  }

  async networkMembers(networkId: string): Promise<NetworkMember[]> {
    return this.members.of(networkId);
  }

  async deleteNetwork(id: string): Promise<{ deleted: boolean; members: NetworkMember[] }> {
    return this.db.transaction(() => {
      const members = this.members.of(id);
      if (members.length > 0) return { deleted: false, members };
      return { deleted: this.stmts.delete.run(id).changes > 0, members };
    })();
  }
}
