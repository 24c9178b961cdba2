import type { HostRecord } from '../../domain/host.js';
import { defineRoute, type AnyRoute } from '../route.js';
import { ErrorSchema } from '../shared/schemas.js';
import { z } from 'zod';
import { HostListSchema, HostSchema } from './schemas.js';

/** What the hosts routes read and change. */
export interface HostListing {
  list(): Promise<HostRecord[]>;
  /** Machines (creating, running or paused) each host holds. */
  loads(): Promise<Map<string, number>>;
  /** Start or end draining a host; NOT_FOUND or STATE_CONFLICT (not up). */
  drain(hostId: string, draining: boolean): Promise<HostRecord>;
}

const view = (h: HostRecord, loads: Map<string, number>) => ({
  id: h.id,
  state: h.state,
  url: h.url,
  capacity_machines: h.capacityMachines,
  machines: loads.get(h.id) ?? 0,
  started_at: new Date(h.startedAt).toISOString(),
  heartbeat_at: new Date(h.heartbeatAt).toISOString(),
  down_reason: h.downReason,
  snapshot_store: h.snapshotStore,
});

const HostParams = z.object({ id: z.string().regex(/^[A-Za-z0-9._/:-]{1,128}$/, 'must be a host id (GET /v1/admin/hosts)') });

const errors = {
  401: { description: 'Missing or unknown API key.', schema: ErrorSchema },
  403: { description: 'Not an admin key.', schema: ErrorSchema },
};

/** The hosts sharing this server's store (admin). */
export function hostRoutes(hosts: HostListing): AnyRoute[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/admin/hosts',
      operationId: 'listHosts',
      summary: 'List hosts',
      description:
        'Every host that registered in this database: whether it is up (heartbeating), draining (heartbeating, gets no new machines), stopped (shut down cleanly) or down ' +
        '(silent past HANGAR_HOST_DOWN_AFTER_MS: its running machines were failed), its capacity and the machines it holds.',
      tag: 'admin',
      auth: 'admin',
      responses: { 200: { description: 'The hosts, by id.', schema: HostListSchema }, ...errors },
      handler: async () => {
        const loads = await hosts.loads();
        return { items: (await hosts.list()).map((h) => view(h, loads)) };
      },
    }),
    ...([true, false] as const).map((draining) =>
      defineRoute({
        method: draining ? 'POST' : 'DELETE',
        url: '/v1/admin/hosts/:id/drain',
        operationId: draining ? 'drainHost' : 'undrainHost',
        summary: draining ? 'Drain a host' : 'End draining a host',
        description: draining
          ? 'The host keeps running the machines it has (they finish, pause and resume there) and gets no new ones: creates go to the other hosts ' +
            '(to it only when no other host takes machines). It stays draining across its restarts until DELETE. A host id may hold a "/": send it percent-encoded.'
          : 'The host takes new machines again.',
        tag: 'admin',
        auth: 'admin',
        params: HostParams,
        responses: {
          200: { description: 'The host.', schema: HostSchema },
          400: { description: 'Invalid host id.', schema: ErrorSchema },
          ...errors,
          404: { description: 'No such host.', schema: ErrorSchema },
          409: { description: 'The host is stopped or down.', schema: ErrorSchema },
        },
        handler: async ({ params }) => view(await hosts.drain(params.id, draining), await hosts.loads()),
      }),
    ),
  ];
}
