import { z } from 'zod';
import type { WarmPoolService, WarmPoolState } from '../../service/warm-pools.js';
import { ConfigSchema, ErrorSchema } from '../native/schemas.js';
import { defineRoute, type AnyRoute } from '../route.js';

const PoolSchema = z
  .object({
    name: z.string(),
    template: z.string(),
    config: ConfigSchema,
    size: z.number().int(),
    ready: z.number().int().describe('Idle machines ready for a checkout.'),
    hits: z.number().int().describe('Creates served from the pool.'),
    misses: z.number().int().describe('Creates that matched the pool but found no machine ready.'),
    last_error: z.string().nullable().describe('The last refill failure; null once a refill works.'),
    machines: z.array(z.string()).describe('Ids of the idle machines (admins only see these).'),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .meta({ id: 'WarmPool' });

const NameParams = z.object({ name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must be 1 to 63 lowercase letters, digits, - or _') });

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
      params: NameParams,
      body: z.strictObject({
        template: z.string().min(1).max(64),
        config: ConfigSchema.partial().strict().optional().describe('Defaults as for create.'),
        size: z.number().int().min(0).max(1000).describe('Idle machines to keep ready.'),
      }),
      responses: { 200: { description: 'The pool.', schema: PoolSchema }, ...errors, 422: { description: 'Unknown template.', schema: ErrorSchema } },
      handler: async ({ params, body }) => view(await pools.put(params.name, body)),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/warm-pools',
      operationId: 'listWarmPools',
      summary: 'List warm pools',
      tag: 'warm-pools',
      auth: 'admin',
      responses: { 200: { description: 'Pools.', schema: z.object({ items: z.array(PoolSchema) }) }, ...errors },
      handler: async () => ({ items: (await pools.list()).map(view) }),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/warm-pools/:name',
      operationId: 'getWarmPool',
      summary: 'Get a warm pool',
      tag: 'warm-pools',
      auth: 'admin',
      params: NameParams,
      responses: { 200: { description: 'The pool.', schema: PoolSchema }, ...errors },
      handler: async ({ params }) => view(await pools.get(params.name)),
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/warm-pools/:name',
      operationId: 'deleteWarmPool',
      summary: 'Delete a warm pool and destroy its idle machines',
      tag: 'warm-pools',
      auth: 'admin',
      params: NameParams,
      status: 204,
      responses: { 204: { description: 'Deleted.' }, ...errors },
      handler: async ({ params }) => {
        await pools.delete(params.name);
      },
    }),
  ];
}
