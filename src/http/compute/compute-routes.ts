import type { FastifyRequest } from 'fastify';
import type { ComputeService } from '../../service/compute-service.js';
import { defineRoute, type AnyRoute } from '../route.js';
import { ErrorSchema } from '../shared/schemas.js';
import { renderComputeMachine } from './compute-view.js';
import { ComputeMachinesQuery, ComputeMachinesResponse } from './schemas.js';

/** Ask other hosts the same request; each host's JSON answer (hosts that did not answer are left out). */
export type AskHosts = (request: FastifyRequest, hostIds: readonly string[]) => Promise<Map<string, unknown>>;

/**
 * The compute machines listing (seed 004): the native machines, with live host usage. In a
 * fleet, a machine another host runs is sampled there (`askHosts`): its pid, paths, cgroups and
 * node are that host's. A host that does not answer leaves its machines as their records say, with zeros.
 */
export function computeRoutes(compute: ComputeService, askHosts?: AskHosts): AnyRoute[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/compute/machines',
      operationId: 'listComputeMachines',
      summary: 'Get compute machines',
      description:
        'The team\'s machines (destroyed ones aside), newest first, each with its init\'s host pid, root filesystem, ' +
        'annotations and a live sample of its cgroups and network interfaces (zeros unless running). ' +
        'Every filter given must match exactly. See docs/compute-api.md.',
      tag: 'compute',
      auth: 'team',
      query: ComputeMachinesQuery,
      responses: {
        200: { description: 'List of compute machines.', schema: ComputeMachinesResponse },
        400: { description: 'A bad or unknown filter (VALIDATION_FAILED).', schema: ErrorSchema },
        401: { description: 'Missing or unknown API key.', schema: ErrorSchema },
      },
      handler: async ({ query, caller, request }) => {
        const machines = await compute.list(caller, {
          machine: query.machine,
          namespace: query.namespace,
          runtime: query.runtime,
          service: query.service,
          status: query.status === '*' ? undefined : query.status,
        });
        const ctx = { version: compute.version, node: compute.node };
        let results = machines.map((m) => renderComputeMachine(m, ctx));
        const elsewhere = new Map<string, Set<string>>();
        for (const m of machines) {
          if (m.here || m.status !== 'running' || m.record.hostId === null) continue;
          elsewhere.set(m.record.hostId, (elsewhere.get(m.record.hostId) ?? new Set()).add(m.record.id));
        }
        if (askHosts && elsewhere.size > 0) {
          const sampled = new Map<string, (typeof results)[number]>();
          for (const [hostId, answer] of await askHosts(request, [...elsewhere.keys()])) {
            for (const r of (answer as { body?: { results?: Array<(typeof results)[number]> } }).body?.results ?? []) {
              if (elsewhere.get(hostId)!.has(r.id)) sampled.set(r.id, r);
            }
          }
          results = results.map((r) => sampled.get(r.id) ?? r);
        }
        return { body: { results, results_total: results.length } };
      },
    }),
  ];
}
