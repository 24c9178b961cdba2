import type { HostRecord } from '../../domain/host.js';
import { defineRoute, type AnyRoute } from '../route.js';
import { ErrorSchema } from '../shared/schemas.js';
import { HostListSchema } from './schemas.js';

/** What the hosts listing reads. */
export interface HostListing {
  list(): Promise<HostRecord[]>;
  /** Machines (creating, running or paused) each host holds. */
  loads(): Promise<Map<string, number>>;
}

/** The hosts sharing this server's store (admin). */
export function hostRoutes(hosts: HostListing): AnyRoute[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/admin/hosts',
      operationId: 'listHosts',
      summary: 'List hosts',
      description:
        'Every host that registered in this database: whether it is up (heartbeating), stopped (shut down cleanly) or down ' +
        '(silent past HANGAR_HOST_DOWN_AFTER_MS: its running machines were failed), its capacity and the machines it holds.',
      tag: 'admin',
      auth: 'admin',
      responses: {
        200: { description: 'The hosts, by id.', schema: HostListSchema },
        401: { description: 'Missing or unknown API key.', schema: ErrorSchema },
        403: { description: 'Not an admin key.', schema: ErrorSchema },
      },
      handler: async () => {
        const loads = await hosts.loads();
        return {
          items: (await hosts.list()).map((h) => ({
            id: h.id,
            state: h.state,
            url: h.url,
            capacity_machines: h.capacityMachines,
            machines: loads.get(h.id) ?? 0,
            started_at: new Date(h.startedAt).toISOString(),
            heartbeat_at: new Date(h.heartbeatAt).toISOString(),
            down_reason: h.downReason,
          })),
        };
      },
    }),
  ];
}
