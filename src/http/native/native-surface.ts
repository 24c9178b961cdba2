/**
 * The native surface (seeds 000, 001, 003, volumes, startup scripts, private networks and the system routes): its routes in the order
 * the OpenAPI document lists them, and the Fastify plugin that serves them. Ingress and
 * the terminal WebSocket are native too, but the app registers them itself: they answer
 * before (and outside) Fastify's routing.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { ExecService } from '../../service/exec-service.js';
import type { FileService } from '../../service/file-service.js';
import type { FileWatchService } from '../../service/file-watch.js';
import type { MachineService } from '../../service/machine-service.js';
import type { ProcessService } from '../../service/process-service.js';
import type { TemplateApi } from '../../service/template-api.js';
import type { StartupScriptRuns } from '../../service/startup-script-runs.js';
import type { StartupScriptService } from '../../service/startup-script-service.js';
import type { NetworkService } from '../../service/network-service.js';
import type { VolumeService } from '../../service/volume-service.js';
import { registerRoutes, type AnyRoute, type SurfacePluginOptions } from '../route.js';
import { execRoutes } from './exec-routes.js';
import { fileRoutes } from './file-routes.js';
import { machineRoutes } from './machine-routes.js';
import { networkRoutes } from './network-routes.js';
import { processRoutes } from './process-routes.js';
import { quotaRoutes } from './quota-routes.js';
import { ptyRoutes } from './pty-routes.js';
import { desktopRoutes } from './desktop-routes.js';
import { snapshotRoutes } from './snapshot-routes.js';
import { startupScriptRoutes } from './startup-script-routes.js';
import { systemRoutes, type SystemRoutesOptions } from './system-routes.js';
import { templateRoutes } from './template-routes.js';
import { volumeRoutes } from './volume-routes.js';

/** The services the native routes call. */
export interface NativeSurfaceOptions extends SystemRoutesOptions {
  machines: MachineService;
  volumes: VolumeService;
  startupScripts: StartupScriptService;
  startupScriptRuns: StartupScriptRuns;
  networks: NetworkService;
  exec: ExecService;
  processes: ProcessService;
  files: FileService;
  fileWatches: FileWatchService;
  templates: TemplateApi;
}

/** Every native route, in document order. */
export function nativeSurfaceRoutes(o: NativeSurfaceOptions): AnyRoute[] {
  return [
    ...systemRoutes(o),
    ...quotaRoutes(o.machines),
    ...machineRoutes(o.machines, o.startupScriptRuns),
    ...snapshotRoutes(o.machines),
    ...volumeRoutes(o.volumes),
    ...startupScriptRoutes(o.startupScripts),
    ...networkRoutes(o.networks),
    ...execRoutes(o.exec),
    ...processRoutes(o.processes),
    ...ptyRoutes(),
    ...desktopRoutes(),
    ...fileRoutes(o.files, o.fileWatches),
    ...templateRoutes(o.templates),
  ];
}

/** The native surface as a Fastify plugin: its routes in a scope of their own, with the app's parsers and error handler. */
export const nativeSurface: FastifyPluginAsync<SurfacePluginOptions> = async (scope, { routes, authenticate }) => {
  registerRoutes(scope, routes, authenticate);
};
