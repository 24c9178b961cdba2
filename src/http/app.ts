import Fastify, { LogController, type FastifyError, type FastifyInstance } from 'fastify';
import { z } from 'zod';
import { HangarError } from '../domain/errors.js';
import type { AuthService } from '../service/auth-service.js';
import type { ComputeService } from '../service/compute-service.js';
import type { ExecService } from '../service/exec-service.js';
import type { FileService } from '../service/file-service.js';
import type { MachineService } from '../service/machine-service.js';
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
import { ptyRoutes, servePtyUpgrades } from './native/pty-routes.js';
import { snapshotRoutes } from './native/snapshot-routes.js';
import { ErrorSchema } from './native/schemas.js';
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
}

/** Every route of the API, in the order the OpenAPI document lists them. */
export function allRoutes(o: Pick<AppOptions, 'machines' | 'pools' | 'exec' | 'processes' | 'files' | 'compute' | 'auth' | 'info' | 'isReady'>): AnyRoute[] {
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

function errorBody(err: HangarError): Record<string, unknown> {
  return err.details === undefined ? { code: err.code, message: err.message } : { code: err.code, message: err.message, details: err.details };
}

/** Map Fastify's own errors (body parsing, limits) onto the catalogue. */
function fromFastifyError(err: FastifyError, streamBody: boolean): HangarError | null {
  if (streamBody && err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return new HangarError('UNSUPPORTED_MEDIA_TYPE', 'The Content-Type header is malformed; send the bytes with a valid one such as application/octet-stream.');
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new HangarError('BODY_TOO_LARGE', 'The request body is too large; send at most 1 MiB of JSON.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new HangarError('UNSUPPORTED_MEDIA_TYPE', 'Send the body as JSON with "Content-Type: application/json".');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new HangarError('INVALID_JSON', 'The body is empty but Content-Type says JSON; send a JSON object such as {}.');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new HangarError('VALIDATION_FAILED', 'Content-Length does not match the body sent.');
  }
  if (err.statusCode === 400 && /prototype property/i.test(err.message)) {
    return new HangarError('INVALID_JSON', 'JSON keys "__proto__" and "constructor" are not accepted; rename them.');
  }
  if (err.statusCode === 400 && (err instanceof SyntaxError || /JSON/i.test(err.message))) {
    return new HangarError('INVALID_JSON', 'The body is not valid JSON; check quotes, commas and brackets.');
  }
  return null;
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
  const routes = allRoutes(o);
  const doc = openApiDocument(routes, o.version);

  app.setErrorHandler((err: FastifyError | HangarError, request, reply) => {
    const known = err instanceof HangarError ? err : fromFastifyError(err as FastifyError, takesStreamBody(request));
    if (known) {
      if (known.status >= 500) request.log.error({ err }, known.message);
      return reply.code(known.status).send(errorBody(known));
    }
    // No stack traces to clients, ever: the log has them.
    request.log.error({ err }, 'unhandled error');
    return reply.code(500).send({ code: 'INTERNAL', message: 'An unexpected error occurred; it has been logged.' });
  });
  app.setNotFoundHandler((request, reply) => {
    const e = new HangarError('ROUTE_NOT_FOUND', `No endpoint ${request.method} ${request.url.split('?')[0]}; see GET /openapi.json.`);
    return reply.code(404).send(errorBody(e));
  });
  app.get('/openapi.json', async () => doc);
  registerRoutes(app, routes, (h) => o.auth.authenticate(h));
  // WebSocket upgrades never reach Fastify's router: the terminal endpoint listens for them itself.
  const upgrades = servePtyUpgrades(app.server, o.pty, (h) => o.auth.authenticate(h), app.log);
  app.addHook('preClose', (done) => {
    upgrades.close();
    done();
  });
  registerIngress(app, { machines: o.machines });
  return { app, routes };
}
