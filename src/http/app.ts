import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import { HangarError } from '../domain/errors.js';
import type { AuthService } from '../service/auth-service.js';
import type { ComputeService } from '../service/compute-service.js';
import type { ExecService } from '../service/exec-service.js';
import type { FileService } from '../service/file-service.js';
import type { FileWatchService } from '../service/file-watch.js';
import type { MachineOperations } from '../service/machine-operations.js';
import type { MachineService } from '../service/machine-service.js';
import type { NetworkService } from '../service/network-service.js';
import type { VolumeService } from '../service/volume-service.js';
import type { PaperspaceService } from '../service/paperspace-service.js';
import type { AccessorService } from '../service/accessor-service.js';
import type { ProcessService } from '../service/process-service.js';
import type { PtyService } from '../service/pty-service.js';
import type { DesktopService } from '../service/desktop-service.js';
import type { WarmPoolService } from '../service/warm-pools.js';
import { adminSurface, adminSurfaceRoutes } from './admin/admin-surface.js';
import { computeSurface, computeSurfaceRoutes } from './compute/compute-surface.js';
import type { AskHosts } from './compute/compute-routes.js';
import { e2bSurface } from './e2b/e2b-surface.js';
import { errorBody, errorHandler } from './error-mapping.js';
import { clientErrorHandler, frameworkErrors, MAX_PATH_SEGMENT } from './framework-errors.js';
import { registerIngress } from './native/ingress-routes.js';
import { FleetForwarding, type FleetRouter } from './fleet-forward.js';
import type { HostListing } from './admin/host-routes.js';
import { nativeSurface, nativeSurfaceRoutes } from './native/native-surface.js';
import { ptyUpgrades } from './native/pty-routes.js';
import { desktopUpgrades } from './native/desktop-routes.js';
import { consolePlugin } from './console/console-plugin.js';
import { buildOpenApi } from './openapi.js';
import { paperspaceSurface, paperspaceSurfaceRoutes } from './paperspace/paperspace-surface.js';
import type { TemplateApi } from '../service/template-api.js';
import type { StartupScriptRuns } from '../service/startup-script-runs.js';
import type { StartupScriptService } from '../service/startup-script-service.js';
import type { Metrics } from '../service/metrics.js';
import type { AnyRoute } from './route.js';

/** What the HTTP edge needs from the rest of the server. */
export interface AppOptions {
  machines: MachineService;
  volumes: VolumeService;
  startupScripts: StartupScriptService;
  startupScriptRuns: StartupScriptRuns;
  networks: NetworkService;
  pools: WarmPoolService;
  exec: ExecService;
  processes: ProcessService;
  pty: PtyService;
  desktop: DesktopService;
  files: FileService;
  fileWatches: FileWatchService;
  templates: TemplateApi;
  metrics: Metrics;
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
  /** The built web console (`dist/console`), served at /console. @default null (not served) */
  consoleDir?: string | null;
  /** The hosts sharing the store (GET /v1/admin/hosts). */
  hosts: HostListing;
  /** Where requests for other hosts' machines, and creates placed elsewhere, go. @default none: every request is answered here */
  fleet?: FleetRouter | null;
}

/** What building the routes needs: the services (never called while only documenting). */
export type RoutesOptions = Pick<
  AppOptions,
  'machines' | 'metrics' | 'templates' | 'volumes' | 'startupScripts' | 'startupScriptRuns' | 'networks' | 'pools' | 'exec' | 'processes' | 'files' | 'fileWatches' | 'compute' | 'paperspace' | 'accessors' | 'operations' | 'paperspaceBase' | 'auth' | 'info' | 'isReady' | 'hosts'
>;

/** The routes of each surface, each list in document order. */
export interface SurfaceRoutes {
  native: AnyRoute[];
  compute: AnyRoute[];
  paperspace: AnyRoute[];
  admin: AnyRoute[];
}

/** Build every surface's routes, once: the same definitions are served and documented. */
export function surfaceRoutes(o: RoutesOptions & { askHosts?: AskHosts }): SurfaceRoutes {
  return {
    native: nativeSurfaceRoutes(o),
    compute: computeSurfaceRoutes(o.compute, o.askHosts),
    paperspace: paperspaceSurfaceRoutes({ paperspace: o.paperspace, accessors: o.accessors, operations: o.operations, basePath: o.paperspaceBase, templates: o.templates }),
    admin: adminSurfaceRoutes({ auth: o.auth, quotas: o.machines.quotas, pools: o.pools, now: o.machines.now, metrics: o.metrics, hosts: o.hosts }),
  };
}

/** Every route of a set of surfaces, in the order the OpenAPI document lists them. */
export function routesInDocumentOrder(s: SurfaceRoutes): AnyRoute[] {
  return [...s.native, ...s.compute, ...s.paperspace, ...s.admin];
}

/** Every route of the API, in the order the OpenAPI document lists them. */
export function allRoutes(o: RoutesOptions): AnyRoute[] {
  return routesInDocumentOrder(surfaceRoutes(o));
}

/** The OpenAPI document of the whole API. */
export function openApiDocument(routes: readonly AnyRoute[], version: string): Record<string, unknown> {
  const doc = buildOpenApi(routes, { title: 'Hangar', version });
  (doc.paths as Record<string, unknown>)['/openapi.json'] = {
    get: { operationId: 'openapi', summary: 'This document', tags: ['system'], security: [], responses: { 200: { description: 'OpenAPI 3.1.' } } },
  };
  return doc;
}

/** Build the Fastify app (not listening). */
export function buildApp(o: AppOptions): { app: FastifyInstance; routes: AnyRoute[]; inFlight: () => string[] } {
  const app = Fastify({
    logger: { level: o.logLevel ?? 'info' },
    bodyLimit: o.bodyLimit ?? 1024 * 1024,
    // A log line per request would cost more than most requests; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    // Keep-alive connections must not keep a stopping server (and its tests) alive.
    forceCloseConnections: true,
    // Ids may be up to 128 characters; longer ones get a catalogue 400, not Fastify's 414.
    routerOptions: { maxParamLength: MAX_PATH_SEGMENT },
    // Router and HTTP-parser failures answer in the catalogue's shape too.
    frameworkErrors,
    clientErrorHandler,
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
    // Fastify's default parser answers through `done`; its type also allows a promise, which it never returns.
    void parseJson(request, body as string, done);
  });
  // Raw bytes only where a route asks for them (a process's stdin); anywhere else a 415, as before.
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (request, body, done) => {
    if ((request.routeOptions.config as { rawBody?: boolean }).rawBody) {
      done(null, body);
      return;
    }
    done(new HangarError('UNSUPPORTED_MEDIA_TYPE', 'Send the body as JSON with "Content-Type: application/json".'), undefined);
  });
  // Before everything: a request for another host's machine is forwarded whole.
  const forwarding = o.fleet
    ? new FleetForwarding({ router: o.fleet, createRoutes: new Set(['/v1/machines', '/sandboxes', '/v2/sandboxes', `${o.paperspaceBase}/machines`, '/v1/templates']), log: app.log })
    : null;
  forwarding?.register(app);
  // First, so that host-based ingress answers before any API routing.
  const ingress = registerIngress(app, { machines: o.machines, domain: o.ingressDomain ?? null, log: app.log });
  const surfaces = surfaceRoutes({ ...o, ...(forwarding ? { askHosts: (request, hostIds) => forwarding.gather(request, hostIds) } : {}) });
  const routes = routesInDocumentOrder(surfaces);
  const doc = openApiDocument(routes, o.version);

  // Set before the surfaces are registered: each surface's scope inherits them (Paperspace sets its own handler).
  app.setErrorHandler(errorHandler());
  app.setNotFoundHandler((request, reply) => {
    const e = new HangarError('ROUTE_NOT_FOUND', `No endpoint ${request.method} ${request.url.split('?')[0]}; see GET /openapi.json.`);
    return reply.code(404).send(errorBody(e));
  });
  app.get('/openapi.json', async () => doc);
  const authenticate = (h: string | undefined) => o.auth.authenticate(h);
  void app.register(nativeSurface, { routes: surfaces.native, authenticate });
  void app.register(computeSurface, { routes: surfaces.compute, authenticate });
  void app.register(paperspaceSurface, { routes: surfaces.paperspace, authenticate });
  void app.register(adminSurface, { routes: surfaces.admin, authenticate });
  if (o.consoleDir) void app.register(consolePlugin, { dir: o.consoleDir });
  // E2B's control API and envd follow E2B's own spec: served, not in Hangar's OpenAPI document.
  void app.register(e2bSurface, { machines: o.machines, compute: o.compute, auth: o.auth, processes: o.processes, pty: o.pty, files: o.files, fileWatches: o.fileWatches, authenticate });
  // Requests being answered, for a bounded stop to say which it abandons.
  const open = new Map<string, string>();
  app.addHook('onRequest', (request, _reply, done) => {
    open.set(request.id, `${request.method} ${request.url.split('?')[0]}`);
    done();
  });
  app.addHook('onRequestAbort', (request, done) => {
    open.delete(request.id);
    done();
  });
  // Every answered request, by its route pattern (never the raw path: ids would make a series each).
  app.addHook('onResponse', (request, reply, done) => {
    open.delete(request.id);
    o.metrics.observeHttp(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
  // WebSocket upgrades never reach Fastify's router: each goes to exactly one of ingress
  // (by host, or by a /v1/machines/{id}/ports/{port} path), the desktop (VNC) endpoint and
  // the terminal endpoint.
  const pty = ptyUpgrades(o.pty, authenticate, app.log);
  const desktop = desktopUpgrades(o.desktop, authenticate, app.log);
  app.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => undefined);
    if (!forwarding) return local(request, socket, head);
    forwarding.upgrade(request, socket, head).then(
      (forwarded) => forwarded || local(request, socket, head),
      (err: unknown) => {
        app.log.warn({ err }, 'forwarding an upgrade failed');
        socket.destroy();
      },
    );
  });
  const local = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const target = ingress.target(request);
    if (target) ingress.handle(request, socket, head, target);
    else if (desktop.matches(request.url ?? '/')) desktop.handle(request, socket, head);
    else pty.handle(request, socket, head);
  };
  app.addHook('preClose', (done) => {
    forwarding?.close();
    pty.close();
    desktop.close();
    ingress.close();
    done();
  });
  return { app, routes, inFlight: () => [...open.values()] };
}
