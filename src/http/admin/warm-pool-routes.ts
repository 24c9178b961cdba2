import type { WarmPoolService, WarmPoolState } from '../../service/warm-pools.js';
import { defineRoute, type AnyRoute } from '../route.js';
import { ErrorSchema } from '../shared/schemas.js';
import { PutWarmPoolBody, WarmPoolListSchema, WarmPoolParams, WarmPoolSchema } from './schemas.js';

const view = (p: WarmPoolState) => ({
  name: p.name,
  template: p.template,
  config: p.config,
  size: p.size,
  ready: p.ready.length,
  hits: p.hits,
  misses: p.misses,
  last_error: p.lastError,
  machines: p.ready,
  created_at: new Date(p.createdAt).toISOString(),
  updated_at: new Date(p.updatedAt).toISOString(),
});

const errors = {
  400: { description: 'Invalid request.', schema: ErrorSchema },
  401: { description: 'Missing or unknown API key.', schema: ErrorSchema },
  403: { description: 'Not an admin key.', schema: ErrorSchema },
  404: { description: 'No such pool.', schema: ErrorSchema },
};

/** Warm pools (admin): machines started ahead of time for matching creates. */
export function warmPoolRoutes(pools: WarmPoolService): AnyRoute[] {
  return [
    defineRoute({
      method: 'PUT',
      url: '/v1/warm-pools/:name',
      operationId: 'putWarmPool',
      summary: 'Create or change a warm pool',
      description:
        'A create whose template and full config (after defaults) equal the pool\'s takes one of its idle machines; ' +
        'the pool refills in the background. Changing template or config replaces the idle machines.',
      tag: 'warm-pools',
      auth: 'admin',
      params: WarmPoolParams,
      body: PutWarmPoolBody,
      responses: { 200: { description: 'The pool.', schema: WarmPoolSchema }, ...errors, 422: { description: 'Unknown template.', schema: ErrorSchema } },
      handler: async ({ params, body }) => view(await pools.put(params.name, body)),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/warm-pools',
      operationId: 'listWarmPools',
      summary: 'List warm pools',
      tag: 'warm-pools',
      auth: 'admin',
      responses: { 200: { description: 'Pools.', schema: WarmPoolListSchema }, ...errors },
      handler: async () => ({ items: (await pools.list()).map(view) }),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/warm-pools/:name',
      operationId: 'getWarmPool',
      summary: 'Get a warm pool',
      tag: 'warm-pools',
      auth: 'admin',
      params: WarmPoolParams,
      responses: { 200: { description: 'The pool.', schema: WarmPoolSchema }, ...errors },
      handler: async ({ params }) => view(await pools.get(params.name)),
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/warm-pools/:name',
      operationId: 'deleteWarmPool',
      summary: 'Delete a warm pool and destroy its idle machines',
      tag: 'warm-pools',
      auth: 'admin',
      params: WarmPoolParams,
      status: 204,
      responses: { 204: { description: 'Deleted.' }, ...errors },
      handler: async ({ params }) => {
        await pools.delete(params.name);
      },
    }),
  ];
}
