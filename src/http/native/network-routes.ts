import type { NetworkService } from '../../service/network-service.js';
import { defineRoute, type AnyRoute } from '../route.js';
import { ErrorSchema } from '../shared/schemas.js';
import { renderNetwork } from './private-network-view.js';
import { CreateNetworkBody, NetworkParams, PrivateNetworkListSchema, PrivateNetworkSchema } from './schemas.js';

const errors = {
  401: { description: 'Missing or unknown API key.', schema: ErrorSchema },
  404: { description: 'No such network for this team.', schema: ErrorSchema },
};

/** The team's private networks: create, list, get, delete. Joining is part of a machine's create (`network_id`). */
export function networkRoutes(service: NetworkService): AnyRoute[] {
  return [
    defineRoute({
      method: 'POST',
      url: '/v1/networks',
      operationId: 'createNetwork',
      summary: 'Create a private network',
      description:
        'An empty network of the team. Machines created with its id in `network_id` (Paperspace-style: `networkId`) reach each other on their private_ip, any protocol; ' +
          'machines on other networks or on none stay isolated from them, and each machine\'s outbound policy still governs what it reaches outside the host.',
      tag: 'networks',
      auth: 'team',
      body: CreateNetworkBody,
      status: 201,
      responses: {
        201: { description: 'The network.', schema: PrivateNetworkSchema },
        400: { description: 'Invalid request (VALIDATION_FAILED, INVALID_JSON).', schema: ErrorSchema },
        401: errors[401],
        409: { description: 'NETWORK_NAME_TAKEN: the team already has a network of this name.', schema: ErrorSchema },
        429: { description: 'CAPACITY_EXCEEDED: the team has 100 networks.', schema: ErrorSchema },
      },
      handler: async ({ body, caller }) => renderNetwork(await service.create(caller, { name: body.name })),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/networks',
      operationId: 'listNetworks',
      summary: "List the team's private networks, newest first",
      description: 'Every network of the team (at most 100, so there is no paging), each with the live machines on it.',
      tag: 'networks',
      auth: 'team',
      responses: { 200: { description: 'Networks.', schema: PrivateNetworkListSchema }, 401: errors[401] },
      handler: async ({ caller }) => ({ items: (await service.list(caller)).map(renderNetwork) }),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/networks/:id',
      operationId: 'getNetwork',
      summary: 'Get a private network and its machines',
      tag: 'networks',
      auth: 'team',
      params: NetworkParams,
      responses: { 200: { description: 'The network.', schema: PrivateNetworkSchema }, ...errors },
      handler: async ({ params, caller }) => renderNetwork(await service.get(caller, params.id)),
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/networks/:id',
      operationId: 'deleteNetwork',
      summary: 'Delete a private network',
      description: 'Refused (409 NETWORK_IN_USE, naming the machines in details.machine_ids) while any live machine is on it, paused and errored ones included: destroy them first.',
      tag: 'networks',
      auth: 'team',
      params: NetworkParams,
      status: 204,
      responses: { 204: { description: 'Deleted.' }, ...errors, 409: { description: 'NETWORK_IN_USE: live machines are on it.', schema: ErrorSchema } },
      handler: async ({ params, caller }) => {
        await service.delete(caller, params.id);
      },
    }),
  ];
}
