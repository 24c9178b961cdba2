import type { Metrics } from '../../service/metrics.js';
import { defineRoute, type AnyRoute } from '../route.js';
import { ErrorSchema } from '../shared/schemas.js';

/** `GET /metrics`: Prometheus' text format, for an admin key (`Authorization: Bearer`, as Prometheus' `authorization` setting sends it). */
export function metricsRoutes(metrics: Metrics): AnyRoute[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/metrics',
      operationId: 'getMetrics',
      summary: 'Prometheus metrics',
      description:
        'Machines by state and template, operation latency histograms (create, fork, pause, resume, snapshot, delete, exec, template_build) ' +
        'and failures by error code, warm pools (ready, hits, misses), snapshot count and bytes, HTTP requests by route and status, and the process\'s own.',
      tag: 'admin',
      auth: 'admin',
      responses: {
        200: { description: 'The text exposition format (version 0.0.4).', contentType: 'text/plain' },
        401: { description: 'Missing or unknown API key.', schema: ErrorSchema },
        403: { description: 'Not an admin key.', schema: ErrorSchema },
      },
      handler: async ({ reply }) => {
        reply.header('content-type', metrics.contentType);
        return metrics.render();
      },
    }),
  ];
}
