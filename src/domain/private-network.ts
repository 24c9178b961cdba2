import type { MachineStatus } from './machine.js';

/**
 * Private networks: a team's named groups of machines. Machines on one network reach
 * each other on their private addresses (any protocol); machines on different networks,
 * or on none, stay isolated from each other. A machine joins at most one network, at its
 * create, for its whole life.
 */

/** Everything stored about one private network. Times are epoch milliseconds. */
export interface NetworkRecord {
  /** `net_` + 16 lowercase letters and digits. */
  id: string;
  teamId: string;
  /** Unique within the team. */
  name: string;
  createdAt: number;
}

/** A live (not destroyed) machine on a network. */
export interface NetworkMember {
  machineId: string;
  status: MachineStatus;
  /** Its address on the server's machine subnet; null only for a record that never got one. */
  privateIp: string | null;
}

/** Network names: letters, digits, `_`, `.`, `-`, starting with a letter or digit. */
export const NETWORK_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** Network ids as a path parameter accepts them. */
export const NETWORK_ID_PATTERN = /^net_[a-z0-9]{1,64}$/;

/** A team has at most this many networks: the list needs no paging. */
export const MAX_NETWORKS_PER_TEAM = 100;

/**
 * The store refused a machine's network at its insert: the network no longer exists for
 * the machine's team (deleted since the service's check). Nothing was written.
 */
export class NetworkConflictError extends Error {
  constructor(readonly networkId: string) {
    super(`network ${networkId} does not exist for this team`);
    this.name = 'NetworkConflictError';
  }
}
