import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { HangarError } from '../domain/errors.js';
import { scopeRefusal, type Caller } from '../domain/team.js';
import { parseOrThrow } from './validation.js';

/** Who may call a route. */
export type RouteAuth = 'public' | 'team' | 'admin';

/** A documented response of a route. */
export interface RouteResponse {
  description: string;
  schema?: z.ZodType;
  /** Media type when not JSON. */
  contentType?: string;
}

/** What a handler receives: validated inputs, the caller, and the raw Fastify objects. */
export interface RouteContext<B, Q, P> {
  body: B;
  query: Q;
  params: P;
  caller: Caller;
  /** The body as bytes, when the route takes `rawBody` and the request sent that media type; else null. */
  rawBody: Buffer | null;
  request: FastifyRequest;
  reply: FastifyReply;
}

/** One HTTP endpoint: its schemas validate requests and generate the OpenAPI document. */
export interface RouteSpec<B extends z.ZodType, Q extends z.ZodType, P extends z.ZodType> {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Fastify path syntax (`/v1/machines/:id`). */
  url: string;
  operationId: string;
  summary: string;
  description?: string;
  tag: string;
  auth: RouteAuth;
  body?: B;
  query?: Q;
  params?: P;
  /** Also accept the body as raw bytes of this media type (handed over as `rawBody`, not validated). */
  rawBody?: { contentType: string; description: string };
  /**
   * The route takes a raw body of any media type, handed to the handler unread as
   * `request.body` (a stream; Fastify's body limit does not apply, the handler sets its own).
   * Exclusive with `body` and `rawBody`.
   */
  streamBody?: { description: string; contentType: string };
  /** Request headers worth documenting (besides Authorization). */
  headers?: Array<{ name: string; description: string }>;
  /** Success status. @default 200 */
  status?: number;
  responses: Record<number, RouteResponse>;
  handler: (ctx: RouteContext<z.output<B>, z.output<Q>, z.output<P>>) => Promise<unknown>;
}

/** A route spec with its types erased, as stored in a registry. */
export type AnyRoute = RouteSpec<z.ZodType, z.ZodType, z.ZodType>;

/** Define a route; the identity function that gives the handler its inferred types. */
export function defineRoute<B extends z.ZodType = z.ZodUndefined, Q extends z.ZodType = z.ZodUndefined, P extends z.ZodType = z.ZodUndefined>(
  spec: RouteSpec<B, Q, P>,
): AnyRoute {
  return spec as unknown as AnyRoute;
}

/** Whether the route of a request takes its body as a stream (see `RouteSpec.streamBody`). */
export function takesStreamBody(request: FastifyRequest): boolean {
  return (request.routeOptions.config as { streamBody?: boolean } | undefined)?.streamBody === true;
}

/** Resolves the caller of a request (the auth service, at the edge). */
export type Authenticate = (header: string | undefined) => Promise<Caller>;

/** Options of a surface's Fastify plugin: its routes, built once so that the same definitions are served and documented. */
export interface SurfacePluginOptions {
  routes: readonly AnyRoute[];
  authenticate: Authenticate;
}

/**
 * Register routes on a Fastify instance. Routes with a stream body live in their own
 * encapsulated scope whose only parser passes any media type through as the unread
 * stream: every other route keeps JSON-only parsing.
 */
export function registerRoutes(app: FastifyInstance, routes: readonly AnyRoute[], authenticate: Authenticate): void {
  addRoutes(app, routes.filter((r) => !r.streamBody), authenticate);
  const raw = routes.filter((r) => r.streamBody);
  if (raw.length === 0) return;
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
    addRoutes(scope, raw, authenticate);
  });
}

/** Routes about one machine: its id is the `:id` after `/machines/`. */
const MACHINE_ROUTE = /\/machines\/:id(\/|$)/;

function addRoutes(app: FastifyInstance, routes: readonly AnyRoute[], authenticate: Authenticate): void {
  for (const r of routes) {
    app.route({
      method: r.method,
      url: r.url,
      // Read by the app: `rawBody` routes take octet-stream bytes; `streamBody` routes' media type errors are not about JSON.
      config: { rawBody: r.rawBody !== undefined, streamBody: r.streamBody !== undefined },
      handler: async (request, reply) => {
        let caller = undefined as unknown as Caller;
        if (r.auth !== 'public') {
          caller = await authenticate(request.headers.authorization);
          if (r.auth === 'admin' && !caller.team.isAdmin) {
            throw new HangarError('FORBIDDEN', 'This endpoint needs an admin API key.');
          }
          // A key of one machine reaches the routes about that machine (`…/machines/:id…`) only.
          const about = MACHINE_ROUTE.test(r.url) ? ((request.params as Record<string, string> | undefined)?.id ?? null) : null;
          const refusal = scopeRefusal(caller.scope, r.method, about);
          if (refusal !== null) throw new HangarError('FORBIDDEN', refusal);
        }
        const params = r.params ? parseOrThrow(r.params, request.params, 'path') : undefined;
        const query = r.query ? parseOrThrow(r.query, request.query ?? {}, 'query') : undefined;
        const rawBody = r.rawBody && Buffer.isBuffer(request.body) ? request.body : null;
        const body = r.body && rawBody === null ? parseOrThrow(r.body, request.body ?? {}) : undefined;
        const result = await r.handler({ body, query, params, caller, rawBody, request, reply });
        if (reply.sent) return reply;
        reply.code(r.status ?? 200);
        return result === undefined ? reply.send() : reply.send(result);
      },
    });
  }
}
