import { HangarError, networkNotFound } from '../domain/errors.js';
import { newNetworkId } from '../domain/ids.js';
import { MAX_NETWORKS_PER_TEAM, type NetworkMember, type NetworkRecord } from '../domain/private-network.js';
import type { Caller } from '../domain/team.js';
import type { Store } from '../store/store.js';

/** A create request after validation at the edge. */
export interface CreateNetworkInput {
  name: string;
}

/** A private network and the live machines on it. */
export interface NetworkView {
  network: NetworkRecord;
  members: NetworkMember[];
}

/** The 422 of a create naming a network the team does not have (`field`: how the surface spells it). */
export function unknownNetwork(networkId: string, field = 'network_id'): HangarError {
  return new HangarError('UNKNOWN_NETWORK', `${field} ${networkId} names no private network of this team; create one with POST /v1/networks, or list yours with GET /v1/networks.`, {
    network_id: networkId,
  });
}

/**
 * Private networks of a team: create, list, get and delete (refused while a live machine
 * is on the network). A network is only a record: the runtime learns of it through each
 * member's spec, so creating or deleting one touches nothing on the host. Every team key
 * and user of the team sees the team's networks; other teams' are missing (404).
 */
export class NetworkService {
  constructor(
    private readonly store: Store,
    private readonly now: () => number = Date.now,
  ) {}

  /** Create an empty network. */
  async create(caller: Caller, input: CreateNetworkInput): Promise<NetworkView> {
    const network: NetworkRecord = { id: newNetworkId(), teamId: caller.team.id, name: input.name, createdAt: this.now() };
    const outcome = await this.store.insertNetwork(network, MAX_NETWORKS_PER_TEAM);
    switch (outcome) {
      case 'inserted':
        return { network, members: [] };
      case 'name_taken':
        throw new HangarError('NETWORK_NAME_TAKEN', `This team already has a network named "${input.name}"; choose another name, or use that network.`, { name: input.name });
      case 'team_full':
        throw new HangarError('CAPACITY_EXCEEDED', `This team has ${MAX_NETWORKS_PER_TEAM} networks, as many as a team may; delete one first.`);
    }
  }

  /** The team's networks, newest first (at most MAX_NETWORKS_PER_TEAM). */
  async list(caller: Caller): Promise<NetworkView[]> {
    const networks = await this.store.listNetworks(caller.team.id);
    return Promise.all(networks.map(async (network) => ({ network, members: await this.store.networkMembers(network.id) })));
  }

  /** One of the team's networks, or NOT_FOUND (also when another team's). */
  async get(caller: Caller, id: string): Promise<NetworkView> {
    const network = await this.store.getNetwork(id);
    if (!network || network.teamId !== caller.team.id) throw networkNotFound(id);
    return { network, members: await this.store.networkMembers(id) };
  }

  /** Delete a network; 409 NETWORK_IN_USE, naming them, while any live machine is on it. */
  async delete(caller: Caller, id: string): Promise<void> {
    await this.get(caller, id);
    const { deleted, members } = await this.store.deleteNetwork(id);
    if (members.length > 0) {
      const names = members.map((m) => `${m.machineId} (${m.status})`).join(', ');
      throw new HangarError(
        'NETWORK_IN_USE',
        `Network ${id} still has ${members.length > 1 ? 'machines' : 'a machine'} on it: ${names}. A network is deleted only once no live machine is on it; destroy ${members.length > 1 ? 'those machines' : 'that machine'} first.`,
        { network_id: id, machine_ids: members.map((m) => m.machineId) },
      );
    }
    if (!deleted) throw networkNotFound(id);
  }

  /** The network a create joins, checked: it must be the caller's team's (422 UNKNOWN_NETWORK). The store checks again, atomically, at the insert. */
  async joinable(caller: Caller, networkId: string, field?: string): Promise<string> {
    const network = await this.store.getNetwork(networkId);
    if (!network || network.teamId !== caller.team.id) throw unknownNetwork(networkId, field);
    return network.id;
  }
}
