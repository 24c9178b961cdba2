import type { ComputeService } from '../../service/compute-service.js';
import { defineRoute, type AnyRoute } from '../route.js';
import { ErrorSchema } from '../shared/schemas.js';
import { renderComputeMachine } from './compute-view.js';
import { ComputeMachinesQuery, ComputeMachinesResponse } from './schemas.js';

/** The compute machines listing (seed 004): the native machines, with live host usage. */
export function computeRoutes(compute: ComputeService): AnyRoute[] {
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
      handler: async ({ query, caller }) => {
        const machines = await compute.list(caller, {
          machine: query.machine,
          namespace: query.namespace,
          runtime: query.runtime,
          service: query.service,
          status: query.status === '*' ? undefined : query.status,
        });
        const ctx = { version: compute.version, node: compute.node };
        const results = machines.map((m) => renderComputeMachine(m, ctx));
        return { body: { results, results_total: results.length } };
      },
    }),
  ];
}
