import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { LogController, type FastifyError, type FastifyInstance } from 'fastify';
import { z } from 'zod';
import { HangarError } from '../domain/errors.js';
import type { AuthService } from '../service/auth-service.js';
import type { ComputeService } from '../service/compute-service.js';
import type { ExecService } from '../service/exec-service.js';
import type { FileService } from '../service/file-service.js';
import type { MachineOperations } from '../service/machine-operations.js';
import type { MachineService } from '../service/machine-service.js';
import type { PaperspaceService } from '../service/paperspace-service.js';
import type { AccessorService } from '../service/accessor-service.js';
import type { ProcessService } from '../service/process-service.js';
import type { PtyService } from '../service/pty-service.js';
import type { WarmPoolService } from '../service/warm-pools.js';
import { warmPoolRoutes } from './admin/warm-pool-routes.js';
import { adminRoutes } from './admin/admin-routes.js';
import { computeRoutes } from './compute/compute-routes.js';
import { execRoutes } from './native/exec-routes.js';
import { fileRoutes } from './native/file-routes.js';
import { machineRoutes } from './native/machine-routes.js';
import { processRoutes } from './native/process-routes.js';
import { ptyRoutes, ptyUpgrades } from './native/pty-routes.js';
import { snapshotRoutes } from './native/snapshot-routes.js';
import { ErrorSchema } from './native/schemas.js';
import { errorBody, fromFastifyError } from './error-mapping.js';
import { PAPERSPACE_TAG, paperspaceRoutes } from './paperspace/paperspace-routes.js';
import { buildOpenApi } from './openapi.js';
import { registerIngress } from './native/ingress-routes.js';
import { defineRoute, registerRoutes, takesStreamBody, type AnyRoute } from './route.js';

/** What the HTTP edge needs from the rest of the server. */
export interface AppOptions {
  machines: MachineService;
  pools: WarmPoolService;
  exec: ExecService;
  processes: ProcessService;
  pty: PtyService;
  files: FileService;
  compute: ComputeService;
  paperspace: PaperspaceService;
  accessors: AccessorService;
  operations: MachineOperations;
  /** Where the Paperspace-style surface is mounted. @default '/paperspace/v1' */
  paperspaceBase: string;
  auth: AuthService;
  /** Facts for GET /v1/info. */
  info: () => Promise<Record<string, unknown>>;
  /** True once start-up (re-adoption) is done. */
  isReady: () => boolean;
  version: string;
  /** @default 'info' */
  logLevel?: string;
  /** Largest accepted request body. @default 1048576 */
  bodyLimit?: number;
  /** Host-based ingress: requests to `{port}-{id}.{domain}` go to the machine. @default null (off) */
  ingressDomain?: string | null;
}

/** Every route of the API, in the order the OpenAPI document lists them. */
export function allRoutes(
  o: Pick<
    AppOptions,
    'machines' | 'pools' | 'exec' | 'processes' | 'files' | 'compute' | 'paperspace' | 'accessors' | 'operations' | 'paperspaceBase' | 'auth' | 'info' | 'isReady'
  >,
): AnyRoute[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/healthz',
      operationId: 'health',
      summary: 'Readiness',
      description: '200 once the server has re-adopted its machines and serves requests; 503 before.',
      tag: 'system',
      auth: 'public',
      responses: { 200: { description: 'Ready.', schema: z.object({ status: z.literal('ok') }) }, 503: { description: 'Not ready.', schema: ErrorSchema } },
      handler: async () => {
        if (!o.isReady()) throw new HangarError('NOT_READY', 'The server is starting; retry in a moment.');
        return { status: 'ok' };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/info',
      operationId: 'getInfo',
      summary: 'Server facts: version, runtime, snapshot support, limits, templates',
      tag: 'system',
      auth: 'team',
      responses: { 200: { description: 'Facts.', schema: z.record(z.string(), z.unknown()) } },
      handler: () => o.info(),
    }),
    ...machineRoutes(o.machines),
    ...snapshotRoutes(o.machines),
    ...execRoutes(o.exec),
    ...processRoutes(o.processes),
    ...ptyRoutes(),
    ...fileRoutes(o.files),
    ...computeRoutes(o.compute),
    ...paperspaceRoutes({ paperspace: o.paperspace, accessors: o.accessors, operations: o.operations, basePath: o.paperspaceBase }),
    ...adminRoutes(o.auth, o.machines.now),
    ...warmPoolRoutes(o.pools),
  ];
}

/** The OpenAPI document of the whole API. */
export function openApiDocument(routes: readonly AnyRoute[], version: string): Record<string, unknown> {
  const doc = buildOpenApi(routes, { title: 'Hangar', version });
  (doc.paths as Record<string, unknown>)['/openapi.json'] = {
    get: { operationId: 'openapi', summary: 'This document', tags: ['system'], security: [], responses: { 200: { description: 'OpenAPI 3.1.' } } },
  };
  return doc;
}

type ErrorHandler = Parameters<FastifyInstance['setErrorHandler']>[0];

/** An error handler that renders catalogue errors with `render` and hides everything else behind INTERNAL. */
function errorHandler(render: (e: HangarError) => Record<string, unknown>): ErrorHandler {
  return (err: unknown, request, reply) => {
    const known = err instanceof HangarError ? err : fromFastifyError(err as FastifyError, takesStreamBody(request));
    if (known) {
      if (known.status >= 500) request.log.error({ err }, known.message);
      return reply.code(known.status).send(render(known));
    }
    // No stack traces to clients, ever: the log has them.
    request.log.error({ err }, 'unhandled error');
    return reply.code(500).send({ code: 'INTERNAL', message: 'An unexpected error occurred; it has been logged.' });
  };
}

/**
 * Paperspace-style errors: the seed's `{code, message, details?}`, with the catalogue's
 * codes and statuses (the seed names no codes of its own).
 */
function paperspaceErrorBody(e: HangarError): Record<string, unknown> {
  const body: Record<string, unknown> = { code: e.code, message: e.message };
  if (e.details !== undefined) body.details = e.details;
  return body;
}

/** Build the Fastify app (not listening). */
export function buildApp(o: AppOptions): { app: FastifyInstance; routes: AnyRoute[] } {
  const app = Fastify({
    logger: { level: o.logLevel ?? 'info' },
    bodyLimit: o.bodyLimit ?? 1024 * 1024,
    // A log line per request would cost more than most requests; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    // Keep-alive connections must not keep a stopping server (and its tests) alive.
    forceCloseConnections: true,
    // Ids may be up to 128 characters; longer ones get a catalogue 400, not Fastify's 414.
    routerOptions: { maxParamLength: 256 },
  });
  // JSON only: a text/plain body is a 415, not a string for the schema to reject.
  app.removeContentTypeParser('text/plain');
  // An empty body with a JSON content type (some clients send it on DELETE) means no body.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') {
      done(null, undefined);
      return;
    }
    parseJson(request, body as string, done);
  });
  // Raw bytes only where a route asks for them (a process's stdin); anywhere else a 415, as before.
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (request, body, done) => {
    if ((request.routeOptions.config as { rawBody?: boolean }).rawBody) {
      done(null, body);
      return;
    }
    done(new HangarError('UNSUPPORTED_MEDIA_TYPE', 'Send the body as JSON with "Content-Type: application/json".'), undefined);
  });
  // First, so that host-based ingress answers before any API routing.
  const ingress = registerIngress(app, { machines: o.machines, domain: o.ingressDomain ?? null, log: app.log });
  const routes = allRoutes(o);
  const doc = openApiDocument(routes, o.version);

  app.setErrorHandler(errorHandler(errorBody));
  app.setNotFoundHandler((request, reply) => {
    const e = new HangarError('ROUTE_NOT_FOUND', `No endpoint ${request.method} ${request.url.split('?')[0]}; see GET /openapi.json.`);
    return reply.code(404).send(errorBody(e));
  });
  app.get('/openapi.json', async () => doc);
  const authenticate = (h: string | undefined) => o.auth.authenticate(h);
  registerRoutes(app, routes.filter((r) => r.tag !== PAPERSPACE_TAG), authenticate);
  // The Paperspace-style surface has its own scope, so its error answers follow its seed.
  void app.register(async (scope) => {
    scope.setErrorHandler(errorHandler(paperspaceErrorBody));
    registerRoutes(scope, routes.filter((r) => r.tag === PAPERSPACE_TAG), authenticate);
  });
  // WebSocket upgrades never reach Fastify's router: each goes to exactly one of ingress
  // (by host, or by a /v1/machines/{id}/ports/{port} path) and the terminal endpoint.
  const pty = ptyUpgrades(o.pty, authenticate, app.log);
  app.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => undefined);
    const target = ingress.target(request);
    if (target) ingress.handle(request, socket, head, target);
    else pty.handle(request, socket, head);
  });
  app.addHook('preClose', (done) => {
    pty.close();
    ingress.close();
    done();
  });
  return { app, routes };
}
